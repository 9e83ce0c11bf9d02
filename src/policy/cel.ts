import { type ASTNode, Environment } from '@marcbachmann/cel-js';
import { networkKey, parseCidr, parseIp, type ParsedCidr } from '../ip.js';
import { ZoneClock } from './time-window.js';

/**
 * CEL `when` conditions. The library is @marcbachmann/cel-js: on this hot path it evaluated a
 * typical compiled condition about ten times faster than @bufbuild/cel (bench/cel-cost.ts measures
 * both), and it type-checks against declared variables, which @bufbuild/cel does not export.
 * README "CEL conditions" has the figures and the conformance sections test/policy/cel-conformance
 * runs.
 *
 * Variables are instances of the classes below, one set per compiled policy, refilled in place
 * before a condition runs: the hot path allocates no activation.
 */
export class RequestVars {
  method = '';
  path = '';
  host = '';
  headers: Readonly<Record<string, string>> = {};
  ip = '';
}

export class IdentityVars {
  sub = '';
  roles: readonly string[] = [];
  scopes: readonly string[] = [];
  issuer = '';
}

export class ResourceVars {
  constructor(
    readonly name: string,
    readonly service: string,
    readonly sensitivity: string,
    readonly classification: string,
  ) {}
}

export interface Activation {
  request: RequestVars;
  claims: Readonly<Record<string, unknown>>;
  identity: IdentityVars;
  principal: string;
  resource: ResourceVars;
  now: Date;
}

export function newActivation(): Activation {
  return {
    request: new RequestVars(),
    claims: {},
    identity: new IdentityVars(),
    principal: '',
    resource: new ResourceVars('', '', '', ''),
    now: new Date(0),
  };
}

/**
 * Bounds. The parser enforces the size limits. The evaluation cost is estimated at compile time:
 * every AST node costs 1, and the body of a comprehension (all, exists, exists_one, map, filter)
 * counts once per element of the largest list a token within max_token_bytes (8 KB) can hold,
 * about 4096. An expression over MAX_COST is refused at load, so nesting a comprehension inside
 * another over claims is refused, and one condition is at most ~10^5 node visits (well under a ms).
 */
export const LIMITS = { maxAstNodes: 500, maxDepth: 32, maxListElements: 256, maxMapEntries: 64, maxCallArguments: 8 } as const;
export const MAX_COST = 100_000;
const MAX_ELEMENTS = 4096;
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
/** JS RegExp backtracks: a pattern from the policy applied to a header a client chooses is a ReDoS. */
const REFUSED_FUNCTIONS = new Map([['matches', 'matches() is not available: JavaScript regular expressions can backtrack exponentially']]);

const cidrCache = new Map<string, ParsedCidr>();

function cidrOf(text: string): ParsedCidr {
  let c = cidrCache.get(text);
  if (c === undefined) {
    c = parseCidr(text);
    if (c === undefined) throw new Error(`ip_in: ${JSON.stringify(text)} is not a CIDR`);
    // Literals fill this at compile time; a computed CIDR is parsed per call and not kept.
    return c;
  }
  return c;
}

/** `ip_in(ip, cidr)`: the IP (src/ip.ts rules: strict, IPv4-mapped IPv6 as IPv4) is in the CIDR. An unparsable IP is an error, never false. */
export function ipIn(ip: string, cidr: string): boolean {
  const net = cidrOf(cidr);
  const addr = parseIp(ip);
  if (addr === undefined) throw new Error(`ip_in: ${JSON.stringify(ip)} is not an IP address`);
  return addr.v === net.v && networkKey(addr, net.prefix) === net.key;
}

/** Mixed-type list and map literals as the spec allows them (the conformance suite has many). */
export const CEL_ENV_OPTIONS = { limits: LIMITS, unlistedVariablesAreDyn: false, homogeneousAggregateLiterals: false } as const;

/**
 * Local wall-clock parts of a timestamp in an IANA zone. The library's `getHours(tz)` formats the
 * date through Intl on every call (bench/cel-cost.ts: about a hundred times the cost of the
 * whole rest of a condition); these read a ZoneClock, which looks the offset up once per minute.
 */
const clocks = new Map<string, ZoneClock>();
const MAX_CLOCKS = 64;

function clockOf(tz: string): ZoneClock {
  let c = clocks.get(tz);
  if (c === undefined) {
    c = new ZoneClock(tz); // throws RangeError on an unknown zone: an evaluation error, so condition_error
    if (clocks.size < MAX_CLOCKS) clocks.set(tz, c);
  }
  return c;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const BIG = Array.from({ length: 1440 }, (_, i) => BigInt(i));

/** Minutes since local midnight, 0-1439. */
function localMinutes(ts: Date, tz: string): bigint {
  const local = clockOf(tz).localMs(ts.getTime());
  return BIG[Math.floor((((local % DAY_MS) + DAY_MS) % DAY_MS) / 60_000)]!;
}

function localHour(ts: Date, tz: string): bigint {
  const local = clockOf(tz).localMs(ts.getTime());
  return BIG[Math.floor((((local % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS)]!;
}

/** 0 is Sunday, as CEL's getDayOfWeek. 1970-01-01 was a Thursday. */
function localWeekday(ts: Date, tz: string): bigint {
  const days = Math.floor(clockOf(tz).localMs(ts.getTime()) / DAY_MS);
  return BIG[(((days + 4) % 7) + 7) % 7]!;
}

const TIME_FUNCTIONS = new Set(['local_hour', 'local_minutes', 'local_weekday']);

const env = new Environment(CEL_ENV_OPTIONS)
  .registerType('zt.Request', {
    ctor: RequestVars,
    fields: { method: 'string', path: 'string', host: 'string', headers: 'map<string, string>', ip: 'string' },
  })
  .registerType('zt.Identity', {
    ctor: IdentityVars,
    fields: { sub: 'string', roles: 'list<string>', scopes: 'list<string>', issuer: 'string' },
  })
  .registerType('zt.Resource', {
    ctor: ResourceVars,
    fields: { name: 'string', service: 'string', sensitivity: 'string', classification: 'string' },
  })
  .registerVariable('request', 'zt.Request')
  .registerVariable('claims', 'map<string, dyn>')
  .registerVariable('identity', 'zt.Identity')
  .registerVariable('principal', 'string')
  .registerVariable('resource', 'zt.Resource')
  .registerVariable('now', 'google.protobuf.Timestamp')
  .registerFunction('ip_in(string, string): bool', ipIn)
  .registerFunction('local_hour(google.protobuf.Timestamp, string): int', localHour)
  .registerFunction('local_minutes(google.protobuf.Timestamp, string): int', localMinutes)
  .registerFunction('local_weekday(google.protobuf.Timestamp, string): int', localWeekday);

export interface CompiledCondition {
  /** Where it is in the config, e.g. `policy.routes.3.when.0`. */
  readonly path: string;
  readonly source: string;
  readonly cost: number;
  readonly usesNow: boolean;
  /** Header names it reads (literal keys of request.headers). */
  readonly headers: readonly string[];
  readonly run: (a: Activation) => unknown;
}

/** Compiles and type-checks one expression; throws an Error that starts with `path`. */
export function compileCondition(source: string, path: string): CompiledCondition {
  const fail = (msg: string): never => {
    throw new Error(`${path}: ${msg.split('\n')[0]} in CEL ${JSON.stringify(source)}`);
  };
  let program: ReturnType<Environment['parse']>;
  try {
    program = env.parse(source);
  } catch (err) {
    return fail(`syntax error: ${(err as Error).message}`);
  }
  const checked = env.check(source);
  if (!checked.valid) return fail(`type error: ${checked.error?.message ?? 'invalid'}`);
  if (checked.type !== 'bool' && checked.type !== 'dyn') return fail(`must be a bool, is ${String(checked.type)}`);
  const facts = { usesNow: false, headers: new Set<string>() };
  const cost = walk(program.ast, undefined, facts, fail);
  if (cost > MAX_COST) return fail(`estimated cost ${cost} exceeds ${MAX_COST} (a comprehension inside a comprehension, or a very large body)`);
  const run = program as unknown as (a: Activation) => unknown;
  return { path, source, cost, usesNow: facts.usesNow, headers: [...facts.headers], run };
}

interface Facts {
  usesNow: boolean;
  headers: Set<string>;
}

/**
 * One pass over the AST: the cost estimate, the refused functions, `ip_in` literals parsed now,
 * and `request.headers` read only with literal lower-case keys (the decoder keeps only headers the
 * policy names, so a computed key could read a header that was never kept).
 */
function walk(node: ASTNode, parent: ASTNode | undefined, facts: Facts, fail: (msg: string) => never): number {
  const a = node.args as unknown;
  switch (node.op) {
    case 'value':
      return 1;
    case 'id':
      if (a === 'now') facts.usesNow = true;
      return 1;
    case '.':
    case '.?': {
      const [target, field] = a as [ASTNode, string];
      if (isRequestHeaders(target)) {
        headerKey(field, fail);
        facts.headers.add(field);
      } else if (isRequestHeaders(node) && !readsHeaderLiterally(node, parent)) {
        fail('request.headers must be read with a string literal key: request.headers["x-name"]');
      }
      return 1 + walk(target, node, facts, fail);
    }
    case '[]':
    case '[?]': {
      const [target, key] = a as [ASTNode, ASTNode];
      if (isRequestHeaders(target)) {
        if (key.op !== 'value' || typeof key.args !== 'string') fail('request.headers must be read with a string literal key');
        headerKey(key.args as string, fail);
        facts.headers.add(key.args as string);
      }
      return 1 + walk(target, node, facts, fail) + walk(key, node, facts, fail);
    }
    case 'call': {
      const [name, args] = a as [string, ASTNode[]];
      const refused = REFUSED_FUNCTIONS.get(name);
      if (refused !== undefined) fail(refused);
      if (name === 'ip_in' && args[1]?.op === 'value' && typeof args[1].args === 'string') {
        const c = parseCidr(args[1].args);
        if (c === undefined) fail(`ip_in: ${JSON.stringify(args[1].args)} is not a CIDR`);
        cidrCache.set(args[1].args, c!);
      }
      if (TIME_FUNCTIONS.has(name) && args[1]?.op === 'value' && typeof args[1].args === 'string') {
        try {
          clockOf(args[1].args);
        } catch {
          fail(`${name}: unknown IANA time zone ${JSON.stringify(args[1].args)}`);
        }
      }
      let cost = 1;
      for (const x of args) cost += walk(x, node, facts, fail);
      return cost;
    }
    case 'rcall': {
      const [name, target, args] = a as [string, ASTNode, ASTNode[]];
      const refused = REFUSED_FUNCTIONS.get(name);
      if (refused !== undefined) fail(refused);
      let body = 0;
      for (const x of args) body += walk(x, node, facts, fail);
      return 1 + walk(target, node, facts, fail) + (COMPREHENSIONS.has(name) ? MAX_ELEMENTS * body : body);
    }
    case 'in': {
      const [left, right] = a as [ASTNode, ASTNode];
      if (isRequestHeaders(right) && left.op === 'value' && typeof left.args === 'string') {
        headerKey(left.args, fail);
        facts.headers.add(left.args);
      }
      return 1 + walk(left, node, facts, fail) + walk(right, node, facts, fail);
    }
    case 'list': {
      let cost = 1;
      for (const x of a as ASTNode[]) cost += walk(x, node, facts, fail);
      return cost;
    }
    case 'map': {
      let cost = 1;
      for (const [k, v] of a as [ASTNode, ASTNode][]) cost += walk(k, node, facts, fail) + walk(v, node, facts, fail);
      return cost;
    }
    default: {
      if (Array.isArray(a)) {
        let cost = 1;
        for (const x of a as ASTNode[]) cost += walk(x, node, facts, fail);
        return cost;
      }
      return 1 + walk(a as ASTNode, node, facts, fail);
    }
  }
}

function isRequestHeaders(n: ASTNode): boolean {
  if (n.op !== '.') return false;
  const [target, field] = n.args as [ASTNode, string];
  return field === 'headers' && target.op === 'id' && target.args === 'request';
}

/** `"x-name" in request.headers` reads one named header too. */
function readsHeaderLiterally(headers: ASTNode, parent: ASTNode | undefined): boolean {
  if (parent === undefined) return false;
  if (parent.op === '[]' || parent.op === '[?]') return (parent.args as ASTNode[])[0] === headers;
  if (parent.op === '.' || parent.op === '.?') return true;
  if (parent.op === 'in') {
    const [left, right] = parent.args as [ASTNode, ASTNode];
    return right === headers && left.op === 'value' && typeof left.args === 'string';
  }
  return false;
}

function headerKey(name: string, fail: (msg: string) => never): void {
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) fail(`header ${JSON.stringify(name)}: request header names are lower-case tokens`);
}

/** The header names a set of expressions reads; each must compile. */
export function headerNamesOf(sources: Iterable<string>): string[] {
  const names = new Set<string>();
  for (const s of sources) {
    try {
      for (const h of compileCondition(s, 'when').headers) names.add(h);
    } catch {
      // The policy compile reports it with its path; an expression that does not compile is never run.
    }
  }
  return [...names];
}
