export { createAuthenticator, KEYS_UNAVAILABLE, type AuthenticatorDeps } from './authenticator.js';
export { signDevToken, type DevTokenOptions } from './dev-token.js';
export type { Authenticator, TokenExtraction } from './types.js';
