/**
 * The examples the docs paste must stay what the code does: the production config example of
 * docs/configuration.md loads to the same config as config/sidecar.yaml, its `check-config`
 * output is what the bad example really produces, and the route-pattern trap of
 * docs/how-it-works.md warns exactly as pasted. When one of these fails, fix the page (the
 * message says what is stale). The configuration, reasons and metrics references are generated
 * (`npm run docs`) and checked by test/unit/docs-generated.test.ts.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { checkReport } from '../../src/config/report.ts'
import { fencedBlocks, readDoc, section } from '../helpers/markdown.ts'

describe('docs/configuration.md "Production config example"', () => {
  const text = section(readDoc('docs/configuration.md'), '## Production config example', 'docs/configuration.md')

  test('the production config example loads to the same config as config/sidecar.yaml', () => {
    const [example] = fencedBlocks(text, 'yaml')
    assert.ok(example !== undefined, 'no ```yaml block in "Production config example"')
    const fromDoc = parseConfig(example, 'sidecar.yaml', {})
    const fromFile = parseConfig(readDoc('config/sidecar.yaml'), 'sidecar.yaml', {})
    assert.deepEqual(fromDoc, fromFile, 'the example of docs/configuration.md and config/sidecar.yaml have drifted apart')
  })

  test('the pasted check-config output is what the bad example really produces', () => {
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
    assert.equal(pasted, actual, 'the check-config output in docs/configuration.md is stale: run it again and paste the real output')
  })
})

test('docs/how-it-works.md "Route patterns": the trap warns exactly as pasted, the fix is quiet (issue #9 §4)', () => {
  const text = section(readDoc('docs/how-it-works.md'), '### Route patterns', 'docs/how-it-works.md')
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
