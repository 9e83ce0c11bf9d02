import { signDevToken } from '../identity/dev-token.js';
import { parse, usageFailed } from './args.js';

const USAGE = `Usage: zt-authz token [--sub ID] [--ttl SECONDS] [--claims JSON] [--alg RS256|ES256]

DEVELOPMENT ONLY. Signs a JWT with the bundled development key (accepted only by a server
running the embedded demo config) and prints it alone on stdout.

  --sub      subject (default: dev-user)
  --ttl      lifetime in seconds (default: 3600)
  --claims   extra claims as a JSON object, e.g. '{"risk_score":0.2,"amr":["mfa"]}'
  --alg      RS256 (default) or ES256
`;

export async function runToken(argv: string[]): Promise<number> {
  try {
    const { values } = parse(argv, {
      sub: { type: 'string', default: 'dev-user' },
      ttl: { type: 'string', default: '3600' },
      claims: { type: 'string', default: '{}' },
      alg: { type: 'string', default: 'RS256' },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const ttl = Number(values.ttl);
    if (!Number.isInteger(ttl) || ttl <= 0) {
      process.stderr.write('--ttl must be a positive whole number of seconds\n');
      return 2;
    }
    let claims: unknown;
    try {
      claims = JSON.parse(values.claims);
    } catch (err) {
      process.stderr.write(`--claims is not valid JSON: ${(err as Error).message}\n`);
      return 2;
    }
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
      process.stderr.write('--claims must be a JSON object\n');
      return 2;
    }
    if (values.alg !== 'RS256' && values.alg !== 'ES256') {
      process.stderr.write('--alg must be RS256 or ES256\n');
      return 2;
    }
    const token = await signDevToken({ sub: values.sub, ttlS: ttl, claims: claims as Record<string, unknown>, alg: values.alg });
    process.stdout.write(token + '\n');
    return 0;
  } catch (err) {
    return usageFailed(err, USAGE);
  }
}
