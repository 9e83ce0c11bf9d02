import { constants, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { keyFitsAlg, type KeyRecord } from './keys.js';

const HASH: Record<string, string> = {
  RS256: 'sha256', RS384: 'sha384', RS512: 'sha512',
  PS256: 'sha256', PS384: 'sha384', PS512: 'sha512',
  ES256: 'sha256', ES384: 'sha384',
};
const PSS_SALT: Record<string, number> = { PS256: 32, PS384: 48, PS512: 64 };
const ECDSA_SIG_BYTES: Record<string, number> = { ES256: 64, ES384: 96 };

/**
 * Synchronous node:crypto verification (no WebCrypto promise per token). The caller has already
 * chosen the key; this re-checks the alg/key binding so a mistake upstream cannot become a
 * key-confusion hole.
 */
export function verifySignature(alg: string, rec: KeyRecord, signingInput: Buffer, sig: Buffer): boolean {
  if (!keyFitsAlg(alg, rec)) return false;
  try {
    switch (alg) {
      case 'HS256': {
        if (sig.length !== 32 || !Buffer.isBuffer(rec.key)) return false;
        return timingSafeEqual(createHmac('sha256', rec.key).update(signingInput).digest(), sig);
      }
      case 'RS256':
      case 'RS384':
      case 'RS512':
        return verify(HASH[alg]!, signingInput, rec.key as KeyObject, sig);
      case 'PS256':
      case 'PS384':
      case 'PS512':
        return verify(
          HASH[alg]!,
          signingInput,
          { key: rec.key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT[alg]! },
          sig,
        );
      case 'ES256':
      case 'ES384': {
        const size = ECDSA_SIG_BYTES[alg]!;
        // JWS ECDSA signatures are raw r||s; DER or odd lengths are not JWS. r or s = 0 is the
        // "psychic signature" (CVE-2022-21449): refuse it here, whatever the crypto library does.
        if (sig.length !== size || isZero(sig, 0, size / 2) || isZero(sig, size / 2, size)) return false;
        return verify(HASH[alg]!, signingInput, { key: rec.key as KeyObject, dsaEncoding: 'ieee-p1363' }, sig);
      }
      case 'EdDSA':
        return sig.length === 64 && verify(null, signingInput, rec.key as KeyObject, sig);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

function isZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}
