/**
 * Test token factory and attack-token generator. Signs with node:crypto directly (not jose) so a
 * test can put anything in the header, payload and signature, including what jose refuses to emit.
 */
import { constants, createHmac, generateKeyPairSync, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Reason } from '../../src/reasons.js';

export type TestAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

export interface TestKey {
  readonly kid: string;
  readonly alg: TestAlg;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public JWK as a JWKS serves it (with kid, use sig, and alg unless omitted). */
  readonly jwk: JsonWebKey;
}

export function makeKey(alg: TestAlg, kid: string, opts: { jwkAlg?: boolean; rsaBits?: number } = {}): TestKey {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: opts.rsaBits ?? 2048 });
  const jwk: JsonWebKey = { ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig' };
  if (opts.jwkAlg !== false) jwk.alg = alg;
  return { kid, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk };
}

export const jwksOf = (...keys: TestKey[]): { keys: JsonWebKey[] } => ({ keys: keys.map((k) => k.jwk) });

export function b64url(value: string | Buffer | object): string {
  if (Buffer.isBuffer(value)) return value.toString('base64url');
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8').toString('base64url');
}

/** Raw signature bytes over `signingInput` for a JWS alg. `key` is a secret Buffer for HS256. */
export function signBytes(alg: string, signingInput: string, key: KeyObject | Buffer): Buffer {
  const data = Buffer.from(signingInput, 'latin1');
  switch (alg) {
    case 'HS256':
      return createHmac('sha256', key as Buffer).update(data).digest();
    case 'RS256':
      return sign('sha256', data, key as KeyObject);
    case 'PS256':
      return sign('sha256', data, { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    case 'ES256':
      return sign('sha256', data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA':
      return sign(null, data, key as KeyObject);
    default:
      throw new Error(`cannot sign ${alg}`);
  }
}

export interface TokenSpec {
  readonly key: TestKey;
  /** Header members merged over {alg, typ, kid}; undefined values remove a member. */
  readonly header?: Record<string, unknown>;
  /** Claims merged over the standard ones; undefined values remove a claim. */
  readonly claims?: Record<string, unknown>;
  /** Raw JSON text for header/payload (for duplicate-key and odd-JSON cases). */
  readonly rawHeader?: string;
  readonly rawPayload?: string;
  readonly signWith?: { alg: string; key: KeyObject | Buffer };
}

export interface TokenFactory {
  readonly issuer: string;
  readonly audience: string;
  /** Standard valid claims at `nowS`. */
  claims(extra?: Record<string, unknown>): Record<string, unknown>;
  mint(spec: TokenSpec): string;
}

export function tokenFactory(issuer: string, audience: string, nowS: () => number = () => Math.floor(Date.now() / 1000)): TokenFactory {
  const claims = (extra: Record<string, unknown> = {}) =>
    dropUndefined({ iss: issuer, aud: audience, sub: 'alice', iat: nowS() - 10, exp: nowS() + 600, ...extra });
  return {
    issuer,
    audience,
    claims,
    mint(spec) {
      const header = spec.rawHeader ?? JSON.stringify(dropUndefined({ alg: spec.key.alg, typ: 'JWT', kid: spec.key.kid, ...spec.header }));
      const payload = spec.rawPayload ?? JSON.stringify(claims(spec.claims));
      const input = `${b64url(header)}.${b64url(payload)}`;
      const alg = spec.signWith?.alg ?? (JSON.parse(header) as { alg: string }).alg;
      const sig = signBytes(alg, input, spec.signWith?.key ?? spec.key.privateKey);
      return `${input}.${b64url(sig)}`;
    },
  };
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** One attack: either a token for authenticate(), or a raw header value for extraction. */
export interface AttackCase {
  readonly name: string;
  readonly token?: string;
  readonly authorization?: string;
  readonly reason: Reason;
  /** The cause the deny detail must name, so an attack is not "denied" for an unrelated reason. */
  readonly detail?: RegExp;
}

export interface AttackContext {
  readonly f: TokenFactory;
  /** Keys the issuer's JWKS holds: an RSA key (alg RS256), an EC key (alg ES256), and a second RSA key without alg. */
  readonly rsa: TestKey;
  readonly ec: TestKey;
  readonly rsaNoAlg: TestKey;
  /** A key the attacker controls and serves from its own JWKS at attackerOrigin. */
  readonly attacker: TestKey;
  readonly attackerOrigin: string;
  readonly maxTokenBytes: number;
}

/** Real attacks against JWT verifiers; each must be denied with the given reason. */
export function attackCorpus(ctx: AttackContext): AttackCase[] {
  const { f, rsa, ec, attacker } = ctx;
  const valid = f.mint({ key: rsa });
  const [h, p, s] = valid.split('.') as [string, string, string];
  const cases: AttackCase[] = [];
  const add = (name: string, reason: Reason, token: string, detail?: RegExp) =>
    cases.push(detail === undefined ? { name, reason, token } : { name, reason, token, detail });

  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    const unsigned = `${b64url({ alg, typ: 'JWT' })}.${p}`;
    add(`alg ${alg}, empty signature`, 'token_invalid', `${unsigned}.`, /alg none/);
    add(`alg ${alg}, with a signature`, 'token_invalid', `${unsigned}.${s}`, /alg none/);
  }
  add('empty signature', 'token_invalid', `${h}.${p}.`, /signature missing/);
  add('stripped signature (two segments)', 'token_malformed', `${h}.${p}`);

  // Key confusion: HMAC with the issuer's public key as the secret, in every common encoding.
  const encodings = (k: TestKey): [string, Buffer][] => [
    ['PEM', Buffer.from(k.publicKey.export({ type: 'spki', format: 'pem' }))],
    ['DER', k.publicKey.export({ type: 'spki', format: 'der' })],
    ['JWK-JSON', Buffer.from(JSON.stringify(k.jwk))],
  ];
  for (const k of [rsa, ec]) {
    for (const [enc, secret] of encodings(k)) {
      add(`HS256 with the ${k.alg} public key (${enc}) as secret`, 'token_invalid', f.mint({ key: k, header: { alg: 'HS256' }, signWith: { alg: 'HS256', key: secret } }), /signature verification|not allowed/);
      add(`HS256 with the ${k.alg} public key (${enc}), no kid`, 'token_invalid', f.mint({ key: k, header: { alg: 'HS256', kid: undefined }, signWith: { alg: 'HS256', key: secret } }), /signature verification|not allowed/);
    }
  }
  add('PS256 against an issuer that allows only RS256', 'token_invalid', f.mint({ key: rsa, header: { alg: 'PS256' }, signWith: { alg: 'PS256', key: rsa.privateKey } }), /not allowed/);
  add('ES256 token naming the RSA kid', 'token_invalid', f.mint({ key: ec, header: { kid: rsa.kid } }), /cannot verify|not allowed/);
  add('RS256 token naming the EC kid', 'token_invalid', f.mint({ key: rsa, header: { kid: ec.kid } }), /cannot verify/);
  add('PS256 signature on the RSA key whose JWK says RS256', 'token_invalid', f.mint({ key: rsa, signWith: { alg: 'PS256', key: rsa.privateKey } }));

  add('kid path traversal', 'token_invalid', f.mint({ key: attacker, header: { kid: '../../../../etc/passwd' } }));
  add('kid SQL injection', 'token_invalid', f.mint({ key: attacker, header: { kid: '1 OR 1=1' } }));
  add('kid with CRLF', 'token_invalid', f.mint({ key: rsa, header: { kid: 'rsa-1\r\nX-Injected: 1' } }), /control/);
  add('numeric kid', 'token_invalid', f.mint({ key: rsa, header: { kid: 1 } }), /not a string/);
  add('kid as an object', 'token_invalid', f.mint({ key: rsa, header: { kid: { $ne: '' } } }), /not a string/);
  add('missing kid with several RSA keys', 'token_invalid', f.mint({ key: rsa, header: { kid: undefined } }), /kid missing/);

  const attackerJwks = `${ctx.attackerOrigin}/jwks.json`;
  add('jku to an attacker JWKS, attacker kid', 'token_invalid', f.mint({ key: attacker, header: { jku: attackerJwks } }));
  add('jku to an attacker JWKS, issuer kid', 'token_invalid', f.mint({ key: attacker, header: { jku: attackerJwks, kid: rsa.kid } }));
  add('x5u to an attacker certificate', 'token_invalid', f.mint({ key: attacker, header: { x5u: `${ctx.attackerOrigin}/cert.pem`, kid: rsa.kid } }));
  add('embedded jwk of the attacker', 'token_invalid', f.mint({ key: attacker, header: { jwk: attacker.jwk, kid: rsa.kid } }));
  add('embedded jwk, no kid', 'token_invalid', f.mint({ key: attacker, header: { jwk: attacker.jwk, kid: undefined } }));

  add('crit with an unknown extension', 'token_invalid', f.mint({ key: rsa, header: { crit: ['http://evil/ext'], 'http://evil/ext': true } }), /crit/);
  add('crit naming exp', 'token_invalid', f.mint({ key: rsa, header: { crit: ['exp'] } }), /crit/);
  add('b64:false unencoded payload', 'token_invalid', f.mint({ key: rsa, header: { b64: false, crit: ['b64'] } }), /crit|b64/);
  add('b64:false without crit', 'token_invalid', f.mint({ key: rsa, header: { b64: false } }), /crit|b64/);
  add('nested JWT (cty JWT)', 'token_invalid', f.mint({ key: rsa, header: { cty: 'JWT' } }), /nested/);
  add('nested JWT (cty jwt)', 'token_invalid', f.mint({ key: rsa, header: { cty: 'jwt' } }), /nested/);

  const ecToken = f.mint({ key: ec });
  const [eh, ep, es] = ecToken.split('.') as [string, string, string];
  const ecSig = Buffer.from(es, 'base64url');
  const zero32 = Buffer.alloc(32);
  add('ECDSA r=0 s=0', 'token_invalid', `${eh}.${ep}.${b64url(Buffer.alloc(64))}`, /signature verification/);
  add('ECDSA r=0', 'token_invalid', `${eh}.${ep}.${b64url(Buffer.concat([zero32, ecSig.subarray(32)]))}`, /signature verification/);
  add('ECDSA s=0', 'token_invalid', `${eh}.${ep}.${b64url(Buffer.concat([ecSig.subarray(0, 32), zero32]))}`, /signature verification/);
  add('ECDSA DER-encoded signature', 'token_invalid', `${eh}.${ep}.${b64url(sign('sha256', Buffer.from(`${eh}.${ep}`), ec.privateKey))}`, /signature verification/);

  const claimsJson = JSON.stringify(f.claims());
  add('duplicate sub in payload', 'token_malformed', f.mint({ key: rsa, rawPayload: `${claimsJson.slice(0, -1)},"sub":"admin"}` }), /duplicate key/);
  add('duplicate sub via escape', 'token_malformed', f.mint({ key: rsa, rawPayload: `${claimsJson.slice(0, -1)},"s\\u0075b":"admin"}` }), /duplicate key/);
  add('duplicate key in a nested claim', 'token_malformed', f.mint({ key: rsa, rawPayload: `${claimsJson.slice(0, -1)},"roles":{"a":1,"a":2}}` }), /duplicate key/);
  add('duplicate alg in header', 'token_malformed', f.mint({ key: rsa, rawHeader: `{"alg":"RS256","kid":"${rsa.kid}","alg":"none"}`, signWith: { alg: 'RS256', key: rsa.privateKey } }), /duplicate key/);

  add('padding in the header', 'token_malformed', `${h}==.${p}.${s}`, /canonical/);
  add('padding in the signature', 'token_malformed', `${h}.${p}.${s}=`, /canonical/);
  add('whitespace in the payload', 'token_malformed', `${h}.${p.slice(0, 10)} ${p.slice(10)}.${s}`, /canonical/);
  add('newline in the signature', 'token_malformed', `${h}.${p}.${s.slice(0, 20)}\n${s.slice(20)}`, /canonical/);
  add("standard base64 '+' '/' in the signature", 'token_malformed', `${h}.${p}.${Buffer.from(s, 'base64url').toString('base64').replace(/=+$/, '')}`, /canonical/);
  add('non-zero trailing bits in the signature', 'token_malformed', `${h}.${p}.${flipTrailingBits(s)}`, /canonical/);

  add('JWE (five segments)', 'token_malformed', `${b64url({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.${b64url('k')}.${b64url('iv')}.${b64url('ct')}.${b64url('tag')}`, /JWE/);
  add('four segments', 'token_malformed', `${h}.${p}.${s}.${s}`);
  add('header is a JSON array', 'token_malformed', `${b64url('["RS256"]')}.${p}.${s}`);
  add('header is not JSON', 'token_malformed', `${b64url('alg=RS256')}.${p}.${s}`);
  add('oversized token', 'token_malformed', f.mint({ key: rsa, claims: { pad: 'x'.repeat(ctx.maxTokenBytes) } }), /longer than/);
  add('tampered payload (sub changed after signing)', 'token_invalid', `${h}.${b64url({ ...f.claims(), sub: 'admin' })}.${s}`, /signature verification/);
  add('signature of another token', 'token_invalid', `${h}.${p}.${f.mint({ key: rsa, claims: { sub: 'bob' } }).split('.')[2]}`, /signature verification/);

  const auth = (name: string, value: string) => cases.push({ name, reason: 'token_malformed', authorization: value });
  auth('Bearer with two spaces', `Bearer  ${valid}`);
  auth('Bearer with a tab', `Bearer\t${valid}`);
  auth('BEARER upper case with two spaces', `BEARER  ${valid}`);
  auth('leading space', ` Bearer ${valid}`);
  auth('trailing space', `Bearer ${valid} `);
  auth('Bearer without a token', 'Bearer');
  auth('Bearer and a space only', 'Bearer ');
  auth('two tokens in one header', `Bearer ${valid} ${valid}`);
  auth('two Authorization headers joined by Envoy', `Bearer ${valid},Bearer ${f.mint({ key: rsa, claims: { sub: 'admin' } })}`);
  auth('two Authorization headers joined with ", "', `Bearer ${valid}, Basic YWRtaW46YWRtaW4=`);
  return cases;
}

function flipTrailingBits(seg: string): string {
  // 256 bytes encode to 342 chars with 4 unused bits in the last char; set one of them.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(seg.at(-1)!);
  return seg.slice(0, -1) + alphabet[last | 1];
}

/**
 * Access-token payloads shaped like the four identity providers' (fields, nesting and value types
 * as they issue them; ids made up). Merge over tokenFactory's standard claims; `iss` and `aud` are
 * the caller's, since tests point the issuer at their own JWKS server.
 */
export const IDP_SHAPES = {
  keycloak: (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    sub: 'f1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    typ: 'Bearer',
    azp: 'shop-web',
    sid: '9c1e6a52-7d3e-4b1a-a2f8-55e3a1f0b7c4',
    acr: '1',
    'allowed-origins': ['https://shop.example.com'],
    realm_access: { roles: ['offline_access', 'uma_authorization', 'default-roles-shop'] },
    resource_access: { 'shop-api': { roles: ['orders-admin'] }, account: { roles: ['manage-account', 'view-profile'] } },
    scope: 'openid email profile orders:read',
    email_verified: true,
    preferred_username: 'alice',
    email: 'alice@shop.example.com',
    tenant: 'acme',
    ...over,
  }),
  okta: (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    ver: 1,
    jti: 'AT.qXk3N1nHhJb0VhW6c9c3vAqQ3pS4x8WJ0nYFhD5g7Mk',
    cid: '0oa1b2c3d4e5f6g7h8i9',
    uid: '00u1a2b3c4d5e6f7g8h9',
    sub: 'alice@shop.example.com',
    scp: ['openid', 'orders.read'],
    auth_time: 1_899_999_000,
    groups: ['Everyone', 'Finance'],
    ...over,
  }),
  auth0: (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    sub: 'auth0|64f1c2d3e4b5a6978812ab34',
    azp: 'Xy1AbC2dEf3GhI4jKl5MnO6pQr7StU8v',
    scope: 'openid profile read:orders',
    permissions: ['read:orders'],
    'https://shop.example/roles': ['customer'],
    'https://shop.example/org': 'org_7Hq2LmN4pR',
    ...over,
  }),
  entra: (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    ver: '2.0',
    aio: 'AWQAm/8YAAAA3x3h5QW0QGf1mG6vXlW9m0A==',
    azp: '4a2d8f1e-6b3c-4e5d-9f0a-1b2c3d4e5f60',
    azpacr: '0',
    name: 'Alice Example',
    oid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
    preferred_username: 'alice@contoso.example',
    rh: '0.AXEAv4j5cvGGr0GRqy180BHbRyCVJRxqCn1Bnw.',
    roles: ['Orders.Writer'],
    scp: 'Orders.Read User.Read',
    sub: 'pJ3yX8a9kQx2L0m1N4bV7cT6zR5sW8dF0gH2jK4lM6n',
    tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
    uti: 'pGq1rS2tU3vW4xY5zA6bCg',
    ...over,
  }),
} as const;
