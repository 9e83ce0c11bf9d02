const ALPHABET = /^[A-Za-z0-9_-]+$/;

/** Value of each base64url character (only the alphabet reaches the lookup). */
const VALUE = new Uint8Array(128);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('').forEach((c, i) => (VALUE[c.charCodeAt(0)] = i));

/**
 * Decodes base64url only in its canonical form (RFC 7515 §2: no padding, no whitespace, no '+'
 * or '/', zero trailing bits). Node's decoder is lenient, so one token could otherwise have many
 * spellings: that breaks the token-string cache key and lets a tampered token look distinct.
 */
export function decodeCanonical(segment: string): Buffer | undefined {
  const n = segment.length;
  if (n % 4 === 1 || !ALPHABET.test(segment)) return undefined;
  // Zero trailing bits ("eyJ" vs "eyK" style aliases): the last character of a 2- or 3-character
  // group carries 4 or 2 bits past the data. Checked on that character instead of re-encoding the
  // whole segment, which cost as much as the decode on every verified token.
  const last = VALUE[segment.charCodeAt(n - 1)]!;
  if ((n % 4 === 2 && (last & 0x0f) !== 0) || (n % 4 === 3 && (last & 0x03) !== 0)) return undefined;
  return Buffer.from(segment, 'base64url');
}
