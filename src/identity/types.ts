import type { AuthResult, NormalizedRequest } from '../model.js';
import type { IssuerKeyStatus } from './issuer-keys.js';

/**
 * Verifies the end-user token of a request. `authenticate` returns synchronously whenever it can
 * (verified-token cache hit, known key) and a Promise only when it must wait for a key refetch.
 */
export interface Authenticator {
  /** The raw token from the issuer-configured header, or undefined when none is present. Throws never. */
  extractToken(req: NormalizedRequest): TokenExtraction;
  /** `remember: false` (the live page's explain form) verifies without adding the token to the cache. */
  authenticate(token: string, nowMs: number, remember?: boolean): AuthResult | Promise<AuthResult>;
  /** True once every issuer has a usable key set. */
  ready(): boolean;
  /** True once at least one issuer has a usable key set (the others deny their own tokens only). */
  anyReady(): boolean;
  /** Per issuer with a fetched key set: its age and last refresh outcome (for /readyz). */
  keyStatus(): Record<string, IssuerKeyStatus>;
  /** Initial key load; resolves even on failure (then ready() stays false and checks deny). */
  start(): Promise<void>;
  close(): void;
}

export type TokenExtraction =
  | { readonly kind: 'none' }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'malformed'; readonly detail: string };
