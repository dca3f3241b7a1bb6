#!/usr/bin/env node
// Runs every test file with node:test under the current Node (CI calls this with Node 20 and 24).
// Node 20's `node --test` does not expand globs, so the files are listed here.
// Usage: node scripts/test.mjs [substring-filter...]
// The last lines say how many suites and tests were skipped and why (issue #14 §6): a skip is
// never silent, and a skip without a reason fails the run.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { summariseSkips } from './test-skips-reporter.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const filters = process.argv.slice(2)

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : []
  })
}

const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`)
  process.exit(1)
}
// Naming a reporter replaces node's default, so the default is named too: spec on a terminal,
// and elsewhere TAP before Node 23 (spec from 23 on).
const major = Number(process.versions.node.split('.')[0])
const shown = process.stdout.isTTY === true || major >= 23 ? 'spec' : 'tap'
const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-test-run-'))
const skipsFile = join(dir, 'skips.jsonl')
const reporters = ['--test-reporter', shown, '--test-reporter-destination', 'stdout',
  '--test-reporter', fileURLToPath(new URL('test-skips-reporter.mjs', import.meta.url)), '--test-reporter-destination', skipsFile]
const args = ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...reporters, ...files]
console.error(`node ${process.version}: ${files.length} test files`)
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
let status = r.status ?? 1
let skips
try {
  skips = summariseSkips(readFileSync(skipsFile, 'utf8'), root)
} catch (err) {
  skips = { text: `the skipped tests are unknown: ${err.message}`, unexplained: 1 }
}
rmSync(dir, { recursive: true, force: true })
console.log(skips.text)
if (skips.unexplained > 0) {
  console.log(`${skips.unexplained} skip(s) without a reason: the run fails`)
  if (status === 0) status = 1
}
process.exit(status)
