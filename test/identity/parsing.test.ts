import { describe, expect, it } from 'vitest';
import { decodeCanonical } from '../../src/identity/base64url.js';
import { findDuplicateKey } from '../../src/identity/strict-json.js';
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
