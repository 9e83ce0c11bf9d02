const ALPHABET = /^[A-Za-z0-9_-]+$/;

/**
 * Decodes base64url only in its canonical form (RFC 7515 §2: no padding, no whitespace, no '+'
 * or '/', zero trailing bits). Node's decoder is lenient, so one token could otherwise have many
 * spellings: that breaks the token-string cache key and lets a tampered token look distinct.
 */
export function decodeCanonical(segment: string): Buffer | undefined {
  if (segment.length % 4 === 1 || !ALPHABET.test(segment)) return undefined;
  const bytes = Buffer.from(segment, 'base64url');
  // Re-encoding catches non-zero trailing bits ("eyJ" vs "eyK" style aliases).
  return bytes.toString('base64url') === segment ? bytes : undefined;
}
