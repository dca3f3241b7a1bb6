/**
 * scripts/test.mjs says at the end how many suites and tests were skipped and why, and fails
 * the run for a skip without a reason (issue #14 §6). The real script runs on fixture test files
 * in a scratch copy of the repository's layout (scripts/ copied, node_modules linked), under
 * the Node that runs this test.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const scratch: string[] = []
after(() => { for (const dir of scratch) rmSync(dir, { recursive: true, force: true }) })

/** Runs scripts/test.mjs over `files` (name → source) as its test/ folder. */
function runTests(files: Record<string, string>): { status: number | null; out: string; last: string } {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-skips-'))
  scratch.push(dir)
  mkdirSync(join(dir, 'scripts'))
  for (const f of ['test.mjs', 'test-skips-reporter.mjs']) copyFileSync(join(root, 'scripts', f), join(dir, 'scripts', f))
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  mkdirSync(join(dir, 'test'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'test', name), text)
  const r = spawnSync(process.execPath, [join(dir, 'scripts', 'test.mjs')], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 })
  const out = `${r.stdout}${r.stderr}`
  // What follows node's own summary: the skip report.
  const last = r.stdout.slice(r.stdout.search(/^(\d+ skipped)/m))
  return { status: r.status, out, last }
}

const header = "import { describe, it, test } from 'node:test'\n"

test('no skip: "0 skipped" ends the run, and the exit status is the tests\'', () => {
  const r = runTests({ 'a.test.ts': `${header}test('runs', () => {})\n` })
  assert.equal(r.status, 0, r.out)
  assert.equal(r.last.trim(), '0 skipped', r.out)
  const failing = runTests({ 'a.test.ts': `${header}test('fails', () => { throw new Error('no') })\n` })
  assert.equal(failing.status, 1, failing.out)
  assert.equal(failing.last.trim(), '0 skipped', failing.out)
})

test('each skipped suite and test is listed with its reason, across files; the run still passes', () => {
  const r = runTests({
    'a.test.ts': `${header}describe('vectors', { skip: 'vectors not found at ../shared' }, () => { it('one', () => {}); it('two', () => {}) })\ntest('runs', () => {})\n`,
    'b.test.ts': `${header}describe('tls', () => { it('https upstream', (t) => { t.skip('openssl not on PATH') }); it('runs', () => {}) })\n`,
  })
  assert.equal(r.status, 0, r.out)
  assert.equal(r.last.trim(), [
    '2 skipped (1 suite, 1 test):',
    '  suite test/a.test.ts "vectors": vectors not found at ../shared',
    '  test test/b.test.ts "https upstream": openssl not on PATH',
  ].join('\n'), r.out)
})

test('a skip without a reason is named and fails the run', () => {
  const r = runTests({ 'a.test.ts': `${header}it.skip('quietly', () => {})\ntest('runs', () => {})\n` })
  assert.equal(r.status, 1, r.out)
  assert.match(r.last, /^1 skipped \(0 suites, 1 test\):\n {2}test test\/a\.test\.ts "quietly": NO REASON GIVEN/, r.out)
  assert.match(r.last, /^1 skip\(s\) without a reason: the run fails$/m, r.out)
})
