/**
 * Every metric declared once. Label values come only from closed sets: configured issuer
 * and route names, the reason codes, fixed outcome/result words. Never a path, sub, kid or IP.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { KEY_SET_STATES } from '../keys/types.ts'
import type { IssuerKeyStatus, KeyEvent } from '../keys/types.ts'
import type { Reason } from '../verify/reasons.ts'

export type Outcome = 'allowed' | 'denied' | 'anonymous' | 'error'
export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset'

/** Label for requests that matched no route rule (route names cannot start with `_`). */
export const UNMATCHED_ROUTE = '_unmatched'

export interface Metrics {
  /** Our own metrics only: this is what `promtool check metrics` lints. */
  readonly registry: Registry
  /** Node process metrics, exposed alongside on /metrics. */
  readonly processRegistry: Registry
  request(route: string, outcome: Outcome, reason: Reason | 'none'): void
  verification(issuer: string, seconds: number): void
  upstreamError(kind: UpstreamErrorKind): void
  keyEvent(event: KeyEvent): void
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
  /** epoch ms */
  readonly now?: () => number
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const now = options.now ?? Date.now
  const registry = new Registry()
  const processRegistry = new Registry()
  collectDefaultMetrics({ register: processRegistry, prefix: PREFIX })

  const requests = new Counter({
    name: `${PREFIX}requests_total`,
    help: 'Requests by route rule, outcome (allowed, denied, anonymous, error) and reason code.',
    labelNames: ['route', 'outcome', 'reason'] as const,
    registers: [registry],
  })
  const verificationDuration = new Histogram({
    name: `${PREFIX}verification_duration_seconds`,
    help: 'Time to verify a token whose issuer was recognised, including any key lookup wait.',
    labelNames: ['issuer'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 2.5],
    registers: [registry],
  })
  const upstreamErrors = new Counter({
    name: `${PREFIX}upstream_errors_total`,
    help: 'Admitted requests the upstream could not answer, by kind (connect, timeout, reset).',
    labelNames: ['kind'] as const,
    registers: [registry],
  })
  const refreshes = new Counter({
    name: `${PREFIX}jwks_refresh_total`,
    help: 'Key refreshes by issuer, trigger (startup, schedule, unknown_kid, file) and result (updated, not_modified, error).',
    labelNames: ['issuer', 'trigger', 'result'] as const,
    registers: [registry],
  })
  const refreshDuration = new Histogram({
    name: `${PREFIX}jwks_refresh_duration_seconds`,
    help: 'Duration of key refreshes (discovery, fetch, import), by issuer.',
    labelNames: ['issuer'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  const keyChanges = new Counter({
    name: `${PREFIX}jwks_key_changes_total`,
    help: 'Key set changes by issuer and change (added, removed, changed: same kid with new material, replaced: no key in common).',
    labelNames: ['issuer', 'change'] as const,
    registers: [registry],
  })
  const keyRejections = new Counter({
    name: `${PREFIX}jwks_key_rejections_total`,
    help: 'Keys refused at import (private, symmetric, weak, wrong use or alg, duplicate kid), by issuer; reported once per distinct key.',
    labelNames: ['issuer'] as const,
    registers: [registry],
  })
  const unknownKid = new Counter({
    name: `${PREFIX}unknown_kid_total`,
    help: 'Tokens naming a kid not in their issuer key set, by action (refreshed: waited for a refresh, cooldown: refused without one, known_unknown: proven unknown by the last refresh).',
    labelNames: ['issuer', 'action'] as const,
    registers: [registry],
  })
  // Read from the key store at scrape time, so they are never out of date.
  const status = (): readonly IssuerKeyStatus[] => options.keyStatus?.() ?? []
  new Gauge({
    name: `${PREFIX}jwks_keys`,
    help: 'Usable keys in the current set, by issuer.',
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
    help: 'Seconds since the last successful key refresh, by issuer; absent before the first.',
    labelNames: ['issuer'] as const,
    registers: [registry],
    collect() {
      this.reset() // mirror the store exactly: no series for an issuer that is gone
      const t = now()
      for (const s of status()) if (s.lastSuccess !== undefined) this.labels(s.issuer).set(Math.max(0, (t - s.lastSuccess) / 1000))
    },
  })

  return {
    registry,
    processRegistry,
    request(route, outcome, reason) {
      requests.labels(route, outcome, reason).inc()
    },
    verification(issuer, seconds) {
      verificationDuration.labels(issuer).observe(seconds)
    },
    upstreamError(kind) {
      upstreamErrors.labels(kind).inc()
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
