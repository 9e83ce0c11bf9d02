import { existsSync } from 'node:fs';
import type { Config } from './schema/index.js';

/**
 * What depends on the machine the server runs on, not on the file: true here may be false in the
 * pod (a Secret mounted there, an environment set by the manifest), so these are warnings.
 */
export function environmentWarnings(c: Config, env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  c.identity.issuers.forEach((iss, i) => {
    const k = iss.keys;
    if (k.hs256_secret_env && !env[k.hs256_secret_env]) {
      warnings.push(`identity.issuers.${i}.keys.hs256_secret_env: ${k.hs256_secret_env} is not set in this environment; the server would have no key for ${iss.issuer}`);
    }
    if (k.jwks_file && !existsSync(k.jwks_file)) {
      warnings.push(`identity.issuers.${i}.keys.jwks_file: ${k.jwks_file} does not exist here; the server would deny every token of ${iss.issuer} until it does`);
    }
  });
  return warnings;
}
