/**
 * The closed set of reasons a key source fails, and the one error type that carries them.
 *
 * Like jose's `JOSEErrorCode` and undici's `UND_ERR_*`: callers branch on `code`, never on the
 * message. The message is for people (logs, `/keys`, `jwt-sidecar verify`); the code is for
 * code, and it is the prefix of every refresh error the key store reports
 * (`status: HTTP 503: expected 200`), so the same words mean the same thing everywhere.
 */

/**
 * Every code, grouped by the unit that raises it:
 * - fetcher.ts and credentials.ts, one HTTP GET ({@link FetchErrorCode}, thrown as {@link JwksFetchError}):
 *   - `network`: connection refused/reset, DNS, TLS (an untrusted certificate included), caller abort;
 *   - `timeout`: no complete response within `fetch.timeout`;
 *   - `status`: an HTTP status other than 200 (or 304 to a conditional request);
 *   - `too_large`: the body exceeds `fetch.maxBytes`;
 *   - `invalid_json`: the body is not JSON;
 *   - `too_deep`: the body nests deeper than MAX_JSON_DEPTH (json-bounds.ts, issue #9 §8);
 *   - `redirect`: a redirect to another origin, too many, or one without a usable Location;
 *   - `insecure`: plain http: to a non-loopback host while `allowInsecureHttp` is false;
 *   - `config`: local setup: bad URL, unreadable or invalid bearerTokenFile / caFile, invalid extra header;
 * - discovery.ts: `discovery`: the OIDC discovery document is unusable (wrong issuer, no jwks_uri, …);
 * - key-set.ts, the document as a whole (`JwksErrorCode`):
 *   - `invalid_jwks`: not `{"keys": [...]}`;
 *   - `too_many_keys`: more than MAX_JWKS_KEYS entries, refused before any import;
 * - refresher.ts, what the refresh makes of a fetched document:
 *   - `no_usable_keys`: every key was rejected (zero keys is never an update);
 *   - `not_modified_without_keys`: a 304 for a key set we no longer hold.
 *
 * Static key files are not here: a bad file is a per-file `why` in a load result
 * (static.ts `StaticFileError`), never a thrown error, and its old keys stay in use.
 */
export const KEY_ERROR_CODES = [
  'network', 'timeout', 'status', 'too_large', 'invalid_json', 'too_deep', 'redirect', 'insecure', 'config',
  'discovery',
  'invalid_jwks', 'too_many_keys',
  'no_usable_keys', 'not_modified_without_keys',
] as const

export type KeyErrorCode = (typeof KEY_ERROR_CODES)[number]

/**
 * A key source failed; `code` says why, `message` is short and safe to log (no token, at most
 * ~100 characters of provider text). fetcher.ts's `JwksFetchError`, discovery.ts's
 * `DiscoveryError` and key-set.ts's `InvalidJwksError` are KeyErrors with a narrower code.
 *
 * @example
 * ```ts
 * try {
 *   await refresh()
 * } catch (err) {
 *   if (err instanceof KeyError && err.code === 'timeout') { ... }
 *   log.warn({ error: describeKeyError(err) })   // "timeout: no complete response within 5000 ms"
 * }
 * ```
 */
export class KeyError extends Error {
  override readonly name: string = 'KeyError'
  readonly code: KeyErrorCode

  constructor(code: KeyErrorCode, message: string, options: { readonly cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
  }
}

/** The reasons one HTTP GET fails (fetcher.ts): the first group of {@link KEY_ERROR_CODES}. */
export type FetchErrorCode = Extract<KeyErrorCode, 'network' | 'timeout' | 'status' | 'too_large' | 'invalid_json' | 'too_deep' | 'redirect' | 'insecure' | 'config'>

/**
 * A failed fetch (fetcher.ts, credentials.ts). `message` is short, never carries more than
 * ~100 chars of the body, and never the token. Here rather than in fetcher.ts because both
 * files throw it.
 */
export class JwksFetchError extends KeyError {
  override readonly name = 'JwksFetchError'
  declare readonly code: FetchErrorCode
  /** The HTTP status for `status` and `redirect` errors; undefined otherwise. */
  readonly status: number | undefined

  constructor(code: FetchErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause })
    this.status = options.status
  }
}

/**
 * The text the key store reports for a failure (`jwks.refresh_failed`'s `error`, `/keys`'
 * `lastError`): `code: message` for a KeyError, the bare message for anything else (a bug,
 * which has no code to give).
 */
export function describeKeyError(err: unknown): string {
  if (err instanceof KeyError) return `${err.code}: ${err.message}`
  return err instanceof Error ? err.message : String(err)
}
