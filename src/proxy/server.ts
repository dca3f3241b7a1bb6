/**
 * The data-plane server: fastify + @fastify/http-proxy. Authentication runs in `onRequest`,
 * before any body is read, so a rejected request never reaches the upstream and its body is
 * never buffered. Bodies of admitted requests are streamed (http-proxy's pass-through parser).
 */
import { LogController, fastify } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyHttpProxy from '@fastify/http-proxy'
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { RouteConfig, SidecarConfig } from '../config/types.ts'
import type { Metrics, Outcome } from '../observe/metrics.ts'
import { UNMATCHED_ROUTE } from '../observe/metrics.ts'
import type { Logger } from '../observe/log.ts'
import type { RateLimitedLog } from '../observe/events.ts'
import { normalizePath } from '../policy/normalize.ts'
import { withoutCookies, withoutQueryParams } from '../verify/extract.ts'
import type { Reason } from '../verify/reasons.ts'
import type { Claims, VerifyResult } from '../verify/verifier.ts'
import { HOP_BY_HOP } from './headers.ts'
import { denial } from './respond.ts'
import type { Pipeline } from './pipeline.ts'
import type { Denial } from './respond.ts'

/** What the auth step decided, kept on the request for the proxy step and the access log. */
export interface RequestAuth {
  route: string
  outcome: Outcome
  reason: Reason | 'none'
  issuer: string | undefined
  claims: Claims | undefined
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
}

/** The parts of a request the upstream-bound header rewrites read (HTTP and websocket alike). */
interface UpstreamBoundRequest {
  readonly headers: IncomingHttpHeaders
  readonly socket: Socket
  readonly auth: RequestAuth | null
  readonly pipeline: Pipeline | null
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
  const app = fastify({
    loggerInstance,
    // We write our own access line (onResponse) with route, outcome and reason instead.
    logController: new LogController({ disableRequestLogging: true }),
    // While closing, new requests get 503 rather than hanging on a draining server.
    return503OnClosing: true,
    // Defaults made explicit: we never trust client X-Forwarded-* for our own decisions.
    trustProxy: false,
  })
  app.decorateRequest('auth', null)
  app.decorateRequest('pipeline', null)
  app.decorateRequest('inflight', false)

  function deny(request: FastifyRequest, reply: FastifyReply, route: string, reason: Reason, issuer?: string, d: Denial = denial(reason), detail?: string): void {
    const outcome = reason === 'internal_error' || reason === 'keys_unavailable' ? 'error' : 'denied'
    request.auth = { route, outcome, reason, issuer, claims: undefined }
    // A security event, rate-limited per reason and route (closed sets), so a flood of bad
    // tokens cannot flood the logs; `detail` names what was wrong, never the token.
    deps.events.log(outcome === 'error' ? 'warn' : 'info', `auth.denied:${reason}:${route}`, { event: 'auth.denied', reqId: request.id, route, reason, issuer, status: d.status, detail }, 'request denied')
    void reply.code(d.status).headers(d.headers).send(d.body)
  }

  function admit(request: FastifyRequest, route: string, outcome: Outcome, issuer: string | undefined, claims: Claims | undefined): void {
    request.auth = { route, outcome, reason: 'none', issuer, claims }
    // A hijacked websocket never reaches onResponse: count it when it is admitted.
    if (request.headers.upgrade !== undefined) record(request, 101)
  }

  /** True when the request may go on to the upstream. */
  function settle(request: FastifyRequest, reply: FastifyReply, p: Pipeline, route: RouteConfig, result: VerifyResult, started: number): boolean {
    if (result.issuer !== undefined || result.ok) {
      metrics.verification(result.ok ? result.issuer.name : result.issuer!, (performance.now() - started) / 1000)
    }
    if (!result.ok) {
      deny(request, reply, route.name, result.reason, result.issuer, denial(result.reason), result.detail)
      return false
    }
    const t = Date.now() / 1000
    const { iat, exp } = result.claims
    metrics.tokenTimes(result.issuer.name, typeof iat === 'number' ? t - iat : undefined, typeof exp === 'number' ? exp - t : undefined)
    const policy = p.policies.get(route)!
    const refused = policy.authorizer.authorize(result.issuer.name, result.claims)
    if (refused !== undefined) {
      deny(request, reply, route.name, refused, result.issuer.name, policy.forbidden[refused])
      return false
    }
    admit(request, route.name, 'allowed', result.issuer.name, result.claims)
    return true
  }

  /**
   * The request target the upstream receives: the normalised path the route matched, and the
   * query without any token parameter (RFC 6750 §2.3: the token must not travel on in URLs).
   */
  function rewriteTarget(request: FastifyRequest, p: Pipeline, rawPath: string, path: string, query: string | undefined): void {
    const kept = query === undefined || p.tokenQuery.size === 0 ? query : withoutQueryParams(query, p.tokenQuery)
    if (path !== rawPath || kept !== query) request.raw.url = kept === undefined ? path : `${path}?${kept}`
  }

  // Strip → route → extract → verify. Callback style: the common path allocates no promise.
  app.addHook('onRequest', (request, reply, done) => {
    metrics.inflight(1)
    request.inflight = true
    const p = deps.pipeline()
    request.pipeline = p
    try {
      // Strip before anything else, on every route (auth: none included).
      p.headers.stripInbound(request.headers)
      const url = request.url
      const q = url.indexOf('?')
      const rawPath = q < 0 ? url : url.slice(0, q)
      const query = q < 0 ? undefined : url.slice(q + 1)
      const normalized = normalizePath(rawPath)
      if (!normalized.ok) return deny(request, reply, UNMATCHED_ROUTE, 'invalid_request')
      const route = p.routes.match(request.method, normalized.path)
      if (route === undefined) return deny(request, reply, UNMATCHED_ROUTE, 'no_route')
      rewriteTarget(request, p, rawPath, normalized.path, query)
      if (route.auth === 'none') {
        admit(request, route.name, 'anonymous', undefined, undefined)
        return done()
      }
      const found = p.extractor.extract(request.headers, request.raw.rawHeaders, query)
      if (found.kind === 'invalid') return deny(request, reply, route.name, 'invalid_request')
      if (found.kind === 'none') {
        if (route.auth === 'optional') {
          admit(request, route.name, 'anonymous', undefined, undefined)
          return done()
        }
        return deny(request, reply, route.name, 'missing_token')
      }
      const started = performance.now()
      const result = p.verifier.verify(found.token)
      if (result instanceof Promise) {
        result
          .then((r) => {
            if (settle(request, reply, p, route, r, started)) done()
          })
          .catch((err: unknown) => {
            // Fail closed, and never leave the request hanging.
            log.error({ event: 'auth.error', err }, 'verification failed internally')
            if (!reply.sent) deny(request, reply, route.name, 'internal_error')
          })
        return undefined
      }
      if (settle(request, reply, p, route, result, started)) done()
      return undefined
    } catch (err) {
      // Fail closed: an internal error never lets a request through unverified.
      log.error({ event: 'auth.error', err }, 'authentication step failed internally')
      return deny(request, reply, request.auth?.route ?? UNMATCHED_ROUTE, 'internal_error')
    }
  })

  function record(request: FastifyRequest, status: number, seconds?: number): void {
    if (request.inflight) {
      request.inflight = false
      metrics.inflight(-1)
    }
    const a = request.auth
    const route = a?.route ?? UNMATCHED_ROUTE
    const outcome = a?.outcome ?? 'error'
    const reason = a?.reason ?? 'none'
    metrics.request(route, outcome, reason)
    if (seconds !== undefined) metrics.requestDuration(route, outcome, seconds)
    if (request.pipeline?.config.log.access ?? true) {
      const url = request.url
      const q = url.indexOf('?')
      // The query string is never logged: a token or other secret may ride in it.
      log.info({
        event: 'http.access', reqId: request.id, method: request.method, path: q < 0 ? url : url.slice(0, q),
        route, outcome, reason, issuer: a?.issuer, status,
      }, 'request')
    }
  }

  app.addHook('onResponse', (request, reply, done) => {
    record(request, reply.statusCode, reply.elapsedTime / 1000)
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

  function forwardedHeaders(request: UpstreamBoundRequest, out: Record<string, string | string[] | undefined>): void {
    const ip = request.socket.remoteAddress ?? ''
    const inbound = request.headers
    const append = (request.pipeline?.config ?? config).upstream.xForwarded === 'append'
    const xff = append ? inbound['x-forwarded-for'] : undefined
    out['x-forwarded-for'] = xff === undefined || xff === '' ? ip : `${String(xff)}, ${ip}`
    const proto = 'encrypted' in request.socket && request.socket.encrypted === true ? 'https' : 'http'
    out['x-forwarded-proto'] = append && inbound['x-forwarded-proto'] !== undefined ? inbound['x-forwarded-proto'] : proto
    const host = append && inbound['x-forwarded-host'] !== undefined ? inbound['x-forwarded-host'] : inbound.host
    if (host !== undefined) out['x-forwarded-host'] = host
    else delete out['x-forwarded-host']
    if (!append) {
      // `replace`: the upstream learns the sidecar's view only; the client's own claims about
      // the path it took (RFC 7239 Forwarded, X-Real-IP) would contradict it.
      delete out.forwarded
      delete out['x-real-ip']
    }
  }

  function identityHeaders(request: UpstreamBoundRequest, out: Record<string, string | string[] | undefined>): void {
    const p = request.pipeline ?? deps.pipeline()
    const claims = request.auth?.claims
    if (claims !== undefined) {
      p.headers.setIdentity(out, claims, (header: string, bytes: number) => {
        log.warn({ event: 'identity.dropped', route: request.auth?.route, header, bytes, maxValueBytes: p.config.identity.maxValueBytes }, 'identity header value too long: not sent')
      })
    }
    if (!p.config.identity.forwardToken) {
      // The token is removed from wherever it could have come (the query already is).
      for (const h of p.tokenHeaders) delete out[h]
      const cookie = out.cookie
      if (p.tokenCookies.size > 0 && typeof cookie === 'string') {
        const kept = withoutCookies(cookie, p.tokenCookies)
        if (kept === undefined) delete out.cookie
        else out.cookie = kept
      }
    }
  }

  void app.register(fastifyHttpProxy, {
    upstream: config.upstream.url,
    websocket: true,
    disableRequestLogging: true,
    replyOptions: {
      timeout: config.upstream.timeout,
      rewriteRequestHeaders(request, headers) {
        const out = headers as Record<string, string | string[] | undefined>
        // reply-from already dropped Connection and the headers it names; drop the rest of
        // the hop-by-hop set (RFC 9110 §7.6.1) so nothing meant for us reaches the app.
        for (const h of HOP_BY_HOP) delete out[h]
        forwardedHeaders(request, out)
        identityHeaders(request, out)
        return out
      },
      onError(reply, { error }) {
        const kind = classifyUpstreamError(error)
        metrics.upstreamError(kind)
        const reason: Reason = kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable'
        const request = reply.request
        if (request.auth !== null) {
          request.auth.outcome = 'error'
          request.auth.reason = reason
        }
        log.warn({ event: 'upstream.error', reqId: request.id, kind, code: errorCode(error) }, 'upstream request failed')
        const d = denial(reason)
        void reply.code(d.status).headers(d.headers).send(d.body)
      },
    },
    // http-proxy's typings lag its code: wsClientOptions.rewriteRequestHeaders exists (index.js).
    wsClientOptions: {
      rewriteRequestHeaders(_headers: unknown, request: UpstreamBoundRequest) {
        const out: Record<string, string | string[] | undefined> = {}
        for (const name in request.headers) {
          if (!HOP_BY_HOP.has(name) && !WS_CLIENT_DROP.has(name)) out[name] = request.headers[name]
        }
        forwardedHeaders(request, out)
        identityHeaders(request, out)
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

/** reply-from's error → our closed set of upstream failure kinds. */
export function classifyUpstreamError(error: unknown): 'connect' | 'timeout' | 'reset' {
  const status = (error as { statusCode?: unknown } | null)?.statusCode
  const code = errorCode(error) ?? ''
  if (status === 504 || code.includes('TIMEOUT')) return 'timeout'
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'reset'
  return 'connect'
}
