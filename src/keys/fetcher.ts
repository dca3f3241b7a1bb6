/**
 * One HTTP GET of a JSON document (a JWKS, or an OIDC discovery document): a total timeout,
 * a running size cap, conditional requests, same-origin redirects only, per-issuer TLS trust
 * and a rotating bearer token.
 *
 * The key endpoints are the one place where the sidecar reads bytes it did not configure, so
 * this unit is deliberately paranoid:
 * - one AbortSignal bounds the whole exchange (token file read, every redirect hop, the last
 *   body byte), so a slow-drip server cannot outlive `timeout`;
 * - the body is counted while it streams and the request is aborted the moment it exceeds
 *   `maxBytes` (a hostile or broken provider cannot make us buffer an unbounded body);
 * - keys come only from where the operator said (RFC 8725 §3.10, and the reason jose's
 *   remote JWKS does not follow redirects): a redirect is followed only within the same
 *   origin, at most {@link MAX_REDIRECTS} times, and every URL must be https: unless it is
 *   loopback or the operator opted out with `allowInsecureHttp`;
 * - error messages are short, carry a stable code, never quote more than ~100 characters of
 *   provider text, and never contain the bearer token.
 *
 * Caching policy (when to fetch again) is not decided here: the fetcher reports the
 * response's lifetime (`maxAgeMs`, see freshness.ts) and its validators, and the key store
 * schedules.
 */
import { Agent, request } from 'undici'
import type { Dispatcher } from 'undici'
import { loadCa, readToken } from './credentials.ts'
import { JwksFetchError } from './errors.ts'
import { cacheLifetimeMs } from './freshness.ts'
import { jsonDepthExceededAt, MAX_JSON_DEPTH } from './json-bounds.ts'
import { isToken } from '../http/grammar.ts'
import { FRAMING, HOP_BY_HOP } from '../http/header-names.ts'
import { refusesPlainHttp } from '../http/transport.ts'

/** Redirect hops followed after the first request (RFC 9110 §15.4 leaves the limit to us). */
export const MAX_REDIRECTS = 3

/** Longest slice of provider-controlled text we repeat in a message (logs stay short and clean). */
const MAX_DETAIL = 100

/** RFC 9110 §8.8: what a 200 carried, to make the next request conditional (§13.1). */
export interface Validators {
  readonly etag: string | undefined
  readonly lastModified: string | undefined
}

/**
 * - `ok`: a 200 with a JSON body, its validators, and its cache lifetime (undefined when the
 *   response did not say; see `cacheLifetimeMs`).
 * - `not_modified`: a 304 to a conditional request: the caller's copy is still current and,
 *   per RFC 9111 §4.3.4, freshened by the 304's own headers (`maxAgeMs`).
 */
export type FetchOutcome =
  | { readonly status: 'ok'; readonly body: unknown; readonly validators: Validators; readonly maxAgeMs: number | undefined }
  | { readonly status: 'not_modified'; readonly maxAgeMs: number | undefined }

export interface JsonFetcherOptions {
  /** ms; the whole exchange, token file read and redirect hops included, to the last body byte. */
  readonly timeout: number
  /** bytes; a body larger than this is refused (and its download aborted). */
  readonly maxBytes: number
  readonly userAgent: string
  /**
   * Extra request headers. They can never replace the ones this unit owns (Accept, User-Agent,
   * Host, the conditional headers, framing and hop-by-hop headers): those names are dropped.
   */
  readonly headers: Readonly<Record<string, string>>
  /**
   * Read on EVERY fetch (Kubernetes rotates projected service-account tokens) and sent as
   * `Authorization: Bearer <trimmed content>`, replacing an `authorization` extra header.
   */
  readonly bearerTokenFile: string | undefined
  /** PEM CA bundle: this issuer's TLS is verified against it INSTEAD of the system roots. */
  readonly caFile: string | undefined
  /** Allow plain http: to non-loopback hosts. */
  readonly allowInsecureHttp: boolean
}

export interface JsonFetcherDeps {
  /**
   * undici dispatcher; the global dispatcher by default. Cannot be combined with `caFile`,
   * which needs a dispatcher of its own (createJsonFetcher throws a TypeError).
   */
  readonly dispatcher?: Dispatcher
  /** Clock for `Expires` without `Date`; `Date.now` by default. */
  readonly now?: () => number
}

/**
 * GET one JSON document. `validators` (from a previous `ok`) make the request conditional;
 * `signal` lets the owner cancel (the key store does on `stop()`): a cancelled fetch rejects
 * with code `network`. Rejects only with {@link JwksFetchError}.
 */
export type FetchJson = (
  url: string,
  options?: { readonly validators?: Validators; readonly signal?: AbortSignal },
) => Promise<FetchOutcome>

/** RFC 9110 §15.4: the redirects we may follow. 300, 304 and 305 are not redirects to follow. */
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

/**
 * Request headers this unit owns: extra headers with these names are dropped. Framing and
 * hop-by-hop headers (RFC 9110 §7.6.1) would corrupt the exchange; the rest are ours by design.
 */
const OWNED_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP, ...FRAMING, 'expect',
  'accept', 'user-agent', 'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range',
])

/** RFC 9110 §8.8.3 entity-tag, weak or strong. Anything else is not echoed back in If-None-Match. */
const ENTITY_TAG = /^(?:W\/)?"[\x21\x23-\x7e\x80-\xff]*"$/

/**
 * Create a fetcher for one issuer: one GET per call (plus same-origin redirect hops), no
 * caching, no retries: the key store decides when to call again.
 *
 * @example
 * ```ts
 * const fetchJson = createJsonFetcher({
 *   timeout: 5_000, maxBytes: 512 * 1024, userAgent: 'jwt-sidecar/0.1.0',
 *   headers: {}, bearerTokenFile: undefined, caFile: undefined, allowInsecureHttp: false,
 * })
 * const first = await fetchJson('https://idp.example.com/.well-known/jwks.json')
 * if (first.status === 'ok') {
 *   // later: a 304 costs the provider nothing and renews our copy's freshness
 *   const next = await fetchJson('https://idp.example.com/.well-known/jwks.json', { validators: first.validators })
 * }
 * ```
 */
export function createJsonFetcher(opts: JsonFetcherOptions, deps: JsonFetcherDeps = {}): FetchJson {
  const { timeout, maxBytes, userAgent, bearerTokenFile, caFile, allowInsecureHttp } = opts
  if (caFile !== undefined && deps.dispatcher !== undefined) {
    throw new TypeError('createJsonFetcher: caFile needs its own dispatcher; do not pass deps.dispatcher with it')
  }
  const now = deps.now ?? Date.now
  const extra = extraHeaders(opts.headers)

  // caFile is read once, on first use; a failed read is not cached, so a CA bundle mounted
  // late (a Secret that appears after the pod starts) is picked up by the next fetch.
  let caDispatcher: Promise<Dispatcher> | undefined
  async function dispatcher(): Promise<Dispatcher | undefined> {
    if (deps.dispatcher !== undefined) return deps.dispatcher
    if (caFile === undefined) return undefined
    caDispatcher ??= loadCa(caFile).then((ca) => new Agent({ connect: { ca } }))
    try {
      return await caDispatcher
    } catch (err) {
      caDispatcher = undefined
      throw err
    }
  }

  async function requestHeaders(validators: Validators | undefined, signal: AbortSignal): Promise<Record<string, string>> {
    if (extra instanceof JwksFetchError) throw extra
    const headers: Record<string, string> = { ...extra, accept: 'application/json', 'user-agent': userAgent }
    if (bearerTokenFile !== undefined) headers['authorization'] = `Bearer ${await readToken(bearerTokenFile, signal)}`
    // RFC 9110 §13.1.1 / §13.1.3: send both; a server that knows ETags ignores If-Modified-Since.
    if (validators?.etag !== undefined) headers['if-none-match'] = validators.etag
    if (validators?.lastModified !== undefined) headers['if-modified-since'] = validators.lastModified
    return headers
  }

  async function exchange(url: string, validators: Validators | undefined, signal: AbortSignal): Promise<FetchOutcome> {
    // Checked before the token is read or a socket opened: a refused URL costs nothing.
    let current = checkUrl(url, allowInsecureHttp, 'config')
    const headers = await requestHeaders(validators, signal)
    const conditional = 'if-none-match' in headers || 'if-modified-since' in headers
    const via = await dispatcher()

    for (let hop = 0; ; hop++) {
      const res = await request(current.href, {
        method: 'GET',
        headers,
        signal,
        ...(via === undefined ? {} : { dispatcher: via }),
      })
      const { statusCode, body } = res
      // undici's body emits 'error' when we destroy it early; the for-await below still sees
      // every error, this listener only keeps a deliberate destroy from becoming uncaught.
      body.on('error', ignore)

      if (statusCode === 200) {
        return {
          status: 'ok',
          body: await readJson(res, maxBytes),
          validators: validatorsOf(res.headers),
          maxAgeMs: cacheLifetimeMs(res.headers, now()),
        }
      }
      // Nothing else is read from a non-200 body: destroying it frees us without a byte more.
      body.destroy()

      if (statusCode === 304) {
        // RFC 9110 §15.4.5: 304 answers a conditional GET; to an unconditional one it is a
        // broken server, and we have no copy it could refer to.
        if (!conditional) throw new JwksFetchError('status', 'HTTP 304 to an unconditional request', { status: 304 })
        return { status: 'not_modified', maxAgeMs: cacheLifetimeMs(res.headers, now()) }
      }
      if (!REDIRECT_STATUSES.has(statusCode)) {
        throw new JwksFetchError('status', `HTTP ${statusCode}: expected 200`, { status: statusCode })
      }

      const location = first(res.headers['location'])
      if (location === undefined || location.trim() === '') {
        throw new JwksFetchError('redirect', `HTTP ${statusCode} without a Location header`, { status: statusCode })
      }
      let target: URL
      try {
        target = new URL(location.trim(), current)
      } catch {
        throw new JwksFetchError('redirect', `HTTP ${statusCode} with an invalid Location`, { status: statusCode })
      }
      // RFC 8725 §3.10 (and RFC 6454 for "origin"): a provider, or whoever sits in front of it,
      // must not be able to move key retrieval to a host the operator did not configure.
      if (target.origin !== current.origin) {
        throw new JwksFetchError(
          'redirect',
          `HTTP ${statusCode} to another origin ${clip(target.origin, MAX_DETAIL)} refused: keys are only fetched from ${current.origin}`,
          { status: statusCode },
        )
      }
      if (hop >= MAX_REDIRECTS) {
        throw new JwksFetchError('redirect', `more than ${MAX_REDIRECTS} redirects`, { status: statusCode })
      }
      current = checkUrl(target, allowInsecureHttp, 'redirect')
    }
  }

  return async function fetchJson(url, options = {}) {
    // One signal bounds the whole exchange: undici destroys the body stream with the
    // signal's reason if it fires mid-body, so a slow-drip body cannot outlive `timeout`.
    const timer = AbortSignal.timeout(timeout)
    const signal = options.signal === undefined ? timer : AbortSignal.any([timer, options.signal])
    try {
      return await exchange(url, options.validators, signal)
    } catch (err) {
      throw classify(err, timer, timeout)
    }
  }
}

/** Parse and vet one URL we are about to request: http(s), no credentials, https unless loopback/allowed. */
function checkUrl(input: string | URL, allowInsecureHttp: boolean, badUrlCode: 'config' | 'redirect'): URL {
  let url: URL
  try {
    url = new URL(input)
  } catch {
    throw new JwksFetchError(badUrlCode, `not an absolute URL: ${JSON.stringify(clip(String(input), MAX_DETAIL))}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new JwksFetchError(badUrlCode, `unsupported URL scheme ${JSON.stringify(clip(url.protocol, 20))}: only https: (or http: to loopback)`)
  }
  // Credentials in a URL leak into logs, metrics labels and /keys; the supported ways to
  // authenticate are `headers` and `bearerTokenFile`.
  if (url.username !== '' || url.password !== '') {
    throw new JwksFetchError(badUrlCode, `URL for ${url.host} carries credentials; use fetch.headers or fetch.bearerTokenFile`)
  }
  if (refusesPlainHttp(url, allowInsecureHttp)) {
    throw new JwksFetchError('insecure', `refusing plain http: to non-loopback host ${clip(url.host, MAX_DETAIL)} (allowInsecureHttp is false)`)
  }
  url.hash = ''
  return url
}

/** Validate the configured extra headers once; a problem becomes a `config` error on every fetch. */
function extraHeaders(configured: Readonly<Record<string, string>>): Readonly<Record<string, string>> | JwksFetchError {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(configured)) {
    if (!isToken(name)) return new JwksFetchError('config', `fetch header name ${JSON.stringify(clip(name, 40))} is not an HTTP token`)
    // RFC 9110 §5.5: CR, LF and NUL are never valid in a field value (header injection).
    // The value itself is not quoted: it may be a secret.
    if (/[\r\n\0]/.test(value)) return new JwksFetchError('config', `fetch header ${name}: value contains CR, LF or NUL`)
    const lower = name.toLowerCase()
    if (!OWNED_HEADERS.has(lower)) out[lower] = value
  }
  return out
}

async function readJson(res: Dispatcher.ResponseData, maxBytes: number): Promise<unknown> {
  const { body } = res
  // Refuse early when the server announces too much; the running count below is what
  // actually protects us (Content-Length may be absent or wrong).
  const declared = Number(first(res.headers['content-length']))
  if (Number.isFinite(declared) && declared > maxBytes) {
    body.destroy()
    throw tooLarge(maxBytes)
  }

  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length
    // Throwing here ends the loop, and for-await's return() destroys the stream: the
    // connection is dropped instead of drained.
    if (total > maxBytes) throw tooLarge(maxBytes)
    chunks.push(chunk)
  }

  const text = Buffer.concat(chunks, total).toString('utf8')
  // maxBytes bounds the width, not the depth: a 400,000-deep `[[[…` fits in 1 MiB and costs
  // JSON.parse hundreds of MiB and a blocked event loop (issue #9 §8). Refuse it unparsed.
  const deepAt = jsonDepthExceededAt(text, MAX_JSON_DEPTH)
  if (deepAt !== undefined) {
    throw new JwksFetchError('too_deep', `response nests deeper than ${MAX_JSON_DEPTH} levels (at character ${deepAt}): not a key document`)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    // Build our own message: newer V8 quotes a slice of the input in SyntaxError messages.
    const kind = text.trim() === '' ? 'empty body' : `not JSON (starts ${JSON.stringify(clip(text, 40))})`
    throw new JwksFetchError('invalid_json', `response is ${kind}`, { cause: err })
  }
}

function validatorsOf(headers: Dispatcher.ResponseData['headers']): Validators {
  const etag = first(headers['etag'])?.trim()
  const lastModified = first(headers['last-modified'])?.trim()
  return {
    // A malformed ETag is dropped rather than echoed: it could make every later request invalid.
    etag: etag !== undefined && ENTITY_TAG.test(etag) ? etag : undefined,
    // RFC 9110 §13.1.3: If-Modified-Since carries the Last-Modified value exactly as received.
    lastModified: lastModified !== undefined && lastModified !== '' && !/[\r\n\0]/.test(lastModified) ? lastModified : undefined,
  }
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function ignore(): void {}

function tooLarge(maxBytes: number): JwksFetchError {
  return new JwksFetchError('too_large', `response body exceeds ${maxBytes} bytes`)
}

function classify(err: unknown, timer: AbortSignal, timeout: number): JwksFetchError {
  if (err instanceof JwksFetchError) return err
  const code = typeof (err as { code?: unknown } | null)?.code === 'string' ? (err as { code: string }).code : undefined
  // Our total timeout, or one of undici's own (connect / headers / body) if it fires first.
  if (timer.aborted || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new JwksFetchError('timeout', `no complete response within ${timeout} ms`, { cause: err })
  }
  const name = (err as { name?: unknown } | null)?.name
  if (name === 'AbortError') return new JwksFetchError('network', 'fetch aborted', { cause: err })
  // Node reports a refused dual-stack connect as an AggregateError with an empty message.
  const message = (err instanceof Error ? err.message : String(err)) || (typeof name === 'string' ? name : 'network error')
  return new JwksFetchError('network', clip(code === undefined ? message : `${code}: ${message}`, MAX_DETAIL), { cause: err })
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`
}
