import { Environment } from '@marcbachmann/cel-js';
class Req { constructor(){ this.method='GET'; this.path='/'; this.host='h'; this.headers={}; this.ip=''; } }
class Ident { constructor(){ this.sub=''; this.roles=[]; this.scopes=[]; this.issuer=''; } }
const env = new Environment({ limits: { maxAstNodes: 200 } })
  .registerType('Request', { ctor: Req, fields: { method: 'string', path: 'string', host: 'string', headers: 'map<string, string>', ip: 'string' } })
  .registerType('Identity', { ctor: Ident, fields: { sub: 'string', roles: 'list<string>', scopes: 'list<string>', issuer: 'string' } })
  .registerVariable('request', 'Request').registerVariable('identity', 'Identity').registerVariable('claims', 'map<string, dyn>')
  .registerVariable('now', 'google.protobuf.Timestamp')
  .registerFunction('ip_in(string, string): bool', (a, b) => { console.log('ip_in', a, b); return true; });
const r = new Req(); r.headers = { 'x-tenant': 'acme' }; r.ip='10.1.2.3';
const id = new Ident(); id.roles=['admin'];
const ctx = { request: r, identity: id, claims: { tenant: 'acme', n: 5, nested: { a: [1,2] } }, now: new Date('2026-03-04T12:30:00Z') };
const tests = [
  'request.headers["x-tenant"] == claims.tenant',
  'request.headers["constructor"] == "x"',
  'claims["constructor"] == "x"',
  'claims.missing == "x"',
  'has(claims.missing)',
  'claims.n == 5',
  'claims.n > 4',
  'request.method == "DELETE" ? "admin" in identity.roles : true',
  'now.getHours("Europe/Berlin") >= 8 && now.getHours("Europe/Berlin") < 18',
  'ip_in(request.ip, "10.0.0.0/8")',
  'request.foo == 1',
  '1 + ',
  'request.method + 1',
  'claims.tenant',
  '"a".matches("a+")',
  'identity.roles.exists(r, r == "admin")',
  'claims.nested.a.size() == 2',
  'request.path.startsWith("/api")',
];
for (const t of tests) {
  try {
    const c = env.check(t);
    console.log(t, '→ check', c.valid, c.type, c.error?.message);
    const p = env.parse(t);
    console.log('   eval', p(ctx));
  } catch (e) { console.log(t, 'ERR', e.constructor.name, e.message.split('\n')[0]); }
}
const p = env.parse('request.headers["x-tenant"] == claims.tenant && ip_in(request.ip, "10.0.0.0/8")');
console.log(JSON.stringify(p.ast, (k,v)=> (k==='input'||k==='range'||k==='parent')?undefined:v).slice(0,800));
console.log(Object.keys(p.ast));
