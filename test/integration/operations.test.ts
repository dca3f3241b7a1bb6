/**
 * Operations as Kubernetes exercises them, on the real process (`node dist/src/cli.js run`):
 * graceful shutdown with a slow request in flight, a second signal, Ctrl-C at a real
 * pseudo-terminal, and live config reload through a ConfigMap-style `..data` symlink swap and
 * SIGHUP, and a restore after a rejected edit.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { waitFor } from '../../src/wait-for.ts'
import { startCliRun } from '../helpers/cli-process.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer } from '../helpers/issuer.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')

interface Running {
  readonly child: ChildProcessWithoutNullStreams
  readonly proxyUrl: string
  /** `atMs`: performance.now() when the process exited. */
  readonly adminUrl: string
  logs(): Array<Record<string, unknown>>
  exited(): Promise<{ code: number | null; atMs: number }>
}

/** Starts the built CLI with `config`; resolves once it logged its bound ports and is ready. */
async function run(configPath: string): Promise<Running> {
  const p = await startCliRun(configPath, (out) => jsonLines(out).find((l) => l.event === 'server.started'))
  const running: Running = { child: p.child, proxyUrl: String(p.started.proxy), adminUrl: String(p.started.admin), logs: () => jsonLines(p.out()), exited: p.exited }
  await waitFor(async () => (await status(`${running.adminUrl}/readyz`)) === 200, { what: 'ready', timeoutMs: 10_000 })
  return running
}

const jsonLines = (text: string): Array<Record<string, unknown>> => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)

async function status(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(url, { headers })
  await res.body.dump()
  return res.statusCode
}

function configText(o: { issuer: TestIssuer; upstream: string; delay?: string; timeout?: string; audiences?: string; extraRoute?: string; listen?: string }): string {
  return `
listen: ${o.listen ?? '127.0.0.1:0'}
admin: { listen: 127.0.0.1:0 }
upstream: { url: ${o.upstream} }
shutdown: { delay: ${o.delay ?? '600ms'}, timeout: ${o.timeout ?? '5s'} }
issuers:
  - name: corp
    issuer: ${o.issuer.issuer}
    jwksUri: ${o.issuer.jwksUri}
    audiences: ${o.audiences ?? '[test-api]'}
routes:${o.extraRoute ?? ''}
  - name: default
    path: /**
    auth: required
log: { level: info, access: false }
`
}

let issuer: TestIssuer
let upstreamUrl: string
let upstreamClose: () => Promise<void>
/** Requests to /slow are answered after this many ms; /hang never. */
let slowMs = 1500
let upstreamSeen = 0

before(async () => {
  issuer = await startTestIssuer()
  const server = createServer((req, res) => {
    upstreamSeen++
    if (req.url?.startsWith('/hang') === true) return
    const wait = req.url?.startsWith('/slow') === true ? slowMs : 0
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'), wait)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  upstreamClose = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()) })
})
after(async () => {
  await upstreamClose?.()
  await issuer?.close()
})

function tempConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-ops-'))
  const file = join(dir, 'sidecar.yaml')
  writeFileSync(file, text)
  return file
}

describe('graceful shutdown on SIGTERM', () => {
  test('readiness fails at once, requests are still served during shutdown.delay, the slow request in flight completes, exit 0', { timeout: 30_000 }, async () => {
    const sc = await run(tempConfig(configText({ issuer, upstream: upstreamUrl, delay: '800ms', timeout: '5s' })))
    const auth = { authorization: `Bearer ${await issuer.sign({ sub: 'alice' })}` }
    slowMs = 1500
    const seen = upstreamSeen
    const slow = request(`${sc.proxyUrl}/slow`, { headers: auth }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
    await waitFor(() => upstreamSeen > seen, { what: 'the slow request to reach the upstream', timeoutMs: 10_000 })
    const t0 = performance.now()
    sc.child.kill('SIGTERM')
    await waitFor(async () => (await status(`${sc.adminUrl}/readyz`)) === 503, { what: 'readiness to fail', timeoutMs: 2000 })
    const readyFailedMs = performance.now() - t0
    // Within shutdown.delay the proxy still serves new requests (endpoints are still updating).
    assert.equal(await status(`${sc.proxyUrl}/fast`, auth), 200)
    const done = await slow
    assert.deepEqual(done, { status: 200, body: 'ok' }, 'the request in flight completes')
    const { code, atMs } = await sc.exited()
    assert.equal(code, 0)
    const events = sc.logs().map((l) => l.event)
    for (const e of ['shutdown.started', 'shutdown.draining', 'shutdown.completed']) assert.ok(events.includes(e), `${e} in ${events.join(',')}`)
    assert.ok(!events.includes('shutdown.timeout'))
    assert.ok(readyFailedMs < 500, `readiness failed after ${readyFailedMs} ms`)
    console.log(`shutdown: readiness failed ${Math.round(readyFailedMs)} ms after SIGTERM; the 1.5 s request completed; exited 0 ${Math.round(atMs - t0)} ms after SIGTERM (delay 800 ms)`)
  })

  test('a request that outlives shutdown.timeout is cut, and the process still exits 0', { timeout: 30_000 }, async () => {
    const sc = await run(tempConfig(configText({ issuer, upstream: upstreamUrl, delay: '100ms', timeout: '400ms' })))
    const auth = { authorization: `Bearer ${await issuer.sign({ sub: 'alice' })}` }
    const hung = request(`${sc.proxyUrl}/hang`, { headers: auth }).then((r) => r.statusCode, (e: Error) => e.message)
    await new Promise((r) => setTimeout(r, 100))
    sc.child.kill('SIGTERM')
    const { code } = await sc.exited()
    assert.equal(code, 0)
    assert.notEqual(await hung, 200)
    assert.ok(sc.logs().some((l) => l.event === 'shutdown.timeout'))
  })

  test('a second signal exits at once', { timeout: 30_000 }, async () => {
    const sc = await run(tempConfig(configText({ issuer, upstream: upstreamUrl, delay: '10s', timeout: '10s' })))
    sc.child.kill('SIGTERM')
    await waitFor(async () => (await status(`${sc.adminUrl}/readyz`)) === 503, { what: 'readiness to fail', timeoutMs: 2000 })
    const t0 = performance.now()
    sc.child.kill('SIGTERM')
    const { code } = await sc.exited()
    assert.equal(code, 130)
    assert.ok(performance.now() - t0 < 1000)
  })
})

describe('SIGINT: Ctrl-C at a terminal skips shutdown.delay (issue #14 §6); without one it is SIGTERM', () => {
  test('SIGINT without a terminal (kill -INT, a process manager) keeps shutdown.delay, as SIGTERM does', { timeout: 30_000 }, async () => {
    const sc = await run(tempConfig(configText({ issuer, upstream: upstreamUrl, delay: '800ms', timeout: '5s' })))
    const auth = { authorization: `Bearer ${await issuer.sign({ sub: 'alice' })}` }
    const t0 = performance.now()
    sc.child.kill('SIGINT')
    await waitFor(async () => (await status(`${sc.adminUrl}/readyz`)) === 503, { what: 'readiness to fail', timeoutMs: 2000 })
    assert.equal(await status(`${sc.proxyUrl}/fast`, auth), 200, 'still serving within shutdown.delay')
    const { code, atMs } = await sc.exited()
    assert.equal(code, 0)
    assert.ok(atMs - t0 >= 800, `exited ${Math.round(atMs - t0)} ms after SIGINT, before the 800 ms delay`)
    const started = sc.logs().find((l) => l.event === 'shutdown.started')!
    assert.deepEqual([started.signal, started.interactive, started.delayMs, started.timeoutMs], ['SIGINT', false, 800, 5000])
  })

  test('Ctrl-C in a real pseudo-terminal (util-linux script): no delay, the request in flight still completes, exit 0', { timeout: 30_000 }, async () => {
    const sc = await runInTerminal(tempConfig(configText({ issuer, upstream: upstreamUrl, delay: '20s', timeout: '20s' })))
    try {
      const auth = { authorization: `Bearer ${await issuer.sign({ sub: 'alice' })}` }
      slowMs = 700
      const seen = upstreamSeen
      const slow = request(`${sc.proxyUrl}/slow`, { headers: auth }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
      await waitFor(() => upstreamSeen > seen, { what: 'the slow request to reach the upstream', timeoutMs: 10_000 })
      const t0 = performance.now()
      sc.ctrlC()
      assert.deepEqual(await slow, { status: 200, body: 'ok' }, 'the request in flight completes')
      const { code, atMs } = await sc.exited()
      const tookMs = atMs - t0
      assert.equal(code, 0, sc.output())
      const started = sc.logs().find((l) => l.event === 'shutdown.started')
      assert.ok(started !== undefined, sc.output())
      assert.deepEqual([started.signal, started.interactive, started.delayMs, started.timeoutMs], ['SIGINT', true, 0, 2000])
      assert.ok(sc.logs().some((l) => l.event === 'shutdown.completed' && l.drained === true))
      // The 20 s delay was not waited for; the bound leaves room for a loaded machine.
      assert.ok(tookMs < 5000, `exited ${Math.round(tookMs)} ms after Ctrl-C`)
      console.log(`Ctrl-C: exited ${Math.round(tookMs)} ms after ^C (shutdown.delay 20 s), the 700 ms request completed`)
    } finally {
      sc.kill()
    }
  })
})

/**
 * The built CLI under a real pseudo-terminal: util-linux `script` allocates one and runs the
 * command in it, so stdin is a TTY and a ^C byte written to `script` becomes SIGINT from the
 * terminal's line discipline, as a person's Ctrl-C does. stdout goes to a file, so the JSON log
 * lines are read as in `run`. A missing `script` fails the test (it is in Debian's essential
 * bsdutils; .ci/run checks for it).
 */
async function runInTerminal(configPath: string): Promise<{
  readonly proxyUrl: string
  logs(): Array<Record<string, unknown>>
  output(): string
  ctrlC(): void
  /** Ends the terminal if it still runs, and removes the log. */
  kill(): void
  exited(): Promise<{ code: number | null; atMs: number }>
}> {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  const which = spawnSync('script', ['--version'], { encoding: 'utf8' })
  assert.ok(which.error === undefined && /util-linux/.test(which.stdout), `this test needs util-linux's script(1) for a pseudo-terminal: ${which.error?.message ?? which.stdout}`)
  const logDir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-tty-'))
  const logFile = join(logDir, 'out.log')
  writeFileSync(logFile, '')
  const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`
  // exec: the sidecar replaces the shell, so the ^C and the exit code are its own.
  const command = `exec ${q(process.execPath)} ${q(cli)} run --config ${q(configPath)} >${q(logFile)} 2>&1`
  const child = spawn('script', ['--quiet', '--return', '--command', command, '/dev/null'], { cwd: root, env: { PATH: process.env.PATH ?? '' } })
  let terminal = ''
  child.stdout.on('data', (d: Buffer) => { terminal += d.toString() })
  child.stderr.on('data', (d: Buffer) => { terminal += d.toString() })
  const exit = new Promise<{ code: number | null; atMs: number }>((resolve) => child.on('exit', (code) => resolve({ code, atMs: performance.now() })))
  const text = (): string => readFileSync(logFile, 'utf8')
  const logs = (): Array<Record<string, unknown>> => text().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  const output = (): string => `terminal: ${JSON.stringify(terminal)}\nlog:\n${text()}`
  const started = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`sidecar did not start:\n${output()}`)
    return logs().find((l) => l.event === 'server.started')
  }, { what: () => `the sidecar to start in the terminal:\n${output()}`, timeoutMs: 15_000 })
  await waitFor(async () => (await status(`${String(started.admin)}/readyz`)) === 200, { what: 'ready', timeoutMs: 10_000 })
  return {
    proxyUrl: String(started.proxy),
    logs,
    output,
    // ETX, what the Ctrl-C key sends; the terminal's ISIG turns it into SIGINT.
    ctrlC: () => { child.stdin.write('\x03') },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL')
      rmSync(logDir, { recursive: true, force: true })
    },
    exited: () => exit,
  }
}

/** The kubelet's ConfigMap update: write `..vN/sidecar.yaml`, then swap the `..data` symlink to it. */
function configMapSwapper(dir: string): (version: string, text: string) => void {
  return (version, text) => {
    mkdirSync(join(dir, version))
    writeFileSync(join(dir, version, 'sidecar.yaml'), text)
    symlinkSync(version, join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  }
}

describe('live reload', () => {
  test('a ConfigMap-style swap applies routes and audiences without a restart or a key refetch; an invalid file is rejected; SIGHUP reloads', { timeout: 60_000 }, async () => {
    // The kubelet's layout: sidecar.yaml -> ..data/sidecar.yaml, ..data -> ..v1/
    const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-reload-'))
    const swap = configMapSwapper(dir)
    swap('..v1', configText({ issuer, upstream: upstreamUrl }))
    symlinkSync(join('..data', 'sidecar.yaml'), join(dir, 'sidecar.yaml'))
    const sc = await run(join(dir, 'sidecar.yaml'))
    try {
      const other = { authorization: `Bearer ${await issuer.sign({ sub: 'a', aud: 'other-api' })}` }
      assert.equal(await status(`${sc.proxyUrl}/open/x`), 401)
      assert.equal(await status(`${sc.proxyUrl}/x`, other), 401)
      const fetches = issuer.fetchCount()

      // A slow request in flight across the reload completes under the config it started with.
      slowMs = 1500
      const seen = upstreamSeen
      const inFlight = request(`${sc.proxyUrl}/slow`, { headers: { authorization: `Bearer ${await issuer.sign({ sub: 'a' })}` } })
        .then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
      await waitFor(() => upstreamSeen > seen, { what: 'the slow request to reach the upstream', timeoutMs: 10_000 })

      // v2: a public route and a second audience.
      swap('..v2', configText({ issuer, upstream: upstreamUrl, audiences: '[test-api, other-api]', extraRoute: '\n  - { name: open, path: /open/**, auth: none }' }))
      await waitFor(async () => (await status(`${sc.proxyUrl}/open/x`)) === 200, { what: 'the new route', timeoutMs: 10_000 })
      assert.deepEqual(await inFlight, { status: 200, body: 'ok' }, 'the request in flight was not dropped')
      assert.equal(await status(`${sc.proxyUrl}/x`, other), 200, 'the new audience applies')
      assert.equal(issuer.fetchCount(), fetches, 'unchanged key settings: no refetch')
      const reloaded = sc.logs().filter((l) => l.event === 'config.reloaded')
      assert.equal(reloaded.length, 1)
      assert.deepEqual(reloaded[0]!.issuers, { kept: ['corp'], replaced: [], added: [] })

      // v3: invalid. The running config stays, the errors are logged and counted.
      swap('..v3', configText({ issuer, upstream: upstreamUrl }).replace('auth: required', 'auth: sometimes'))
      await waitFor(() => sc.logs().some((l) => l.event === 'config.rejected'), { what: 'the rejection', timeoutMs: 10_000 })
      const rejected = sc.logs().find((l) => l.event === 'config.rejected')!
      assert.match(JSON.stringify(rejected.errors), /routes\[\d\]\.auth: expected one of required, optional, none/)
      assert.equal(await status(`${sc.proxyUrl}/open/x`), 200, 'still the v2 config')

      // v4 changes the listen address: applied for the rest, the restart-only setting is named.
      swap('..v4', configText({ issuer, upstream: upstreamUrl, listen: '127.0.0.1:1' }))
      await waitFor(() => sc.logs().some((l) => l.event === 'config.restart_required'), { what: 'the restart warning', timeoutMs: 10_000 })
      assert.deepEqual(sc.logs().find((l) => l.event === 'config.restart_required')!.settings, ['listen'])
      assert.equal(await status(`${sc.proxyUrl}/open/x`), 401, 'v4 dropped the public route')

      // SIGHUP reloads even though the file did not change.
      const before = sc.logs().filter((l) => l.event === 'config.reloaded').length
      sc.child.kill('SIGHUP')
      await waitFor(() => sc.logs().filter((l) => l.event === 'config.reloaded').length === before + 1, { what: 'the SIGHUP reload', timeoutMs: 10_000 })
      assert.equal(sc.logs().filter((l) => l.event === 'config.reloaded').at(-1)!.trigger, 'signal')

      const metrics = await (await request(`${sc.adminUrl}/metrics`)).body.text()
      assert.match(metrics, /^jwt_sidecar_config_reloads_total\{result="success"\} 3$/m)
      assert.match(metrics, /^jwt_sidecar_config_reloads_total\{result="error"\} 1$/m)
    } finally {
      sc.child.kill('SIGKILL')
      await sc.exited()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('shutdown is restart-only: a reloaded delay is named in config.restart_required, and SIGTERM keeps the delay the pod started with', { timeout: 30_000 }, async () => {
    // The chart computes terminationGracePeriodSeconds from the config the pod started with;
    // a reloaded, longer drain would be cut by the kubelet's SIGKILL.
    const file = tempConfig(configText({ issuer, upstream: upstreamUrl, delay: '300ms' }))
    const sc = await run(file)
    try {
      writeFileSync(file, configText({ issuer, upstream: upstreamUrl, delay: '20s', timeout: '20s' }))
      sc.child.kill('SIGHUP')
      await waitFor(() => sc.logs().some((l) => l.event === 'config.restart_required'), { what: 'the restart warning', timeoutMs: 10_000 })
      assert.deepEqual(sc.logs().find((l) => l.event === 'config.restart_required')!.settings, ['shutdown'])
      sc.child.kill('SIGTERM')
      const { code } = await sc.exited()
      assert.equal(code, 0)
      const started = sc.logs().find((l) => l.event === 'shutdown.started')!
      assert.deepEqual({ delayMs: started.delayMs, timeoutMs: started.timeoutMs }, { delayMs: 300, timeoutMs: 5000 })
    } finally {
      sc.child.kill('SIGKILL')
      rmSync(join(file, '..'), { recursive: true, force: true })
    }
  })

  test('restoring the file in force after a rejected edit logs config.restored (issue #14 §6), and applies nothing', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-restore-'))
    const swap = configMapSwapper(dir)
    const good = configText({ issuer, upstream: upstreamUrl, extraRoute: '\n  - { name: open, path: /open/**, auth: none }' })
    swap('..v1', good)
    symlinkSync(join('..data', 'sidecar.yaml'), join(dir, 'sidecar.yaml'))
    const sc = await run(join(dir, 'sidecar.yaml'))
    try {
      const events = (): unknown[] => sc.logs().map((l) => l.event).filter((e) => String(e).startsWith('config.'))
      // The rejected edit: the running config stays.
      swap('..v2', good.replace('auth: required', 'auth: sometimes'))
      await waitFor(() => sc.logs().some((l) => l.event === 'config.rejected'), { what: 'the rejection', timeoutMs: 10_000 })
      // Another event in the directory re-reads the same bad text: already reported, not again.
      writeFileSync(join(dir, 'unrelated-1'), 'x')
      await new Promise((r) => setTimeout(r, 500))
      assert.deepEqual(events(), ['config.rejected'])
      // The rollback: the same text as the file in force, in a new ConfigMap version.
      swap('..v3', good)
      const restored = await waitFor(() => sc.logs().find((l) => l.event === 'config.restored'), { what: () => `config.restored after ${JSON.stringify(events())}`, timeoutMs: 10_000 })
      assert.equal(restored.trigger, 'file')
      assert.equal(restored.rejected, 1)
      assert.equal(restored.level, 'info')
      assert.equal(await status(`${sc.proxyUrl}/open/x`), 200, 'still the v1 config')
      // Further events for the same file (the 10s poll, a directory event) log nothing more.
      writeFileSync(join(dir, 'unrelated-2'), 'x')
      await new Promise((r) => setTimeout(r, 500))
      assert.deepEqual(events(), ['config.rejected', 'config.restored'], 'no config.reloaded: nothing was applied')
      const metrics = await (await request(`${sc.adminUrl}/metrics`)).body.text()
      assert.match(metrics, /^jwt_sidecar_config_reloads_total\{result="success"\} 1$/m, 'the restore counts as a success')
      assert.match(metrics, /^jwt_sidecar_config_reloads_total\{result="error"\} 1$/m)
    } finally {
      sc.child.kill('SIGKILL')
      await sc.exited()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
