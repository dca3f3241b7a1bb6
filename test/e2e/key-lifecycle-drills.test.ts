/**
 * Key-lifecycle drills (issue #3, item 12) against a real OpenID Provider (npm's
 * oidc-provider) and a real sidecar on loopback, with short refresh durations. Each drill
 * runs a background probe that keeps sending currently valid tokens and asserts that none
 * of them failed where none should, and prints its timings.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import { request } from 'undici'
import { startTestOp } from '../helpers/oidc.ts'
import type { TestOp } from '../helpers/oidc.ts'
import { startHttpServer, startUpstream } from '../helpers/issuer.ts'
import type { TestUpstream } from '../helpers/issuer.ts'
import { startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'
import { waitFor } from '../../src/wait-for.ts'

/** A sidecar config around one issuer block (YAML list item, 2-space indented). */
function drillConfig(upstream: string, issuer: string): string {
  return `
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
upstream:
  url: ${upstream}
issuers:
${issuer}
${ROUTES}`
}

const ROUTES = `
routes:
  - name: default
    path: /**
    auth: required
log:
  level: debug
  access: false
`

/** Fast refresh settings: the drills compress minutes into seconds. */
function refreshYaml(o: { maxStale?: string } = {}): string {
  return `
    refresh:
      interval: 1s
      minInterval: 1s
      maxInterval: 1s
      unknownKidCooldown: 1s
      unknownKidWait: 2s
      maxStale: ${o.maxStale ?? '4s'}
    fetch:
      timeout: 1s
      maxBytes: 1MiB`
}

interface Probe {
  /** Stops the loop and returns every failed probe request. */
  stop(): Promise<Array<{ status: number; body: string; atMs: number }>>
  count(): number
}

/** Sends `token()` to the sidecar in a loop until stopped; records anything but 200. */
function probe(sidecar: TestSidecar, token: () => string): Probe {
  let running = true
  let n = 0
  const failures: Array<{ status: number; body: string; atMs: number }> = []
  const t0 = performance.now()
  const loop = (async () => {
    while (running) {
      const res = await request(`${sidecar.proxyUrl}/api/probe`, { headers: { authorization: `Bearer ${token()}` } })
      const body = await res.body.text()
      n++
      if (res.statusCode !== 200) failures.push({ status: res.statusCode, body, atMs: Math.round(performance.now() - t0) })
      await new Promise((r) => setTimeout(r, 15))
    }
  })()
  return {
    count: () => n,
    async stop() {
      running = false
      await loop
      return failures
    },
  }
}

async function call(sidecar: TestSidecar, token: string): Promise<{ status: number; reason: unknown }> {
  const res = await request(`${sidecar.proxyUrl}/api/x`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, reason: text.startsWith('{') ? (JSON.parse(text) as { reason?: unknown }).reason : undefined }
}

/** {@link waitFor} polling every 25 ms; returns the milliseconds `check` took to hold, for the drill reports. */
async function msUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now()
  await waitFor(check, { what, timeoutMs, intervalMs: 25 })
  return Math.round(performance.now() - t0)
}

async function metrics(sidecar: TestSidecar): Promise<string> {
  return (await request(`${sidecar.adminUrl}/metrics`)).body.text()
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

const events = (sidecar: TestSidecar, name: string) => sidecar.logs().filter((l) => l.event === name)

describe('drills against a real OpenID Provider (oidc-provider)', () => {
  let op: TestOp
  let upstream: TestUpstream
  let sidecar: TestSidecar

  before(async () => {
    op = await startTestOp({ algs: ['RS256', 'ES256'] })
    upstream = await startUpstream()
    sidecar = await startSidecar(drillConfig(upstream.url, `
  - name: op
    issuer: ${op.issuer}
    discovery: true
    audiences: [${op.audience}]
    algorithms: [RS256, ES256]${refreshYaml()}`))
  })
  after(async () => {
    await sidecar?.close()
    await Promise.all([op?.close(), upstream?.close()])
  })

  test('discovery found the jwks_uri and client_credentials tokens (RS256, ES256) pass', async () => {
    assert.equal(events(sidecar, 'jwks.discovered')[0]?.jwksUri, op.jwksUri)
    assert.equal((await call(sidecar, await op.token('RS256'))).status, 200)
    assert.equal((await call(sidecar, await op.token('ES256'))).status, 200)
    const keys = (await (await request(`${sidecar.adminUrl}/keys`)).body.json()) as { issuers: Array<{ state: string; keys: Array<{ kid: string; kty: string; thumbprint: string }> }> }
    assert.equal(keys.issuers[0]!.state, 'fresh')
    assert.deepEqual(new Set(keys.issuers[0]!.keys.map((k) => k.kid)), new Set(op.kids()))
  })

  test('(a) rotation: a new key passes at once via the unknown-kid path; a withdrawn key fails after the next refresh', async () => {
    let current = await op.token('RS256')
    const p = probe(sidecar, () => current)
    const oldToken = current
    const [oldKid] = op.kids().filter((k) => k.startsWith('rs256'))
    const before = metricValue(await metrics(sidecar), 'jwt_sidecar_unknown_kid_total{issuer="op",action="refreshed"}')

    // The drill refreshes every second, so a scheduled refresh could pick the new key up before
    // its first token arrives and leave the unknown-kid path untested: start right after one.
    const scheduled = () => events(sidecar, 'jwks.refreshed').filter((e) => e.trigger === 'schedule').length
    const n = scheduled()
    await waitFor(() => scheduled() > n, { what: 'a scheduled refresh', timeoutMs: 10_000, intervalMs: 5 })
    const newKid = await op.rotate('RS256')
    const fresh = await op.token('RS256')
    const t0 = performance.now()
    const first = await call(sidecar, fresh)
    const firstMs = Math.round(performance.now() - t0)
    assert.equal(first.status, 200, 'a token signed by the just-published key passes at once')
    current = fresh
    const viaSchedule = scheduled() > n + 1
    assert.ok(metricValue(await metrics(sidecar), 'jwt_sidecar_unknown_kid_total{issuer="op",action="refreshed"}') > before, `the new key came by the unknown-kid path${viaSchedule ? ' (a scheduled refresh still came first: the machine took over a second to mint the token)' : ''}`)
    assert.ok(events(sidecar, 'jwks.key_added').some((e) => e.kid === newKid))

    await op.withdraw(oldKid!)
    const withdrawnMs = await msUntil('the withdrawn key to be refused', async () => (await call(sidecar, oldToken)).reason === 'unknown_kid')
    assert.ok(events(sidecar, 'jwks.key_removed').some((e) => e.kid === oldKid))
    const failures = await p.stop()
    assert.deepEqual(failures, [], `${failures.length} of ${p.count()} valid requests failed during the rotation`)
    console.log(`drill (a): new key accepted on first use in ${firstMs} ms; withdrawn key refused ${withdrawnMs} ms after withdrawal; ${p.count()} probe requests, 0 failed`)
  })

  test('(b) provider down: stale keys keep serving; past maxStale 503 and not ready; recovery when it returns', async () => {
    let current = await op.token('ES256')
    const p = probe(sidecar, () => current)
    await op.stop()
    const staleMs = await msUntil('state stale', async () => metricValue(await metrics(sidecar), 'jwt_sidecar_jwks_state{issuer="op",state="stale"}') === 1)
    assert.ok(events(sidecar, 'jwks.stale').length >= 1)
    assert.ok(events(sidecar, 'jwks.refresh_failed').length >= 1)
    // Several refresh intervals (1s) pass with the provider down: valid tokens keep passing.
    await new Promise((r) => setTimeout(r, 2000))
    const failuresWhileStale = await p.stop()
    assert.deepEqual(failuresWhileStale, [], 'no valid request may fail while the last-known-good set is within maxStale')
    assert.ok(metricValue(await metrics(sidecar), 'jwt_sidecar_jwks_staleness_seconds{issuer="op"}') >= 2)

    const expiredMs = await msUntil('keys_unavailable past maxStale', async () => (await call(sidecar, current)).reason === 'keys_unavailable')
    const res = await request(`${sidecar.adminUrl}/readyz`)
    assert.equal(res.statusCode, 503)
    await res.body.dump()
    assert.equal(events(sidecar, 'jwks.expired').length, 1)
    assert.equal(metricValue(await metrics(sidecar), 'jwt_sidecar_jwks_state{issuer="op",state="expired"}'), 1)

    await op.resume()
    current = await op.token('ES256')
    const recoveredMs = await msUntil('recovery', async () => (await call(sidecar, current)).status === 200)
    const ready = await request(`${sidecar.adminUrl}/readyz`)
    assert.equal(ready.statusCode, 200)
    await ready.body.dump()
    assert.ok(events(sidecar, 'jwks.recovered').some((e) => e.from === 'expired'))
    console.log(`drill (b): stale ${staleMs} ms after the provider stopped; 0 of ${p.count()} valid requests failed while stale; keys_unavailable ${expiredMs} ms later (maxStale 4s); recovered ${recoveredMs} ms after the provider returned`)
  })
})

describe('drill (c): a misbehaving JWKS endpoint never costs the last good set', () => {
  test('500, garbage, 5 MiB, a 10 s stall, a cross-origin redirect, an oct key, a 1024-bit RSA key', { timeout: 90_000 }, async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
    const good = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'good', alg: 'ES256', use: 'sig' }] })
    const other = await startHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(good))
    let mode = 'good'
    const stalls = new Set<ReturnType<typeof setTimeout>>()
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' })
    // Built once: this process also runs the sidecar, whose 1 s fetch timeout must not be spent
    // waiting for the test to build 5 MiB of JSON on a loaded machine.
    const huge = Buffer.from(JSON.stringify({ keys: [], pad: 'x'.repeat(5 * 1024 * 1024) }))
    const bodies: Record<string, () => string | Buffer> = {
      good: () => good,
      garbage: () => '<html>not json',
      huge: () => huge,
      oct: () => JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'mac', alg: 'HS256' }] }),
      weak: () => JSON.stringify({ keys: [{ ...weak, kid: 'weak', alg: 'RS256' }] }),
    }
    const jwks = await startHttpServer((_req, res) => {
      if (mode === 'status500') return void res.writeHead(500).end('boom')
      if (mode === 'redirect') return void res.writeHead(302, { location: `${other.url}/jwks` }).end()
      if (mode === 'stall') {
        const t = setTimeout(() => res.writeHead(200).end(good), 10_000)
        stalls.add(t)
        return undefined
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(bodies[mode]!())
      return undefined
    })
    const upstream = await startUpstream()
    const iss = 'https://issuer.drill.example'
    const sidecar = await startSidecar(drillConfig(upstream.url, `
  - name: drill
    issuer: ${iss}
    jwksUri: ${jwks.url}/jwks
    audiences: [api]
    algorithms: [ES256, RS256]${refreshYaml({ maxStale: '1h' })}`))
    const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'good' })
      .setIssuer(iss).setAudience('api').setIssuedAt().setExpirationTime('10m').sign(privateKey)
    const p = probe(sidecar, () => token)
    const timings: string[] = []
    try {
      const expectations: Array<[string, RegExp]> = [
        ['status500', /^status: HTTP 500/],
        ['garbage', /^invalid_json: /],
        ['huge', /^too_large: /],
        ['stall', /^timeout: /],
        ['redirect', /^redirect: /],
        ['oct', /^no_usable_keys: /],
        ['weak', /^no_usable_keys: /],
      ]
      for (const [m, error] of expectations) {
        const failedBefore = events(sidecar, 'jwks.refresh_failed').length
        const t0 = performance.now()
        mode = m
        await waitFor(() => events(sidecar, 'jwks.refresh_failed').length > failedBefore, { what: `a failed refresh in mode ${m}`, timeoutMs: 15_000, intervalMs: 25 })
        const e = events(sidecar, 'jwks.refresh_failed').at(-1)!
        assert.match(String(e.error), error, `mode ${m}`)
        timings.push(`${m} ${Math.round(performance.now() - t0)} ms`)
        // The last good set still verifies.
        assert.equal((await call(sidecar, token)).status, 200, `mode ${m}`)
        mode = 'good'
        await waitFor(async () => metricValue(await metrics(sidecar), 'jwt_sidecar_jwks_state{issuer="drill",state="fresh"}') === 1, { what: `recovery after ${m}`, timeoutMs: 15_000, intervalMs: 25 })
      }
      const text = await metrics(sidecar)
      assert.ok(metricValue(text, 'jwt_sidecar_jwks_refresh_total{issuer="drill",trigger="schedule",result="error"}') >= expectations.length)
      assert.ok(metricValue(text, 'jwt_sidecar_jwks_key_rejections_total{issuer="drill"}') >= 2, 'oct and 1024-bit keys are counted')
      const rejected = events(sidecar, 'jwks.key_rejected').map((e) => String(e.why))
      assert.ok(rejected.some((w) => /symmetric/.test(w)) && rejected.some((w) => /1024 bits/.test(w)), rejected.join('; '))
      const failures = await p.stop()
      assert.deepEqual(failures, [], `${failures.length} of ${p.count()} valid requests failed`)
      console.log(`drill (c): each bad answer detected after ${timings.join(', ')}; ${p.count()} probe requests, 0 failed`)
    } finally {
      await p.stop()
      for (const t of stalls) clearTimeout(t)
      await sidecar.close()
      await Promise.all([jwks.close(), other.close(), upstream.close()])
    }
  })
})

describe('drill (d): a static PEM replaced on disk is used without a restart', () => {
  test('a Kubernetes Secret update (..data symlink swap) swaps the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-drill-'))
    const first = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const second = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const pem = (k: typeof first) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString()
    // The kubelet's layout: key.pem -> ..data/key.pem, ..data -> ..<timestamp>/
    mkdirSync(join(dir, '..v1'))
    writeFileSync(join(dir, '..v1', 'key.pem'), pem(first))
    symlinkSync('..v1', join(dir, '..data'))
    symlinkSync(join('..data', 'key.pem'), join(dir, 'key.pem'))
    const upstream = await startUpstream()
    const iss = 'https://static.drill.example'
    const sidecar = await startSidecar(drillConfig(upstream.url, `
  - name: static
    issuer: ${iss}
    audiences: [api]
    algorithms: [ES256]
    keys:
      - file: ${join(dir, 'key.pem')}
        alg: ES256
        kid: signing`))
    const sign = (k: typeof first) => new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'signing' })
      .setIssuer(iss).setAudience('api').setIssuedAt().setExpirationTime('10m').sign(k.privateKey)
    const oldToken = await sign(first)
    const newToken = await sign(second)
    try {
      assert.equal((await call(sidecar, oldToken)).status, 200)
      assert.equal((await call(sidecar, newToken)).reason, 'bad_signature')
      const t0 = performance.now()
      mkdirSync(join(dir, '..v2'))
      writeFileSync(join(dir, '..v2', 'key.pem'), pem(second))
      symlinkSync('..v2', join(dir, '..data_tmp'))
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
      rmSync(join(dir, '..v1'), { recursive: true })
      await waitFor(async () => (await call(sidecar, newToken)).status === 200, { what: 'the new key', timeoutMs: 15_000, intervalMs: 25 })
      const swapMs = Math.round(performance.now() - t0)
      assert.equal((await call(sidecar, oldToken)).reason, 'bad_signature')
      assert.ok(events(sidecar, 'jwks.key_changed').some((e) => e.kid === 'signing'))
      const keys = (await (await request(`${sidecar.adminUrl}/keys`)).body.json()) as { issuers: Array<{ state: string; keys: Array<{ source: string }> }> }
      assert.equal(keys.issuers[0]!.state, 'static')
      assert.equal(keys.issuers[0]!.keys[0]!.source, `file:${join(dir, 'key.pem')}`)
      // An invalid new file keeps the old keys and says why.
      writeFileSync(join(dir, '..v2', 'key.pem'), 'not a key')
      await waitFor(() => events(sidecar, 'jwks.refresh_failed').some((e) => String(e.error).includes('key.pem')), { what: 'the rejection event', timeoutMs: 15_000, intervalMs: 25 })
      assert.equal((await call(sidecar, newToken)).status, 200, 'the last good key stays')
      console.log(`drill (d): new key in use ${swapMs} ms after the ..data swap`)
    } finally {
      await sidecar.close()
      await upstream.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('drill (e): a hostile JWKS (400,000-deep, 5,000 keys) never costs the last good set (issue #9 §8)', () => {
  test('each is refused with its own code in jwks.refresh_failed and counted as an error; the good set answers throughout', { timeout: 60_000 }, async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
    const jwk = { ...(await exportJWK(publicKey)), kid: 'good', alg: 'ES256', use: 'sig' }
    const bodies: Record<string, string> = {
      good: JSON.stringify({ keys: [jwk] }),
      // Both fit under the 1MiB fetch.maxBytes of refreshYaml(), the shipped default.
      deep: `{"keys":${'['.repeat(400_000)}${']'.repeat(400_000)}}`,
      many: JSON.stringify({ keys: Array.from({ length: 5_000 }, (_, i) => ({ ...jwk, kid: `k${i}` })) }),
    }
    let mode = 'good'
    const jwks = await startHttpServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(bodies[mode]))
    const upstream = await startUpstream()
    const iss = 'https://hostile.drill.example'
    const sidecar = await startSidecar(drillConfig(upstream.url, `
  - name: hostile
    issuer: ${iss}
    jwksUri: ${jwks.url}/jwks
    audiences: [api]
    algorithms: [ES256]${refreshYaml({ maxStale: '1h' })}`))
    const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'good' })
      .setIssuer(iss).setAudience('api').setIssuedAt().setExpirationTime('10m').sign(privateKey)
    const p = probe(sidecar, () => token)
    const timings: string[] = []
    try {
      const expectations: Array<[string, RegExp]> = [
        ['deep', /^too_deep: response nests deeper than 32 levels /],
        ['many', /^too_many_keys: JWKS lists 5000 keys, more than 100: /],
      ]
      for (const [m, error] of expectations) {
        const failedBefore = events(sidecar, 'jwks.refresh_failed').length
        const t0 = performance.now()
        mode = m
        await waitFor(() => events(sidecar, 'jwks.refresh_failed').length > failedBefore, { what: `a failed refresh in mode ${m}`, timeoutMs: 15_000, intervalMs: 25 })
        const e = events(sidecar, 'jwks.refresh_failed').at(-1)!
        assert.match(String(e.error), error, `mode ${m}`)
        timings.push(`${m} ${Math.round(performance.now() - t0)} ms`)
        assert.equal((await call(sidecar, token)).status, 200, `mode ${m}: the last good set still verifies`)
        const keys = (await (await request(`${sidecar.adminUrl}/keys`)).body.json()) as { issuers: Array<{ state: string; lastError: string; keys: Array<{ kid: string }> }> }
        assert.deepEqual(keys.issuers[0]!.keys.map((k) => k.kid), ['good'], `mode ${m}: nothing of the hostile document was taken in`)
        assert.match(keys.issuers[0]!.lastError, error, `mode ${m}: /keys says why`)
        mode = 'good'
        await waitFor(async () => metricValue(await metrics(sidecar), 'jwt_sidecar_jwks_state{issuer="hostile",state="fresh"}') === 1, { what: `recovery after ${m}`, timeoutMs: 15_000, intervalMs: 25 })
      }
      const text = await metrics(sidecar)
      assert.ok(metricValue(text, 'jwt_sidecar_jwks_refresh_total{issuer="hostile",trigger="schedule",result="error"}') >= expectations.length)
      assert.equal(metricValue(text, 'jwt_sidecar_jwks_key_rejections_total{issuer="hostile"}'), 0, 'refused documents reject no single key')
      assert.equal(events(sidecar, 'jwks.key_added').filter((e) => e.kid !== 'good').length, 0)
      const failures = await p.stop()
      assert.deepEqual(failures, [], `${failures.length} of ${p.count()} valid requests failed`)
      console.log(`drill (e): each hostile document refused after ${timings.join(', ')}; ${p.count()} probe requests, 0 failed`)
    } finally {
      await p.stop()
      await sidecar.close()
      await Promise.all([jwks.close(), upstream.close()])
    }
  })
})
