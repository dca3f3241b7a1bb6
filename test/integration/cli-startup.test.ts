/**
 * Start-up failures as a person at a terminal meets them (issue #14 §5), on the built CLI: a
 * busy port, a config file or a key/TLS file that cannot be read is one line on stderr that
 * names the setting, exit status 1, at once; the stack trace only with `--debug`. With JSON
 * logs, a `server.failed` line says the same for a log pipeline.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')
const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-startup-'))

interface Run { readonly code: number; readonly stdout: string; readonly stderr: string; readonly ms: number }

function jwtSidecar(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  const t0 = performance.now()
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: options.cwd ?? root, env: { PATH: process.env.PATH ?? '', ...options.env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr, ms: performance.now() - t0 })
    })
  })
}

let busy: Server
let busyPort: number
before(async () => {
  busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  busyPort = (busy.address() as AddressInfo).port
})
after(() => busy?.close())

/** A config with these listen addresses and extra lines; keys from a file unless `issuer` says otherwise. */
function config(name: string, o: { listen?: string; admin?: string; issuer?: string; extra?: string } = {}): string {
  const key = join(dir, 'present.jwk')
  writeFileSync(key, JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', alg: 'ES256' }))
  const file = join(dir, `${name}.yaml`)
  writeFileSync(file, [
    `listen: ${o.listen ?? '127.0.0.1:0'}`,
    `admin: { listen: ${o.admin ?? '127.0.0.1:0'} }`,
    'upstream: { url: "http://127.0.0.1:9" }',
    'shutdown: { delay: 0s, timeout: 1s }',
    'issuers:',
    '  - name: corp',
    '    issuer: https://idp.example.com',
    '    audiences: [api]',
    o.issuer ?? `    keys: [{file: ${key}}]`,
    'routes:',
    '  - { name: default, path: /**, auth: required }',
    o.extra ?? '',
  ].join('\n'))
  return file
}

/** The run failed at once, with exactly `line` on stderr and no stack trace anywhere. */
function failedWith(r: Run, line: string): void {
  assert.equal(r.code, 1, r.stdout + r.stderr)
  assert.equal(r.stderr, `${line}\n`)
  assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at |"stack"/, 'no stack trace without --debug')
  assert.ok(r.ms < 15_000, `exited after ${Math.round(r.ms)} ms`)
}

function failedLine(r: Run): Record<string, unknown> {
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  const failed = lines.find((l) => l.event === 'server.failed')
  assert.ok(failed !== undefined, r.stdout)
  return failed
}

test('a busy proxy port: "listen ADDRESS: address already in use (EADDRINUSE); is another jwt-sidecar running?", and server.failed for the log', async () => {
  const r = await jwtSidecar(['run', '--config', config('busy', { listen: `127.0.0.1:${busyPort}` })])
  const line = `listen 127.0.0.1:${busyPort}: address already in use (EADDRINUSE); is another jwt-sidecar running?`
  failedWith(r, line)
  const failed = failedLine(r)
  assert.deepEqual([failed.level, failed.setting, failed.code, failed.msg, failed.err], ['fatal', 'listen', 'EADDRINUSE', line, undefined])
})

test('a busy admin port names admin.listen', async () => {
  const r = await jwtSidecar(['run', '--config', config('busy-admin', { admin: `127.0.0.1:${busyPort}` })])
  failedWith(r, `admin.listen 127.0.0.1:${busyPort}: address already in use (EADDRINUSE); is another jwt-sidecar running?`)
})

test('an address this host does not have: EADDRNOTAVAIL, with what to use instead', async () => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no host has it.
  const r = await jwtSidecar(['run', '--config', config('unavailable', { listen: '192.0.2.1:18080' })])
  failedWith(r, 'listen 192.0.2.1:18080: address not available on this host (EADDRNOTAVAIL); no network interface of this host has that address: use 0.0.0.0, 127.0.0.1 or one of its own')
})

test('--debug adds the stack trace and its cause after the same line, and the error to server.failed', async () => {
  const r = await jwtSidecar(['run', '--debug', '--config', config('busy-debug', { listen: `127.0.0.1:${busyPort}` })])
  assert.equal(r.code, 1)
  const [first, ...rest] = r.stderr.split('\n')
  assert.equal(first, `listen 127.0.0.1:${busyPort}: address already in use (EADDRINUSE); is another jwt-sidecar running?`)
  assert.match(rest.join('\n'), /StartupError: listen .*\n\s+at /)
  assert.match(rest.join('\n'), /\[cause\]: Error: listen EADDRINUSE/)
  assert.equal((failedLine(r).err as { type: string }).type, 'StartupError')
})

test('a config file that cannot be read names where its name came from: --config, JWT_SIDECAR_CONFIG, or the default', async () => {
  const missing = join(dir, 'nope.yaml')
  failedWith(await jwtSidecar(['run', '--config', missing]), `--config ${missing}: cannot read the file: no such file or directory (ENOENT)`)
  failedWith(await jwtSidecar(['check-config'], { env: { JWT_SIDECAR_CONFIG: missing } }), `JWT_SIDECAR_CONFIG ${missing}: cannot read the file: no such file or directory (ENOENT)`)
  const empty = mkdtempSync(join(tmpdir(), 'jwt-sidecar-cwd-'))
  failedWith(await jwtSidecar(['run'], { cwd: empty }), 'config file config/sidecar.yaml: cannot read the file: no such file or directory (ENOENT); the default, relative to the working directory: give --config FILE or set JWT_SIDECAR_CONFIG')
})

test('a key file that cannot be read stops the start, naming issuers[i].keys[j].file', async () => {
  const missing = join(dir, 'keys', 'missing.pem')
  const r = await jwtSidecar(['run', '--config', config('missing-key', { issuer: `    keys: [{file: ${missing}, alg: RS256}]` })])
  failedWith(r, `issuers[0].keys[0].file ${missing}: cannot read the file: no such file or directory (ENOENT)`)
  assert.equal(failedLine(r).setting, 'issuers[0].keys[0].file')
  // A directory where a file should be (a Secret mounted one level off).
  const keysDir = join(dir, 'keys-dir')
  mkdirSync(keysDir, { recursive: true })
  failedWith(await jwtSidecar(['run', '--config', config('dir-key', { issuer: `    keys: [{file: ${keysDir}, alg: RS256}]` })]), `issuers[0].keys[0].file ${keysDir}: not a regular file`)
})

test('a CA bundle that cannot be read names issuers[i].fetch.caFile', async () => {
  const ca = join(dir, 'no-ca.pem')
  const issuer = ['    jwksUri: https://idp.example.com/jwks', `    fetch: { caFile: ${ca} }`].join('\n')
  failedWith(await jwtSidecar(['run', '--config', config('ca', { issuer })]), `issuers[0].fetch.caFile ${ca}: cannot read the file: no such file or directory (ENOENT)`)
})

test('TLS: a missing certificate names tls.certFile; one that is not PEM says so under tls', async () => {
  const cert = join(dir, 'tls.crt')
  const key = join(dir, 'tls.key')
  writeFileSync(key, 'not a key\n')
  failedWith(await jwtSidecar(['run', '--config', config('tls-missing', { extra: `tls: { certFile: ${cert}, keyFile: ${key} }` })]), `tls.certFile ${cert}: cannot read the file: no such file or directory (ENOENT)`)
  writeFileSync(cert, 'not a certificate\n')
  failedWith(await jwtSidecar(['run', '--config', config('tls-garbage', { extra: `tls: { certFile: ${cert}, keyFile: ${key} }` })]), `tls: certFile ${cert}: not a PEM certificate`)
})

test('log.format: pretty: the one line on stderr, no JSON line on stdout', async () => {
  const r = await jwtSidecar(['run', '--config', config('busy-pretty', { listen: `127.0.0.1:${busyPort}`, extra: 'log: { format: pretty }' })])
  failedWith(r, `listen 127.0.0.1:${busyPort}: address already in use (EADDRINUSE); is another jwt-sidecar running?`)
  assert.doesNotMatch(r.stdout, /server\.failed|^\{/m)
})
