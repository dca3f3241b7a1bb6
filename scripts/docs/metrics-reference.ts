/**
 * docs/reference/metrics.md from the metric declarations: the registry createMetrics builds
 * (src/observe/metrics.ts and the files it registers from), so a metric added there is on the
 * page, with the type, labels and help text Prometheus itself receives.
 */
import { createMetrics } from '../../src/observe/metrics.ts'
import { cell, code, generatedNotice, table } from './markdown.ts'

/** What prom-client's metric objects carry besides the MetricObject its typings declare. */
interface Declared {
  readonly name: string
  readonly help: string
  readonly type: string
  readonly labelNames?: readonly string[]
}

/**
 * @example
 * writeFileSync('docs/reference/metrics.md', await metricsReference())
 */
export async function metricsReference(): Promise<string> {
  const metrics = createMetrics()
  // The type as exposed (getMetricsAsJSON), the label names from the declarations.
  const exposed = new Map((await metrics.registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]))
  // By code point, not localeCompare: the page must come out the same under every locale.
  const declared = (metrics.registry.getMetricsAsArray() as unknown as Declared[]).slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const rows = declared.map((m) => [
    code(m.name),
    exposed.get(m.name) ?? String(m.type),
    (m.labelNames ?? []).map(code).join(', '),
    cell(m.help, m.name),
  ])
  return [
    generatedNotice('the metrics src/observe/metrics.ts registers'),
    '',
    '# Metrics',
    '',
    [
      'What the admin port\'s `/metrics` serves (Prometheus text format), from the sidecar\'s own registry. The help',
      'text is what Prometheus receives. Label values come only from closed sets: configured issuer and route',
      'names, the [reason codes](reasons.md), and the fixed words each help text lists. A label never holds a',
      'path, a subject, a `kid` or an IP address.',
    ].join('\n'),
    '',
    table(['Metric', 'Type', 'Labels', 'Help'], rows),
    '',
    [
      '`/metrics` also serves prom-client\'s default process and Node.js metrics from a separate registry, with',
      'the same prefix (`jwt_sidecar_process_…`, `jwt_sidecar_nodejs_…`); which of them exist depends on the',
      'platform and the Node.js version.',
    ].join('\n'),
    '',
  ].join('\n')
}
