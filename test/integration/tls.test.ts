/**
 * The TLS listener (issue #13 §1) over real TLS on loopback, with certificates made by the
 * openssl CLI at test time and mounted the way Kubernetes mounts a Secret (`..data` swap).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { waitFor } from '../../src/wait-for.ts'
import { startHttpServer, startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer, TestServer } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const EXAMPLE = join(root, 'config', 'examples', 'tls.yaml')
const HAS_OPENSSL = spawnSync('openssl', ['version']).error === undefined
const work = mkdtempSync(join(tmpdir(), 'jwt-sidecar-tls-'))

interface Cert { readonly crt: string; readonly key: string; readonly pem: string; readonly fingerprint: string; readonly notAfter: number }

/** A self-signed EC certificate for 127.0.0.1, valid `days` days. */
function makeCert(name: string, days: number): Cert {
  assert.ok(HAS_OPENSSL, 'the openssl CLI is not on PATH: install Debian\'s openssl package to run this test')
  const crt = join(work, `${name}.crt`)
  const key = join(work, `${name}.key`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
    '-subj', `/CN=${name}`, '-days', String(days), '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  // Read back with openssl itself, not with the code under test.
  const fingerprint = execFileSync('openssl', ['x509', '-in', crt, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim().split('=')[1]!
  const end = execFileSync('openssl', ['x509', '-in', crt, '-noout', '-enddate'], { encoding: 'utf8' }).trim().split('=')[1]!
  return { crt, key, pem: readFileSync(crt, 'utf8'), fingerprint, notAfter: Date.parse(end) / 1000 }
}

/** A Secret-style mount: dir/tls.crt -> ..data/tls.crt, ..data -> ..<version>/. */
function mount(dir: string): { put(cert: string, key: string): void; crt: string; key: string } {
  mkdirSync(dir, { recursive: true })
  let n = 0
  const put = (cert: string, key: string): void => {
    const version = `..v${++n}`
    mkdirSync(join(dir, version))
    writeFileSync(join(dir, version, 'tls.crt'), readFileSync(cert))
    writeFileSync(join(dir, version, 'tls.key'), readFileSync(key))
    symlinkSync(version, join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data')) // the atomic swap
  }
  return { put, crt: join(dir, 'tls.crt'), key: join(dir, 'tls.key') }
}
function link(dir: string): void {
  symlinkSync('..data/tls.crt', join(dir, 'tls.crt'))
  symlinkSync('..data/tls.key', join(dir, 'tls.key'))
}

/** One request on a new connection; the status and the server certificate's fingerprint. */
function get(url: string, token: string, ca?: string, client?: Cert): Promise<{ status: number; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const tlsOptions = {
      ...(ca === undefined ? { rejectUnauthorized: false } : { ca }),
      ...(client === undefined ? {} : { cert: readFileSync(client.crt), key: readFileSync(client.key) }),
    }
    const req = httpsRequest(`${url}/api/x`, { agent: false, headers: { authorization: `Bearer ${token}` }, ...tlsOptions }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }))
    })
    req.on('error', reject)
    req.end()
  })
}

function metric(text: string, line: RegExp): number {
  const m = text.split('\n').find((l) => line.test(l))
  assert.ok(m !== undefined, `no metric line like ${line}`)
  return Number(m.split(' ').at(-1))
}

async function scrape(s: TestSidecar): Promise<string> {
  return (await fetch(`${s.adminUrl}/metrics`)).text()
}

void describe('tls: the data-plane listener over HTTPS with hot certificate reload', () => {
  let idp: TestIssuer
  let app: TestServer
  let token: string
  let a: Cert
  let b: Cert
  let lastProto: string | string[] | undefined
  before(async () => {
    idp = await startTestIssuer()
    app = await startHttpServer((req, res) => {
      lastProto = req.headers['x-forwarded-proto']
      res.end('ok')
    })
    token = await idp.sign({ sub: 'alice', aud: 'test-api' }, { expiresIn: 600 })
    a = makeCert('a', 30)
    b = makeCert('b', 5)
  })
  after(async () => {
    await idp.close()
    await app.close()
    rmSync(work, { recursive: true, force: true })
  })

  const start = async (dir: string): Promise<TestSidecar> => startSidecar(sidecarYaml({
    upstream: app.url,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri }],
    extra: `tls:\n  certFile: ${join(dir, 'tls.crt')}\n  keyFile: ${join(dir, 'tls.key')}\n`,
  }))

  void it('serves HTTPS with the configured certificate; the expiry gauge is its notAfter', async () => {
    const dir = join(work, 'm1')
    const m = mount(dir)
    m.put(a.crt, a.key)
    link(dir)
    const s = await start(dir)
    try {
      assert.match(s.proxyUrl, /^https:\/\//)
      // Verified against the certificate itself as the trust anchor (its SAN is 127.0.0.1).
      const r = await get(s.proxyUrl, token, a.pem)
      assert.equal(r.status, 200)
      assert.equal(r.fingerprint, a.fingerprint)
      assert.equal(lastProto, 'https', 'the app learns the client came over TLS')
      const text = await scrape(s)
      assert.equal(metric(text, /^jwt_sidecar_tls_certificate_expiry_timestamp_seconds\{listener="proxy"\} /), a.notAfter)
      assert.equal(metric(text, /^jwt_sidecar_tls_reloads_total\{result="success"\}/), 1)
      assert.equal(metric(text, /^jwt_sidecar_tls_reloads_total\{result="failure"\}/), 0)
      assert.ok(s.logs().some((l) => l.event === 'tls.reloaded' && l.fingerprint256 === a.fingerprint))
    } finally {
      await s.close()
    }
  })

  void it('rotates the pair mid-traffic: no failed request, new connections see the new certificate', async () => {
    const dir = join(work, 'm2')
    const m = mount(dir)
    m.put(a.crt, a.key)
    link(dir)
    const s = await start(dir)
    try {
      let stop = false
      const seen: Array<{ status: number; fingerprint: string }> = []
      const failures: unknown[] = []
      const loops = [0, 1, 2].map(async () => {
        while (!stop) {
          try {
            seen.push(await get(s.proxyUrl, token))
          } catch (err) {
            failures.push(err)
          }
        }
      })
      await waitFor(() => seen.length >= 10, { what: 'traffic before the rotation', timeoutMs: 5000 })
      m.put(b.crt, b.key)
      await waitFor(() => seen.slice(-3).every((r) => r.fingerprint === b.fingerprint) && seen.length > 3, { what: 'new connections to see the new certificate', timeoutMs: 10_000 })
      const after = seen.length
      await waitFor(() => seen.length >= after + 10, { what: 'traffic after the rotation', timeoutMs: 5000 })
      stop = true
      await Promise.all(loops)
      assert.deepEqual(failures, [])
      assert.ok(seen.every((r) => r.status === 200), `statuses: ${[...new Set(seen.map((r) => r.status))].join(',')}`)
      assert.ok(seen.some((r) => r.fingerprint === a.fingerprint))
      assert.equal(seen.at(-1)!.fingerprint, b.fingerprint)
      const text = await scrape(s)
      assert.equal(metric(text, /^jwt_sidecar_tls_certificate_expiry_timestamp_seconds\{listener="proxy"\} /), b.notAfter)
      assert.equal(metric(text, /^jwt_sidecar_tls_reloads_total\{result="success"\}/), 2)
    } finally {
      await s.close()
    }
  })

  void it('keeps the old certificate when the new pair is broken, and counts the failure', async () => {
    const dir = join(work, 'm3')
    const m = mount(dir)
    m.put(a.crt, a.key)
    link(dir)
    const s = await start(dir)
    try {
      m.put(b.crt, a.key) // b's certificate with a's key: a mismatched pair
      await waitFor(() => s.logs().find((l) => l.event === 'tls.reload_failed'), { what: 'tls.reload_failed', timeoutMs: 10_000 })
      const failed = s.logs().find((l) => l.event === 'tls.reload_failed')!
      assert.match(String(failed.why), /does not match the certificate/)
      const r = await get(s.proxyUrl, token, a.pem)
      assert.equal(r.status, 200)
      assert.equal(r.fingerprint, a.fingerprint)
      const text = await scrape(s)
      assert.equal(metric(text, /^jwt_sidecar_tls_reloads_total\{result="failure"\}/), 1)
      assert.equal(metric(text, /^jwt_sidecar_tls_certificate_expiry_timestamp_seconds\{listener="proxy"\} /), a.notAfter)
      // The key material never reaches the logs.
      assert.ok(!s.logText().includes('PRIVATE KEY'))
      // A good pair afterwards is taken.
      m.put(b.crt, b.key)
      await waitFor(async () => (await get(s.proxyUrl, token)).fingerprint === b.fingerprint, { what: 'the good pair', timeoutMs: 10_000 })
    } finally {
      await s.close()
    }
  })

  void it('with clientCaFile, requires a client certificate that chains to it', async () => {
    const dir = join(work, 'm5')
    const m = mount(dir)
    m.put(a.crt, a.key)
    link(dir)
    const s = await startSidecar(sidecarYaml({
      upstream: app.url,
      issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri }],
      extra: `tls:\n  certFile: ${join(dir, 'tls.crt')}\n  keyFile: ${join(dir, 'tls.key')}\n  clientCaFile: ${b.crt}\n  minVersion: TLSv1.3\n`,
    }))
    try {
      assert.equal((await get(s.proxyUrl, token, a.pem, b)).status, 200)
      await assert.rejects(get(s.proxyUrl, token, a.pem), 'no client certificate')
      await assert.rejects(get(s.proxyUrl, token, a.pem, a), 'a client certificate from another CA')
    } finally {
      await s.close()
    }
  })

  void it('config/examples/tls.yaml: check-config accepts it, and it runs as its comment says', async () => {
    const cli = join(root, 'dist', 'src', 'cli.js')
    const r = await promisify(execFile)(process.execPath, [cli, 'check-config', '--config', EXAMPLE], { cwd: root, env: { PATH: process.env.PATH ?? '' } })
    assert.match(r.stdout, /tls.yaml: OK: /)
    const dir = join(work, 'm6')
    mkdirSync(dir)
    writeFileSync(join(dir, 'tls.crt'), readFileSync(a.crt))
    writeFileSync(join(dir, 'tls.key'), readFileSync(a.key))
    const s = await startSidecar(readFileSync(EXAMPLE, 'utf8'), {
      env: { TLS_DIR: dir, ISSUER: idp.issuer, JWKS_URI: idp.jwksUri, UPSTREAM_URL: app.url, AUDIENCE: 'test-api', PORT: '0', ADMIN_PORT: '0' },
    })
    try {
      const res = await get(s.proxyUrl.replace('0.0.0.0', '127.0.0.1'), token, a.pem)
      assert.equal(res.status, 200)
    } finally {
      await s.close()
    }
  })

  void it('refuses to start with a mismatched pair (fail closed)', async () => {
    const dir = join(work, 'm4')
    const m = mount(dir)
    m.put(a.crt, b.key)
    link(dir)
    await assert.rejects(start(dir), /does not match the certificate/)
  })
})
