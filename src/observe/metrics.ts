/**
 * Every metric declared once. Label values come only from closed sets: configured issuer
 * and route names, the reason codes, fixed outcome/result words. Never a path, sub, kid or IP.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { BoundCounter, BoundHistogram } from './bound-metrics.ts'
import type { CounterChild, HistogramChild } from './bound-metrics.ts'
import { createTokenCacheStats } from '../verify/token-cache.ts'
import type { TokenCacheStats } from '../verify/token-cache.ts'
import { KEY_SET_STATES } from '../keys/types.ts'
import { packageVersion } from '../package-root.ts'
import type { IssuerKeyStatus, KeyEvent } from '../keys/types.ts'
import type { Reason } from '../verify/reasons.ts'
import type { KidlessReport } from '../verify/verifier.ts'
import { HEADER_NAME_KINDS } from '../request/headers.ts'
import type { HeaderNameKind } from '../request/headers.ts'
import { createTlsMetrics } from './tls-metrics.ts'
import { scrapedCounter, scrapedGauge } from './scraped.ts'
import { registerDpopMetrics } from './dpop-metrics.ts'
import { createReplayCache } from '../verify/dpop-replay.ts'
import type { ReplayCache } from '../verify/dpop-replay.ts'
import type { TlsMetrics } from './tls-metrics.ts'

export type Outcome = 'allowed' | 'denied' | 'anonymous' | 'error'
export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset'

export { UNMATCHED_ROUTE } from '../policy/routes.ts'

export interface Metrics {
  /** Our own metrics only: this is what `promtool check metrics` lints. */
  readonly registry: Registry
  /** Node process metrics, exposed alongside on /metrics. */
  readonly processRegistry: Registry
  request(route: string, outcome: Outcome, reason: Reason | 'none'): void
  /** Whole-request duration, from the first byte read to the response finished. */
  requestDuration(route: string, outcome: Outcome, seconds: number): void
  verification(issuer: string, seconds: number): void
  /** now − iat and exp − now of a verified token: clock drift and over-long tokens show here. */
  tokenTimes(issuer: string, ageSeconds: number | undefined, timeToExpirySeconds: number | undefined): void
  inflight(delta: 1 | -1): void
  configReload(result: 'success' | 'error'): void
  upstreamError(kind: UpstreamErrorKind): void
  /** An inbound header name removed (dropped) or refused (rejected) by the strip step. */
  headerName(kind: HeaderNameKind, action: 'dropped' | 'rejected'): void
  /** A token without kid: the signature checks it cost, by issuer and result (verifier.ts KidlessReport). */
  readonly kidless: KidlessReport
  keyEvent(event: KeyEvent): void
  /** Start an issuer's counters at 0 (at start-up, and for an issuer added by a reload). */
  initIssuer(issuer: string): void
  /** A log line the asynchronous stdout destination had to drop (observe/log.ts). */
  logDropped(): void
  /** The TLS listener's certificate (issue #13). */
  readonly tls: TlsMetrics
  /** Text exposition of both registries. */
  expose(): Promise<string>
}

const PREFIX = 'jwt_sidecar_'

/**
 * @example
 * const metrics = createMetrics()
 * metrics.request('default', 'denied', 'expired')
 */
export interface MetricsOptions {
  /** The key store's view, read at scrape time for the state, keys and staleness gauges. */
  readonly keyStatus?: () => readonly IssuerKeyStatus[]
  /** Configured issuer names: their counters start at 0, so increase() sees the first event. */
  readonly issuers?: readonly string[]
  /** epoch ms */
  readonly now?: () => number
  /** The verified-token cache: cumulative counters, and the current cache's size, read at scrape time. */
  readonly tokenCache?: { readonly stats: TokenCacheStats; readonly usage: () => { readonly entries: number; readonly bytes: number } }
  /** The process's DPoP replay cache, read at scrape time (dpop-metrics.ts). */
  readonly dpopReplay?: ReplayCache
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const now = options.now ?? Date.now
  const registry = new Registry()
  const processRegistry = new Registry()
  collectDefaultMetrics({ register: processRegistry, prefix: PREFIX })

  // The per-request metrics bind a child per label set once (bound-metrics.ts): no label
  // hashing on the request path.
  const requests = new BoundCounter({
    name: `${PREFIX}requests_total`,
    help: 'Requests at the proxy port, counted when the response is done (WebSocket upgrades when admitted), by route (a routes[].name, or _unmatched for no_route and a refused path), outcome (allowed, denied, anonymous: auth none or optional without a token, error: internal_error, keys_unavailable, upstream failures) and reason (a reason code, or none).',
    labelNames: ['route', 'outcome', 'reason'] as const,
    registers: [registry],
  })
  const verificationDuration = new BoundHistogram({
    name: `${PREFIX}verification_duration_seconds`,
    help: 'Time to verify a token whose iss matched an issuer, by issuer, including any unknown-kid wait.',
    labelNames: ['issuer'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 2.5],
    registers: [registry],
  })
  const requestDuration = new BoundHistogram({
    name: `${PREFIX}request_duration_seconds`,
    help: 'Whole-request duration at the proxy port, authentication and upstream together, by route rule and outcome (not for WebSocket upgrades).',
    labelNames: ['route', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  })
  const tokenAge = new BoundHistogram({
    name: `${PREFIX}token_age_seconds`,
    help: 'Age of verified tokens (now - iat), by issuer: below 0 means the issuer clock is ahead of ours; a long tail means long-lived or replayed tokens.',
    labelNames: ['issuer'] as const,
    buckets: [-60, 0, 5, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
    registers: [registry],
  })
  const timeToExpiry = new BoundHistogram({
    name: `${PREFIX}token_time_to_expiry_seconds`,
    help: 'Remaining lifetime of verified tokens (exp - now), by issuer; below 0 only within the clock skew.',
    labelNames: ['issuer'] as const,
    buckets: [-60, 0, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
    registers: [registry],
  })
  // Issue #12: tokens without kid may cost up to kidless.maxCandidates signature checks each,
  // a CPU cost a client can trigger; this shows what they cost (the bound is 5, the buckets say it).
  const kidlessChecks = new BoundHistogram({
    name: `${PREFIX}kidless_signature_checks`,
    help: 'Signature checks spent on each token without kid, by issuer and result (verified; bad_signature: none of the candidates verifies; unknown_kid: no key fits its alg, or more than kidless.maxCandidates do, 0 checks). Never more than kidless.maxCandidates per token; _sum is the CPU an attacker can spend this way.',
    labelNames: ['issuer', 'result'] as const,
    buckets: [0, 1, 2, 3, 4, 5],
    registers: [registry],
  })
  const kidlessChildren = new Map<string, Map<string, HistogramChild>>()
  const kidlessChild = (issuer: string, result: string): HistogramChild => kidlessChecks.child(issuer, result)
  // A plain number on the request path, read at scrape time.
  let inflightNow = 0
  scrapedGauge(registry, `${PREFIX}inflight_requests`, 'Requests at the proxy port that have started and not yet finished (aborted ones leave it too).', () => inflightNow)
  const configReloads = new Counter({
    name: `${PREFIX}config_reloads_total`,
    help: 'Live configuration reloads (SIGHUP or a file change), by result (success: applied, or the file in force restored after a rejected edit; error: the running config stays); both start at 0.',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  new Gauge({
    name: `${PREFIX}build_info`,
    help: 'Always 1; the labels say which version runs on which Node.js.',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  }).labels(packageVersion(), process.version).set(1)
  const upstreamErrors = new Counter({
    name: `${PREFIX}upstream_errors_total`,
    help: 'Admitted requests the upstream could not answer, or stopped answering halfway, by kind (connect, timeout, reset).',
    labelNames: ['kind'] as const,
    registers: [registry],
  })
  const headerNames = new Counter({
    name: `${PREFIX}inbound_header_names_total`,
    help: 'Inbound header names the strip step removed (dropped) or refused the request for (rejected), by kind: protected (an identity, strip-listed or method-override name), alias (a "_" spelling of a protected or sidecar-owned name), underscore (any other name with "_"). A steady rate of protected or alias means clients try to forge identity headers.',
    labelNames: ['kind', 'action'] as const,
    registers: [registry],
  })
  const refreshes = new Counter({
    name: `${PREFIX}jwks_refresh_total`,
    help: 'Key refreshes by issuer, trigger (startup, schedule: retries included, unknown_kid, file: a static key file changed) and result (updated, not_modified: a 304, error).',
    labelNames: ['issuer', 'trigger', 'result'] as const,
    registers: [registry],
  })
  const refreshDuration = new Histogram({
    name: `${PREFIX}jwks_refresh_duration_seconds`,
    help: 'Duration of each key refresh (discovery, download, import), successful or not, by issuer.',
    labelNames: ['issuer'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  const keyChanges = new Counter({
    name: `${PREFIX}jwks_key_changes_total`,
    help: 'Key set changes by issuer and change (added, removed, changed: same kid with new key material, replaced: no key in common with the previous set).',
    labelNames: ['issuer', 'change'] as const,
    registers: [registry],
  })
  const keyRejections = new Counter({
    name: `${PREFIX}jwks_key_rejections_total`,
    help: 'Keys refused at import (private, symmetric, weak, wrong use or alg, duplicate kid), by issuer; reported once per distinct key.',
    labelNames: ['issuer'] as const,
    registers: [registry],
  })
  const snapshots = new Counter({ name: `${PREFIX}jwks_snapshot_total`, help: 'Key snapshot operations (issuers[].snapshot), by result (loaded and ignored: at start; written and write_failed: after each refresh).', labelNames: ['issuer', 'result'] as const, registers: [registry] })
  const unknownKid = new Counter({
    name: `${PREFIX}unknown_kid_total`,
    help: 'Tokens naming a kid not in their issuer key set, by action (refreshed: waited for a refresh, cooldown: refused, a refresh ran recently, known_unknown: proven unknown by the last refresh, always this for a static-only issuer).',
    labelNames: ['issuer', 'action'] as const,
    registers: [registry],
  })
  // Read from the key store at scrape time, so they are never out of date.
  const status = (): readonly IssuerKeyStatus[] => options.keyStatus?.() ?? []
  new Gauge({
    name: `${PREFIX}jwks_keys`,
    help: 'Usable keys in the current set, by issuer, read at scrape time.',
    labelNames: ['issuer'] as const,
    registers: [registry],
    collect() {
      this.reset() // mirror the store exactly: no series for an issuer that is gone
      for (const s of status()) this.labels(s.issuer).set(s.keys)
    },
  })
  new Gauge({
    name: `${PREFIX}jwks_state`,
    help: 'Key set state by issuer: 1 for the current state (loading, fresh, stale, expired, static), 0 for the others.',
    labelNames: ['issuer', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset() // mirror the store exactly: no series for an issuer that is gone
      for (const s of status()) for (const state of KEY_SET_STATES) this.labels(s.issuer, state).set(s.state === state ? 1 : 0)
    },
  })
  new Gauge({
    name: `${PREFIX}jwks_last_success_timestamp_seconds`,
    help: 'Unix time of the last successful key refresh (remote) or load (static), by issuer; absent before the first.',
    labelNames: ['issuer'] as const,
    registers: [registry],
    collect() {
      this.reset() // mirror the store exactly: no series for an issuer that is gone
      for (const s of status()) if (s.lastSuccess !== undefined) this.labels(s.issuer).set(s.lastSuccess / 1000)
    },
  })
  new Gauge({
    name: `${PREFIX}jwks_staleness_seconds`,
    help: 'Seconds since the last successful key refresh (remote), or since the key files last changed and loaded (static only), by issuer, read at scrape time; absent before the first.',
    labelNames: ['issuer'] as const,
    registers: [registry],
    collect() {
      this.reset() // mirror the store exactly: no series for an issuer that is gone
      const t = now()
      for (const s of status()) if (s.lastSuccess !== undefined) this.labels(s.issuer).set(Math.max(0, (t - s.lastSuccess) / 1000))
    },
  })

  // Counters exist from the start (at 0): a series born with its first event at 1 would hide
  // that event from increase()/rate(), and alerts on "any change" would miss the first one.
  for (const r of ['success', 'error'] as const) configReloads.labels(r).inc(0)
  // A protected name without `_` is always dropped, never a reason to reject.
  for (const k of HEADER_NAME_KINDS) for (const a of k === 'protected' ? (['dropped'] as const) : (['dropped', 'rejected'] as const)) headerNames.labels(k, a).inc(0)
  function initIssuer(issuer: string): void {
    for (const c of ['added', 'removed', 'changed', 'replaced'] as const) keyChanges.labels(issuer, c).inc(0)
    for (const a of ['refreshed', 'cooldown', 'known_unknown'] as const) unknownKid.labels(issuer, a).inc(0)
    keyRejections.labels(issuer).inc(0)
    for (const r of ['loaded', 'ignored', 'written', 'write_failed'] as const) snapshots.labels(issuer, r).inc(0)
  }
  for (const issuer of options.issuers ?? []) initIssuer(issuer)

  const logDrops = new Counter({
    name: `${PREFIX}log_lines_dropped_total`,
    help: 'Log lines dropped because more than 16 MiB of log waited to be written to stdout (the collector does not keep up).',
    registers: [registry],
  })
  logDrops.inc(0)

  // Registered even without a cache (all zeros): dashboards and alerts see one shape.
  const cache = options.tokenCache ?? { stats: createTokenCacheStats(), usage: () => ({ entries: 0, bytes: 0 }) }
  // Cumulative counts kept by the cache (no call per request): handed over at scrape time.
  const { stats } = cache
  scrapedCounter(registry, `${PREFIX}token_cache_lookups_total`, 'Verified-token cache lookups by result (hit: answered from the cache, claims re-checked; miss: verified in full).', 'result', {
    hit: () => stats.hits,
    miss: () => stats.misses,
  })
  scrapedCounter(registry, `${PREFIX}token_cache_evictions_total`, 'Verified-token cache entries removed, by reason (capacity: room for a newer token, the cache is smaller than the working set; expired: found past exp plus skew, or refused by a time rule on a hit; keys_changed: the issuer key set changed since the token was verified).', 'reason', {
    capacity: () => stats.evictedCapacity,
    expired: () => stats.evictedExpired,
    keys_changed: () => stats.evictedKeys,
  })
  scrapedGauge(registry, `${PREFIX}token_cache_entries`, 'Tokens held by the verified-token cache of the config in force.', () => cache.usage().entries)
  registerDpopMetrics(registry, options.dpopReplay ?? createReplayCache())
  scrapedGauge(registry, `${PREFIX}token_cache_bytes`, 'Estimated bytes held by the verified-token cache of the config in force (bounded by tokens.cache.maxBytes).', () => cache.usage().bytes)

  // Children bound once per label set (closed sets: route and issuer names, outcomes, reasons).
  const requestChildren = new Map<string, Map<string, Map<string, CounterChild>>>()
  const durationChildren = new Map<string, Map<string, HistogramChild>>()
  const requestChild = (route: string, outcome: string, reason: string): CounterChild => requests.child(route, outcome, reason)
  const durationChild = (route: string, outcome: string): HistogramChild => requestDuration.child(route, outcome)
  const issuerChildren = new Map<string, { readonly verification: HistogramChild; readonly age: HistogramChild; readonly ttl: HistogramChild }>()
  function perIssuer(issuer: string) {
    let c = issuerChildren.get(issuer)
    if (c === undefined) {
      c = { verification: verificationDuration.child(issuer), age: tokenAge.child(issuer), ttl: timeToExpiry.child(issuer) }
      issuerChildren.set(issuer, c)
    }
    return c
  }

  return {
    registry,
    processRegistry,
    tls: createTlsMetrics(registry),
    initIssuer,
    request(route, outcome, reason) {
      child3(requestChildren, route, outcome, reason, requestChild).inc()
    },
    requestDuration(route, outcome, seconds) {
      child2(durationChildren, route, outcome, durationChild).observe(seconds)
    },
    verification(issuer, seconds) {
      perIssuer(issuer).verification.observe(seconds)
    },
    tokenTimes(issuer, age, ttl) {
      const c = perIssuer(issuer)
      if (age !== undefined) c.age.observe(age)
      if (ttl !== undefined) c.ttl.observe(ttl)
    },
    kidless(issuer, checks, result) {
      child2(kidlessChildren, issuer, result, kidlessChild).observe(checks)
    },
    inflight(delta) {
      inflightNow += delta
    },
    logDropped() {
      logDrops.inc()
    },
    configReload(result) {
      configReloads.labels(result).inc()
    },
    upstreamError(kind) {
      upstreamErrors.labels(kind).inc()
    },
    headerName(kind, action) {
      headerNames.labels(kind, action).inc()
    },
    keyEvent(e) {
      switch (e.event) {
        case 'jwks.refreshed':
          refreshes.labels(e.issuer, e.trigger, e.result).inc()
          refreshDuration.labels(e.issuer).observe(e.durationMs / 1000)
          break
        case 'jwks.refresh_failed':
          refreshes.labels(e.issuer, e.trigger, 'error').inc()
          refreshDuration.labels(e.issuer).observe(e.durationMs / 1000)
          break
        case 'jwks.key_added':
          keyChanges.labels(e.issuer, 'added').inc()
          break
        case 'jwks.key_removed':
          keyChanges.labels(e.issuer, 'removed').inc()
          break
        case 'jwks.key_changed':
          keyChanges.labels(e.issuer, 'changed').inc()
          break
        case 'jwks.keyset_replaced':
          keyChanges.labels(e.issuer, 'replaced').inc()
          break
        case 'jwks.key_rejected':
          keyRejections.labels(e.issuer).inc()
          break
        case 'jwks.unknown_kid':
          unknownKid.labels(e.issuer, e.action).inc()
          break
        case 'jwks.snapshot_loaded': case 'jwks.snapshot_ignored': case 'jwks.snapshot_written': case 'jwks.snapshot_write_failed':
          snapshots.labels(e.issuer, e.event.slice('jwks.snapshot_'.length)).inc()
          break
        default:
          // stale / expired / recovered / discovered: states, read from the store at scrape time.
          break
      }
    },
    async expose() {
      return (await registry.metrics()) + (await processRegistry.metrics())
    },
  }
}

/** The child for (a, b), made once: two Map lookups per request, no key string built. */
function child2<C>(map: Map<string, Map<string, C>>, a: string, b: string, make: (a: string, b: string) => C): C {
  let inner = map.get(a)
  if (inner === undefined) map.set(a, (inner = new Map<string, C>()))
  let c = inner.get(b)
  if (c === undefined) inner.set(b, (c = make(a, b)))
  return c
}

function child3<C>(map: Map<string, Map<string, Map<string, C>>>, a: string, b: string, c: string, make: (a: string, b: string, c: string) => C): C {
  let inner = map.get(a)
  if (inner === undefined) map.set(a, (inner = new Map<string, Map<string, C>>()))
  let innermost = inner.get(b)
  if (innermost === undefined) inner.set(b, (innermost = new Map<string, C>()))
  let child = innermost.get(c)
  if (child === undefined) innermost.set(c, (child = make(a, b, c)))
  return child
}
