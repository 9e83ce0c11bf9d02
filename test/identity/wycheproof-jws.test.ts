import { constants, createHash, privateEncrypt, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../../src/identity/types.js';
import { b64url, jwksOf, makeKey, signBytes, tokenFactory, type TestKey } from '../helpers/tokens.js';
import { auth, harness } from './setup.js';

/**
 * The invalid cases of Wycheproof's JSON Web Signature vectors (testvectors/json_web_signature_test.json:
 * tcId 2-17 per key group, the symmetry-confusion and embedded-JWK cases, and the ModifiedPadding,
 * WrongPrimitive and AlgIsNone flags), applied to real JWTs of a configured issuer. The vectors
 * themselves carry the payload "foo", which any JWT verifier refuses before the signature; built on
 * JWT claims, each case reaches the check it is about.
 */
const rsa = makeKey('RS256', 'kid-rsa-sign');
const ec = makeKey('ES256', 'kid-ec-sign');
const attacker = makeKey('ES256', 'kid-ec-sign');
const f = tokenFactory('https://wycheproof.test', 'api');
let dir: string;
let authn: Authenticator;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zt-wycheproof-'));
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify(jwksOf(rsa, ec)));
  process.env.ZT_TEST_WYCHEPROOF_HS = 'a-real-hs256-secret-of-at-least-32-bytes!';
  authn = harness({
    issuers: [{ issuer: f.issuer, audiences: ['api'], algorithms: ['RS256', 'PS256', 'ES256', 'HS256'], keys: { jwks_file: jwksFile, hs256_secret_env: 'ZT_TEST_WYCHEPROOF_HS' } }],
  }).authn;
  await authn.start();
});

afterAll(() => {
  authn.close();
  rmSync(dir, { recursive: true, force: true });
});

const swapFirst = (s: string) => `${s[0] === 'X' ? 'Y' : 'X'}${s.slice(1)}`;

/** RSASSA-PKCS1-v1_5 with a deliberately wrong encoding, signed with the raw private-key operation. */
function badPadding(key: KeyObject, input: string, mutate: (em: Buffer) => void): string {
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(input).digest()]);
  const em = Buffer.alloc(256, 0xff);
  em[0] = 0x00;
  em[1] = 0x01;
  em[256 - digestInfo.length - 1] = 0x00;
  digestInfo.copy(em, 256 - digestInfo.length);
  mutate(em);
  return b64url(privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, em));
}

function invalidCases(key: TestKey): [string, string][] {
  const valid = f.mint({ key });
  const [h, p, s] = valid.split('.') as [string, string, string];
  const modifiedHeader = b64url({ alg: key.alg, typ: 'JWT', kid: `X${key.kid.slice(1)}` });
  const noneHeader = b64url({ alg: 'none', kid: key.kid });
  const cases: [string, string][] = [
    ['rejectsModifiedSignature', `${h}.${p}.${swapFirst(s)}`],
    ['rejectsMissingSignature', `${h}.${p}.`],
    ['rejectsMissingSignatureAndSeparator', `${h}.${p}`],
    ['rejectsModifiedPayload', `${h}.${swapFirst(p)}.${s}`],
    ['rejectsMissingPayload', `${h}..${s}`],
    ['rejectsMissingPayloadAndSeparator', `${h}.${s}`],
    ['rejectsModifiedHeader', `${modifiedHeader}.${p}.${s}`],
    ['rejectsMissingHeader', `.${p}.${s}`],
    ['rejectsMissingHeaderAndSeparator', `${p}.${s}`],
    ['rejectsMissingHeaderAndSignature', `.${p}.`],
    ['rejectsMissingHeaderSignatureAndSeparators', p],
    ['rejectsEmptyString', ''],
    ['rejectsExtraEmptyComponent', `${valid}.`],
    ['rejectsExtraComponent', `${valid}.foo`],
    ['rejectsNoneAlgorithmAndMissingSignature', `${noneHeader}.${p}.`],
    ['rejectsNoneAlgorithmWithSignature', `${noneHeader}.${p}.${s}`],
    ['rejectsValidJsonSerialization', JSON.stringify({ payload: p, signatures: [{ protected: h, header: { unknown: 'untrustworthy' }, signature: s }] })],
    // HMAC keyed with the verification key's public bytes (Wycheproof's symmetry-confusion cases).
    ['rejectsSymmetryConfusion (public key DER as HS256 secret)', f.mint({ key, header: { alg: 'HS256' }, signWith: { alg: 'HS256', key: key.publicKey.export({ format: 'der', type: 'spki' }) } })],
    ['rejectsSymmetryConfusion (public JWK as HS256 secret)', f.mint({ key, header: { alg: 'HS256' }, signWith: { alg: 'HS256', key: Buffer.from(JSON.stringify(key.jwk)) } })],
    ['rejectsAttackerProvidedEmbeddedJwk', f.mint({ key: attacker, header: { alg: 'ES256', kid: key.kid, jwk: attacker.jwk } })],
  ];
  if (key.alg === 'RS256') {
    const input = `${h}.${p}`;
    cases.push(
      ['ModifiedPadding: block type 2', `${input}.${badPadding(key.privateKey, input, (em) => (em[1] = 0x02))}`],
      ['ModifiedPadding: no zero separator', `${input}.${badPadding(key.privateKey, input, (em) => (em[256 - 52] = 0xff))}`],
      ['ModifiedPadding: SHA-384 OID in the DigestInfo', `${input}.${badPadding(key.privateKey, input, (em) => (em[256 - 51 + 14] = 0x02))}`],
      ['ModifiedPadding: padding byte not 0xff', `${input}.${badPadding(key.privateKey, input, (em) => (em[10] = 0xfe))}`],
      ['WrongPrimitive: PS256 signature under an RS256 header', `${input}.${b64url(signBytes('PS256', input, key.privateKey))}`],
      ['WrongPrimitive: RS256 signature under a PS256 header', f.mint({ key, header: { alg: 'PS256' }, signWith: { alg: 'RS256', key: key.privateKey } })],
      ['WrongPrimitive: RSA key under an ES256 header', f.mint({ key, header: { alg: 'ES256' }, signWith: { alg: 'ES256', key: ec.privateKey } })],
    );
  } else {
    cases.push(
      ['WrongPrimitive: EC key under an RS256 header', f.mint({ key, header: { alg: 'RS256' }, signWith: { alg: 'RS256', key: rsa.privateKey } })],
      ['rejectsDerEncodedEcdsaSignature', `${h}.${p}.${b64url(signDer(key.privateKey, `${h}.${p}`))}`],
      ['rejectsZeroEcdsaSignature', `${h}.${p}.${b64url(Buffer.alloc(64))}`],
    );
  }
  return cases;
}

/** ECDSA in DER (what node:crypto gives by default), not JWS's raw r||s. */
const signDer = (key: KeyObject, input: string) => sign('sha256', Buffer.from(input, 'latin1'), key);

describe.each([
  ['RS256', rsa],
  ['ES256', ec],
])('Wycheproof JWS invalid vectors on %s JWTs', (_alg, key) => {
  it('the untouched token is accepted, so each refusal below is about its mutation', async () => {
    expect(await auth(authn, f.mint({ key }))).toMatchObject({ ok: true });
  });

  if (key.alg === 'RS256') {
    it('the hand-built PKCS#1 v1.5 encoding verifies when left unmodified, so the padding cases test padding', async () => {
      const [h, p] = f.mint({ key }).split('.') as [string, string];
      const token = `${h}.${p}.${badPadding(key.privateKey, `${h}.${p}`, () => undefined)}`;
      expect(await auth(authn, token)).toMatchObject({ ok: true });
    });
  }

  it.each(invalidCases(key))('%s is refused', async (_name, token) => {
    const first = await auth(authn, token);
    expect(first.ok).toBe(false);
    // A second presentation is refused too: nothing about a refused token is remembered as good.
    expect((await auth(authn, token)).ok).toBe(false);
  });
});
