/**
 * The data-plane listener's Node server: plain HTTP, HTTPS with `tls`, or with `tls.http2`
 * an HTTP/2 server that also speaks HTTP/1.1.
 *
 * HTTP/2 on the TLS listener (`tls.http2`, issue #13 §1): ALPN offers `h2` and `http/1.1` on
 * one port (RFC 9113 §3.2, RFC 7301), fastify serves both through Node's compatibility API,
 * and the forward to the app stays HTTP/1.1 (undici, upstream.ts). What HTTP/2 changes on the
 * request path, and where it is handled:
 *
 * - `:authority` is the Host: checked against any `host` field and copied into `host`
 *   (request/authority.ts, RFC 9113 §8.3.1), before the inbound strip and the decision;
 * - pseudo-headers are never protected names nor forwarded (request/headers.ts stripInbound,
 *   http/header-names.ts endToEndHeaders); field names are lower case and connection-specific
 *   fields are refused by nghttp2 itself (§8.2.1, §8.2.2: test/integration/http2.test.ts pins
 *   both); repeated fields stay visible in `rawHeaders`, so a second Authorization or DPoP is
 *   still refused; Cookie fields are joined with "; " by Node (§8.2.3);
 * - a body may come without Content-Length: forward.ts streams it all the same;
 * - what Node's HTTP/1 server enforces by option and `Http2SecureServer` does not (this file):
 *   `requests.timeout` for each HTTP/2 stream, the HTTP/1 fallback's own timeouts (its
 *   constructor sets fixed ones), and a way to close every connection at the shutdown timeout.
 *
 * Websockets stay HTTP/1.1: the extended CONNECT of RFC 8441 is not enabled, so an HTTP/2
 * client upgrades over an HTTP/1.1 connection, as browsers do when a server does not offer it.
 */
import { constants } from 'node:http2'
import type { Http2SecureServer, Http2Session, SecureServerOptions, ServerHttp2Stream } from 'node:http2'
import type { ServerOptions } from 'node:http'
import type { ServerOptions as HttpsServerOptions } from 'node:https'
import type { TLSSocket } from 'node:tls'
import type { SidecarConfig } from '../config/types.ts'

/**
 * RFC 9113 §6.5.2 advises at least 100; Node's default is 2^32-1. One connection of an
 * HTTP/1.1 client holds one request; an HTTP/2 client gets a hundred, not billions.
 */
const MAX_CONCURRENT_STREAMS = 100

/** The HTTP/1 server options every listener gets (`requests.timeout`). */
export function httpOptions(config: SidecarConfig): ServerOptions {
  return {
    // Node checks the deadline every connectionsCheckingInterval (default 30 s): check often
    // enough that the timeout means what it says.
    connectionsCheckingInterval: Math.min(5_000, Math.max(100, Math.floor(config.requests.timeout / 10))),
    headersTimeout: Math.min(60_000, config.requests.timeout),
  }
}

/**
 * Node's server options: plain HTTP, or HTTPS with `tls` (its certificate is set before
 * listen and on every reload by proxy/tls.ts, so none is given here), with `tls.http2` an
 * HTTP/2 server that also speaks HTTP/1.1 (ALPN h2, http/1.1).
 */
export function serverOptions(config: SidecarConfig): { http: ServerOptions } | { https: HttpsServerOptions } | { http2: true; https: HttpsServerOptions } {
  const http = httpOptions(config)
  if (config.tls === undefined) return { http }
  const https: HttpsServerOptions = {
    ...http,
    minVersion: config.tls.minVersion,
    // With a client CA, a client certificate that chains to it is required (fail closed).
    ...(config.tls.clientCaFile === undefined ? {} : { requestCert: true, rejectUnauthorized: true }),
  }
  if (!config.tls.http2) return { https }
  const h2: SecureServerOptions = { ...https, allowHTTP1: true, settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS } }
  return { http2: true, https: h2 }
}

export interface Http2ListenerOptions {
  /** `httpOptions(config)`: what the HTTP/1.1 connections on this port must also get. */
  readonly http: ServerOptions
  /** ms: `requests.timeout`, the deadline for a request's headers and body. */
  readonly requestTimeout: number
  /** ms an idle HTTP/1.1 connection is kept (fastify's default for its HTTP/1 servers). */
  readonly keepAliveTimeout: number
  /**
   * An HTTP/2 request's body did not arrive within `requestTimeout`: count and log it (the
   * stream is answered 408, or cut if its response had started, here).
   */
  readonly onRequestTimeout: () => void
  /** The 408 answer (request/denials.ts), the one HTTP/1.1 clients get. */
  readonly timedOut: { readonly headers: Readonly<Record<string, string>>; readonly body: string }
}

export interface Http2Listener {
  /**
   * GOAWAY to every HTTP/2 session (RFC 9113 §6.8): the streams under way finish, no new one
   * starts. Node 20's `Http2SecureServer.close()` leaves sessions open until their idle
   * timeout (fastify's http2SessionTimeout, 72 s), which a shutdown would wait for.
   */
  closeSessions(): void
}

/**
 * Gives an `Http2SecureServer` (with `allowHTTP1`) what a Node HTTP/1 server has by option.
 * Call before `listen`.
 *
 * @example
 * setupHttp2Listener(app.server as unknown as Http2SecureServer, { http, requestTimeout: 60_000, keepAliveTimeout: 72_000, onRequestTimeout, timedOut })
 */
export function setupHttp2Listener(server: Http2SecureServer, options: Http2ListenerOptions): Http2Listener {
  // The HTTP/1.1 connections on this port: Http2SecureServer's constructor sets fixed values
  // (300 s, 60 s, 30 s) whatever the options said; `setupConnectionsTracking` reads them at
  // 'listening'. fastify sets keepAliveTimeout and requestTimeout on its HTTP/1 servers only.
  const s = server as Http2SecureServer & { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number; keepAliveTimeout: number }
  s.requestTimeout = options.requestTimeout
  if (options.http.headersTimeout !== undefined) s.headersTimeout = options.http.headersTimeout
  if (options.http.connectionsCheckingInterval !== undefined) s.connectionsCheckingInterval = options.http.connectionsCheckingInterval
  s.keepAliveTimeout = options.keepAliveTimeout

  // HTTP/2 streams: Node has no request deadline for them, so a body trickled a byte at a time
  // would hold its stream (and its upstream request) for as long as the client likes.
  server.on('stream', (stream: ServerHttp2Stream) => {
    // Headers with END_STREAM: the whole request is in.
    if (stream.endAfterHeaders) return
    const timer = setTimeout(() => expired(stream, options), options.requestTimeout)
    const done = (): void => clearTimeout(timer)
    stream.once('end', done)
    stream.once('close', done)
  })

  // Every connection, HTTP/1.1 and HTTP/2, for `closeAllConnections`; every session, for
  // `closeSessions`.
  const sockets = new Set<TLSSocket>()
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const sessions = new Set<Http2Session>()
  server.on('session', (session: Http2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
  })
  // app.ts's shutdown timeout cuts what is left; Http2SecureServer has closeIdleConnections
  // (for its HTTP/1.1 connections) but no closeAllConnections.
  ;(server as Http2SecureServer & { closeAllConnections(): void }).closeAllConnections = () => {
    for (const socket of sockets) socket.destroy()
  }
  return {
    closeSessions() {
      for (const session of sessions) session.close()
    },
  }
}

/** The request deadline passed with its body still coming: 408 if nothing was answered yet, else cut (as HTTP/1.1). */
function expired(stream: ServerHttp2Stream, options: Http2ListenerOptions): void {
  if (stream.closed || stream.destroyed) return
  options.onRequestTimeout()
  if (stream.headersSent) {
    stream.close(constants.NGHTTP2_CANCEL)
    return
  }
  stream.respond({ ':status': 408, ...options.timedOut.headers, 'content-length': String(Buffer.byteLength(options.timedOut.body)) })
  // RFC 9113 §8.1: after a complete response, RST_STREAM(NO_ERROR) asks the client to stop
  // sending the rest of the request.
  stream.end(options.timedOut.body, () => {
    if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR)
  })
}
