/**
 * Composition root: builds every unit from the frozen config. No I/O happens at import time
 * or in `createApp`; `start()` binds the ports and starts the key store.
 */
import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { createAdminServer } from './admin/server.ts'
import type { SidecarConfig } from './config/types.ts'
import { createKeyStore } from './keys/store.ts'
import type { KeyStoreDeps } from './keys/store.ts'
import type { KeyEvent, KeyStore } from './keys/types.ts'
import { createLogger, logKeyEvent } from './observe/log.ts'
import type { Logger } from './observe/log.ts'
import { createMetrics } from './observe/metrics.ts'
import type { Metrics } from './observe/metrics.ts'
import { createRouteMatcher } from './policy/routes.ts'
import { createHeaderPolicy } from './proxy/headers.ts'
import { createProxyServer } from './proxy/server.ts'
import { createTokenExtractor } from './verify/extract.ts'
import { createVerifier } from './verify/verifier.ts'

export interface AppDeps {
  readonly log?: Logger
  /** epoch ms; tests move time. */
  readonly now?: () => number
  /** Key store dependencies (tests shorten file polling, inject schedules). */
  readonly keyStore?: Omit<KeyStoreDeps, 'onEvent' | 'now'>
}

export interface App {
  readonly config: SidecarConfig
  readonly proxy: FastifyInstance
  readonly admin: FastifyInstance
  readonly keys: KeyStore
  readonly metrics: Metrics
  readonly log: Logger
  /** Binds both ports (port 0 picks a free one) and starts fetching keys; resolves with the bound URLs. */
  start(): Promise<{ proxyUrl: string; adminUrl: string }>
  /** Stops accepting, closes both servers and the key store's timers. */
  close(): Promise<void>
}

/**
 * @example
 * const app = createApp(loadConfig('config/sidecar.yaml'))
 * const { proxyUrl } = await app.start()
 */
export function createApp(config: SidecarConfig, deps: AppDeps = {}): App {
  const log = deps.log ?? createLogger(config.log)
  // The metrics read key-store state at scrape time; the store reports events to the metrics.
  const metrics = createMetrics({ keyStatus: () => keys.status(), ...(deps.now === undefined ? {} : { now: deps.now }) })
  const onEvent = (e: KeyEvent): void => {
    logKeyEvent(log, e)
    metrics.keyEvent(e)
  }
  const keys: KeyStore = createKeyStore(config.issuers, { onEvent, ...(deps.now === undefined ? {} : { now: deps.now }), ...deps.keyStore })
  const verifier = createVerifier(
    { issuers: config.issuers, clockSkew: config.tokens.clockSkew, maxBytes: config.tokens.maxBytes },
    deps.now === undefined ? { keys } : { keys, now: deps.now },
  )
  let serving = true
  const proxy = createProxyServer(config, {
    verifier,
    routes: createRouteMatcher(config.routes),
    headers: createHeaderPolicy(config.identity),
    extractor: createTokenExtractor(config.tokens.from),
    metrics,
    log,
  })
  const admin = createAdminServer({ keys, metrics, serving: () => serving })

  function url(server: FastifyInstance): string {
    const a = server.server.address() as AddressInfo
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
    return `http://${host}:${a.port}`
  }

  return {
    config, proxy, admin, keys, metrics, log,
    async start() {
      // Keys first: the process serves (503 keys_unavailable) while a provider is down,
      // and /readyz tells Kubernetes when it can send traffic.
      keys.start()
      await admin.listen({ host: config.admin.listen.host, port: config.admin.listen.port })
      await proxy.listen({ host: config.listen.host, port: config.listen.port })
      const urls = { proxyUrl: url(proxy), adminUrl: url(admin) }
      log.info({ event: 'server.started', proxy: urls.proxyUrl, admin: urls.adminUrl, issuers: config.issuers.map((i) => i.name) }, 'jwt-sidecar started')
      return urls
    },
    async close() {
      serving = false
      await Promise.allSettled([proxy.close(), admin.close()])
      await keys.stop()
    },
  }
}
