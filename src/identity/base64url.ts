/**
 * Decodes base64url only in its canonical form (RFC 7515 §2: no padding, no whitespace, no '+'
 * or '/', zero trailing bits). Node's decoder is lenient, so one token could otherwise have many
 * spellings: that breaks the token-string cache key and lets a tampered token look distinct.
 *
 * Canonical means "re-encodes to itself": Node's encoder writes only the canonical form, so the
 * comparison rejects every alias (other alphabets, padding, whitespace, non-zero spare bits, a
 * dangling character, non-ASCII characters the decoder would fold onto alphabet bytes) without
 * relying on how the decoder treats them. Measured on the payload and signature segments of
 * 4,000 distinct RS256 bench tokens (CPU time, median of 22 rounds), per token: 0.82 µs against
 * 1.25 µs for the alphabet regex plus spare-bits check it replaced on Node 26, 0.89 against
 * 1.19 µs on Node 22: the encoder is vectorised, the regex walks character by character.
 */
export function decodeCanonical(segment: string): Buffer | undefined {
  if (segment.length === 0) return undefined;
  const bytes = Buffer.from(segment, 'base64url');
  return bytes.toString('base64url') === segment ? bytes : undefined;
}
