/**
 * The connection pool to the upstream app (what forward.ts dispatches to), with two defences
 * that only the connection level can give (issue #9 §7 and §8):
 *
 * 1. **A connection that carried a request body is not reused** unless the operator declares
 *    that the app always reads bodies (`upstream.drainsBodies`). A legacy app that answers
 *    without reading the body (Python's http.server is one) parses the unread bytes as the
 *    next request on a keep-alive connection: a body that is itself a complete request, with
 *    X-Auth-* headers of the attacker's choosing and no token, would be executed as if the
 *    sidecar had admitted it. Such a request is sent with `connection: close` (undici's
 *    per-request `reset: true`), and RFC 9112 §9.6 forbids the app to process anything after
 *    it on that connection; undici closes the connection after the response. (The client's
 *    own `connection` header is hop-by-hop and never forwarded, so it cannot be used for this.)
 * 2. **An unsolicited `100 Continue` from the upstream is dropped.** undici's HTTP/1 client
 *    destroys the socket on any 100 (client-h1.js, onHeadersComplete: "bad response") and the
 *    proxy answered 502, although RFC 9110 §15.2 says "A client MUST be able to parse one or
 *    more 1xx responses received prior to a final response, even if the client does not
 *    expect one." The proxy never sends `Expect` upstream (it answers the client's Expect
 *    itself), so every 100 from the upstream is unsolicited and carries nothing; undici skips
 *    102 and 103 by itself.
 *
 * How (2) works: undici reads each socket with `socket.read()` from a 'readable' listener and
 * hands the bytes to llhttp. Our `connect` wraps `read` on each socket it opens with a filter
 * that looks only at the start of a response: undici publishes `undici:client:sendHeaders`
 * (diagnostics_channel, documented, with the socket) right before it writes a request, which
 * arms the filter; the filter drops whole `HTTP/1.x 100` messages (a 1xx ends at its empty
 * line, RFC 9112 §6.3: it has no content), lets other 1xx through, and disarms itself at the
 * first byte of any other response. With pipelining 1 the next request, and so the next
 * arming, comes only after llhttp has read the whole response, so bytes of a response body
 * are never looked at. Anything the filter cannot positively identify as a well-formed 1xx
 * goes to llhttp unchanged, which keeps the last word on framing. On the normal path a read
 * costs one function call and one branch; a request costs one diagnostics message and one
 * byte comparison (the first digit of the status code).
 *
 * Rejected alternatives: an undici interceptor sees responses only after llhttp, which has
 * already destroyed the socket; retrying is not possible for a request whose body was sent; a
 * Duplex wrapped around the socket doubles the buffering of every byte; parsing response
 * framing ourselves would be a second HTTP parser to keep in step with llhttp. `sendHeaders`
 * is the one per-request signal that names the socket (an interceptor's handler learns the
 * request is being written, not where); wrapping `socket.write` cannot tell a request head
 * from body bytes written while the response is already arriving.
 */
import { subscribe } from 'node:diagnostics_channel'
import type { Readable } from 'node:stream'
import type { ConnectionOptions } from 'node:tls'
import { Pool, buildConnector } from 'undici'
import type { Dispatcher } from 'undici'

export interface UpstreamDispatcherOptions {
  /** The upstream's URL; only its origin is used (paths come with each request). */
  readonly url: string
  /**
   * The upstream always reads request bodies to the end, so a connection that carried one
   * may be reused (config `upstream.drainsBodies`). false: such a connection is closed after
   * its response.
   */
  readonly drainsBodies: boolean
  /** Connections open at once at most (default 128, what reply-from's own Agent uses). */
  readonly connections?: number
  /**
   * ms an idle connection is kept for reuse (default 4 000, undici's default: below Node's
   * 5 s server keepAliveTimeout, so we are not the side that races an idle close). An
   * upstream's `Keep-Alive: timeout=N` hint takes precedence (N less 2 s, undici's margin).
   */
  readonly keepAliveTimeout?: number
  /** ms to open a connection, TLS handshake included (default 10 000). */
  readonly connectTimeout?: number
  /**
   * TLS for an https: upstream (`ca`, `servername`…). Certificates are verified unless this
   * says `rejectUnauthorized: false`. (reply-from's own Agent turns verification off.)
   */
  readonly tls?: Omit<ConnectionOptions, 'host' | 'port' | 'path' | 'socket' | 'timeout'>
}

/** The 1xx scan gives up beyond this many bytes (undici's default maxHeaderSize). */
export const MAX_INTERIM_BYTES = 16 * 1024

/**
 * The pool the forward (forward.ts) sends through. Pass it to `createForward`, and as
 * `@fastify/http-proxy`'s `undici` option too, so that the reply-from instance http-proxy
 * registers builds no pool of its own. Nothing else closes it: call `close()` (graceful) or
 * `destroy()` on shutdown.
 *
 * @example
 * const upstream = createUpstreamDispatcher({ url: config.upstream.url, drainsBodies: config.upstream.drainsBodies })
 * const forward = createForward({ dispatcher: upstream, upstream: config.upstream.url, timeout, requestHeaders, onError, onTruncated })
 * app.addHook('onClose', () => upstream.close())
 */
export function createUpstreamDispatcher(options: UpstreamDispatcherOptions): Dispatcher {
  const connector = buildConnector({ ...options.tls, timeout: options.connectTimeout ?? 10_000 })
  const poolOptions: Pool.Options = {
    connections: options.connections ?? 128,
    // One request at a time per connection: the 100 filter relies on it (the next request
    // is written only after llhttp has read the whole previous response), and so does (1).
    pipelining: 1,
    keepAliveTimeout: options.keepAliveTimeout ?? 4_000,
    // A body longer than its Content-Length is an error, not extra bytes on the wire:
    // carriesBody() trusts `content-length: 0` because of this (undici's default, pinned).
    strictContentLength: true,
    connect(opts, callback) {
      connector(opts, (...result) => {
        if (result[0] === null) dropUnsolicitedContinue(result[1])
        callback(...result)
      })
    },
  }
  const url = new URL(options.url)
  // The pool connects to an origin: a `unix+http:` or other base has none, and would have
  // reached the app some other way than through (1) and (2). Refused.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`upstream URL must be http: or https:, not ${url.protocol}`)
  const origin = url.origin
  return options.drainsBodies ? new Pool(origin, poolOptions) : new ClosingAfterBodyPool(origin, poolOptions)
}

/**
 * The pool of (1): a request that carries a body is sent with `connection: close` and its
 * connection is closed after the response. A subclass rather than `pool.compose(interceptor)`:
 * compose wraps every request's handler twice (WrapHandler to the new handler API, then
 * UnwrapHandler back), a cost paid on every response callback, body chunks included, and
 * answers every property read through a Proxy.
 */
class ClosingAfterBodyPool extends Pool {
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return super.dispatch(opts.reset !== true && carriesBody(opts.body, opts.headers) ? { ...opts, reset: true } : opts, handler)
  }
}

/**
 * Whether a request puts body bytes on the wire. A stream's length is unknown until it ends,
 * so a stream counts unless its Content-Length is 0 (undici refuses to send more than the
 * declared length: strictContentLength). Headers in a shape other than a plain object are
 * not looked into: the stream then counts.
 *
 * @example
 * carriesBody('', { host: 'app' }) // false
 * carriesBody(req, { 'content-length': '42' }) // true
 */
export function carriesBody(body: Dispatcher.DispatchOptions['body'], headers: Dispatcher.DispatchOptions['headers']): boolean {
  if (body === null || body === undefined) return false
  if (typeof body === 'string' || body instanceof Uint8Array) return body.length > 0
  if (headers !== null && typeof headers === 'object' && !Array.isArray(headers) && !(Symbol.iterator in headers)) {
    const declared = (headers as Record<string, unknown>)['content-length']
    if (declared === 0 || declared === '0') return false
  }
  return true
}

/**
 * Length of the complete 1xx interim response (101 excluded) at the start of `buf`; 0 when
 * `buf` starts with anything else (a final response, 101, or bytes we refuse to judge);
 * -1 when `buf` is a prefix of one and more bytes are needed.
 *
 * Only a well-formed one is recognised: `HTTP/1.0` or `HTTP/1.1`, SP, three digits starting
 * with 1, SP or CR, then lines ending in CRLF up to an empty line (RFC 9112 §4, §2.2; every
 * CR followed by LF and every LF preceded by CR), at most {@link MAX_INTERIM_BYTES} in all.
 * Anything else is left to llhttp, which rejects it or reads it as a final response. A 1xx
 * has no content, so llhttp too ends it at the first empty line: the two never disagree on
 * where the next message starts. Field syntax is not checked: a dropped 100 is never read.
 *
 * @example
 * interimLength(Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')) // 25
 * interimLength(Buffer.from('HTTP/1.1 100 Cont')) // -1
 * interimLength(Buffer.from('HTTP/1.1 200 OK\r\n')) // 0
 */
export function interimLength(buf: Buffer): number {
  const n = buf.length
  // The common case, a final response (`HTTP/1.1 2…`), in one comparison.
  if (n > 9 && buf[9] !== 0x31) return 0
  const head = n < STATUS_HEAD ? n : STATUS_HEAD
  for (let i = 0; i < head; i++) {
    if (!statusByteOk(i, buf[i]!)) return 0
  }
  if (n < STATUS_HEAD) return -1
  // 101 Switching Protocols ends HTTP on this connection: not an interim response to skip.
  if (buf[10] === 0x30 && buf[11] === 0x31) return 0
  // The header section ends at the first empty line. Only the strict form is recognised
  // (RFC 9112 §2.2: lines end in CRLF): at a bare CR or LF we stop judging and llhttp gets
  // the bytes as they came (it refuses some bare line ends and tolerates others).
  const limit = n < MAX_INTERIM_BYTES ? n : MAX_INTERIM_BYTES
  for (let i = STATUS_HEAD - 1; i < limit; i++) {
    const c = buf[i]
    if (c === CR) {
      if (i + 1 < n && buf[i + 1] !== LF) return 0
    } else if (c === LF) {
      if (buf[i - 1] !== CR) return 0
      if (buf[i - 2] === LF) return i + 1
    }
  }
  return n < MAX_INTERIM_BYTES ? -1 : 0
}

/** `HTTP/1.x 1yz` and the byte after it. */
const STATUS_HEAD = 13
const CR = 0x0d
const LF = 0x0a
const HTTP_1 = Buffer.from('HTTP/1.')

function statusByteOk(i: number, c: number): boolean {
  if (i < 7) return c === HTTP_1[i]
  if (i === 7) return c === 0x30 || c === 0x31 // HTTP/1.0 or HTTP/1.1
  if (i === 8) return c === 0x20
  if (i === 9) return c === 0x31 // 1xx
  if (i < 12) return c >= 0x30 && c <= 0x39
  return c === 0x20 || c === CR // reason phrase, or none
}

function isContinue(buf: Buffer): boolean {
  return buf[10] === 0x30 && buf[11] === 0x30
}

interface InterimFilter {
  /** A request was just written: the next bytes start its response. */
  atStart: boolean
  /** A prefix of a 1xx, waiting for the rest. */
  held: Buffer | null
}

const kFilter = Symbol('jwt-sidecar.interimFilter')
type Filtered = Readable & { [kFilter]?: InterimFilter }

let subscribed = false

/**
 * Arms a socket's filter when undici is about to write a request on it. One process-wide
 * subscriber; a socket that is not ours (any other undici client, Node's fetch) carries no
 * filter and is ignored.
 */
function subscribeOnce(): void {
  if (subscribed) return
  subscribed = true
  subscribe('undici:client:sendHeaders', (message) => {
    const filter = (message as { socket?: Filtered }).socket?.[kFilter]
    if (filter !== undefined) {
      filter.atStart = true
      filter.held = null
    }
  })
}

/**
 * Wraps `socket.read()` so that whole `100 Continue` responses at the start of a response
 * never reach undici (the module comment says how and why). The filter is armed by undici's
 * `undici:client:sendHeaders` message for this socket; unarmed, it passes bytes unchanged.
 * Exported for tests, which drive it with a PassThrough.
 *
 * @example
 * connector(opts, (...result) => { if (result[0] === null) dropUnsolicitedContinue(result[1]); callback(...result) })
 */
export function dropUnsolicitedContinue(socket: Readable): void {
  subscribeOnce()
  const filter: InterimFilter = { atStart: false, held: null }
  ;(socket as Filtered)[kFilter] = filter
  const read = socket.read.bind(socket)
  // undici calls read() with no size (client-h1.js readMore/resume) and never switches the
  // socket to flowing mode. Bytes it puts back with unshift() (a paused parser) lie inside a
  // response whose start was already passed, so they come back through here unchanged.
  socket.read = function filteredRead(size?: number): Buffer | null {
    const chunk = read(size) as Buffer | null
    if (!filter.atStart || chunk === null) return chunk
    return skipContinue(filter, chunk)
  }
}

/**
 * The bytes of `chunk` that undici should see: 100s at the response start removed, other
 * 1xx kept, an incomplete 1xx held back until its end arrives (null: nothing to parse yet;
 * the socket's next data emits 'readable' again).
 */
function skipContinue(filter: InterimFilter, chunk: Buffer): Buffer | null {
  let buf = filter.held === null ? chunk : Buffer.concat([filter.held, chunk])
  filter.held = null
  let kept: Buffer[] | null = null
  while (buf.length > 0) {
    const n = interimLength(buf)
    if (n === 0) {
      // The final response starts here: nothing after this is ours to look at.
      filter.atStart = false
      break
    }
    if (n < 0) {
      filter.held = buf
      buf = buf.subarray(buf.length)
      break
    }
    if (!isContinue(buf)) (kept ??= []).push(buf.subarray(0, n))
    buf = buf.subarray(n)
  }
  if (kept !== null) {
    kept.push(buf)
    buf = Buffer.concat(kept)
  }
  return buf.length === 0 ? null : buf
}
