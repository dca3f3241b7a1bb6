/**
 * Counters and histograms for the per-request path, with children bound once per label set.
 *
 * prom-client hashes and validates the label values on every `inc`/`observe`, bound children
 * included (`labels()` returns closures that do it again per call: histogram.js `observe`,
 * counter.js `inc.bind`). On a path that runs tens of thousands of times a second that is
 * measurable (bench/profile.ts). These subclasses keep their own numbers per child — a
 * counter's value, a histogram's bucket counts in a Float64Array — and hand prom-client the
 * series only at scrape time, through `get()`, in the shape prom-client's own classes return.
 * The exposition, the registry and the metric types stay prom-client's.
 */
import { Counter, Histogram } from 'prom-client'
import type { CounterConfiguration, HistogramConfiguration, MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client'

export interface CounterChild {
  inc(by?: number): void
}

export interface HistogramChild {
  observe(value: number): void
}

type Labels<T extends string> = Partial<Record<T, string | number>>

function labelsOf<T extends string>(names: readonly T[], values: readonly string[]): Labels<T> {
  const labels: Labels<T> = {}
  names.forEach((n, i) => {
    labels[n] = values[i]!
  })
  return labels
}

/**
 * @example
 * const requests = new BoundCounter({ name: 'x_requests_total', help: '…', labelNames: ['route'] as const, registers: [registry] })
 * const child = requests.child('default') // once
 * child.inc()                             // per request: one addition
 */
export class BoundCounter<T extends string> extends Counter<T> {
  private readonly bound = new Map<string, { readonly labels: Labels<T>; value: number; inc(by?: number): void }>()
  private readonly names: readonly T[]

  constructor(config: CounterConfiguration<T>) {
    super(config)
    this.names = [...(config.labelNames ?? [])]
  }

  /** The child for these label values (in labelNames order), created on first use. */
  child(...values: string[]): CounterChild {
    const key = values.join('\u0000')
    let c = this.bound.get(key)
    if (c === undefined) {
      const entry = {
        labels: labelsOf(this.names, values),
        value: 0,
        inc(by = 1) {
          entry.value += by
        },
      }
      c = entry
      this.bound.set(key, c)
    }
    return c
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<T>>> {
    const base = await super.get()
    const values: MetricValue<T>[] = [...base.values]
    for (const c of this.bound.values()) values.push({ labels: c.labels, value: c.value })
    return { ...base, values }
  }

  override reset(): void {
    super.reset()
    // prom-client's constructor calls reset() before this class's fields exist.
    if (this.bound === undefined) return
    for (const c of this.bound.values()) c.value = 0
  }
}

/**
 * @example
 * const h = new BoundHistogram({ name: 'x_seconds', help: '…', labelNames: ['route'] as const, buckets: [0.01, 0.1, 1] })
 * h.child('default').observe(0.02)
 */
export class BoundHistogram<T extends string> extends Histogram<T> {
  private readonly bound = new Map<string, { readonly labels: Labels<T>; readonly counts: Float64Array; sum: number; count: number; observe(v: number): void }>()
  private readonly names: readonly T[]
  private readonly bounds: readonly number[]

  constructor(config: HistogramConfiguration<T> & { readonly buckets: readonly number[] }) {
    super(config)
    this.names = [...(config.labelNames ?? [])]
    this.bounds = [...config.buckets].sort((a, b) => a - b)
  }

  child(...values: string[]): HistogramChild {
    const key = values.join('\u0000')
    let c = this.bound.get(key)
    if (c === undefined) {
      const bounds = this.bounds
      const n = bounds.length
      const entry = {
        labels: labelsOf(this.names, values),
        // Non-cumulative per bucket; the last slot is +Inf.
        counts: new Float64Array(n + 1),
        sum: 0,
        count: 0,
        observe(v: number) {
          // NaN would poison the sum forever; prom-client throws, a request path must not.
          if (v !== v) return
          let i = 0
          while (i < n && v > bounds[i]!) i++
          entry.counts[i]!++
          entry.sum += v
          entry.count++
        },
      }
      c = entry
      this.bound.set(key, c)
    }
    return c
  }

  /**
   * prom-client's Histogram.get() splays what this returns, and the registry renders it: so the
   * bound children appear exactly as prom-client's own would (`le` first, then the labels).
   */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    // Untyped in prom-client's index.d.ts, present in histogram.js since v12.
    const own = Histogram.prototype as unknown as { getForPromString: (this: unknown) => Promise<MetricObjectWithValues<MetricValueWithName<T>>> }
    const base = await own.getForPromString.call(this)
    const values: MetricValueWithName<T>[] = [...base.values]
    const bucket = `${base.name}_bucket`
    for (const c of this.bound.values()) {
      if (c.count === 0) continue
      let cumulative = 0
      this.bounds.forEach((le, i) => {
        cumulative += c.counts[i]!
        values.push(pair({ le }, cumulative, bucket, c.labels))
      })
      values.push(pair({ le: '+Inf' }, c.count, bucket, c.labels))
      values.push(pair({}, c.sum, `${base.name}_sum`, c.labels))
      values.push(pair({}, c.count, `${base.name}_count`, c.labels))
    }
    return { ...base, values }
  }

  override reset(): void {
    super.reset()
    // prom-client's constructor calls reset() before this class's fields exist.
    if (this.bound === undefined) return
    for (const c of this.bound.values()) {
      c.counts.fill(0)
      c.sum = 0
      c.count = 0
    }
  }
}

/** One series in prom-client's internal histogram shape (histogram.js setValuePair). */
function pair<T extends string>(labels: Record<string, string | number>, value: number, metricName: string, shared: Labels<T>): MetricValueWithName<T> {
  return { labels, value, metricName, sharedLabels: shared } as unknown as MetricValueWithName<T>
}
