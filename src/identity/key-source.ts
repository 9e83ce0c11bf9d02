import { readFile } from 'node:fs/promises';

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

/** Fetches a JSON document; any non-2xx, oversize, non-JSON or timeout is an Error. */
export async function fetchJson(url: string, opts: FetchOptions): Promise<unknown> {
  const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs), opts.closed]);
  let res: Response;
  try {
    // Redirects are refused: a key document is fetched from exactly the configured place.
    res = await fetch(url, { signal, redirect: 'error', headers: { accept: 'application/json' } });
  } catch (err) {
    throw new Error(`GET ${url}: ${describeFetchError(err, opts.timeoutMs)}`);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`GET ${url}: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_DOC_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`GET ${url}: document larger than ${MAX_DOC_BYTES} bytes`);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new Error(`GET ${url}: ${describeFetchError(err, opts.timeoutMs)}`);
  }
  if (text.length > MAX_DOC_BYTES) throw new Error(`GET ${url}: document larger than ${MAX_DOC_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${url}: body is not JSON`);
  }
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { message?: string } };
  if (e.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  if (e.name === 'AbortError') return 'aborted';
  return e.cause?.message ?? e.message ?? String(err);
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
