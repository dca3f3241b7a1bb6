/**
 * The alert rules and the metrics exposition, checked by Prometheus' own tool:
 * - `promtool check rules` parses helm/jwt-sidecar/files/alerts.yaml (the file the Helm chart's
 *   PrometheusRule embeds; Helm reads only files inside the chart);
 * - `promtool test rules` runs helm/jwt-sidecar/files/alerts.test.yaml, where every alert fires
 *   in one scenario and stays silent in another;
 * - `promtool check metrics` lints our registry's exposition (naming, units, help). Only ours:
 *   prom-client's default `jwt_sidecar_nodejs_active_*_total` gauges fail that lint, which is why
 *   they live in a separate registry.
 * And the wiring promtool cannot see: the rules name metrics and reasons that exist, each alert's
 * runbook_url is the URL of its page under docs/runbooks/ (issue #14 §1), which exists, and the
 * rule tests cover every alert both ways. The PromQL the docs and runbooks give to paste parses, and
 * names our metrics, labels and reasons.
 *
 * promtool comes from Debian's `prometheus` package; .ci/run installs it. Without it on PATH the
 * promtool tests fail, naming what to install (a missing fixture never passes quietly).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { fencedBlocks, section } from '../helpers/markdown.ts'
import { createMetrics } from '../../src/observe/metrics.ts'
import type { IssuerKeyStatus, KeyEvent } from '../../src/keys/types.ts'
import { REASONS } from '../../src/verify/reasons.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RULES = 'helm/jwt-sidecar/files/alerts.yaml'
const RULE_TESTS = 'helm/jwt-sidecar/files/alerts.test.yaml'
const RUNBOOKS = 'docs/runbooks'

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')

/** The repository's web address is the chart's `home`; a runbook_url is its page's address there. */
const HOME = (parse(read('helm/jwt-sidecar/Chart.yaml')) as { home: string }).home
const runbookUrl = (alert: string): string => `${HOME}/blob/main/${RUNBOOKS}/${alert}.md`

// ---------------------------------------------------------------------------------------------
// promtool

interface Run {
  readonly status: number | null
  readonly output: string
}

function promtool(args: readonly string[], input?: string): Run {
  const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000, ...(input === undefined ? {} : { input }) })
  if (r.error !== undefined) throw r.error
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
}

/** The first line of `promtool --version`, or undefined when promtool is not on PATH. */
function promtoolVersion(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8', timeout: 30_000 })
  if (r.error !== undefined || r.status !== 0) return undefined
  return `${r.stdout}${r.stderr}`.split('\n')[0]?.trim()
}

const VERSION = promtoolVersion()
const MISSING = 'promtool is not on PATH: install it with `apt-get install --no-install-recommends prometheus` (Debian/Ubuntu), or get it from https://prometheus.io/download/'
// A missing promtool fails these tests (requirePromtool), locally as in CI: unchecked rules never pass.

function requirePromtool(): void {
  assert.ok(VERSION !== undefined, `${MISSING}. .ci/run installs it.`)
}

function assertOk(r: Run, what: string): void {
  assert.equal(r.status, 0, `\`promtool ${what}\` exited with ${String(r.status)}:\n${r.output}`)
}

// ---------------------------------------------------------------------------------------------
// The rule file, as data

interface AlertRule {
  readonly alert: string
  readonly expr: string
  readonly for?: string
  readonly labels?: Record<string, string>
  readonly annotations?: Record<string, string>
}
interface RuleFile {
  readonly groups: readonly { readonly name: string; readonly rules: readonly AlertRule[] }[]
}
interface RuleTestFile {
  readonly rule_files: readonly string[]
  readonly tests: readonly {
    readonly name: string
    readonly alert_rule_test?: readonly { readonly eval_time: string; readonly alertname: string; readonly exp_alerts?: readonly unknown[] | null }[]
  }[]
}

const ruleFile = parse(read(RULES)) as RuleFile
const alerts = ruleFile.groups.flatMap((g) => g.rules)

/** A Prometheus duration such as `1h30m` or `45s`, in ms. */
function durationMs(d: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
  const parts = [...d.matchAll(/(\d+)(ms|s|m|h|d|w)/g)]
  assert.ok(parts.length > 0 && parts.map((p) => p[0]).join('') === d, `not a duration: ${d}`)
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0)
}

// ---------------------------------------------------------------------------------------------
// An exposition with samples in every family

const NOW = 1_800_000_000_000

async function exposition(): Promise<{ text: string; empty: string[] }> {
  const fresh: IssuerKeyStatus = {
    issuer: 'corp',
    ready: true,
    state: 'fresh',
    keys: 2,
    lastSuccess: NOW - 30_000,
    nextRefresh: NOW + 270_000,
    lastError: undefined,
    jwksUri: 'https://idp.example.com/jwks',
    keyList: [],
  }
  const m = createMetrics({ keyStatus: () => [fresh], now: () => NOW })

  m.inflight(1)
  m.inflight(1)
  m.request('api', 'allowed', 'none')
  m.requestDuration('api', 'allowed', 0.012)
  m.request('api', 'denied', 'bad_signature')
  m.requestDuration('api', 'denied', 0.0004)
  m.request('_unmatched', 'denied', 'no_route')
  m.request('public', 'anonymous', 'none')
  m.request('api', 'error', 'upstream_timeout')
  m.requestDuration('api', 'error', 30)
  m.inflight(-1)
  m.verification('corp', 0.00021)
  m.verification('corp', 0.0009)
  m.tokenTimes('corp', 42.5, 3557.5)
  m.tokenTimes('corp', -0.4, 59.6) // an iat from the future, within clockSkew
  m.kidless('corp', 2, 'verified') // a token without kid, verified by the second of two candidates
  m.upstreamError('timeout')
  m.tls.init()
  m.tls.loaded(NOW / 1000 + 30 * 86_400)
  m.tls.failed()
  m.upstreamError('connect')
  m.configReload('success')
  m.configReload('error')

  const key = { issuer: 'corp', kid: 'k1', kty: 'RSA', alg: 'RS256', thumbprint: 'tp1', source: 'jwks' } as const
  const events: KeyEvent[] = [
    { event: 'jwks.refreshed', issuer: 'corp', trigger: 'startup', result: 'updated', durationMs: 41, keys: 2, nextRefreshMs: 270_000 },
    { event: 'jwks.refreshed', issuer: 'corp', trigger: 'schedule', result: 'not_modified', durationMs: 9, keys: 2, nextRefreshMs: 270_000 },
    { event: 'jwks.refresh_failed', issuer: 'corp', trigger: 'unknown_kid', durationMs: 5000, error: 'timeout: no answer', failures: 1, retryInMs: 1000 },
    { event: 'jwks.key_added', ...key },
    { event: 'jwks.key_removed', ...key },
    { event: 'jwks.key_changed', ...key, previousThumbprint: 'tp0' },
    { event: 'jwks.keyset_replaced', issuer: 'corp', added: 1, removed: 1 },
    { event: 'jwks.key_rejected', issuer: 'corp', kid: 'mac', why: 'symmetric key', source: 'jwks' },
    { event: 'jwks.unknown_kid', issuer: 'corp', action: 'refreshed' },
    { event: 'jwks.unknown_kid', issuer: 'corp', action: 'cooldown' },
    { event: 'jwks.unknown_kid', issuer: 'corp', action: 'known_unknown' },
    { event: 'jwks.snapshot_loaded', issuer: 'corp', file: '/var/run/jwt-sidecar/corp.jwks.json', fetchedAt: NOW - 60_000, keys: 2 },
    { event: 'jwks.snapshot_written', issuer: 'corp', file: '/var/run/jwt-sidecar/corp.jwks.json', keys: 2 },
  ]
  for (const e of events) m.keyEvent(e)

  const text = await m.registry.metrics()
  const empty = (await m.registry.getMetricsAsJSON()).filter((f) => f.values.length === 0).map((f) => f.name)
  return { text, empty }
}

// ---------------------------------------------------------------------------------------------

describe('promtool', () => {
  test(`check rules ${RULES}`, (t) => {
    requirePromtool()
    t.diagnostic(VERSION!)
    const r = promtool(['check', 'rules', RULES])
    t.diagnostic(r.output)
    assertOk(r, `check rules ${RULES}`)
    assert.match(r.output, new RegExp(`SUCCESS: ${alerts.length} rules found`), r.output)
  })

  test(`test rules ${RULE_TESTS}`, (t) => {
    requirePromtool()
    const r = promtool(['test', 'rules', RULE_TESTS])
    t.diagnostic(r.output)
    assertOk(r, `test rules ${RULE_TESTS}`)
    assert.match(r.output, /SUCCESS/, r.output)
  })

  test('check metrics: our registry exposition has no lint problems', async (t) => {
    requirePromtool()
    const { text, empty } = await exposition()
    // promtool accepts empty input, so first make sure every family is really in it.
    assert.deepEqual(empty, [], `these metric families have no samples; drive them in exposition() so promtool lints them: ${empty.join(', ')}`)
    assert.ok(!text.includes('jwt_sidecar_process_') && !text.includes('jwt_sidecar_nodejs_'), 'process metrics belong to processRegistry')
    const r = promtool(['check', 'metrics'], text)
    t.diagnostic(`${text.split('\n').filter((l) => l.startsWith('# TYPE')).length} families linted${r.output === '' ? ', no problems' : ''}`)
    assertOk(r, 'check metrics')
    assert.equal(r.output, '', `\`promtool check metrics\` reported lint problems:\n${r.output}`)
  })
})

/** Every ```promql block of docs/observability.md and the runbooks, one query per line (a `# comment` may follow). */
function docQueries(): { where: string; expr: string }[] {
  const pages = ['docs/observability.md', ...readdirSync(fileURLToPath(new URL(`../../${RUNBOOKS}`, import.meta.url))).map((f) => `${RUNBOOKS}/${f}`)]
  return pages.flatMap((page) => {
    const text = read(page)
    return [...text.matchAll(/^( *)```promql\n([\s\S]*?)^\1```$/gm)].flatMap((m) => {
      const at = text.slice(0, m.index).split('\n').length
      return m[2]!.split('\n').map((l, i) => ({ where: `${page}:${at + 1 + i}`, expr: l.trim() })).filter((q) => q.expr !== '')
    })
  })
}

describe('the PromQL of the docs and the runbooks', () => {
  const queries = docQueries()

  test('promtool parses every query', (t) => {
    requirePromtool()
    assert.ok(queries.length >= 25, `${queries.length} queries found: is the extraction still right?`)
    // Each query as a recording rule: `promtool check rules` parses its expression.
    const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-promql-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'queries.yaml')
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'docs', rules: queries.map((q, i) => ({ record: `docs:query_${i}`, expr: q.expr })) }] }))
    const r = promtool(['check', 'rules', file])
    assertOk(r, `check rules of the docs' queries; the record names are:\n${queries.map((q, i) => `docs:query_${i} ${q.where}`).join('\n')}\n`)
  })

  test('every metric a query names is ours, with the labels it filters and groups on', async () => {
    // Label names from an exposition with samples in every family.
    const labels = new Map<string, Set<string>>()
    for (const [, name, body] of (await exposition()).text.matchAll(/^([a-z_:][a-z0-9_:]*)\{([^}]*)\}/gm)) {
      const set = labels.get(name!) ?? new Set<string>()
      for (const [, l] of body!.matchAll(/([a-z_]+)="/g)) set.add(l!)
      labels.set(name!, set)
    }
    // What the scrape adds (docs/observability.md "Labels and aggregation").
    const TARGET = ['namespace', 'job', 'pod', 'instance']
    const problems: string[] = []
    for (const { where, expr } of queries) {
      for (const m of expr.matchAll(/\b(jwt_sidecar_[a-z0-9_]+)(\{[^}]*\})?/g)) {
        const own = labels.get(m[1]!)
        if (own === undefined) {
          problems.push(`${where}: ${m[1]!} is not a series of our registry`)
          continue
        }
        for (const [, l] of (m[2] ?? '').matchAll(/([a-z_]+)\s*(?:=|!=|=~|!~)/g)) {
          if (!own.has(l!) && !TARGET.includes(l!)) problems.push(`${where}: ${m[1]!} has no label ${l!}`)
        }
      }
      for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
        const names = [...expr.matchAll(/\b(jwt_sidecar_[a-z0-9_]+)/g)].map((m) => m[1]!)
        for (const l of list!.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
          if (!TARGET.includes(l) && !names.some((n) => labels.get(n)?.has(l))) problems.push(`${where}: no metric of the query has the label ${l} it groups by`)
        }
      }
      for (const [, values] of expr.matchAll(/\breason\s*!?=~?\s*"([^"]*)"/g)) {
        for (const v of values!.split('|')) {
          if (!/[.*+?\\[]/.test(v) && v !== 'REASON' && !(v in REASONS)) problems.push(`${where}: reason "${v}" does not exist`)
        }
      }
    }
    assert.deepEqual(problems, [])
  })
})

describe('alert rules wiring', () => {
  test('one group, jwt-sidecar, of alerts with severity, summary, description and runbook_url', () => {
    assert.deepEqual(ruleFile.groups.map((g) => g.name), ['jwt-sidecar'])
    assert.ok(alerts.length > 0)
    const names = alerts.map((a) => a.alert)
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], 'duplicate alert names')
    for (const a of alerts) {
      assert.match(a.alert, /^JwtSidecar[A-Z][A-Za-z]+$/, `${a.alert}: alert names are JwtSidecar<CamelCase>`)
      assert.ok(['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''), `${a.alert}: severity must be critical, warning or info`)
      for (const k of ['summary', 'description', 'runbook_url']) assert.ok((a.annotations?.[k] ?? '') !== '', `${a.alert}: annotation ${k} is missing`)
      assert.equal(a.annotations!.runbook_url, runbookUrl(a.alert), `${a.alert}: runbook_url must be its page, ${RUNBOOKS}/${a.alert}.md, in the repository (Chart.yaml home)`)
    }
  })

  test(`every alert has its runbook page in ${RUNBOOKS}/, every page there is an alert's, and docs/observability.md lists them all`, () => {
    for (const a of alerts) {
      const page = `${RUNBOOKS}/${a.alert}.md`
      assert.ok(existsSync(fileURLToPath(new URL(`../../${page}`, import.meta.url))), `${a.alert}: ${page} is missing (its runbook_url points there)`)
      assert.equal(read(page).split('\n')[0], `# ${a.alert}`, `${page}: its title should be the alert name`)
    }
    const pages = readdirSync(fileURLToPath(new URL(`../../${RUNBOOKS}`, import.meta.url))).map((f) => f.replace(/\.md$/, ''))
    const stale = pages.filter((n) => !alerts.some((a) => a.alert === n))
    assert.deepEqual(stale, [], `${RUNBOOKS}/ has pages for alerts that do not exist: ${stale.join(', ')}`)
    const table = section(read('docs/observability.md'), '## Alerts and runbooks', 'docs/observability.md')
    for (const a of alerts) {
      assert.match(table, new RegExp(`^\\| \\[\`${a.alert}\`\\]\\(runbooks/${a.alert}\\.md\\) \\| ${a.labels!.severity!} \\|`, 'm'), `${a.alert}: missing from the alerts table of docs/observability.md, or with another severity`)
    }
  })

  test('docs/observability.md "Deploying the rules": its PrometheusRule command builds this file\'s groups, and its runbook sed rewrites every runbook_url', () => {
    const text = section(read('docs/observability.md'), '### Deploying the rules', 'docs/observability.md')
    const [block] = fencedBlocks(text, 'sh')
    assert.ok(block !== undefined && block.includes('| kubectl apply -n monitoring -f -'), `the command changed shape:\n${block ?? '(no sh block)'}`)
    // No cluster here: what would go to kubectl goes to stdout.
    const rule = parse(execFileSync('bash', ['-euo', 'pipefail', '-c', block.replace('| kubectl apply -n monitoring -f -', '')], { cwd: ROOT, encoding: 'utf8' })) as { kind: string; spec: { groups: unknown } }
    assert.equal(rule.kind, 'PrometheusRule')
    assert.deepEqual(rule.spec.groups, ruleFile.groups)
    const sed = /`(sed 's\|[^`]+\|')`/.exec(text)?.[1]
    assert.ok(sed !== undefined, 'the runbook_url sed is gone from the section')
    const base = /\|(https:\/\/wiki[^|]+)\|'$/.exec(sed)?.[1]
    const moved = parse(execFileSync('bash', ['-c', `${sed} ${RULES}`], { cwd: ROOT, encoding: 'utf8' })) as RuleFile
    const urls = moved.groups.flatMap((g) => g.rules.map((r) => [r.alert, r.annotations?.runbook_url]))
    assert.deepEqual(urls, alerts.map((a) => [a.alert, `${base}${a.alert}.md`]))
  })

  test('the rules use only metrics our registry exports and reason codes that exist', async () => {
    const families = new Map((await createMetrics().registry.getMetricsAsJSON()).map((f) => [f.name, String(f.type)]))
    for (const a of alerts) {
      for (const [, name] of a.expr.matchAll(/\b(jwt_sidecar_[a-z0-9_]+)/g)) {
        const hist = /^(.*)_(bucket|count|sum)$/.exec(name!)
        const ok = families.has(name!) || (hist !== null && families.get(hist[1]!) === 'histogram')
        assert.ok(ok, `${a.alert}: ${name} is not a metric of src/observe/metrics.ts`)
      }
      for (const [, values] of a.expr.matchAll(/\breason\s*!?=~?\s*"([^"]*)"/g)) {
        for (const v of values!.split('|')) assert.ok(v === 'none' || v in REASONS, `${a.alert}: reason "${v}" is not in src/verify/reasons.ts`)
      }
    }
  })

  test(`${RULE_TESTS} has, for every alert, a case where it fires and one where it stays silent`, () => {
    const file = parse(read(RULE_TESTS)) as RuleTestFile
    assert.deepEqual(file.rule_files, ['alerts.yaml'])
    const cases = file.tests.flatMap((t) => t.alert_rule_test ?? [])
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert)
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a.alert}: no scenario where it fires`)
      const forMs = durationMs(a.for ?? '0s')
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length === 0 && durationMs(c.eval_time) > forMs),
        `${a.alert}: no scenario where it stays silent at an eval_time after its for (${a.for ?? '0s'})`,
      )
    }
    const unknown = cases.map((c) => c.alertname).filter((n) => !alerts.some((a) => a.alert === n))
    assert.deepEqual(unknown, [], `rule tests for alerts that do not exist: ${unknown.join(', ')}`)
  })
})
