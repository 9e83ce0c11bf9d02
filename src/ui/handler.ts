import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.js';
import { CONTENT_SECURITY_POLICY, loadAssets } from './assets.js';
import type { ExplainInput, ExplainOutcome } from './explain.js';
import type { UiSnapshot } from './snapshot.js';

export interface UiDeps {
  readonly snapshot: () => Promise<UiSnapshot>;
  readonly explain: (input: ExplainInput) => Promise<ExplainOutcome>;
  /** When set, every API call must carry it as `Authorization: Bearer …`. */
  readonly accessToken: string | undefined;
  readonly logger: Logger;
}

export type UiHandler = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

const MAX_BODY = 32 * 1024;
const LIMITS: Readonly<Record<keyof ExplainInput, number>> = { method: 16, path: 4096, host: 255, ip: 64, token: 16_384 };

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
} as const;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether a configured listen address (HOST:PORT or unix:PATH) is reachable from this host only. */
export function isLoopbackListener(address: string): boolean {
  if (address.startsWith('unix:')) return true;
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Host names a browser uses for a loopback listener; anything else may be DNS rebinding. */
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** GET /ui/ (the page and its two files), GET /ui/api/snapshot, POST /ui/api/explain. */
export function createUiHandler(deps: UiDeps): UiHandler {
  const assets = loadAssets();
  const expected = deps.accessToken === undefined ? undefined : digest(deps.accessToken);

  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json' }).end(JSON.stringify(body));

  const allowed = (req: IncomingMessage, res: ServerResponse): boolean => {
    // A page on another site must not read or drive this one, whatever the browser allows.
    if (req.headers['sec-fetch-site'] === 'cross-site') {
      json(res, 403, { error: 'cross_site' });
      return false;
    }
    if (expected === undefined) {
      if (loopbackHost(req.headers.host)) return true;
      json(res, 403, { error: 'loopback_only' });
      return false;
    }
    const auth = req.headers.authorization ?? '';
    const given = auth.startsWith('Bearer ') ? digest(auth.slice(7)) : undefined;
    if (given !== undefined && timingSafeEqual(given, expected)) return true;
    res.setHeader('www-authenticate', 'Bearer realm="zt-authz-ui"');
    json(res, 401, { error: 'unauthorized' });
    return false;
  };

  return (req, res, path) => {
    if (path === '/ui') {
      res.writeHead(308, { location: '/ui/' }).end();
      return true;
    }
    if (!path.startsWith('/ui/')) return false;
    const asset = assets.get(path);
    if (asset !== undefined) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, 'GET');
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': asset.body.length });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
      return true;
    }
    if (path === '/ui/api/snapshot') {
      if (req.method !== 'GET') return methodNotAllowed(res, 'GET');
      if (!allowed(req, res)) return true;
      deps.snapshot().then(
        (s) => json(res, 200, s),
        (err: unknown) => {
          deps.logger.warn({ err }, 'ui snapshot failed');
          json(res, 503, { error: 'snapshot_unavailable' });
        },
      );
      return true;
    }
    if (path === '/ui/api/explain') {
      if (req.method !== 'POST') return methodNotAllowed(res, 'POST');
      if (!allowed(req, res)) return true;
      // A form on another origin can post text/plain without a preflight; it cannot post JSON.
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        json(res, 415, { error: 'json_required' });
        return true;
      }
      readBody(req, MAX_BODY).then(
        (body) => {
          const input = parseInput(body);
          if (typeof input === 'string') return json(res, 400, { error: input });
          return deps.explain(input).then((out) => json(res, 200, out));
        },
        () => json(res, 413, { error: 'body_too_large' }),
      ).catch((err: unknown) => {
        // Never the request body: it holds the token.
        deps.logger.warn({ err: (err as Error).message }, 'ui explain failed');
        if (!res.headersSent) json(res, 500, { error: 'internal_error' });
      });
      return true;
    }
    json(res, 404, { error: 'not_found' });
    return true;
  };
}

function methodNotAllowed(res: ServerResponse, allow: string): true {
  res.writeHead(405, { allow }).end();
  return true;
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.destroy();
        reject(new Error('too large'));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseInput(body: string): ExplainInput | string {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return 'invalid_json';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'invalid_json';
  const o = v as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [k, max] of Object.entries(LIMITS)) {
    const field = o[k] ?? '';
    if (typeof field !== 'string') return `${k}_not_a_string`;
    if (field.length > max) return `${k}_too_long`;
    out[k] = field;
  }
  return out as unknown as ExplainInput;
}
