/**
 * The README is the operator's and reviewer's front page, so it must not drift from the code:
 * the example config and the pasted `check-config` output are checked against the source of
 * truth here. When one of these fails, fix README.md (the message says what is stale).
 * The configuration, reasons and metrics references are generated (`npm run docs`) and
 * checked by test/unit/docs-generated.test.ts.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { checkReport } from '../../src/config/report.ts'

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
const EXAMPLE_CONFIG = fileURLToPath(new URL('../../config/sidecar.yaml', import.meta.url))

/** The text of the `## title` section, up to the next `## ` heading. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`)
  assert.ok(start >= 0, `README.md has no "## ${title}" section`)
  const end = README.indexOf('\n## ', start + 1)
  return README.slice(start, end < 0 ? undefined : end)
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
