/**
 * The admin server, on its own port and never proxied: liveness, readiness, key state,
 * metrics, and at `/` the list of these (issue #14 §5: a person who finds the port can find
 * the rest).
 */
import { fastify } from 'fastify'
import { NO_ROUTE_SCHEMAS } from '../fastify-schemas.ts'
import type { FastifyInstance } from 'fastify'
import type { KeyStore } from '../keys/types.ts'
import type { LoopMonitor } from '../observe/loop-monitor.ts'
import type { Metrics } from '../observe/metrics.ts'
import { packageVersion } from '../package-root.ts'

/** What `/` lists: every endpoint of this port, with one line each. */
const ADMIN_ENDPOINTS: ReadonlyArray<{ readonly path: string; readonly description: string }> = [
  { path: '/healthz', description: 'liveness: 200 while the process answers and its event loop is not blocked' },
  { path: '/readyz', description: 'readiness: 200 when every issuer has usable keys and no shutdown has begun; ?verbose lists each issuer' },
  { path: '/keys', description: "each issuer's key set: its state, last and next refresh, last error, and each key's public metadata" },
  { path: '/metrics', description: 'Prometheus metrics (text exposition format)' },
]

export interface AdminServerDeps {
  readonly keys: KeyStore
  readonly metrics: Metrics
  /** False once shutdown has begun. */
  readonly serving: () => boolean
  /** Liveness from the event loop: unhealthy while it has recently been blocked too long. */
  readonly loop: LoopMonitor
}

/**
 * /: the index of the endpoints below. /healthz: the process is alive. /readyz: 200 only when every issuer has usable keys and
 * the sidecar is not shutting down (`?verbose` lists each issuer). /keys: each issuer's key
 * set state and its keys' public metadata. /metrics: Prometheus text.
 *
 * @example
 * const admin = createAdminServer({ keys, metrics, serving: () => true })
 * await admin.listen({ host: '0.0.0.0', port: 9901 })
 */
export function createAdminServer(deps: AdminServerDeps): FastifyInstance {
  const app = fastify({ logger: false, schemaController: NO_ROUTE_SCHEMAS })
  // Indented: this one is read by people, with curl.
  const index = `${JSON.stringify({ service: 'jwt-sidecar', version: packageVersion(), endpoints: ADMIN_ENDPOINTS }, null, 2)}\n`
  app.get('/', (_request, reply) => reply.type('application/json; charset=utf-8').send(index))
  // Liveness: the process answers, and its event loop is not stuck (a blocked loop answers
  // late or never, which a plain "I am up" would hide until requests time out).
  app.get('/healthz', (_request, reply) => {
    if (deps.loop.healthy()) return reply.send({ status: 'ok' })
    return reply.code(503).send({ status: 'unhealthy', eventLoopDelayMs: Math.round(deps.loop.maxDelayMs()) })
  })
  app.get('/readyz', (request, reply) => {
    const ready = deps.serving() && deps.keys.ready()
    reply.code(ready ? 200 : 503)
    const body: Record<string, unknown> = { status: ready ? 'ready' : 'not_ready' }
    if (!deps.serving()) body.shuttingDown = true
    if ('verbose' in (request.query as object)) {
      body.issuers = deps.keys.status().map((st) => ({
        issuer: st.issuer, ready: st.ready, state: st.state, keys: st.keys,
        lastSuccess: iso(st.lastSuccess), lastError: st.lastError,
      }))
    }
    else if (!ready) body.issuers = deps.keys.status().filter((s) => !s.ready).map((s) => s.issuer)
    return reply.send(body)
  })
  // Public data only: what an operator needs to see a rotation or an outage, never key material.
  app.get('/keys', (_request, reply) =>
    reply.send({
      issuers: deps.keys.status().map((st) => ({
        issuer: st.issuer,
        state: st.state,
        ready: st.ready,
        jwksUri: st.jwksUri,
        lastSuccess: iso(st.lastSuccess),
        nextRefresh: iso(st.nextRefresh),
        lastError: st.lastError,
        keys: st.keyList,
      })),
    }),
  )
  app.get('/metrics', async (_request, reply) => {
    void reply.type('text/plain; version=0.0.4; charset=utf-8')
    return deps.metrics.expose()
  })
  return app
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString()
}
