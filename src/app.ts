/**
 * Composition root: builds every unit from the frozen config. No I/O happens at import time
 * or in `createApp`; `start()` binds the ports and starts the key store. `reload()` swaps the
 * request pipeline for a new config; `shutdown()` is the Kubernetes-friendly stop.
 */
import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { createAdminServer } from './admin/server.ts'
import { restartRequired as restartRequiredBy } from './config/restart-only.ts'
import type { SidecarConfig } from './config/types.ts'
import { createKeyStore } from './keys/store.ts'
import type { KeyStoreDeps, ReconfigurableKeyStore } from './keys/store.ts'
import type { KeyEvent } from './keys/types.ts'
import { createRateLimitedLog } from './observe/events.ts'
import { createLogger, logKeyEvent, resolveLogFormat, stdoutDestinations } from './observe/log.ts'
import { createLoopMonitor } from './observe/loop-monitor.ts'
import type { Logger } from './observe/log.ts'
import { createTokenCacheStats } from './verify/token-cache.ts'
import { createMetrics } from './observe/metrics.ts'
import type { Metrics } from './observe/metrics.ts'
import { createPipeline } from './request/pipeline.ts'
import { createReplayCache } from './verify/dpop-replay.ts'
import type { Pipeline } from './request/pipeline.ts'
import { createProxyServer } from './proxy/server.ts'
import { createTlsReloader } from './proxy/tls.ts'
import type { TlsEvent, TlsReloader } from './proxy/tls.ts'
import type { Server as TlsServer } from 'node:tls'
import type { WatchOptions } from './fs-watch.ts'
import type { StopPlan } from './stop-signals.ts'
import { StartupError, listenError } from './startup-error.ts'
import type { ListenAddress } from './config/types.ts'

export interface AppDeps {
  readonly log?: Logger
  /** epoch ms; tests move time. */
  readonly now?: () => number
  /** Key store dependencies (tests shorten file polling, inject schedules). */
  readonly keyStore?: Omit<KeyStoreDeps, 'onEvent' | 'now'>
  /** Watching the TLS certificate files (tests shorten the poll). */
  readonly tlsWatch?: WatchOptions
}

export interface ReloadResult {
  /** Settings that changed but take effect only after a restart (config/restart-only.ts). */
  readonly restartRequired: readonly string[]
  readonly issuers: { readonly kept: readonly string[]; readonly replaced: readonly string[]; readonly added: readonly string[] }
}

export interface App {
  /** The config in force (changes on reload). */
  config(): SidecarConfig
  readonly proxy: FastifyInstance
  readonly admin: FastifyInstance
  readonly keys: ReconfigurableKeyStore
  readonly metrics: Metrics
  readonly log: Logger
  /** Binds both ports (port 0 picks a free one) and starts fetching keys; resolves with the bound URLs. */
  start(): Promise<{ proxyUrl: string; adminUrl: string }>
  /**
   * Applies a new, already validated config atomically: issuers, routes, identity, tokens and
   * log settings swap at once; in-flight requests finish under the config they started with;
   * unchanged issuers keep their keys. Settings that need a restart are reported, not applied.
   */
  reload(next: SidecarConfig): ReloadResult
  /**
   * Kubernetes shutdown (issue #5): readiness fails at once, requests are still served for
   * `shutdown.delay` while endpoints update, then the listener closes and in-flight requests
   * drain for at most `shutdown.timeout`; then everything stops. A `plan` replaces the two
   * durations: a Ctrl-C at a terminal skips the delay (src/stop-signals.ts).
   */
  shutdown(plan?: StopPlan): Promise<void>
  /** Stops at once: closes both servers and the key store's timers. */
  close(): Promise<void>
}

/**
 * @example
 * const app = createApp(loadConfig('config/sidecar.yaml'))
 * const { proxyUrl } = await app.start()
 */
export function createApp(initial: SidecarConfig, deps: AppDeps = {}): App {
  // JSON: the access lines in batches of their own (log.ts), the rest as soon as logged;
  // readable lines (`log.format: pretty`, the default at a terminal): one stream, unbatched.
  const destinations = deps.log === undefined ? stdoutDestinations(resolveLogFormat(initial.log.format, process.stdout.isTTY === true)) : undefined
  const stdout = destinations?.main
  const accessStdout = destinations?.access
  const log = deps.log ?? createLogger(initial.log, stdout)
  let config = initial
  // The metrics read key-store state at scrape time; the store reports events to the metrics.
  // The token cache's counters outlive each config's cache; its size is the current one's.
  const cacheStats = createTokenCacheStats()
  // One DPoP replay cache for the process: a reload must not forget the proofs already seen.
  const dpopReplay = createReplayCache(initial.tokens.dpopReplayCache.maxEntries)
  const metrics = createMetrics({
    dpopReplay,
    keyStatus: () => keys.status(),
    issuers: config.issuers.map((i) => i.name),
    tokenCache: { stats: cacheStats, usage: () => pipeline.verifier.cacheUsage() },
    ...(deps.now === undefined ? {} : { now: deps.now }),
  })
  stdout?.onDrop(() => metrics.logDropped())
  if (accessStdout !== stdout) accessStdout?.onDrop(() => metrics.logDropped())
  const onEvent = (e: KeyEvent): void => {
    logKeyEvent(log, e)
    metrics.keyEvent(e)
  }
  const keys = createKeyStore(config.issuers, { onEvent, ...(deps.now === undefined ? {} : { now: deps.now }), ...deps.keyStore })
  let pipeline: Pipeline = createPipeline(config, keys, { now: deps.now, cacheStats, kidless: metrics.kidless, dpopReplay })
  let serving = true
  const events = createRateLimitedLog(log, { perKeyPerInterval: 10, intervalMs: 10_000 })
  const loop = createLoopMonitor({ thresholdMs: config.admin.maxEventLoopDelay })
  const proxy = createProxyServer(config, { pipeline: () => pipeline, metrics, log, events, accessStream: accessStdout })
  const admin = createAdminServer({ keys, metrics, serving: () => serving, loop })
  const tls = initial.tls === undefined ? undefined : createTls(initial.tls)

  function createTls(tlsConfig: NonNullable<SidecarConfig['tls']>): TlsReloader {
    metrics.tls.init()
    const onTls = (e: TlsEvent): void => {
      if (e.kind === 'tls.reloaded') {
        metrics.tls.loaded(e.notAfter)
        log.info({ event: e.kind, initial: e.initial, notAfter: new Date(e.notAfter * 1000).toISOString(), fingerprint256: e.fingerprint256 }, 'TLS certificate loaded')
      } else {
        metrics.tls.failed()
        log.error({ event: e.kind, why: e.why }, 'TLS certificate reload refused: the certificate in use is kept')
      }
    }
    return createTlsReloader(proxy.server as unknown as TlsServer, tlsConfig, { onEvent: onTls, ...(deps.tlsWatch === undefined ? {} : { watch: deps.tlsWatch }) })
  }

  function url(server: FastifyInstance, scheme = 'http'): string {
    const a = server.server.address() as AddressInfo
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
    return `${scheme}://${host}:${a.port}`
  }

  /** check-config's warnings, once per config in force (at start and after each reload). */
  function logWarnings(c: SidecarConfig): void {
    for (const w of c.warnings) log.warn({ event: 'config.warning', file: w.file, line: w.line, path: w.path }, w.message)
  }

  let closing: Promise<void> | undefined
  function close(): Promise<void> {
    closing ??= (async () => {
      serving = false
      tls?.close()
      await Promise.allSettled([proxy.close(), admin.close()])
      await keys.stop()
      loop.close()
      events.close()
    })()
    return closing
  }

  return {
    config: () => config,
    proxy, admin, keys, metrics, log,
    async start() {
      // Keys first: the process serves (503 keys_unavailable) while a provider is down,
      // and /readyz tells Kubernetes when it can send traffic.
      // No certificate, no listener: a broken pair fails the start (fail closed).
      try {
        await tls?.start()
      } catch (err) {
        throw new StartupError({ setting: 'tls', problem: (err as Error).message, cause: err })
      }
      keys.start()
      // A port that cannot be bound is named by its setting (src/startup-error.ts).
      await listenOn(admin, 'admin.listen', config.admin.listen)
      await listenOn(proxy, 'listen', config.listen)
      const urls = { proxyUrl: url(proxy, tls === undefined ? 'http' : 'https'), adminUrl: url(admin) }
      log.info({ event: 'server.started', proxy: urls.proxyUrl, admin: urls.adminUrl, issuers: config.issuers.map((i) => i.name) }, 'jwt-sidecar started')
      logWarnings(config)
      return urls
    },
    reload(next) {
      const restartRequired = restartRequiredBy(config, next)
      const issuers = keys.reconfigure(next.issuers)
      for (const name of issuers.added) metrics.initIssuer(name)
      // One assignment: a request reads either the old pipeline or the new one, never a mix.
      pipeline = createPipeline(next, keys, { now: deps.now, cacheStats, kidless: metrics.kidless, dpopReplay })
      config = next
      log.level = next.log.level
      logWarnings(next)
      return { restartRequired, issuers }
    },
    async shutdown(plan) {
      if (closing !== undefined) return closing
      serving = false
      // `shutdown` is restart-only: the pod's grace period was computed from the start's values.
      const { delay, timeout } = plan ?? initial.shutdown
      const why = plan === undefined ? {} : { signal: plan.signal, interactive: plan.interactive }
      log.info({ event: 'shutdown.started', ...why, delayMs: delay, timeoutMs: timeout },
        plan?.interactive === true ? 'Ctrl-C at a terminal: shutting down without shutdown.delay' : 'shutting down: readiness fails now, serving until endpoints update')
      await sleep(delay)
      log.info({ event: 'shutdown.draining', timeoutMs: timeout }, 'no longer accepting connections; draining in-flight requests')
      // fastify's close stops accepting, answers new requests on kept-alive connections with
      // 503 and waits for in-flight ones; past the timeout, connections are cut. Node closes
      // only the connections idle at that moment: close each one as its last response ends,
      // or a client's keep-alive would hold the drain open until the timeout.
      const reaper = setInterval(() => proxy.server.closeIdleConnections(), 50)
      const drained = await Promise.race([proxy.close().then(() => true), sleep(timeout).then(() => false)])
      clearInterval(reaper)
      if (!drained) {
        proxy.server.closeAllConnections()
        log.warn({ event: 'shutdown.timeout', timeoutMs: timeout }, 'in-flight requests did not finish in time: connections closed')
      }
      await close()
      log.info({ event: 'shutdown.completed', drained }, 'stopped')
    },
    close,
  }
}

async function listenOn(server: FastifyInstance, setting: string, address: ListenAddress): Promise<void> {
  try {
    await server.listen({ host: address.host, port: address.port })
  } catch (err) {
    throw listenError(err, setting, address)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
