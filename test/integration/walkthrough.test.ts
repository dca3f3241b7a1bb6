/**
 * The README's ten-minute walk-through (issue #14 §1, "Done when"), run the way a stranger runs
 * it: its ```sh walkthrough blocks, as written and in order, in one shell, in a fresh `git clone`
 * of this repository (the working tree's edits copied in, so an uncommitted README is what runs;
 * node_modules linked, since `npm ci` needs the network). Real processes: the build, the one-line
 * app, `jwt-sidecar token --serve`, `run`, `token`, `verify` and curl.
 *
 * The checks come from the README itself: each `curl` line's comment names the status it gets
 * (`# 200: hello alice`), and the statuses must come back in that order; the 200 must reach the app
 * with the token's subject, and the walk-through must show a 200 and a 403. `check-config` must
 * say OK and both `verify` runs must give the outcomes the README names. The last command kills
 * the three background processes: bash complains about a job that is already gone.
 *
 * The walk-through uses fixed ports (3000, 8080, 8900, 9901). In its own network namespace
 * (`unshare -rn`, with loopback brought up by `ip`) nothing else on the machine can hold them;
 * where that is not possible the test runs in the machine's namespace and first checks that the
 * ports are free, failing with the port's name otherwise. Nothing is skipped.
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fencedBlocks, section } from '../helpers/markdown.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const HEADING = '## Protect your app in ten minutes'

function git(args: string[], cwd: string): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 })
}

/** A fresh clone of the repository, with the working tree's uncommitted edits, new files and deletions copied in. */
function freshClone(dest: string): void {
  assert.ok(existsSync(join(ROOT, '.git')), `${ROOT} is not a git checkout: the walk-through is tested in a fresh clone of it`)
  git(['clone', '--quiet', '--no-hardlinks', ROOT, dest], tmpdir())
  // What a commit of the working tree would hold: tracked files that still exist, and untracked files that are not ignored.
  const files = git(['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT).split('\0').filter((f) => f !== '')
  const keep = new Set(files.filter((f) => existsSync(join(ROOT, f)) || isLink(join(ROOT, f))))
  for (const f of keep) {
    const from = join(ROOT, f)
    const to = join(dest, f)
    mkdirSync(dirname(to), { recursive: true })
    if (isLink(from)) {
      rmSync(to, { force: true })
      symlinkSync(readlinkSync(from), to)
    } else if (lstatSync(from).isFile()) {
      copyFileSync(from, to)
    }
  }
  for (const f of git(['ls-files', '-z'], dest).split('\0')) if (f !== '' && !keep.has(f)) unlinkSync(join(dest, f))
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}

/** Whether a network namespace of our own can be made here: `unshare -rn` and `ip` to bring its loopback up. */
function ownNetworkNamespace(): boolean {
  const r = spawnSync('unshare', ['-rn', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8', timeout: 10_000 })
  return r.error === undefined && r.status === 0
}

async function portIsFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the script in bash, in its own process group; every process it leaves behind is killed once bash exits. */
async function runScript(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const killGroup = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // the group is gone already
    }
  }
  const timer = setTimeout(killGroup, timeoutMs)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (c, signal) => resolve(signal === null ? c : null))
  })
  clearTimeout(timer)
  // The sidecar and the issuer may still be in their graceful shutdown: their output so far is enough.
  killGroup()
  await new Promise((resolve) => child.once('close', resolve))
  return { code, stdout, stderr }
}

test('README "Protect your app in ten minutes": its commands, as written, in a fresh clone, give the 200 and the 403 they promise', { timeout: 300_000 }, async (t: TestContext) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const blocks = fencedBlocks(section(readme, HEADING, 'README.md'), 'sh walkthrough')
  assert.ok(blocks.length >= 5, `README.md "${HEADING}" has ${blocks.length} \`\`\`sh walkthrough blocks; the test runs those`)
  const script = blocks.join('')
  const lines = script.split('\n')

  // What the README promises: a status per curl line, in order, and the two verify outcomes.
  const expected = lines.filter((l) => /^curl\s+(?:.*\s)?-[A-Za-z]*i[A-Za-z]*\s/.test(l)).map((l) => {
    const status = /#\s*(\d{3})\b/.exec(l)?.[1]
    assert.ok(status !== undefined, `a curl line of the walk-through names no status in its comment: ${l}`)
    return Number(status)
  })
  assert.ok(expected.includes(200) && expected.includes(403), `the walk-through should show a 200 and a 403, its curl lines promise ${expected.join(', ')}`)
  assert.ok(lines.some((l) => l.startsWith('jwt-sidecar token ') && l.includes('--serve')), 'the walk-through no longer starts a local issuer with jwt-sidecar token --serve')
  for (const command of ['jwt-sidecar check-config', 'TOKEN=$(jwt-sidecar token', 'jwt-sidecar run', 'jwt-sidecar verify']) {
    assert.ok(lines.some((l) => l.startsWith(command)), `the walk-through no longer runs ${command}`)
  }

  const nodeModules = join(ROOT, 'node_modules')
  assert.ok(existsSync(nodeModules), `${nodeModules} is missing: run npm ci first (the clone links it instead of installing)`)
  assert.ok(spawnSync('curl', ['--version']).status === 0, 'curl is not on PATH: the walk-through needs it (apt-get install curl)')

  const work = mkdtempSync(join(tmpdir(), 'jwt-sidecar-walkthrough-'))
  t.after(() => rmSync(work, { recursive: true, force: true }))
  const clone = join(work, 'jwt-sidecar')
  freshClone(clone)
  symlinkSync(realpathSync(nodeModules), join(clone, 'node_modules'))
  assert.ok(!existsSync(join(clone, 'dist')), 'a fresh clone has no build')
  const home = join(work, 'home')
  mkdirSync(home, { mode: 0o700 })
  writeFileSync(join(work, 'walkthrough.sh'), script)

  // A new HOME (the token command's key directory is under it), the machine's PATH for node, npm and curl.
  const env: NodeJS.ProcessEnv = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: home, LANG: 'C.UTF-8', npm_config_update_notifier: 'false' }
  // Interactive shells expand aliases; a script's bash must be told to.
  const bash = ['bash', '-O', 'expand_aliases', join(work, 'walkthrough.sh')]
  let run: Run
  if (ownNetworkNamespace()) {
    t.diagnostic('running in a network namespace of its own (unshare -rn)')
    run = await runScript('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...bash], clone, env, 240_000)
  } else {
    const ports = [...new Set([...script.matchAll(/127\.0\.0\.1:(\d+)/g), ...script.matchAll(/listen\(\s*(\d+)/g)].map((m) => Number(m[1])))]
    for (const port of ports) assert.ok(await portIsFree(port), `port ${port} on 127.0.0.1 is in use: the walk-through uses it as written (no network namespace here: unshare -rn and ip are needed for one)`)
    t.diagnostic(`running in the machine's network namespace, ports ${ports.join(', ')} free`)
    run = await runScript(bash[0]!, bash.slice(1), clone, env, 240_000)
  }
  const out = `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`

  assert.equal(run.code, 0, `the walk-through's shell failed:\n${out}`)
  // bash's kill succeeds when one of its jobs could be signalled; a job already gone is only a message.
  assert.doesNotMatch(run.stderr, /\bkill: /, `a background process of the walk-through was gone before its last line (kill):\n${out}`)
  assert.match(run.stdout, /^my-app\.yaml: OK: 1 issuer\(s\) \(local-test\), 2 route\(s\)/m, `check-config did not accept the walk-through's config:\n${out}`)
  assert.match(run.stdout, /\{"status":"ready"\}/, `the sidecar never became ready:\n${out}`)
  const outcomes = [...run.stdout.matchAll(/^outcome: (.*)$/gm)].map((m) => m[1])
  assert.deepEqual(outcomes, ['forwarded', 'denied 403 insufficient_scope'], `the two verify runs:\n${out}`)
  const statuses = [...run.stdout.matchAll(/^HTTP\/[\d.]+ (\d{3})/gm)].map((m) => Number(m[1]))
  assert.deepEqual(statuses, expected, `the curl statuses differ from what README.md promises:\n${out}`)
  // The 200's body is the app's: it names the verified subject.
  const ok = run.stdout.slice(run.stdout.search(/^HTTP\/[\d.]+ 200/m))
  assert.match(ok.slice(0, ok.search(/^HTTP\/[\d.]+ (?!200)/m)), /^hello alice$/m, `the app did not get X-Auth-Subject: alice:\n${out}`)
  assert.doesNotMatch(run.stdout, /hello admin/, 'the forged X-Auth-Subject reached the app')
  // The token command kept its key where the README says, private to the user.
  assert.ok(existsSync(join(home, '.local/state/jwt-sidecar/token-keys/ES256.jwk')), 'the token key is not in ~/.local/state/jwt-sidecar/token-keys')
})
