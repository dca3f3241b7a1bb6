/**
 * Every metric declared once. Label values come only from closed sets: configured issuer
 * and route names, the reason codes, fixed outcome/result words. Never a path, sub, kid or IP.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { KeyEvent } from '../keys/types.ts'
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
export function createMetrics(): Metrics {
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
  const jwksFetches = new Counter({
    name: `${PREFIX}jwks_fetches_total`,
    help: 'JWKS fetch attempts by issuer, result (success, error) and trigger (startup, interval, unknown_kid).',
    labelNames: ['issuer', 'result', 'trigger'] as const,
    registers: [registry],
  })
  const jwksLastSuccess = new Gauge({
    name: `${PREFIX}jwks_last_success_timestamp_seconds`,
    help: 'Unix time of the last successful JWKS fetch, by issuer.',
    labelNames: ['issuer'] as const,
    registers: [registry],
  })
  const jwksKeys = new Gauge({
    name: `${PREFIX}jwks_keys`,
    help: 'Usable keys in the current set, by issuer.',
    labelNames: ['issuer'] as const,
    registers: [registry],
  })
  const keyChanges = new Counter({
    name: `${PREFIX}jwks_key_changes_total`,
    help: 'Keys added to, removed from or rejected for an issuer key set.',
    labelNames: ['issuer', 'change'] as const,
    registers: [registry],
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
        case 'jwks.fetch':
          jwksFetches.labels(e.issuer, e.result, e.trigger).inc()
          if (e.result === 'success') {
            jwksLastSuccess.labels(e.issuer).set(Date.now() / 1000)
            if (e.keys !== undefined) jwksKeys.labels(e.issuer).set(e.keys)
          }
          break
        case 'jwks.key_added':
          keyChanges.labels(e.issuer, 'added').inc()
          break
        case 'jwks.key_removed':
          keyChanges.labels(e.issuer, 'removed').inc()
          break
        case 'jwks.key_rejected':
          keyChanges.labels(e.issuer, 'rejected').inc()
          break
      }
    },
    async expose() {
      return (await registry.metrics()) + (await processRegistry.metrics())
    },
  }
}
