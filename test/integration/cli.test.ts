/**
 * The CLI as a user runs it: real processes from the built dist/ (npm test builds first).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { request } from 'undici'
import type { Dispatcher } from 'undici'
import { waitFor } from '../../src/wait-for.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')
const run = promisify(execFile)

function requireBuild(): void {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
}

async function cliRun(args: string[], env: Record<string, string> = {}, timeout = 0) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, timeout })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

test('check-config: a valid file exits 0 with a one-line summary', async () => {
  requireBuild()
  const r = await cliRun(['check-config', '--config', 'config/sidecar.yaml'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^config\/sidecar\.yaml: OK: 1 issuer\(s\) \(corp\), \d+ route\(s\), listen .+ -> http.+\n$/)
})

test('check-config: every error is printed with file:line path, exit 1', async () => {
  requireBuild()
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-cli-'))
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, [
    'listen: 0.0.0.0:8080',
    'upstream:',
    '  url: http://127.0.0.1:3000',
    'issuers:',
    '  - name: corp',
    '    issuer: https://idp.example.com',
    '    jwksUri: https://idp.example.com/certs',
    '    audiences: []',
    'tokens:',
    '  clockSkew: 60',
    'routes:',
    '  - name: default',
    '    path: /**',
    '    auht: required',
    '',
  ].join('\n'))
  const r = await cliRun(['check-config', '--config', file])
  assert.equal(r.code, 1)
  assert.equal(r.stdout, '')
  assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8 issuers\\[0\\]\\.audiences: `))
  assert.match(r.stderr, /:10 tokens\.clockSkew: /)
  assert.match(r.stderr, /:14 routes\[0\]\.auht: unknown key/)
  assert.match(r.stderr, /3 error\(s\) in /)
})

test('check-config: the config file comes from JWT_SIDECAR_CONFIG when --config is absent', async () => {
  requireBuild()
  const r = await cliRun(['check-config'], { JWT_SIDECAR_CONFIG: 'config/does-not-exist.yaml' })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /config\/does-not-exist\.yaml: cannot read the file/)
})

test('usage errors exit 2', async () => {
  requireBuild()
  const r = await cliRun(['frobnicate'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /unknown command: frobnicate/)
})

test('demo: four curl commands give 200 (with identity headers), 401, 401 and the keys; their access lines follow, request ids included; the admin port lists its endpoints at /; SIGTERM stops it', { timeout: 60_000 }, async () => {
  requireBuild()
  const child = spawn(process.execPath, [cli, 'demo'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DEMO_PORT: '0', DEMO_ADMIN_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const accessLines = (): Array<Record<string, unknown>> => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'http.access')
  try {
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`demo exited ${child.exitCode}:\n${out}\n${err}`)
      return out.includes('Stop the demo')
    }, { what: () => `the demo to start:\n${out}\n${err}`, timeoutMs: 30_000 })
    const curls = out.split('\n').filter((l) => l.startsWith('curl '))
    assert.equal(curls.length, 4, out)
    const results: Array<{ status: string; body: string }> = []
    for (const cmd of curls) {
      // Run each command exactly as printed, as a shell would, adding only a status trailer.
      const { stdout } = await run('bash', ['-c', `${cmd} -o - -w '\\n%{http_code}'`])
      const i = stdout.lastIndexOf('\n')
      results.push({ body: stdout.slice(0, i), status: stdout.slice(i + 1) })
    }
    assert.deepEqual(results.map((r) => r.status), ['200', '401', '401', '200'])
    const echoed = JSON.parse(results[0]!.body) as { headers: Record<string, string> }
    assert.equal(echoed.headers['x-auth-subject'], 'alice')
    assert.match(echoed.headers['x-auth-issuer']!, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.equal(echoed.headers.authorization, undefined, 'the demo config does not forward the token')
    assert.match(results[1]!.body, /WWW-Authenticate: Bearer realm="jwt-sidecar"\r?\n/i)
    assert.match(results[2]!.body, /"reason":"bad_signature"/)
    const keys = JSON.parse(results[3]!.body) as { issuers: Array<{ issuer: string; jwksUri: string; ready: boolean; keys: unknown[] }> }
    assert.deepEqual(keys.issuers.map((i) => [i.issuer, i.jwksUri, i.ready, i.keys.length]), [['demo', `${echoed.headers['x-auth-issuer']!}/jwks`, true, 1]])

    // The three proxied requests, each with its access line, in order (the /keys one is the admin port's).
    const lines = await waitFor(() => (accessLines().length >= 3 ? accessLines() : undefined), { what: () => `three access lines:\n${out}`, timeoutMs: 5000 })
    assert.deepEqual(lines.map((l) => [l.path, l.status, l.reason]), [['/orders/42', 200, 'none'], ['/orders/42', 401, 'missing_token'], ['/orders/42', 401, 'bad_signature']])
    for (const l of lines) {
      assert.equal(typeof l.durationMs, 'number')
      assert.equal(l.clientIp, '127.0.0.1')
    }
    // The id on the access line is the one the client got back, and the one the app saw.
    assert.equal(echoed.headers['x-request-id'], lines[0]!.reqId)
    assert.match(results[1]!.body, new RegExp(`^x-request-id: ${String(lines[1]!.reqId)}\\r?$`, 'mi'))
    assert.doesNotMatch(out.split('Stop the demo')[1]!, /eyJ/, 'no token in the log lines')

    // The admin port's index: every endpoint it names answers.
    const admin = /admin +(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1]
    assert.ok(admin !== undefined, out)
    const index = await request(`${admin}/`)
    assert.equal(index.statusCode, 200)
    const body = await index.body.json() as { endpoints: Array<{ path: string; description: string }> }
    assert.deepEqual(body.endpoints.map((e) => e.path), ['/healthz', '/readyz', '/keys', '/metrics'])
    for (const e of body.endpoints) {
      assert.ok(e.description.length > 10, e.path)
      const answer: Dispatcher.ResponseData = await request(`${admin}${e.path}`)
      await answer.body.dump()
      assert.equal(answer.statusCode, 200, e.path)
    }
  } finally {
    child.kill('SIGTERM')
  }
  const code = await new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.on('exit', (c) => resolve(c))
  })
  assert.equal(code, 0, err)
})

test('demo: a busy port fails at once with one line that names it and DEMO_PORT (it used to hang)', { timeout: 30_000 }, async () => {
  requireBuild()
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  const port = (busy.address() as AddressInfo).port
  try {
    const started = performance.now()
    const r = await cliRun(['demo'], { DEMO_PORT: String(port), DEMO_ADMIN_PORT: '0' }, 20_000)
    assert.equal(r.code, 1, r.stderr)
    assert.equal(r.stderr, `listen 127.0.0.1:${port}: address already in use (EADDRINUSE); is another jwt-sidecar (or demo) running? DEMO_PORT=0 DEMO_ADMIN_PORT=0 jwt-sidecar demo picks free ports\n`)
    assert.ok(performance.now() - started < 15_000, 'exits on its own')
  } finally {
    busy.close()
  }
})

test('check-config: a route a method can walk around is a warning naming both routes and the methods (issue #9 §4)', async () => {
  requireBuild()
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-cli-'))
  const file = join(dir, 'fallthrough.yaml')
  const head = [
    'upstream:',
    '  url: http://127.0.0.1:3000',
    'issuers:',
    '  - name: corp',
    '    issuer: https://idp.example.com',
    '    jwksUri: https://idp.example.com/certs',
    '    audiences: [orders-api]',
    'routes:',
    '  - name: orders-read',
    '    path: /api/**',
    '    methods: [GET, HEAD]',
    '    require: {scopes: [orders:read]}',
  ]
  writeFileSync(file, [...head, '  - name: default', '    path: /**', '    auth: required', ''].join('\n'))
  const r = await cliRun(['check-config', '--config', file])
  assert.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trimEnd().split('\n')
  assert.equal(lines.length, 2, r.stdout)
  assert.equal(
    lines[0],
    `${file}:9 routes[0]: warning: route orders-read requires scopes orders:read only for GET, HEAD; POST, PUT, PATCH, DELETE, OPTIONS, TRACE on /api/** fall through to routes[1] (default), which requires only a valid token. If that is not intended, add a route {path: /api/**, auth: deny} right after this one, or list those methods here`,
  )
  assert.match(lines[1]!, /: OK: 1 issuer\(s\) \(corp\), 2 route\(s\), .*, 1 warning\(s\)$/)

  // The fix the warning names: the other methods are closed, and the warning is gone.
  writeFileSync(file, [...head, '  - name: orders-closed', '    path: /api/**', '    auth: deny', '  - name: default', '    path: /**', '    auth: required', ''].join('\n'))
  const fixed = await cliRun(['check-config', '--config', file])
  assert.equal(fixed.code, 0, fixed.stderr)
  assert.match(fixed.stdout, /^\S+: OK: 1 issuer\(s\) \(corp\), 3 route\(s\), [^\n]*\d\n$/)
})
