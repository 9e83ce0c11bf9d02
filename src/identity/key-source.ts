import { readFile } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Where an issuer's JWKS comes from. */
export type KeySource =
  | { readonly kind: 'static'; readonly jwks: unknown }
  | { readonly kind: 'uri'; readonly url: string }
  | { readonly kind: 'discovery'; readonly issuer: string }
  | { readonly kind: 'file'; readonly path: string };

const MAX_DOC_BYTES = 1 << 20;

export interface FetchOptions {
  readonly timeoutMs: number;
  /** Aborts everything in flight when the authenticator closes. */
  readonly closed: AbortSignal;
}

/**
 * Fetches a JSON document; any non-2xx (redirects included), oversize, non-JSON or timeout is an Error.
 *
 * node:http rather than fetch, and a deadline this function owns: a timer held here destroys the
 * request (and its socket) and settles the promise itself. On Node 20 `AbortSignal.timeout` is only
 * weakly held, so after a GC a fetch given it could hang forever and freeze every later refresh.
 * Nothing here depends on a signal firing: the timer settles the promise even if the socket
 * never reports back.
 */
export function fetchJson(url: string, opts: FetchOptions): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    let req: ClientRequest | undefined;
    const finish = (err: Error | undefined, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.closed.removeEventListener('abort', onClosed);
      req?.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const fail = (why: string) => finish(new Error(`GET ${url}: ${why}`));
    const onClosed = () => fail('aborted');
    const timer = setTimeout(() => fail(`timed out after ${opts.timeoutMs} ms`), opts.timeoutMs);
    if (opts.closed.aborted) return onClosed();
    opts.closed.addEventListener('abort', onClosed, { once: true });

    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return fail('not a URL');
    }
    const send = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : undefined;
    if (send === undefined) return fail(`protocol ${target.protocol} not supported`);
    // A fresh connection per fetch: fetches are rare, and a pooled keep-alive socket the server
    // already closed would fail a refresh for nothing.
    req = send(target, { method: 'GET', agent: false, headers: { accept: 'application/json' } });
    req.on('error', (err) => fail(err.message));
    req.on('response', (res: IncomingMessage) => {
      res.on('error', (err) => fail(err.message));
      const status = res.statusCode ?? 0;
      // Redirects are refused: a key document is fetched from exactly the configured place.
      if (status < 200 || status > 299) return fail(status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`);
      if (Number(res.headers['content-length'] ?? '0') > MAX_DOC_BYTES) return fail(`document larger than ${MAX_DOC_BYTES} bytes`);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_DOC_BYTES) return fail(`document larger than ${MAX_DOC_BYTES} bytes`);
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        try {
          finish(undefined, JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          fail('body is not JSON');
        }
      });
    });
    req.end();
  });
}

/** The discovery URL of OIDC Discovery §4: the issuer with any trailing '/' removed, then the well-known path. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/**
 * Resolves the JWKS document. `cachedJwksUri` carries a discovered jwks_uri between loads so an
 * unknown-kid refetch costs one request, not two.
 */
export async function loadKeyDocument(
  source: KeySource,
  opts: FetchOptions,
  cache: { jwksUri?: string | undefined },
): Promise<unknown> {
  switch (source.kind) {
    case 'static':
      return source.jwks;
    case 'uri':
      return fetchJson(source.url, opts);
    case 'file': {
      const text = await readFile(source.path, 'utf8');
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`${source.path}: not JSON`);
      }
    }
    case 'discovery': {
      if (cache.jwksUri === undefined) cache.jwksUri = await discover(source.issuer, opts);
      try {
        return await fetchJson(cache.jwksUri, opts);
      } catch (err) {
        // The IdP may have moved its keys; rediscover next time.
        cache.jwksUri = undefined;
        throw err;
      }
    }
  }
}

async function discover(issuer: string, opts: FetchOptions): Promise<string> {
  const doc = (await fetchJson(discoveryUrl(issuer), opts)) as Record<string, unknown> | null;
  if (typeof doc !== 'object' || doc === null) throw new Error('discovery document is not an object');
  // OIDC Discovery §4.3: the document must name exactly the issuer it was fetched for.
  if (doc.issuer !== issuer) {
    throw new Error(`discovery document names issuer ${JSON.stringify(doc.issuer)}, expected ${JSON.stringify(issuer)}`);
  }
  const uri = doc.jwks_uri;
  if (typeof uri !== 'string' || !/^https?:\/\//.test(uri)) throw new Error('discovery document has no http(s) jwks_uri');
  return uri;
}
