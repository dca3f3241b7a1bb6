/**
 * `jwt-sidecar verify --client-cert` explaining a certificate-bound token (issue #13 §2,
 * RFC 8705 §3) as a user runs it: the built CLI in a real process, certificates from openssl,
 * one config per client-certificate source (the TLS listener, a trusted ingress's XFCC).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeCa } from '../helpers/certs.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer } from '../helpers/issuer.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')
const ca = makeCa('verify-mtls-ca')
const server = ca.issue('server', 'server')
const alice = ca.issue('alice')
const bob = ca.issue('bob')

let idp: TestIssuer
let dir: string

function configFile(name: string, source: string): string {
  const file = join(dir, `${name}.yaml`)
  writeFileSync(file, [
    'listen: 127.0.0.1:0',
    'upstream:',
    '  url: http://127.0.0.1:9',
    'issuers:',
    '  - name: corp',
    `    issuer: ${idp.issuer}`,
    `    jwksUri: ${idp.jwksUri}`,
    '    audiences: [test-api]',
    'routes:',
    '  - name: default',
    '    path: /**',
    source,
  ].join('\n'))
  return file
}

before(async () => {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  idp = await startTestIssuer({ alg: 'RS256' })
  dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-verify-mtls-'))
})

after(async () => {
  await idp.close()
  rmSync(dir, { recursive: true, force: true })
})

function verify(config: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, 'verify', '--config', config, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') return reject(new Error(`verify did not run: ${err.message}`))
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr })
    })
  })
}

function line(stdout: string, name: string): string {
  const found = stdout.split('\n').find((l) => new RegExp(`^[✔✘·] ${name} `).test(l))
  assert.ok(found !== undefined, `no "${name}" step in:\n${stdout}`)
  return found
}

test('the TLS listener: the bound certificate is explained and forwarded; another is certificate_mismatch; none is certificate_required', async () => {
  const config = configFile('tls', `tls:\n  certFile: ${server.crt}\n  keyFile: ${server.key}\n  clientCaFile: ${ca.crt}\n`)
  const token = await idp.sign({ sub: 'alice', cnf: { 'x5t#S256': alice.x5t } })
  const ok = await verify(config, ['--client-cert', alice.crt, token])
  assert.equal(ok.code, 0, ok.stdout + ok.stderr)
  assert.match(line(ok.stdout, 'certificate'), new RegExp(`^· certificate +client certificate CN=alice, x5t#S256 ${alice.x5t}, as presented in the TLS handshake`))
  assert.match(line(ok.stdout, 'binding'), new RegExp(`^✔ binding .*client certificate matches cnf x5t#S256 ${alice.x5t}`))
  assert.match(ok.stdout, /outcome: forwarded/)

  const stolen = await verify(config, ['--client-cert', bob.crt, token])
  assert.equal(stolen.code, 1)
  assert.match(line(stolen.stdout, 'binding'), /^✘ binding .*thumbprint is not cnf x5t#S256 → 401 certificate_mismatch/)
  const none = await verify(config, [token])
  assert.match(line(none.stdout, 'binding'), /^✘ binding .*the connection presented no client certificate → 401 certificate_required/)
})

test('a trusted ingress (xfcc): --client-cert is passed as the ingress would; a file that is no certificate is a clear error', async () => {
  const config = configFile('xfcc', 'clientCertificateHeader:\n  name: x-forwarded-client-cert\n  format: xfcc\n  trustedPeers: [10.0.0.0/8]\n')
  const token = await idp.sign({ sub: 'alice', cnf: { 'x5t#S256': alice.x5t } })
  const ok = await verify(config, ['--client-cert', alice.crt, token])
  assert.equal(ok.code, 0, ok.stdout + ok.stderr)
  assert.match(line(ok.stdout, 'certificate'), /as the trusted ingress would pass it \(x-forwarded-client-cert, xfcc\)/)
  assert.equal((await verify(config, ['--client-cert', bob.crt, token])).code, 1)

  const bad = await verify(config, ['--client-cert', alice.key, token])
  assert.equal(bad.code, 1)
  assert.equal(bad.stderr, `--client-cert ${alice.key}: not a PEM or DER X.509 certificate\n`)
  const missing = await verify(config, ['--client-cert', join(dir, 'nope.crt'), token])
  assert.equal(missing.stderr, `--client-cert ${join(dir, 'nope.crt')}: cannot read the file: ENOENT\n`)
})
