import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCanonical } from '../../src/identity/base64url.js';
import { findDuplicateKey, freezeCountingKeys, textKeyCount } from '../../src/identity/strict-json.js';
import { parseCompactJws } from '../../src/identity/jws.js';
import { TokenCache, type CacheEntry } from '../../src/identity/token-cache.js';
import { secretRecord } from '../../src/identity/keys.js';

describe('duplicate-key scanner', () => {
  it.each([
    ['{"a":1,"a":2}', 'a'],
    ['{"a":1, "b":{"c":1,"c":2}}', 'c'],
    ['{"a":1,"\\u0061":2}', 'a'],
    ['{"x":[{"k":1},{"k":2}],"y":{"k":1,"z":[1,{"k":1,"k":1}]}}', 'k'],
    ['{ "a" : 1 , "a" : 2 }', 'a'],
  ])('finds the duplicate in %s', (text, key) => {
    expect(findDuplicateKey(text)).toBe(key);
  });
  it.each([
    '{"a":1,"b":2}',
    '{"a":"{\\"a\\":1,\\"a\\":2}","b":"a:"}',
    '{"a":["a","a"],"b":{"a":1}}',
    '{"x":[{"k":1},{"k":2}]}',
    '{"a\\"b":1,"a":2}',
  ])('accepts %s', (text) => {
    JSON.parse(text);
    expect(findDuplicateKey(text)).toBeUndefined();
  });
});

describe('canonical base64url', () => {
  it('decodes canonical input and rejects every alias', () => {
    expect(decodeCanonical('aGk')?.toString()).toBe('hi');
    for (const bad of ['aGk=', 'aG k', 'aGl', 'a+8', 'a/8', 'a', '', 'aGk\n']) expect(decodeCanonical(bad)).toBeUndefined();
    // Characters whose low byte is an alphabet character ('\u012d' -> '-', '\u0161' -> 'a'):
    // a decoder that truncates UTF-16 code units would read them as the ASCII ones.
    for (const bad of ['aG\u0161', 'a\u012d8', '\u0161Gk']) expect(decodeCanonical(bad)).toBeUndefined();
  });

  it('accepts exactly what decodes and re-encodes to itself (property)', () => {
    const chars = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .'.split(''), '\u012d', '\u0161', '\u00e1');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 12 }).map((a) => a.join('')), (s) => {
        const oracle = s.length % 4 === 1 || !/^[A-Za-z0-9_-]+$/.test(s) ? undefined : Buffer.from(s, 'base64url');
        const expected = oracle !== undefined && oracle.toString('base64url') === s ? oracle : undefined;
        expect(decodeCanonical(s)).toEqual(expected);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('duplicate keys by count', () => {
  // Escaped quotes and runs of backslashes before a key's closing quote: the counter skips from
  // quote to quote and must tell an escaped quote from one after an escaped backslash.
  const key = fc.constantFrom('a', 'b', '\\u0061', 'a\\"', '__proto__', '1', '01', 'a\\\\', '\\\\\\"', '\\\\\\\\');
  const json: fc.Arbitrary<string> = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.constantFrom('1', '"a:"', '"{\\"a\\":1}"', '"\\\\"', '"x\\\\\\":"', 'null', '[]'), tie('object'), tie('array')),
    array: fc.array(tie('value'), { maxLength: 3 }).map((v) => `[${v.join(',')}]`),
    object: fc
      .array(fc.tuple(key, fc.constantFrom(':', ' : ', '\n:'), tie('value')), { maxLength: 4 })
      .map((kv) => `{${kv.map(([k, colon, v]) => `"${k}"${colon}${v}`).join(',')}}`),
  })).object as fc.Arbitrary<string>;

  it('parsed keys fewer than written keys exactly when the scanner finds a duplicate (property)', () => {
    fc.assert(
      fc.property(json, (text) => {
        const value: unknown = JSON.parse(text);
        expect(freezeCountingKeys(value) !== textKeyCount(text)).toBe(findDuplicateKey(text) !== undefined);
      }),
      { numRuns: 3000 },
    );
  });

  it('a polluted Object.prototype does not hide a duplicate', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto['polluted'] = 1;
    try {
      const text = '{"a":1,"a":2,"b":3}';
      expect(freezeCountingKeys(JSON.parse(text))).toBe(2);
      expect(textKeyCount(text)).toBe(3);
    } finally {
      delete proto['polluted'];
    }
  });
});

describe('header memo', () => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  it('a remembered header answers what parsing answers, for accepted and refused headers alike', () => {
    const good = `${b64({ alg: 'RS256', kid: 'k1' })}.${b64({ sub: 'a' })}.c2ln`;
    const first = parseCompactJws(good, 8192);
    const again = parseCompactJws(good, 8192);
    expect(again).toEqual(first);
    expect('alg' in again && again.kid).toBe('k1');
    for (const header of [{ alg: 'none' }, { alg: 'RS256', crit: ['x'] }, { alg: 'RS256', kid: 7 }, { alg: 'RS256', b64: false }]) {
      const token = `${b64(header)}.${b64({ sub: 'a' })}.c2ln`;
      for (let i = 0; i < 3; i++) expect(parseCompactJws(token, 8192)).toMatchObject({ reason: 'token_invalid' });
    }
    expect(parseCompactJws(`${b64({ alg: 'RS256', alg2: 1 }).slice(0, -1)}x.${b64({})}.c2ln`, 8192)).toMatchObject({ reason: 'token_malformed' });
  });

  it('stays bounded and correct when flooded with distinct valid headers', () => {
    for (let i = 0; i < 1000; i++) {
      const r = parseCompactJws(`${b64({ alg: 'ES256', kid: `k${i}` })}.${b64({ sub: 'a' })}.c2ln`, 8192);
      expect('alg' in r && r.kid).toBe(`k${i}`);
    }
  });
});

describe('token cache', () => {
  const key = secretRecord(Buffer.alloc(32));
  const entry = (expiresMs = Number.MAX_SAFE_INTEGER): CacheEntry => ({
    result: { ok: true, identity: { issuer: 'i', sub: 's', claims: {}, exp: 0 } },
    expiresMs,
    notBeforeMs: 0,
    key,
    hot: false,
  });

  it('never grows beyond max_entries and gives recently hit entries a second chance', () => {
    const cache = new TokenCache(3);
    for (const t of ['a', 'b', 'c']) cache.set(t, entry(), 0);
    cache.get('a')!.hot = true;
    cache.set('d', entry(), 0);
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('b')).toBeUndefined();
    for (let i = 0; i < 100; i++) cache.set(`t${i}`, entry(), 0);
    expect(cache.size).toBe(3);
  });

  it('terminates eviction when every entry is hot', () => {
    const cache = new TokenCache(20);
    for (let i = 0; i < 20; i++) cache.set(`t${i}`, { ...entry(), hot: true }, 0);
    cache.set('new', entry(), 0);
    expect(cache.size).toBe(20);
  });
});
