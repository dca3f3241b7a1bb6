/**
 * `settled()` on the key store and on each issuer: resolves once the first load attempt after
 * start() is over, with keys or without, so callers (the CLI, the demo, tests) wait for it
 * instead of polling `ready()`. The failure cases are the point: a provider that is down,
 * hangs, or serves a bad discovery document must settle the promise, never leave it pending.
 */
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createKeyStore } from '../../src/keys/store.ts'
import type { Algorithm, IssuerConfig, StaticKeyConfig } from '../../src/config/types.ts'
import type { KeyEvent } from '../../src/keys/types.ts'
import { waitFor } from '../../src/wait-for.ts'
import { startHttpServer, startTestIssuer } from '../helpers/issuer.ts'

function issuerCfg(o: { name?: string; issuer: string; jwksUri?: string; discovery?: boolean; keys?: readonly StaticKeyConfig[]; timeout?: number; algorithms?: readonly Algorithm[] }): IssuerConfig {
  return {
    name: o.name ?? 'test',
    issuer: o.issuer,
    jwksUri: o.jwksUri,
    tenants: undefined,
    discovery: o.discovery ?? false,
    discoveryUrl: undefined,
    audienceClaim: 'aud',
    keys: o.keys ?? [],
    audiences: ['test-api'],
    algorithms: o.algorithms ?? ['ES256'],
    requiredClaims: ['exp'],
    maxLifetime: undefined,
    typ: undefined,
    allowInsecureHttp: false,
    kidless: { maxCandidates: 1 }, dpop: { mode: 'off', proofMaxAge: 60_000 },
    fetch: { timeout: o.timeout ?? 2_000, maxBytes: 64 * 1024, headers: {}, bearerTokenFile: undefined, caFile: undefined },
    refresh: {
      interval: 60_000, minInterval: 10_000, maxInterval: 300_000, unknownKidCooldown: 30_000,
      unknownKidWait: 250, maxStale: 3_600_000, discoveryInterval: 150_000,
    },
  }
}

/** A store over `configs` that records its events and is stopped after the test. */
function store(t: TestContext, configs: readonly IssuerConfig[]) {
  const events: KeyEvent[] = []
  const s = createKeyStore(configs, { onEvent: (e) => events.push(e), watch: { debounceMs: 20, pollIntervalMs: 100 } })
  t.after(() => s.stop())
  return { store: s, events }
}

/** Whether `p` has resolved after the current macrotask queue drained. */
async function isSettled(p: Promise<void>): Promise<boolean> {
  let done = false
  void p.then(() => {
    done = true
  })
  await new Promise((r) => setImmediate(r))
  return done
}

function tempFile(t: TestContext, name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-settled-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, name)
  writeFileSync(file, content)
  return file
}

const outcomes = (events: readonly KeyEvent[]): string[] =>
  events.filter((e) => e.event === 'jwks.refreshed' || e.event === 'jwks.refresh_failed').map((e) => e.event)

describe('settled()', () => {
  it('stays pending before start(), then resolves after the first fetch with the keys in place', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256', kids: ['k1'] })
    t.after(() => idp.close())
    const { store: s, events } = store(t, [issuerCfg({ issuer: idp.issuer, jwksUri: idp.jwksUri })])
    const settled = s.settled()
    assert.equal(await isSettled(settled), false, 'nothing was attempted yet')
    s.start()
    await settled
    assert.deepEqual(outcomes(events), ['jwks.refreshed'], 'the outcome is out before settled() resolves')
    assert.equal(s.ready(), true)
    assert.equal(s.issuer('test')!.getKey('k1', 'ES256') instanceof Promise, false)
    // Settled once, settled for good: later calls resolve at once.
    assert.equal(await isSettled(s.settled()), true)
    assert.equal(await isSettled(s.issuer('test')!.settled()), true)
  })

  it('resolves, not ready, when the provider answers 500, refuses connections, or hangs past fetch.timeout', async (t) => {
    const failing = await startTestIssuer({ alg: 'ES256' })
    t.after(() => failing.close())
    failing.setStatus(500)
    const hanging = await startHttpServer(() => { /* never answers */ })
    t.after(() => hanging.close())
    const refused = await startHttpServer(() => {})
    const refusedUrl = `${refused.url}/jwks`
    await refused.close()

    const { store: s, events } = store(t, [
      issuerCfg({ name: 'failing', issuer: failing.issuer, jwksUri: failing.jwksUri }),
      issuerCfg({ name: 'refused', issuer: 'https://refused.example', jwksUri: refusedUrl }),
      issuerCfg({ name: 'hanging', issuer: 'https://hanging.example', jwksUri: `${hanging.url}/jwks`, timeout: 300 }),
    ])
    const t0 = performance.now()
    s.start()
    await s.settled()
    const ms = performance.now() - t0
    assert.ok(ms >= 250 && ms < 3_000, `settled after the hanging fetch timed out (${Math.round(ms)} ms)`)
    assert.deepEqual(outcomes(events), ['jwks.refresh_failed', 'jwks.refresh_failed', 'jwks.refresh_failed'])
    assert.equal(s.ready(), false)
    assert.deepEqual(s.status().map((st) => [st.issuer, st.state, st.lastError?.split(':')[0]]), [
      ['failing', 'loading', 'status'],
      ['refused', 'loading', 'network'],
      ['hanging', 'loading', 'timeout'],
    ])
  })

  it('one issuer settles on its own: a slow one does not hold the other', async (t) => {
    const fast = await startTestIssuer({ alg: 'ES256' })
    t.after(() => fast.close())
    const slow = await startTestIssuer({ alg: 'ES256' })
    t.after(() => slow.close())
    slow.setDelay(400)
    const { store: s } = store(t, [
      issuerCfg({ name: 'fast', issuer: fast.issuer, jwksUri: fast.jwksUri }),
      issuerCfg({ name: 'slow', issuer: slow.issuer, jwksUri: slow.jwksUri }),
    ])
    s.start()
    await s.issuer('fast')!.settled()
    assert.equal(s.issuer('fast')!.ready(), true)
    assert.equal(s.issuer('slow')!.ready(), false, 'the slow issuer is still fetching')
    await s.settled()
    assert.equal(s.issuer('slow')!.ready(), true)
  })

  it('discovery: a discovery document for another issuer settles it (one attempt, not ready)', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setDiscoveryBody(JSON.stringify({ issuer: 'https://other.example', jwks_uri: idp.jwksUri }))
    const { store: s } = store(t, [issuerCfg({ issuer: idp.issuer, discovery: true })])
    s.start()
    await s.settled()
    assert.equal(s.ready(), false)
    assert.match(s.status()[0]!.lastError ?? '', /^discovery: /)
    assert.equal(idp.fetchCount(), 0, 'no JWKS fetch without a trusted jwks_uri')
  })

  it('key files: settles after one read, a bad file included; with a JWKS too, only when both have been tried', async (t) => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const good = tempFile(t, 'good.pem', ec.publicKey.export({ type: 'spki', format: 'pem' }) as string)
    const bad = tempFile(t, 'bad.pem', 'not a key')
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setDelay(300)
    const { store: s } = store(t, [
      issuerCfg({ name: 'bad-file', issuer: 'https://files.example', keys: [{ file: bad, alg: 'ES256', kid: undefined }] }),
      issuerCfg({ name: 'both', issuer: idp.issuer, jwksUri: idp.jwksUri, keys: [{ file: good, alg: 'ES256', kid: 'file-key' }] }),
    ])
    s.start()
    await s.issuer('bad-file')!.settled()
    assert.deepEqual([s.issuer('bad-file')!.ready(), s.issuer('bad-file')!.status().state], [false, 'loading'])

    const both = s.issuer('both')!
    // The file loads long before the delayed JWKS: ready, but not settled yet.
    await waitFor(() => both.ready(), { what: 'the key file to load', intervalMs: 5 })
    assert.equal(await isSettled(both.settled()), false, 'the JWKS fetch is still out')
    await both.settled()
    assert.equal(both.status().keys, 2)
  })

  it('stop() settles an issuer that never started or is still fetching', async (t) => {
    const hanging = await startHttpServer(() => { /* never answers */ })
    t.after(() => hanging.close())
    const idle = createKeyStore([issuerCfg({ issuer: 'https://idle.example', jwksUri: `${hanging.url}/jwks` })])
    const neverStarted = idle.settled()
    await idle.stop()
    await neverStarted

    const { store: s } = store(t, [issuerCfg({ issuer: 'https://hanging.example', jwksUri: `${hanging.url}/jwks`, timeout: 60_000 })])
    s.start()
    const settled = s.settled()
    assert.equal(await isSettled(settled), false)
    await s.stop()
    await settled
  })

  it('a reload that replaces an issuer settles once the new runtime has tried', async (t) => {
    const a = await startTestIssuer({ alg: 'ES256', kids: ['a1'] })
    t.after(() => a.close())
    const b = await startTestIssuer({ alg: 'ES256', kids: ['b1'] })
    t.after(() => b.close())
    b.setDelay(200)
    const { store: s } = store(t, [issuerCfg({ issuer: a.issuer, jwksUri: a.jwksUri })])
    s.start()
    await s.settled()
    assert.deepEqual(s.reconfigure([issuerCfg({ issuer: b.issuer, jwksUri: b.jwksUri })]).replaced, ['test'])
    const settled = s.settled()
    assert.equal(await isSettled(settled), false, 'the new runtime is fetching')
    await settled
    assert.equal(s.issuer('test')!.getKey('b1', 'ES256') instanceof Promise, false, 'the new key set is in use')
  })
})
