/**
 * `npm ci` prints no EBADENGINE warning (issue #14 §6): every package in package-lock.json
 * accepts the Node that runs this test. CI runs the suite under Node 20 and 24, so both
 * supported lines are checked. npm decides it from the lockfile alone, so a dry run in a scratch
 * directory holding copies of package.json and package-lock.json answers without touching
 * node_modules; npm's own CLI runs under this process's Node, whichever `npm` is on PATH.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const scratch: string[] = []
after(() => { for (const dir of scratch) rmSync(dir, { recursive: true, force: true }) })

/** npm's CLI script behind the `npm` on PATH (…/npm/bin/npm-cli.js). */
function npmCli(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const bin = join(dir, 'npm')
    if (!existsSync(bin)) continue
    const cli = join(dirname(realpathSync(bin)), 'npm-cli.js')
    if (existsSync(cli)) return cli
  }
  throw new Error('npm is not on PATH (this test runs npm ci --dry-run)')
}

/** `npm ci --dry-run` over this package.json and `lock`; its output. */
function dryRunCi(lock: string): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-engines-'))
  scratch.push(dir)
  writeFileSync(join(dir, 'package.json'), readFileSync(join(root, 'package.json')))
  writeFileSync(join(dir, 'package-lock.json'), lock)
  // No npm_* variables from an enclosing `npm test`: a loglevel there could hide the warnings.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))
  const r = spawnSync(process.execPath, [npmCli(), 'ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=warn'],
    { cwd: dir, env, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, out: `${r.stdout}${r.stderr}${r.error === undefined ? '' : String(r.error)}` }
}

/** The packages npm warns about: `package: 'name@version'` inside each EBADENGINE block. */
function badEngines(out: string): string[] {
  return [...out.matchAll(/EBADENGINE\s+package: '([^']+)'/g)].map((m) => m[1]!)
}

const lockText = readFileSync(join(root, 'package-lock.json'), 'utf8')

test(`npm ci --dry-run on Node ${process.versions.node}: no EBADENGINE`, () => {
  const r = dryRunCi(lockText)
  assert.equal(r.status, 0, r.out)
  assert.match(r.out, /added \d+ packages/, `npm did not read the lockfile:\n${r.out}`)
  assert.deepEqual(badEngines(r.out), [], `packages whose engines exclude Node ${process.versions.node}; pin or override them in package.json:\n${r.out}`)
})

test('the check sees a package whose engines exclude this Node', () => {
  const lock = JSON.parse(lockText) as { packages: Record<string, { version?: string; engines?: Record<string, string> }> }
  const entry = lock.packages['node_modules/yaml']
  assert.ok(entry?.version !== undefined, 'yaml is in the lockfile')
  entry.engines = { node: '>=999' }
  assert.deepEqual(badEngines(dryRunCi(JSON.stringify(lock)).out), [`yaml@${entry.version}`])
})
