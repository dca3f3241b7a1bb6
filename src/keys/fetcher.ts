/**
 * One HTTP GET of a JWKS document: a total timeout, a running size cap, no redirects.
 *
 * The JWKS endpoint is the one place where the sidecar reads bytes it did not configure, so
 * this unit is deliberately paranoid: the body is counted while it streams and the request is
 * aborted the moment it exceeds `maxBytes` (a hostile or broken provider cannot make us buffer
 * an unbounded body), and a redirect is an error rather than a hop to wherever the provider
 * points (undici's `request` does not follow redirects unless asked; we never ask).
 *
 * Issue #3 adds ETag / Cache-Control here; callers keep calling `fetchJwks(url)`.
 */
import { request } from 'undici'
import type { Dispatcher } from 'undici'

/** The closed set of reasons a JWKS fetch fails. Branch on these, never on the message. */
export type JwksFetchErrorCode = 'network' | 'timeout' | 'status' | 'too_large' | 'invalid_json'

/** Longest slice of provider-controlled text we repeat in a message (logs stay short and clean). */
const MAX_DETAIL = 100

/** A failed JWKS fetch. `message` is short and never carries more than ~100 chars of the body. */
export class JwksFetchError extends Error {
  override readonly name = 'JwksFetchError'
  readonly code: JwksFetchErrorCode
  /** The HTTP status for `code: 'status'`; undefined otherwise. */
  readonly status: number | undefined

  constructor(code: JwksFetchErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = options.status
  }
}

export interface JwksFetcherOptions {
  /** ms; the whole exchange, connect to last body byte. */
  readonly timeout: number
  /** bytes; a body larger than this is refused (and its download aborted). */
  readonly maxBytes: number
  readonly userAgent: string
}

export interface JwksFetcherDeps {
  /** undici dispatcher (an Agent, a MockAgent in tests); the global dispatcher by default. */
  readonly dispatcher?: Dispatcher
}

/**
 * Fetch and JSON-parse one JWKS document. `signal` lets the owner cancel (the key store
 * does on `stop()`); a cancelled fetch rejects with code `network`.
 */
export type FetchJwks = (url: string, signal?: AbortSignal) => Promise<unknown>

/**
 * Create a JWKS fetcher: one GET per call, no caching, no retries (the key store schedules).
 *
 * @example
 * ```ts
 * const fetchJwks = createJwksFetcher({ timeout: 5_000, maxBytes: 512 * 1024, userAgent: 'jwt-sidecar/0.1.0' })
 * try {
 *   const doc = await fetchJwks('https://idp.example.com/.well-known/jwks.json')
 * } catch (err) {
 *   if (err instanceof JwksFetchError && err.code === 'timeout') { ... }
 * }
 * ```
 */
export function createJwksFetcher(opts: JwksFetcherOptions, deps: JwksFetcherDeps = {}): FetchJwks {
  const { timeout, maxBytes, userAgent } = opts
  const headers = { accept: 'application/json', 'user-agent': userAgent }

  return async function fetchJwks(url: string, signal?: AbortSignal): Promise<unknown> {
    // One signal bounds the whole exchange: undici destroys the body stream with the
    // signal's reason if it fires mid-body, so a slow-drip body cannot outlive `timeout`.
    const timer = AbortSignal.timeout(timeout)
    const combined = signal === undefined ? timer : AbortSignal.any([timer, signal])
    const fail = (err: unknown): JwksFetchError => classify(err, timer, timeout)

    let res: Dispatcher.ResponseData
    try {
      res = await request(url, {
        method: 'GET',
        headers,
        signal: combined,
        ...(deps.dispatcher === undefined ? {} : { dispatcher: deps.dispatcher }),
      })
    } catch (err) {
      throw fail(err)
    }

    const { statusCode, body } = res
    // undici's body emits 'error' when we destroy it early; the for-await below still sees
    // every error, this listener only keeps a deliberate destroy from becoming uncaught.
    body.on('error', ignore)
    if (statusCode !== 200) {
      // We do not need the body; destroying it frees the socket without reading a byte more.
      body.destroy()
      if (statusCode >= 300 && statusCode < 400) {
        throw new JwksFetchError('status', `HTTP ${statusCode}: redirects are not followed`, { status: statusCode })
      }
      throw new JwksFetchError('status', `HTTP ${statusCode}: expected 200`, { status: statusCode })
    }

    // Refuse early when the server announces too much; the running count below is what
    // actually protects us (Content-Length may be absent or wrong).
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > maxBytes) {
      body.destroy()
      throw tooLarge(maxBytes)
    }

    const chunks: Buffer[] = []
    let total = 0
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        total += chunk.length
        // Throwing here ends the loop, and for-await's return() destroys the stream: the
        // connection is dropped instead of drained.
        if (total > maxBytes) throw tooLarge(maxBytes)
        chunks.push(chunk)
      }
    } catch (err) {
      if (err instanceof JwksFetchError) throw err
      throw fail(err)
    }

    const text = Buffer.concat(chunks, total).toString('utf8')
    try {
      return JSON.parse(text) as unknown
    } catch (err) {
      // Build our own message: newer V8 quotes a slice of the input in SyntaxError messages.
      const kind = text.trim() === '' ? 'empty body' : `not JSON (starts ${JSON.stringify(clip(text, 40))})`
      throw new JwksFetchError('invalid_json', `response is ${kind}`, { cause: err })
    }
  }
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
