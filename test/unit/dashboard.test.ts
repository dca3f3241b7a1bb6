/**
 * The Grafana dashboard shipped with the Helm chart (helm/jwt-sidecar/dashboards/jwt-sidecar.json)
 * must not drift from the metrics the code registers: a renamed or dropped metric, a counter
 * graphed without rate(), a histogram read other than through its buckets, a panel that ignores
 * the namespace/job/pod/issuer/route variables, or a new metric nobody graphs fails here.
 * The registry of createMetrics() is the source of truth for names, types and labels.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createMetrics } from '../../src/observe/metrics.ts'
import type { IssuerKeyStatus } from '../../src/keys/types.ts'

const DASHBOARD_PATH = fileURLToPath(new URL('../../helm/jwt-sidecar/dashboards/jwt-sidecar.json', import.meta.url))
const DATASOURCE = '${datasource}'

/**
 * Metric families of our registry that deliberately appear in no panel, with the reason.
 * Empty today: every family is graphed. Add an entry here (not a silent gap) when one is not.
 */
const OMITTED: Readonly<Record<string, string>> = {
  // Issue #12: only issuers with kidless.maxCandidates above 1 make it interesting; docs/reference/metrics.md describes it.
  // Issue #13 §3: opt-in, and it moves once per start and once per refresh.
  jwt_sidecar_jwks_snapshot_total: 'the key snapshot is opt-in and counts one read per start and one write per refresh; the jwks.snapshot_* log events and an ad-hoc query (increase by result) are the view',
  jwt_sidecar_kidless_signature_checks: 'tokens without kid are rare, and only an issuer with kidless.maxCandidates > 1 costs more than one check each; an ad-hoc query (rate of _sum by issuer) is the view',
  // Issue #13 §1: series only with `tls`; the expiry has its alert (JwtSidecarTlsCertificateExpiringSoon), whose runbook queries both.
  jwt_sidecar_tls_certificate_expiry_timestamp_seconds: 'only pods with tls have it, and JwtSidecarTlsCertificateExpiringSoon watches it; a panel would be empty for most installs',
  jwt_sidecar_tls_reloads_total: 'only pods with tls have it; a failure is logged as tls.reload_failed and named in the expiry runbook',
  // Issue #13 §2: DPoP is opt-in per issuer; its refusals are requests_total{reason="dpop_replay"}, graphed with every reason.
  jwt_sidecar_dpop_replay_cache_entries: 'DPoP is opt-in per issuer, so the panel would be empty for most installs; the fill level against its 100 000 bound is an ad-hoc query',
  jwt_sidecar_dpop_replay_refusals_total: 'its refusals already show as reason dpop_replay on the rejection panels; the replay/full split is an ad-hoc query',
}

/** Filters every selector of a jwt_sidecar_* metric must carry (the dashboard's variables). */
const ALWAYS_FILTERED = ['namespace', 'job', 'pod'] as const
/** Variables for metric labels: a selector of a metric with this label must filter on it. */
const LABEL_VARIABLES = ['issuer', 'route'] as const

interface GridPos { x: number; y: number; w: number; h: number }
interface Datasource { type?: string; uid?: string }
interface Target { refId?: string; expr?: string; datasource?: Datasource }
interface Panel {
  id?: number
  type?: string
  title?: string
  gridPos?: GridPos
  datasource?: Datasource
  targets?: Target[]
  panels?: Panel[]
}
interface Variable {
  type: string
  name: string
  query?: string | { query?: string }
  datasource?: Datasource
  multi?: boolean
  includeAll?: boolean
}
interface Annotation { name?: string; expr?: string; datasource?: Datasource; builtIn?: number }
interface Dashboard {
  uid?: string
  title?: string
  schemaVersion?: number
  panels?: Panel[]
  templating?: { list?: Variable[] }
  annotations?: { list?: Annotation[] }
}

const raw = readFileSync(DASHBOARD_PATH, 'utf8')
const dashboard = JSON.parse(raw) as Dashboard

/** Panels in order, with the panels inside collapsed rows. */
function allPanels(panels: readonly Panel[] = dashboard.panels ?? []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])])
}
const panels = allPanels()
const targets = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t })))
const annotations = (dashboard.annotations?.list ?? []).filter((a) => a.builtIn !== 1)
const variables = dashboard.templating?.list ?? []
const variableQuery = (v: Variable): string => (typeof v.query === 'string' ? v.query : v.query?.query ?? '')

/** Every PromQL expression that is evaluated: panel targets and annotation queries. */
const exprs: { where: string; expr: string }[] = [
  ...targets.map(({ panel, target }) => ({ where: `panel ${panel.id} "${panel.title}" target ${target.refId}`, expr: target.expr ?? '' })),
  ...annotations.map((a) => ({ where: `annotation "${a.name}"`, expr: a.expr ?? '' })),
]

// ---- the registry: names, types and label names ------------------------------------------------

interface Family { type: string; labels: Set<string> }

/**
 * Our registry's families. Label names are learned from the values: every metric is given one
 * observation (and the key store one issuer) so that each family has a series to read them from.
 */
async function registryFamilies(): Promise<Map<string, Family>> {
  const status: IssuerKeyStatus = {
    issuer: 'corp', ready: true, state: 'fresh', keys: 1, lastSuccess: 1_000, nextRefresh: undefined,
    lastError: undefined, jwksUri: undefined, keyList: [],
  }
  const m = createMetrics({ issuers: ['corp'], keyStatus: () => [status], now: () => 2_000 })
  m.request('default', 'denied', 'expired')
  m.requestDuration('default', 'denied', 0.01)
  m.verification('corp', 0.001)
  m.tokenTimes('corp', 10, 100)
  m.inflight(1)
  m.configReload('success')
  m.upstreamError('timeout')
  m.keyEvent({ event: 'jwks.refreshed', issuer: 'corp', trigger: 'startup', result: 'updated', durationMs: 5, keys: 1, nextRefreshMs: 60_000 })
  const out = new Map<string, Family>()
  for (const metric of await m.registry.getMetricsAsJSON()) {
    const labels = new Set<string>()
    for (const v of metric.values) for (const l of Object.keys(v.labels)) if (l !== 'le') labels.add(l)
    out.set(metric.name, { type: String(metric.type), labels })
  }
  return out
}

const HISTOGRAM_SERIES = /_(bucket|sum|count)$/

/** The family a series name belongs to: `x_bucket` of a histogram `x` is `x`. */
function familyOf(name: string, families: ReadonlyMap<string, Family>): string {
  const base = name.replace(HISTOGRAM_SERIES, '')
  return base !== name && families.get(base)?.type === 'histogram' ? base : name
}

/** Names as the brief spells it: `jwt_sidecar_…` (digits allowed, so none is cut short). */
const metricNames = (expr: string): string[] => expr.match(/jwt_sidecar_[a-z0-9_]+/g) ?? []

// ---- a small PromQL reader: which calls enclose each metric selector ------------------------

type Token =
  | { kind: 'ident'; text: string; pos: number }
  | { kind: '(' | ')'; pos: number }
  | { kind: 'selector'; text: string; pos: number }

/** Identifiers and parentheses; `{…}` label matchers are kept whole, ranges, strings and numbers dropped. */
function tokenize(expr: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < expr.length) {
    const c = expr[i]!
    if (c === '(' || c === ')') {
      tokens.push({ kind: c, pos: i })
      i++
    } else if (c === '{' || c === '[' || c === '"' || c === "'") {
      const close = c === '{' ? '}' : c === '[' ? ']' : c
      let j = i + 1
      let quote: string | undefined
      for (; j < expr.length; j++) {
        const d = expr[j]!
        if (quote !== undefined) {
          if (d === '\\') j++
          else if (d === quote) quote = undefined
        } else if (c === '{' && (d === '"' || d === "'")) quote = d
        else if (d === close) break
      }
      assert.ok(j < expr.length, `unbalanced ${c} at ${i} in: ${expr}`)
      if (c === '{') tokens.push({ kind: 'selector', text: expr.slice(i + 1, j), pos: i })
      i = j + 1
    } else if (/[A-Za-z_:]/.test(c)) {
      const m = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i))!
      tokens.push({ kind: 'ident', text: m[0], pos: i })
      i += m[0].length
    } else {
      i++
    }
  }
  return tokens
}

interface Call { fn: string; grouping: string[] }
interface Use { name: string; selector: string; calls: Call[] }

const GROUPING = new Set(['by', 'without'])

/**
 * Each metric occurrence with the calls around it, innermost first (`sum by (le, route) (…)`
 * and `sum(…) by (le)` both give `{fn: 'sum', grouping: ['le', 'route']}`). Plain parentheses
 * are skipped; the arguments of label_values() are not expressions and are not reported.
 */
function uses(expr: string): Use[] {
  const tokens = tokenize(expr)
  const match = new Map<number, number>()
  const stack: number[] = []
  tokens.forEach((t, i) => {
    if (t.kind === '(') stack.push(i)
    else if (t.kind === ')') {
      const open = stack.pop()
      assert.ok(open !== undefined, `unbalanced ) in: ${expr}`)
      match.set(open, i)
      match.set(i, open)
    }
  })
  assert.equal(stack.length, 0, `unbalanced ( in: ${expr}`)
  const labelsIn = (open: number): string[] =>
    tokens.slice(open + 1, match.get(open)).flatMap((t) => (t.kind === 'ident' ? [t.text] : []))

  function callAt(open: number): Call | 'grouping' {
    const prev = tokens[open - 1]
    const close = match.get(open)!
    const after = tokens[close + 1]
    const trailing = after?.kind === 'ident' && GROUPING.has(after.text) && tokens[close + 2]?.kind === '(' ? labelsIn(close + 2) : []
    if (prev?.kind === 'ident') return GROUPING.has(prev.text) ? 'grouping' : { fn: prev.text, grouping: trailing }
    if (prev?.kind === ')') {
      const groupOpen = match.get(open - 1)!
      const kw = tokens[groupOpen - 1]
      const agg = tokens[groupOpen - 2]
      if (kw?.kind === 'ident' && GROUPING.has(kw.text) && agg?.kind === 'ident') return { fn: agg.text, grouping: labelsIn(groupOpen) }
    }
    return { fn: '', grouping: [] }
  }

  const out: Use[] = []
  tokens.forEach((t, i) => {
    if (t.kind !== 'ident' || !t.text.startsWith('jwt_sidecar_')) return
    const calls: Call[] = []
    for (let j = i - 1; j >= 0; j--) {
      if (tokens[j]!.kind !== '(' || match.get(j)! < i) continue
      const call = callAt(j)
      if (call === 'grouping') return
      if (call.fn !== '') calls.push(call)
    }
    if (calls.some((c) => c.fn === 'label_values')) return
    const next = tokens[i + 1]
    out.push({ name: t.text, selector: next?.kind === 'selector' && next.pos === t.pos + t.text.length ? next.text : '', calls })
  })
  return out
}

/** Label matchers of a selector as `label op value` strings, whitespace removed. */
const matchers = (selector: string): string[] =>
  selector.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/).map((s) => s.replace(/\s+/g, '')).filter((s) => s !== '')

// ---- the tests -----------------------------------------------------------------------------------

describe('Grafana dashboard', () => {
  test('parses and identifies itself', () => {
    assert.equal(typeof dashboard, 'object')
    assert.equal(dashboard.uid, 'jwt-sidecar')
    assert.equal(dashboard.title, 'jwt-sidecar')
    assert.ok(typeof dashboard.schemaVersion === 'number' && dashboard.schemaVersion >= 38, `schemaVersion ${dashboard.schemaVersion} < 38 (Grafana 10)`)
    assert.ok(panels.length > 0, 'no panels')
  })

  test('has the datasource, namespace, job, pod, issuer and route variables', () => {
    const byName = new Map(variables.map((v) => [v.name, v]))
    const ds = byName.get('datasource')
    assert.equal(ds?.type, 'datasource')
    assert.equal(ds.query, 'prometheus')
    for (const name of ['namespace', 'job', 'pod', 'issuer', 'route']) {
      const v = byName.get(name)
      assert.ok(v !== undefined, `no $${name} variable`)
      assert.equal(v.type, 'query', `$${name}`)
      assert.equal(v.datasource?.uid, DATASOURCE, `$${name} must query ${DATASOURCE}`)
      assert.ok(v.multi === true && v.includeAll === true, `$${name} must be multi-value with All`)
      assert.match(variableQuery(v), new RegExp(`^label_values\\(jwt_sidecar_[a-z0-9_]+(\\{[^}]*\\})?,\\s*${name}\\)$`), `$${name}`)
    }
  })

  test('every panel has a unique id, a title and a gridPos that overlaps no other', () => {
    const ids = new Set<number>()
    for (const p of panels) {
      assert.ok(Number.isInteger(p.id), `panel "${p.title}" has no integer id`)
      assert.ok(!ids.has(p.id!), `panel id ${p.id} is used twice`)
      ids.add(p.id!)
      assert.ok(typeof p.title === 'string' && p.title.trim() !== '', `panel ${p.id} has no title`)
      const g = p.gridPos
      assert.ok(g !== undefined, `panel ${p.id} has no gridPos`)
      for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Number.isInteger(g[k]) && g[k] >= 0, `panel ${p.id} gridPos.${k}`)
      assert.ok(g.w > 0 && g.h > 0 && g.x + g.w <= 24, `panel ${p.id} gridPos ${JSON.stringify(g)} is outside the 24-column grid`)
    }
    for (const [i, a] of panels.entries()) {
      for (const b of panels.slice(i + 1)) {
        const [p, q] = [a.gridPos!, b.gridPos!]
        const overlap = p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h
        assert.ok(!overlap, `panels ${a.id} "${a.title}" ${JSON.stringify(p)} and ${b.id} "${b.title}" ${JSON.stringify(q)} overlap`)
      }
    }
  })

  test('every panel, target and annotation queries the ${datasource} variable', () => {
    assert.ok(targets.length > 0, 'no targets')
    for (const { panel, target } of targets) {
      assert.equal(panel.datasource?.uid, DATASOURCE, `panel ${panel.id} "${panel.title}"`)
      assert.equal(target.datasource?.uid, DATASOURCE, `panel ${panel.id} "${panel.title}" target ${target.refId}`)
      assert.ok((target.expr ?? '').trim() !== '', `panel ${panel.id} target ${target.refId} has no expr`)
    }
    for (const a of annotations) assert.equal(a.datasource?.uid, DATASOURCE, `annotation "${a.name}"`)
  })

  test('every metric it names is one createMetrics() registers', async () => {
    const families = await registryFamilies()
    const all = [...exprs, ...variables.filter((v) => v.type === 'query').map((v) => ({ where: `variable $${v.name}`, expr: variableQuery(v) }))]
    for (const { where, expr } of all) {
      const names = metricNames(expr)
      assert.ok(names.length > 0, `${where} names no jwt_sidecar_ metric: ${expr}`)
      for (const name of names) {
        assert.ok(families.has(familyOf(name, families)), `${where}: ${name} is not a metric of createMetrics() (renamed?)`)
      }
    }
  })

  test('counters only in rate()/increase(), histograms only through quantiles or _sum/_count rates', async () => {
    const families = await registryFamilies()
    for (const { where, expr } of exprs) {
      const found = uses(expr)
      assert.deepEqual(found.map((u) => u.name).sort(), metricNames(expr).sort(), `${where}: the reader missed a metric in ${expr}`)
      for (const { name, calls } of found) {
        const family = familyOf(name, families)
        const type = families.get(family)?.type
        const fns = calls.map((c) => c.fn)
        const at = `${where}: ${name} in ${expr}`
        if (type === 'counter') {
          assert.ok(fns[0] === 'rate' || fns[0] === 'increase', `${at}: a counter must be read with rate() or increase(), not ${fns[0] ?? 'raw'}`)
        } else if (type === 'histogram') {
          const suffix = HISTOGRAM_SERIES.exec(name)?.[1]
          assert.ok(suffix !== undefined, `${at}: a histogram has only _bucket, _sum and _count series`)
          assert.ok(fns[0] === 'rate' || fns[0] === 'increase', `${at}: histogram series must be read with rate() or increase()`)
          if (suffix === 'bucket') {
            const [, agg, quantile] = calls
            assert.ok(agg?.fn === 'sum' && agg.grouping.includes('le'), `${at}: buckets must be summed by (le, …) before histogram_quantile`)
            assert.equal(quantile?.fn, 'histogram_quantile', `${at}: buckets are only for histogram_quantile()`)
            assert.match(expr.slice(expr.indexOf(name)), /^[a-z0-9_]+\{[^}]*\}\[\$__rate_interval\]/, `${at}: bucket rates use [$__rate_interval]`)
          }
        } else {
          assert.equal(type, 'gauge', `${at}: unexpected metric type ${type}`)
          for (const bad of ['rate', 'irate', 'increase', 'histogram_quantile']) assert.ok(!fns.includes(bad), `${at}: a gauge is not read with ${bad}()`)
        }
      }
    }
  })

  test('every query filters by the dashboard variables that apply to its metric', async () => {
    const families = await registryFamilies()
    for (const { where, expr } of exprs) {
      for (const { name, selector } of uses(expr)) {
        const family = families.get(familyOf(name, families))!
        const have = matchers(selector)
        const want = [...ALWAYS_FILTERED, ...LABEL_VARIABLES.filter((l) => family.labels.has(l))]
        for (const label of want) {
          assert.ok(have.includes(`${label}=~"$${label}"`), `${where}: ${name}{${selector}} does not filter ${label}=~"$${label}"`)
        }
      }
    }
  })

  test('every metric family of the registry is graphed, or listed in OMITTED with a reason', async () => {
    const families = await registryFamilies()
    const graphed = new Set(targets.flatMap(({ target }) => metricNames(target.expr ?? '').map((n) => familyOf(n, families))))
    for (const [name, reason] of Object.entries(OMITTED)) {
      assert.ok(families.has(name), `OMITTED lists ${name}, which the registry does not have`)
      assert.ok(!graphed.has(name), `OMITTED lists ${name}, but a panel graphs it: drop the entry`)
      assert.ok(reason.trim() !== '', `OMITTED ${name} needs a reason`)
    }
    const missing = [...families.keys()].filter((n) => !graphed.has(n) && !(n in OMITTED))
    assert.deepEqual(missing, [], `metric families in no panel (graph them, or add them to OMITTED with a reason): ${missing.join(', ')}`)
  })
})
