/**
 * The data-plane server: fastify + @fastify/http-proxy. Authentication runs in `onRequest`,
 * before any body is read, so a rejected request never reaches the upstream and its body is
 * never buffered. Bodies of admitted requests are streamed (http-proxy's pass-through parser).
 */
import { LogController, fastify } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyHttpProxy from '@fastify/http-proxy'
import type { ServerOptions } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { SidecarConfig } from '../config/types.ts'
import type { Metrics, Outcome, UpstreamErrorKind } from '../observe/metrics.ts'
import { UNMATCHED_ROUTE } from '../observe/metrics.ts'
import { createAccessLogger } from '../observe/log.ts'
import type { Logger } from '../observe/log.ts'
import type { DestinationStream } from 'pino'
import type { RateLimitedLog } from '../observe/events.ts'
import { withoutQueryParams } from '../verify/extract.ts'
import { REASONS } from '../verify/reasons.ts'
import type { Reason } from '../verify/reasons.ts'
import type { Claims, VerifyResult } from '../verify/verifier.ts'
import { endToEndHeaders } from '../http/header-names.ts'
import { NO_ROUTE, afterVerify, badRequest, begin, internalError, readTarget } from '../request/decide.ts'
import type { Decision, Next } from '../request/decide.ts'
import type { InboundStrip } from '../request/headers.ts'
import { denial } from '../request/denials.ts'
import { createUpstreamDispatcher } from './upstream.ts'
import { createForward } from './forward.ts'
import { createUpstreamHeaders, peerOf } from './upstream-headers.ts'
import { createRequestIds } from './request-id.ts'
import type { UpstreamBoundRequest } from './upstream-headers.ts'
import { NO_ROUTE_SCHEMAS } from '../fastify-schemas.ts'
import type { Pipeline } from '../request/pipeline.ts'
import type { BoundTo } from '../request/binding.ts'
import { http2Authority } from '../request/authority.ts'
import { httpOptions, serverOptions, setupHttp2Listener } from './listener.ts'
import type { Http2SecureServer } from 'node:http2'

/** What the auth step decided, kept on the request for the proxy step and the access log. */
export interface RequestAuth {
  route: string
  outcome: Outcome
  reason: Reason | 'none'
  issuer: string | undefined
  claims: Claims | undefined
  /** What a sender-constrained token was proven with (request/binding.ts), for the binding header. */
  binding: BoundTo | undefined
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: RequestAuth | null
    /** The pipeline this request started under (kept across a live reload). */
    pipeline: Pipeline | null
    /** Counted in jwt_sidecar_inflight_requests and not yet uncounted. */
    inflight: boolean
  }
}

export interface ProxyServerDeps {
  /** The current pipeline; read once per request. */
  readonly pipeline: () => Pipeline
  readonly metrics: Metrics
  readonly log: Logger
  /** Security events at a bounded rate (`auth.denied`). */
  readonly events: RateLimitedLog
  /** Where access lines go (default: `log`'s own stream). */
  readonly accessStream?: DestinationStream | undefined
}

const WS_CLIENT_DROP = new Set(['host', 'content-length', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol'])

/**
 * @example
 * const server = createProxyServer(config, { pipeline: () => current, metrics, log })
 * await server.listen({ host: '0.0.0.0', port: 8080 })
 */
export function createProxyServer(config: SidecarConfig, deps: ProxyServerDeps): FastifyInstance {
  const { metrics, log } = deps

  // Widen pino's Logger to fastify's logger type so the instance type stays the default one.
  const loggerInstance: FastifyBaseLogger = log
  const accessLog = createAccessLogger(log, deps.accessStream)
  const app = fastify({
    loggerInstance,
    schemaController: NO_ROUTE_SCHEMAS,
    // No child logger per request (fastify's default binds reqId into a new pino child for
    // every request: measurable on this path). fastify's own few lines log `req` (with its
    // id) through the serializer instead; ours carry reqId themselves.
    childLoggerFactory: (logger) => logger,
    // We write our own access line (onResponse) with route, outcome and reason instead.
    logController: new LogController({ disableRequestLogging: true }),
    // request.id is the request id: the client's valid X-Request-Id, else ours (request-id.ts).
    genReqId: createRequestIds(),
    requestIdHeader: false,
    // While closing, new requests get 503 rather than hanging on a draining server.
    return503OnClosing: true,
    // Defaults made explicit: we never trust client X-Forwarded-* for our own decisions.
    trustProxy: false,
    // The whole request, headers and body, must arrive within requests.timeout, or 408 (a body
    // trickled a byte at a time would otherwise hold its connection for as long as it likes).
    requestTimeout: config.requests.timeout,
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
      clientError(err, socket)
    },
    // fastify's typings pick the server's type from these options; with `tls.http2` the
    // request and reply are the compatibility API's (Http2ServerRequest/Response), which
    // this adapter uses only through what they share with node:http's (listener.ts).
    ...(serverOptions(config) as { http: ServerOptions }),
  }) as FastifyInstance
  if (config.tls?.http2 === true) {
    const h2 = setupHttp2Listener(app.server as unknown as Http2SecureServer, {
      http: httpOptions(config),
      requestTimeout: config.requests.timeout,
      // fastify's keepAliveTimeout default, the one its HTTP/1 servers get.
      keepAliveTimeout: 72_000,
      onRequestTimeout: () => requestTimedOut(),
      timedOut: denial('request_timeout'),
    })
    app.addHook('preClose', (done) => {
      h2.closeSessions()
      done()
    })
  }
  /**
   * Node's socket-level errors: the request timeout gets our own 408 (the closed reason set,
   * counted and logged like any refusal; the route is not known at this level); the rest get
   * the same answers fastify gives (431 for oversized headers, 400 otherwise). Nothing is
   * written into a response already under way (Node's own rule in socketOnError).
   */
  const timedOut = denial('request_timeout')
  function requestTimedOut(): void {
    metrics.request(UNMATCHED_ROUTE, REASONS.request_timeout.outcome, 'request_timeout')
    deps.events.log(REASONS.request_timeout.log, 'request.timeout', { event: 'request.timeout', timeoutMs: config.requests.timeout }, 'request not received within requests.timeout')
  }
  function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // A reset connection has nobody to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    let head: string
    let body: string
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      requestTimedOut()
      head = `408 Request Timeout\r\n${Object.entries(timedOut.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}`
      body = timedOut.body
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      head = '431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n'
      body = '{"error":"Request Header Fields Too Large","message":"Exceeded maximum allowed HTTP header size","statusCode":431}'
    } else {
      head = '400 Bad Request\r\ncontent-type: application/json\r\n'
      body = '{"error":"Bad Request","message":"Client Error","statusCode":400}'
    }
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage
    if (socket.writable && (inFlight === undefined || inFlight === null || inFlight.headersSent !== true)) {
      socket.write(`HTTP/1.1 ${head}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    }
    socket.destroy(err)
  }

  // RFC 9110 §10.1.1: with a `checkContinue` listener Node does not answer `Expect:
  // 100-continue` by itself; the request goes down the normal path and `apply` sends the 100
  // once the request is admitted (and never to a refused one: its body is never sent).
  const expectingContinue = new WeakSet<object>()
  app.server.on('checkContinue', (req, res) => {
    expectingContinue.add(req)
    app.server.emit('request', req, res)
  })
  app.decorateRequest('auth', null)
  app.decorateRequest('pipeline', null)
  app.decorateRequest('inflight', false)

  /** Carries out a decision: the answer for a denial, `done()` for an admission. */
  function apply(request: FastifyRequest, reply: FastifyReply, d: Decision, done: () => void): void {
    if (d.kind === 'admit') {
      request.auth = { route: d.route, outcome: d.outcome, reason: 'none', issuer: d.issuer, claims: d.claims, binding: d.binding }
      // A hijacked websocket never reaches onResponse: count it when it is admitted.
      if (request.headers.upgrade !== undefined) record(request, 101, reply.elapsedTime, false)
      // RFC 9110 §10.1.1: the client waits for 100 Continue before sending the body; it gets
      // it only now, once admitted, so a refused upload is never sent at all.
      if (expectingContinue.has(request.raw)) reply.raw.writeContinue()
      done()
      return
    }
    // The outcome label and the log level are the reason's own (verify/reasons.ts, the reasons reference).
    const { outcome, log: level } = REASONS[d.reason]
    request.auth = { route: d.route, outcome, reason: d.reason, issuer: d.issuer, claims: undefined, binding: undefined }
    // A security event, rate-limited per reason and route (closed sets), so a flood of bad
    // tokens cannot flood the logs; `detail` names what was wrong, never the token.
    deps.events.log(level, `auth.denied:${d.reason}:${d.route}`, { event: 'auth.denied', reqId: request.id, route: d.route, reason: d.reason, issuer: d.issuer, status: d.answer.status, detail: d.detail }, 'request denied')
    void reply.code(d.answer.status).headers(d.answer.headers).header('x-request-id', request.id).send(d.answer.body)
  }

  /** The verification's own metrics, then the rest of the decision. */
  function verified(request: FastifyRequest, reply: FastifyReply, p: Pipeline, next: Next & { readonly kind: 'verify' }, result: VerifyResult, started: number, done: () => void): void {
    if (result.ok || result.issuer !== undefined) {
      const issuer = result.ok ? result.issuer.name : result.issuer!
      metrics.verification(issuer, (performance.now() - started) / 1000)
      if (result.ok) {
        const t = Date.now() / 1000
        const { iat, exp } = result.claims
        metrics.tokenTimes(issuer, typeof iat === 'number' ? t - iat : undefined, typeof exp === 'number' ? exp - t : undefined)
      }
    }
    apply(request, reply, afterVerify(p, next, result), done)
  }

  /**
   * The request target the upstream receives: the normalised path the route matched, and the
   * query without any token parameter (RFC 6750 §2.3: the token must not travel on in URLs).
   */
  function rewriteTarget(request: FastifyRequest, p: Pipeline, rawPath: string, path: string, query: string | undefined): void {
    const kept = query === undefined || p.tokenQuery.size === 0 ? query : withoutQueryParams(query, p.tokenQuery)
    if (path !== rawPath || kept !== query) request.raw.url = kept === undefined ? path : `${path}?${kept}`
  }

  /** Names only, never values, at a bounded rate; every removal counted. */
  function reportStrip(request: FastifyRequest, strip: InboundStrip): void {
    const action = strip.rejected === undefined ? 'dropped' : 'rejected'
    const list = strip.rejected === undefined ? strip.dropped : [strip.rejected]
    for (const { kind } of list) metrics.headerName(kind, action)
    // A header name is client text: bounded in count and length (pino escapes it).
    const names = list.slice(0, 10).map(({ name }) => (name.length > 64 ? `${name.slice(0, 64)}…` : name))
    deps.events.log('info', `request.header_${action}`, { event: `request.header_${action}`, reqId: request.id, names, kinds: [...new Set(list.map((d) => d.kind))] }, `inbound header ${action}`)
  }

  // RFC 9449 §4.3: a DPoP proof's htu names the URI the client addressed, https with the TLS listener.
  const listenerScheme = config.tls === undefined ? 'http' : 'https'
  // Strip → decide (request/decide.ts) → verify → authorize. Callback style: the common path allocates no promise.
  app.addHook('onRequest', (request, reply, done) => {
    metrics.inflight(1)
    request.inflight = true
    const p = deps.pipeline()
    request.pipeline = p
    try {
      // HTTP/2: `:authority` is the Host, and a differing `host` field is refused (request/authority.ts).
      if (request.raw.httpVersionMajor === 2) {
        const why = http2Authority(request.headers, request.raw.rawHeaders)
        if (why !== undefined) return apply(request, reply, badRequest(why), done)
      }
      // Strip before anything else, on every route (auth: none included).
      const strip = p.headers.stripInbound(request.headers)
      if (strip !== undefined) {
        reportStrip(request, strip)
        if (strip.rejected !== undefined) return apply(request, reply, badRequest(`header name with "_" refused (identity.underscoreHeaders: reject)`), done)
      }
      const target = readTarget(request.url)
      if (!target.ok) return apply(request, reply, badRequest(target.why), done)
      const next = begin(p, { method: request.method, target, headers: request.headers, rawHeaders: request.raw.rawHeaders, listenerScheme, connection: request.raw.socket })
      if (next !== NO_ROUTE) rewriteTarget(request, p, target.rawPath, target.path, target.query)
      if (next.kind !== 'verify') return apply(request, reply, next, done)
      const started = performance.now()
      const result = p.verifier.verify(next.token)
      if (result instanceof Promise) {
        result
          .then((r) => verified(request, reply, p, next, r, started, done))
          .catch((err: unknown) => {
            // Fail closed, and never leave the request hanging.
            log.error({ event: 'auth.error', reqId: request.id, err }, 'verification failed internally')
            if (!reply.sent) apply(request, reply, internalError(next.route.name), done)
          })
        return undefined
      }
      return verified(request, reply, p, next, result, started, done)
    } catch (err) {
      // Fail closed: an internal error never lets a request through unverified.
      log.error({ event: 'auth.error', reqId: request.id, err }, 'authentication step failed internally')
      return apply(request, reply, internalError(request.auth?.route ?? UNMATCHED_ROUTE), done)
    }
  })

  /** Counts the request and writes its access line; `ms` since it arrived; `timed`: observed in the duration histogram. */
  function record(request: FastifyRequest, status: number, ms: number, timed: boolean): void {
    if (request.inflight) {
      request.inflight = false
      metrics.inflight(-1)
    }
    const a = request.auth
    const route = a?.route ?? UNMATCHED_ROUTE
    const outcome = a?.outcome ?? 'error'
    const reason = a?.reason ?? 'none'
    metrics.request(route, outcome, reason)
    if (timed) metrics.requestDuration(route, outcome, ms / 1000)
    if ((request.pipeline ?? deps.pipeline()).config.log.access) {
      const url = request.url
      const q = url.indexOf('?')
      // The query string is never logged: a token or other secret may ride in it.
      const ip = peerOf(request.raw.socket).ip
      accessLog.write({ reqId: request.id, method: request.method, path: q < 0 ? url : url.slice(0, q), route, outcome, reason, issuer: a?.issuer, status, durationMs: Math.round(ms * 1000) / 1000, clientIp: ip === '' ? undefined : ip })
    }
  }

  app.addHook('onResponse', (request, reply, done) => {
    record(request, reply.statusCode, reply.elapsedTime, true)
    done()
  })
  // A client that goes away before the answer still leaves the in-flight gauge.
  app.addHook('onRequestAbort', (request, done) => {
    if (request.inflight) {
      request.inflight = false
      metrics.inflight(-1)
    }
    done()
  })

  // Our own pool (upstream.ts): a connection that carried a body is closed after its response
  // unless upstream.drainsBodies, and an unsolicited 100 Continue from the app is dropped.
  // Nothing else closes it. onClose runs once the server has drained (or the shutdown
  // timeout cut it): whatever is left upstream is abandoned.
  const upstreamHeaders = createUpstreamHeaders({ config, pipeline: deps.pipeline, log })
  const dispatcher = createUpstreamDispatcher({ url: config.upstream.url, drainsBodies: config.upstream.drainsBodies })
  app.addHook('onClose', async () => {
    await dispatcher.destroy()
  })

  const forward = createForward({
    dispatcher,
    upstream: config.upstream.url,
    timeout: config.upstream.timeout,
    requestHeaders: upstreamHeaders,
    onError(reply, error) {
      const kind = upstreamFailed(reply.request, error, false)
      const reason: Reason = kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable'
      const request = reply.request
      if (request.auth !== null) {
        request.auth.outcome = REASONS[reason].outcome
        request.auth.reason = reason
      }
      const d = denial(reason)
      void reply.code(d.status).headers(d.headers).header('x-request-id', request.id).send(d.body)
    },
    onTruncated(reply, error) {
      upstreamFailed(reply.request, error, true)
    },
  })

  /** Counted and logged alike whether the answer had started (`truncated`: the client connection was cut) or not. */
  function upstreamFailed(request: FastifyRequest, error: Error, truncated: boolean): UpstreamErrorKind {
    const kind = classifyUpstreamError(error)
    metrics.upstreamError(kind)
    const fields = { event: 'upstream.error', reqId: request.id, kind, code: errorCode(error) }
    if (truncated) log.warn({ ...fields, truncated }, 'upstream failed mid-response: client connection cut')
    else log.warn(fields, 'upstream request failed')
    return kind
  }

  void app.register(fastifyHttpProxy, {
    upstream: config.upstream.url,
    // reply-from (registered by http-proxy, unused for HTTP: `handler`) gets our pool rather
    // than building an Agent of its own.
    undici: dispatcher,
    websocket: true,
    disableRequestLogging: true,
    // The HTTP forward (forward.ts), in place of reply.from().
    handler: forward,
    // http-proxy's typings lag its code: wsClientOptions.rewriteRequestHeaders exists (index.js).
    wsClientOptions: {
      rewriteRequestHeaders(_headers: unknown, request: UpstreamBoundRequest) {
        // The same end-to-end copy as the HTTP forward's (ws builds this request from scratch).
        const out = endToEndHeaders(request.headers, WS_CLIENT_DROP)
        upstreamHeaders(request, out)
        // Node's http client (ws) refuses an undefined header value: drop the names unset above.
        for (const name in out) if (out[name] === undefined) delete out[name]
        return out
      },
    } as object,
  })

  return app
}

function errorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | null
  const code = e?.cause?.code ?? e?.code
  return typeof code === 'string' ? code : undefined
}

/** An upstream failure (undici's error, by its code) → our closed set of failure kinds. */
function classifyUpstreamError(error: unknown): UpstreamErrorKind {
  const code = errorCode(error) ?? ''
  // UND_ERR_HEADERS_TIMEOUT, UND_ERR_BODY_TIMEOUT (upstream.timeout), UND_ERR_CONNECT_TIMEOUT.
  if (code.includes('TIMEOUT')) return 'timeout'
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'reset'
  return 'connect'
}
