/**
 * The TLS listener's metrics (proxy/tls.ts). Their series appear only once `tls` is
 * configured (`init`): a plain listener has no certificate, and an expiry of 0 would fire the
 * expiry alert.
 */
import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'

export interface TlsMetrics {
  /** The reload counters at 0 (increase() sees the first failure); called when `tls` is configured. */
  init(): void
  /** A pair was loaded and is now served; `notAfter` in Unix seconds. */
  loaded(notAfter: number): void
  /** A changed pair was refused; the one in use is kept. */
  failed(): void
}

const RESULTS = ['success', 'failure'] as const

/**
 * @example
 * const tls = createTlsMetrics(registry)
 * tls.init()
 * tls.loaded(1767225600)
 */
export function createTlsMetrics(registry: Registry): TlsMetrics {
  const expiry = new Gauge({
    name: 'jwt_sidecar_tls_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the certificate listen serves (listener=proxy), Unix seconds; a refused reload leaves it unchanged; no series without tls.',
    // One value, "proxy": a labelled gauge has no series until set, an unlabelled one reads 0.
    labelNames: ['listener'] as const,
    registers: [registry],
  })
  const reloads = new Counter({
    name: 'jwt_sidecar_tls_reloads_total',
    help: 'Loads of the tls certificate and key files by result (success: the start and each changed pair; failure: a changed pair refused, the one in use stays); both start at 0 with tls, no series without it.',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  return {
    init() {
      for (const result of RESULTS) reloads.inc({ result }, 0)
    },
    loaded(notAfter) {
      expiry.set({ listener: 'proxy' }, notAfter)
      reloads.inc({ result: 'success' })
    },
    failed() {
      reloads.inc({ result: 'failure' })
    },
  }
}
