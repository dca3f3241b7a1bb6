/**
 * The README is the operator's and reviewer's reference, so it must not drift from the code:
 * every config key of the schema, every reason code, every metric, the example config and
 * the pasted `check-config` output are checked against the source of truth here.
 * When one of these fails, fix README.md (the message says what is missing or stale).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { configSchema } from '../../src/config/schema.ts'
import type { SchemaNode } from '../../src/config/schema.ts'
import { createMetrics } from '../../src/observe/metrics.ts'
import { checkReport } from '../../src/config/report.ts'
import { REASONS } from '../../src/verify/reasons.ts'
import type { Reason } from '../../src/verify/reasons.ts'

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
const EXAMPLE_CONFIG = fileURLToPath(new URL('../../config/sidecar.yaml', import.meta.url))

/**
 * Every key path of the schema: `a.b` for properties, `a[].b` below array items. A map with
 * free keys (`additionalProperties: {...}`, like identity.headers) is documented as itself,
 * not per entry; arrays of scalars (audiences, methods) have no keys below them.
 */
function schemaPaths(node: SchemaNode, prefix = ''): string[] {
  const out: string[] = []
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? key : `${prefix}.${key}`
    out.push(path, ...schemaPaths(child, path))
  }
  if (node.items !== undefined) out.push(...schemaPaths(node.items, `${prefix}[]`))
  return out
}

/** The text of the `## title` section, up to the next `## ` heading. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`)
  assert.ok(start >= 0, `README.md has no "## ${title}" section`)
  const end = README.indexOf('\n## ', start + 1)
  return README.slice(start, end < 0 ? undefined : end)
}

/** Markdown table rows of a text, as trimmed cells (header and separator rows included). */
function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) => line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim()))
}

/** `` `x` `` → x; anything else → undefined. */
function code(cell: string | undefined): string | undefined {
  const m = /^`([^`]+)`$/.exec(cell ?? '')
  return m?.[1]
}

/** The bodies of the fenced blocks with this info string, in order. */
function fencedBlocks(text: string, info: string): string[] {
  const re = new RegExp(`^\`\`\`${info}\\n([\\s\\S]*?)^\`\`\`$`, 'gm')
  return [...text.matchAll(re)].map((m) => m[1]!)
}

describe('README.md', () => {
  test('keeps its first lines: the demo and test commands', () => {
    const head = README.split('\n').slice(0, 6)
    assert.equal(head[0], '# jwt-sidecar')
    assert.ok(head.some((l) => l.includes('npm ci && npm run demo')), 'the first lines lost `npm ci && npm run demo`')
    assert.ok(head.some((l) => l.includes('npm ci && npm test')), 'the first lines lost `npm ci && npm test`')
  })

  test('documents every config key of src/config/schema.ts as `path`', () => {
    const paths = schemaPaths(configSchema)
    assert.ok(paths.includes('issuers[].refresh.unknownKidCooldown') && paths.includes('tokens.from[].prefix'), 'schema walk is broken')
    const missing = paths.filter((p) => !README.includes(`\`${p}\``))
    assert.deepEqual(missing, [], `README.md does not document these config keys (write them as \`path\` in the configuration reference): ${missing.join(', ')}`)
  })

  test('documents no config key that the schema does not have', () => {
    const known = new Set(schemaPaths(configSchema))
    const documented = tableRows(section('Configuration reference'))
      .map((row) => code(row[0]))
      .filter((p): p is string => p !== undefined)
    assert.ok(documented.length > 0, 'no keys found in the configuration reference tables')
    const stale = documented.filter((p) => !known.has(p))
    assert.deepEqual(stale, [], `the configuration reference lists keys the schema does not have: ${stale.join(', ')}`)
  })

  test('the rejections table lists every reason of src/verify/reasons.ts with its status and error', () => {
    const rows = new Map<string, string[]>()
    for (const row of tableRows(section('Rejections'))) {
      const reason = code(row[0])
      if (reason !== undefined) rows.set(reason, row)
    }
    const reasons = Object.keys(REASONS) as Reason[]
    const missing = reasons.filter((r) => !rows.has(r))
    assert.deepEqual(missing, [], `the rejections table lacks these reasons (as \`reason\`): ${missing.join(', ')}`)
    const unknown = [...rows.keys()].filter((r) => !(r in REASONS))
    assert.deepEqual(unknown, [], `the rejections table lists reasons that do not exist: ${unknown.join(', ')}`)
    for (const reason of reasons) {
      const { status, error } = REASONS[reason]
      const row = rows.get(reason)!
      assert.equal(row[1], String(status), `rejections table: ${reason} should be HTTP ${status}`)
      // The body's `error` falls back to invalid_token when the challenge has none (respond.ts).
      const bodyError = error ?? 'invalid_token'
      assert.ok(row[2]?.includes(`\`${bodyError}\``), `rejections table: ${reason} should name \`${bodyError}\` in the error column`)
    }
  })

  test('documents every metric of src/observe/metrics.ts with its type, and no other', async () => {
    const metrics = createMetrics()
    const own = await metrics.registry.getMetricsAsJSON()
    const processNames = (await metrics.processRegistry.getMetricsAsJSON()).map((m) => m.name)
    const missing = own.map((m) => m.name).filter((name) => !README.includes(`\`${name}\``))
    assert.deepEqual(missing, [], `README.md does not document these metrics (as \`name\`): ${missing.join(', ')}`)

    const rows = new Map(tableRows(section('Admin port and metrics')).map((row) => [code(row[0]) ?? '', row]))
    for (const m of own) {
      assert.equal(rows.get(m.name)?.[1], String(m.type), `metrics table: ${m.name} should be a ${String(m.type)}`)
    }
    const known = new Set([...own.map((m) => m.name), ...processNames])
    const mentioned = [...README.matchAll(/`(jwt_sidecar_[a-z0-9_]+)`/g)].map((m) => m[1]!)
    const stale = mentioned.filter((name) => !known.has(name))
    assert.deepEqual(stale, [], `README.md names metrics that do not exist: ${stale.join(', ')}`)
  })

  test('the production config example loads to the same config as config/sidecar.yaml', () => {
    const [example] = fencedBlocks(section('Production config example'), 'yaml')
    assert.ok(example !== undefined, 'no ```yaml block in "Production config example"')
    const fromReadme = parseConfig(example, 'sidecar.yaml', {})
    const fromFile = parseConfig(readFileSync(EXAMPLE_CONFIG, 'utf8'), 'sidecar.yaml', {})
    assert.deepEqual(fromReadme, fromFile, 'the README example and config/sidecar.yaml have drifted apart')
  })

  test('the pasted check-config output is what the bad example really produces', () => {
    const text = section('Production config example')
    const bad = fencedBlocks(text, 'yaml')[1]
    const [consoleBlock] = fencedBlocks(text, 'console')
    assert.ok(bad !== undefined && consoleBlock !== undefined, 'the bad config example or its ```console output is missing')
    const lines = consoleBlock.split('\n')
    const first = lines.findIndex((l) => l.startsWith('$ jwt-sidecar check-config'))
    const next = lines.findIndex((l, i) => i > first && l.startsWith('$ '))
    assert.ok(first >= 0 && next > first, 'the console block should show `$ jwt-sidecar check-config ...` and then `$ echo $?`')
    const pasted = lines.slice(first + 1, next).join('\n')

    let err: unknown
    try {
      parseConfig(bad, 'bad.yaml', {})
    } catch (e) {
      err = e
    }
    assert.ok(err instanceof ConfigError, 'the bad config example is accepted; it should show errors')
    // What cli.ts prints to stderr for check-config.
    const actual = `${err.message}\n${err.issues.length} error(s) in bad.yaml`
    assert.equal(pasted, actual, 'the check-config output in README.md is stale: run it again and paste the real output')
  })

  test('the route-pattern examples: the trap warns exactly as pasted, the fix is quiet (issue #9 §4)', () => {
    const start = README.indexOf('\n### Route patterns\n')
    assert.ok(start >= 0, 'README.md has no "### Route patterns" section')
    const text = README.slice(start, README.indexOf('\n### ', start + 1))
    const [trap, fix] = fencedBlocks(text, 'yaml')
    const [consoleBlock] = fencedBlocks(text, 'console')
    assert.ok(trap !== undefined && fix !== undefined && consoleBlock !== undefined, 'the two route examples or the console block are missing')
    const [command, ...output] = consoleBlock.trimEnd().split('\n')
    assert.equal(command, '$ jwt-sidecar check-config --config orders.yaml')
    assert.equal(output.join('\n') + '\n', checkReport(parseConfig(trap, 'orders.yaml', {})), 'the pasted warning is stale: run check-config again and paste the real output')
    // The fix keeps the trap's head (upstream, issuers) and replaces its routes.
    const fixed = parseConfig(trap.slice(0, trap.indexOf('routes:')) + fix, 'orders.yaml', {})
    assert.deepEqual(fixed.warnings, [], 'the recommended routes must not warn')
    assert.deepEqual(fixed.routes.map((r) => r.auth), ['required', 'required', 'deny', 'required'])
  })
})
