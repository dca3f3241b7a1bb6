/**
 * Metrics whose values are kept elsewhere (a cache's own counters, a size) and handed to
 * prom-client at scrape time: nothing is called per request.
 */
import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'

/**
 * A counter whose series are running totals kept elsewhere, one per label value (a closed
 * set), read at scrape time.
 *
 * @example
 * scrapedCounter(registry, 'jwt_sidecar_token_cache_lookups_total', 'Lookups by result.', 'result', { hit: () => stats.hits, miss: () => stats.misses })
 */
export function scrapedCounter(registry: Registry, name: string, help: string, label: string, totals: Readonly<Record<string, () => number>>): void {
  const reported = new Map<string, number>()
  new Counter({
    name, help, labelNames: [label], registers: [registry],
    collect() {
      for (const [value, total] of Object.entries(totals)) {
        const now = total()
        this.labels(value).inc(now - (reported.get(value) ?? 0))
        reported.set(value, now)
      }
    },
  })
}

/** A gauge read at scrape time. */
export function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name, help, registers: [registry],
    collect() {
      this.set(read())
    },
  })
}
