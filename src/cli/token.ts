import { signDevToken } from '../identity/dev-token.js';
import { parse, usageFailed } from './args.js';

const USAGE = `Usage: zt-authz token [--sub ID] [--ttl SECONDS] [--claims JSON] [--alg RS256|ES256]

DEVELOPMENT ONLY. Signs a JWT with the bundled development key (accepted only by a server
running the embedded demo config) and prints it alone on stdout.

  --sub      subject (default: dev-user)
  --ttl      lifetime in seconds (default: 3600): exp = iat + ttl
  --claims   extra claims as a JSON object, e.g. '{"risk_score":0.2,"amr":["mfa"]}'. A given iat
             (default: now) and exp (default: iat + ttl) are kept as given; exp must be after iat,
             and exp together with --ttl is refused (say one).
  --alg      RS256 (default) or ES256
`;

export async function runToken(argv: string[]): Promise<number> {
  try {
    const { values } = parse(argv, {
      sub: { type: 'string', default: 'dev-user' },
      ttl: { type: 'string' },
      claims: { type: 'string', default: '{}' },
      alg: { type: 'string', default: 'RS256' },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const ttl = Number(values.ttl ?? '3600');
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
    const given = claims as Record<string, unknown>;
    for (const k of ['iat', 'exp', 'nbf'] as const) {
      if (given[k] !== undefined && !Number.isInteger(given[k])) {
        process.stderr.write(`--claims: ${k} must be whole seconds since the epoch (NumericDate), got ${JSON.stringify(given[k])}\n`);
        return 2;
      }
    }
    if (given.exp !== undefined && values.ttl !== undefined) {
      process.stderr.write('--claims has exp and --ttl is given too: say the expiry once (exp, or --ttl for exp = iat + ttl)\n');
      return 2;
    }
    const iat = (given.iat as number | undefined) ?? Math.floor(Date.now() / 1000);
    const exp = (given.exp as number | undefined) ?? iat + ttl;
    if (exp <= iat) {
      process.stderr.write(`--claims: exp (${exp}) must be after iat (${iat})\n`);
      return 2;
    }
    if (values.alg !== 'RS256' && values.alg !== 'ES256') {
      process.stderr.write('--alg must be RS256 or ES256\n');
      return 2;
    }
    const token = await signDevToken({ sub: values.sub, ttlS: ttl, claims: { ...given, iat, exp }, alg: values.alg });
    process.stdout.write(token + '\n');
    return 0;
  } catch (err) {
    return usageFailed(err, USAGE);
  }
}
