/**
 * The key snapshot (issue #13 §3) on the real sidecar: a cold start while the IdP is down
 * (its port closed) answers from the snapshot until maxStale after the keys' fetch time, then
 * 503; a tampered snapshot is ignored. Plus the example config and the config checks.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { request } from 'undici'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { waitFor } from '../../src/wait-for.ts'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')

function yamlWith(upstream: string, issuer: string, jwksUri: string, file: string): string {
  return sidecarYaml({ upstream, issuers: [{ name: 'corp', issuer, jwksUri }] })
    .replace('      unknownKidWait: 500ms', `      unknownKidWait: 500ms
      interval: 1s
      minInterval: 1s
      maxInterval: 1s
      maxStale: 6s
    snapshot:
      file: ${JSON.stringify(file)}`)
}

async function get(url: string, token: string): Promise<number> {
  const r = await request(url, { headers: { authorization: `Bearer ${token}` } })
  await r.body.dump()
  return r.statusCode
}

test('cold start with the IdP down: 200 from the snapshot within maxStale, 503 after; a tampered snapshot is ignored', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-snapshot-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'corp.jwks.json')
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const idp = await startTestIssuer()
  const yaml = yamlWith(upstream.url, idp.issuer, idp.jwksUri, file)

  // A warm pod: the IdP is up, the snapshot is written.
  const warm = await startSidecar(yaml)
  await waitFor(() => existsSync(file), { what: 'the snapshot file', timeoutMs: 5000, intervalMs: 5 })
  const token = await idp.sign({ sub: 'alice' })
  assert.equal(await get(`${warm.proxyUrl}/api/x`, token), 200)
  await warm.close()
  const written = readFileSync(file, 'utf8')
  await idp.close() // the IdP is down: its port refuses connections

  // jwt-sidecar verify explains a key found in the snapshot, and how long it is trusted.
  const configFile = join(dir, 'sidecar.yaml')
  writeFileSync(configFile, yaml)
  const explained = await promisify(execFile)(process.execPath, [cli, 'verify', '--config', configFile, '--path', '/api/x', token], { cwd: root, env: { PATH: process.env.PATH ?? '' } })
  const fetchedAt = (JSON.parse(written) as { fetchedAt: string }).fetchedAt
  assert.match(explained.stdout, new RegExp(`the key set is stale: last confirmed by the IdP ${fetchedAt.replace(/\./g, '\\.')}, usable until`))

  // The pod restarts during the outage.
  const cold = await startSidecar(yaml)
  try {
    assert.equal(await get(`${cold.proxyUrl}/api/x`, token), 200, 'verified with the snapshot keys')
    assert.ok(cold.logs().some((l) => l.event === 'jwks.snapshot_loaded'))
    const keys = (await (await request(`${cold.adminUrl}/keys`)).body.json()) as { issuers: Array<{ state: string; lastSuccess: string }> }
    assert.equal(keys.issuers[0]?.state, 'stale')
    assert.equal(keys.issuers[0]?.lastSuccess, (JSON.parse(written) as { fetchedAt: string }).fetchedAt, 'the snapshot keeps its fetch time')
    // maxStale (6 s) after the snapshot's fetch time, the keys expire as they would have in the warm pod.
    await waitFor(async () => (await get(`${cold.proxyUrl}/api/x`, token)) === 503, { what: '503 after maxStale', timeoutMs: 10000, intervalMs: 100 })
    assert.ok(cold.logs().some((l) => l.event === 'jwks.expired'))
  } finally {
    await cold.close()
  }

  // A tampered snapshot (a key's modulus replaced, the fetch time renewed) is ignored: not ready, 503.
  const doc = JSON.parse(written) as { fetchedAt: string; jwks: { keys: Array<{ n: string }> } }
  doc.fetchedAt = new Date().toISOString()
  doc.jwks.keys[0]!.n = doc.jwks.keys[0]!.n.slice(0, 40)
  writeFileSync(file, JSON.stringify(doc))
  const tampered = await startSidecar(yaml, { waitReady: false })
  try {
    await tampered.app.keys.settled()
    assert.equal(await get(`${tampered.proxyUrl}/api/x`, token), 503)
    const ignored = tampered.logs().find((l) => l.event === 'jwks.snapshot_ignored')
    assert.equal(ignored?.why, 'invalid')
    assert.ok(!tampered.logText().includes(token.split('.')[2]!), 'never the token')
  } finally {
    await tampered.close()
  }
})

test('check-config accepts config/examples/snapshot.yaml', async () => {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'check-config', '--config', 'config/examples/snapshot.yaml'], { cwd: root, env: { PATH: process.env.PATH ?? '' } })
  assert.match(stdout, /^config\/examples\/snapshot\.yaml: OK: 1 issuer\(s\) \(corp\)/)
})

test('config: snapshot.file resolved against the config file; a snapshot needs remote keys and its own file', () => {
  const base = readFileSync(join(root, 'config/examples/snapshot.yaml'), 'utf8')
  const ok = parseConfig(base.replace(/file: .*corp\.jwks\.json/, 'file: state/corp.jwks.json'), '/etc/jwt-sidecar/sidecar.yaml', {})
  assert.deepEqual(ok.issuers[0]?.snapshot, { file: '/etc/jwt-sidecar/state/corp.jwks.json' })
  const noSnapshot = parseConfig(base.replace(/ {4}snapshot:\n.*\n/, ''), 'x.yaml', {})
  assert.equal(noSnapshot.issuers[0]?.snapshot, undefined, 'off by default')

  const staticOnly = base.replace(/ {4}jwksUri: .*\n/, '    keys: [{file: /keys/corp.pem, alg: RS256}]\n')
  assert.throws(() => parseConfig(staticOnly, 'x.yaml', {}), (e: unknown) => e instanceof ConfigError && /issuers\[0\]\.snapshot: needs remote keys/.test(e.message))
  const second = base.replace('issuers:\n', `issuers:
  - name: other
    issuer: https://other.example.com
    jwksUri: https://other.example.com/jwks
    audiences: [orders-api]
    snapshot:
      file: /var/run/jwt-sidecar/corp.jwks.json
`)
  assert.throws(() => parseConfig(second, 'x.yaml', {}), (e: unknown) => e instanceof ConfigError && /issuers\[1\]\.snapshot\.file: is also issuers\[0\]\.snapshot\.file/.test(e.message))
  assert.throws(() => parseConfig(base.replace('file: ${SNAPSHOT_DIR', 'path: ${SNAPSHOT_DIR'), 'x.yaml', {}), ConfigError)
})

test('jwt-sidecar verify reads a snapshot but never writes one: the sidecar\'s file is not a tool\'s to change', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-snapshot-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'corp.jwks.json')
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const idp = await startTestIssuer()
  t.after(() => idp.close())
  const configFile = join(dir, 'sidecar.yaml')
  writeFileSync(configFile, yamlWith(upstream.url, idp.issuer, idp.jwksUri, file))
  // The IdP is up: a sidecar would write the snapshot after this fetch; verify must not.
  const token = await idp.sign({ sub: 'alice' })
  const r = await promisify(execFile)(process.execPath, [cli, 'verify', '--config', configFile, '--path', '/api/x', token], { cwd: root, env: { PATH: process.env.PATH ?? '' } })
  assert.match(r.stdout, /outcome: forwarded/)
  assert.ok(idp.fetchCount() >= 1, 'verify fetched the keys')
  assert.equal(existsSync(file), false, 'verify wrote the snapshot')
})
