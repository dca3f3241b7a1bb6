/**
 * OIDC Discovery: from an issuer identifier to its `jwks_uri`.
 *
 * The document is fetched with the issuer's own fetcher (same timeout, size cap, TLS trust,
 * token and redirect rules as the JWKS) and believed only as far as the spec allows: its
 * `issuer` must be the configured issuer character for character (OIDC Discovery 1.0 §4.3,
 * the check that stops one provider's document from vouching for another's keys, cf.
 * RFC 8414 §3.3 for OAuth mix-up attacks), and its `jwks_uri` must be a URL we would fetch.
 */
import { refusesPlainHttp } from '../http/transport.ts'
import { KeyError } from './errors.ts'
import type { FetchJson } from './fetcher.ts'

/** Longest slice of provider-controlled text we repeat in a message. */
const MAX_DETAIL = 100

/** The discovery document is unusable. Fetch failures stay errors.ts' `JwksFetchError`s. */
export class DiscoveryError extends KeyError {
  override readonly name = 'DiscoveryError'
  declare readonly code: 'discovery'

  constructor(message: string, options: { cause?: unknown } = {}) {
    super('discovery', message, options.cause === undefined ? {} : { cause: options.cause })
  }
}

/**
 * OIDC Discovery 1.0 §4: GET `{issuer minus one trailing '/'}/.well-known/openid-configuration`
 * (§4.1: a path component is kept, `https://idp/realms/a/` → `https://idp/realms/a/.well-known/…`).
 * §4.3: the document's `issuer` must equal the configured issuer EXACTLY (no normalisation:
 * a trailing slash, letter case or default port that differs is a mismatch). `jwks_uri` must
 * be an absolute http(s) URL, https unless its host is loopback or `allowInsecureHttp`.
 *
 * Rejects with errors.ts' `JwksFetchError` when the fetch fails (its code says why) and with a
 * {@link DiscoveryError} when the document is unusable. `maxAgeMs` is the document's cache
 * lifetime (see freshness.ts), for scheduling the next discovery.
 *
 * @example
 * ```ts
 * const fetchJson = createJsonFetcher({ ...issuer.fetch, userAgent, allowInsecureHttp: issuer.allowInsecureHttp })
 * try {
 *   const { jwksUri, maxAgeMs } = await discoverJwksUri(issuer.issuer, fetchJson, { allowInsecureHttp: issuer.allowInsecureHttp })
 * } catch (err) {
 *   if (err instanceof DiscoveryError) { ... }       // the document is wrong: a config or provider problem
 *   else if (err instanceof JwksFetchError) { ... }  // the fetch failed: err.code says how
 * }
 * ```
 */
export async function discoverJwksUri(
  issuer: string,
  fetchJson: FetchJson,
  options: {
    readonly allowInsecureHttp: boolean
    readonly signal?: AbortSignal
    /**
     * Where the document is when not at the well-known location (`issuers[].discoveryUrl`:
     * Azure AD B2C's policy URLs, Entra's `organizations` document for a `{tenantid}` issuer).
     * Its `issuer` must still equal the configured one: a template compares as a template.
     */
    readonly url?: string | undefined
  },
): Promise<{ readonly jwksUri: string; readonly maxAgeMs: number | undefined }> {
  const url = options.url ?? discoveryUrl(issuer)
  const result = await fetchJson(url, options.signal === undefined ? {} : { signal: options.signal })
  // We never send validators, so a conforming server cannot answer 304; the fetcher already
  // refuses an unconditional 304, this keeps the type honest.
  if (result.status !== 'ok') throw new DiscoveryError(`discovery document at ${url} answered not_modified to an unconditional request`)

  const doc = result.body
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new DiscoveryError(`discovery document at ${url} is not a JSON object`)
  }
  const { issuer: docIssuer, jwks_uri: jwksUri } = doc as Record<string, unknown>

  if (typeof docIssuer !== 'string') throw new DiscoveryError(`discovery document at ${url} has no issuer string`)
  if (docIssuer !== issuer) {
    throw new DiscoveryError(`discovery document issuer ${quote(docIssuer)} does not equal the configured issuer ${quote(issuer)}`)
  }

  // §3: jwks_uri is REQUIRED. We only verify signatures, so without it the document is useless.
  if (typeof jwksUri !== 'string' || jwksUri === '') throw new DiscoveryError(`discovery document for ${quote(issuer)} has no jwks_uri`)
  let parsed: URL
  try {
    // No base URL: a relative jwks_uri is invalid (§3: it is a URL, and we will not guess its base).
    parsed = new URL(jwksUri)
  } catch {
    throw new DiscoveryError(`discovery document jwks_uri ${quote(jwksUri)} is not an absolute URL`)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new DiscoveryError(`discovery document jwks_uri ${quote(jwksUri)} is not an http(s) URL`)
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new DiscoveryError(`discovery document jwks_uri for ${quote(issuer)} carries credentials`)
  }
  if (refusesPlainHttp(parsed, options.allowInsecureHttp)) {
    throw new DiscoveryError(`discovery document jwks_uri ${quote(jwksUri)} is plain http: to a non-loopback host (allowInsecureHttp is false)`)
  }
  return { jwksUri: parsed.href, maxAgeMs: result.maxAgeMs }
}

/** OIDC Discovery 1.0 §4.1: remove one terminating '/', then append the well-known path. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.endsWith('/') ? issuer.slice(0, -1) : issuer}/.well-known/openid-configuration`
}

/** JSON quoting escapes control characters; clipping keeps a hostile value from flooding logs. */
function quote(text: string): string {
  return JSON.stringify(text.length <= MAX_DETAIL ? text : `${text.slice(0, MAX_DETAIL)}…`)
}
