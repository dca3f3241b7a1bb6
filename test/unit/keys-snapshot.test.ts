/**
 * The persisted key snapshot (issue #13 §3, src/keys/snapshot.ts and its use in refresher.ts):
 * a real key store over REAL loopback HTTP (test/helpers/issuer.ts) and real files in a temp
 * dir; the clock and the schedule are driven by hand, as in keys-store.test.ts, so maxStale is
 * crossed without sleeping.
 */
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createKeyStore } from '../../src/keys/store.ts'
import type { Schedule } from '../../src/keys/store.ts'
import { createMetrics } from '../../src/observe/metrics.ts'
import { waitFor } from '../../src/wait-for.ts'
import type { IssuerConfig } from '../../src/config/types.ts'
import type { KeyEvent, KeyResult } from '../../src/keys/types.ts'
import { issuerConfig } from '../helpers/key-store.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer, TestIssuerOptions } from '../helpers/issuer.ts'

const T0 = Date.UTC(2030, 0, 1, 12)
const HOUR = 3_600_000
const REFRESH = { interval: 60_000, minInterval: 10_000, maxInterval: 300_000, maxStale: HOUR }

interface ManualTimer {
  readonly fn: () => void
  readonly ms: number
  readonly at: number
  state: 'pending' | 'fired' | 'cancelled'
}

function manualClock(start: number) {
  let now = start
  const timers: ManualTimer[] = []
  const schedule: Schedule = (fn, ms) => {
    const t: ManualTimer = { fn, ms, at: now, state: 'pending' }
    timers.push(t)
    return { cancel: () => { if (t.state === 'pending') t.state = 'cancelled' } }
  }
  return {
    schedule,
    now: (): number => now,
    /** Move the clock to `at` and fire every timer due by then. */
    runUntil(at: number): void {
      now = at
      for (const t of timers.filter((x) => x.state === 'pending' && x.at + x.ms <= now)) {
        t.state = 'fired'
        t.fn()
      }
    },
  }
}

type EventOf<N extends KeyEvent['event']> = Extract<KeyEvent, { event: N }>
function only<N extends KeyEvent['event']>(events: readonly KeyEvent[], name: N): EventOf<N>[] {
  return events.filter((e): e is EventOf<N> => e.event === name)
}

/** The key stores each test started, stopped before its temp directory is removed. */
const stores = new WeakMap<TestContext, { stop(): Promise<void> }[]>()

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-snapshot-'))
  // after() hooks run in the order they were added, so this one would run before the stores'
  // stop(): it stops them first, so no snapshot write is still under way in the directory.
  t.after(async () => {
    await Promise.all((stores.get(t) ?? []).map((s) => s.stop()))
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

async function issuer(t: TestContext, opts: TestIssuerOptions = {}): Promise<TestIssuer> {
  const idp = await startTestIssuer({ alg: 'RS256', kids: ['k1', 'k2'], ...opts })
  t.after(() => idp.close())
  return idp
}

function cfg(idp: TestIssuer, file: string, o: { jwksUri?: string; issuer?: string } = {}): IssuerConfig {
  return { ...issuerConfig({ name: 'corp', issuer: o.issuer ?? idp.issuer, jwksUri: o.jwksUri ?? idp.jwksUri, refresh: REFRESH }), snapshot: { file } }
}

/** A store at `start` on the manual clock, started and settled (its first fetch answered or failed). */
async function started(t: TestContext, config: IssuerConfig, start: number) {
  const clock = manualClock(start)
  const events: KeyEvent[] = []
  const store = createKeyStore([config], { now: clock.now, random: () => 1, schedule: clock.schedule, onEvent: (e) => events.push(e) })
  t.after(() => store.stop())
  stores.set(t, [...(stores.get(t) ?? []), store])
  store.start()
  await store.settled()
  const keys = store.issuer('corp')!
  return { clock, events, store, keys }
}

function ok(r: KeyResult | Promise<KeyResult>): boolean {
  assert.ok(!(r instanceof Promise), 'a synchronous answer')
  return r.ok
}

/** A warm run: the IdP up at T0, the snapshot written; returns the file's text. */
async function warm(t: TestContext, idp: TestIssuer, file: string): Promise<string> {
  const run = await started(t, cfg(idp, file), T0)
  await waitFor(() => only(run.events, 'jwks.snapshot_written').length === 1, { what: 'the snapshot written', intervalMs: 2 })
  await run.store.stop()
  return readFileSync(file, 'utf8')
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

describe('writing', () => {
  it('after a refresh: the validated public keys, issuer, jwksUri and fetch time, mode 0600, atomically in place', async (t) => {
    const idp = await issuer(t)
    const file = join(tempDir(t), 'corp.jwks.json')
    const text = await warm(t, idp, file)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const doc = JSON.parse(text) as { format: number; issuer: string; jwksUri: string; fetchedAt: string; jwks: { keys: Array<Record<string, unknown>> } }
    assert.equal(doc.format, 1)
    assert.equal(doc.issuer, idp.issuer)
    assert.equal(doc.jwksUri, idp.jwksUri)
    assert.equal(doc.fetchedAt, new Date(T0).toISOString())
    assert.deepEqual(doc.jwks.keys.map((k) => k['kid']), ['k1', 'k2'])
    for (const k of doc.jwks.keys) {
      assert.deepEqual(Object.keys(k).sort(), ['alg', 'e', 'kid', 'kty', 'n'], 'public members, kid and alg only')
      for (const m of PRIVATE_MEMBERS) assert.equal(k[m], undefined, `never ${m}`)
      assert.equal(k['n'], idp.jwks().keys.find((s) => s.kid === k['kid'])?.n)
    }
  })

  it('is rewritten after each refresh with the new keys and fetch time', async (t) => {
    const idp = await issuer(t)
    const file = join(tempDir(t), 'corp.jwks.json')
    const run = await started(t, cfg(idp, file), T0)
    await waitFor(() => only(run.events, 'jwks.snapshot_written').length === 1, { what: 'first write', intervalMs: 2 })
    await idp.addKey('k3')
    run.clock.runUntil(T0 + 60_000) // the scheduled refresh (interval 60 s, jitter factor 1)
    await waitFor(() => only(run.events, 'jwks.snapshot_written').length === 2, { what: 'second write', intervalMs: 2 })
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { fetchedAt: string; jwks: { keys: Array<{ kid: string }> } }
    assert.equal(doc.fetchedAt, new Date(T0 + 60_000).toISOString())
    assert.deepEqual(doc.jwks.keys.map((k) => k.kid), ['k1', 'k2', 'k3'])
  })

  it('a write that fails is an event; the keys in use are unaffected', async (t) => {
    const idp = await issuer(t)
    const file = join(tempDir(t), 'no-such-dir', 'corp.jwks.json')
    const run = await started(t, cfg(idp, file), T0)
    await waitFor(() => only(run.events, 'jwks.snapshot_write_failed').length === 1, { what: 'write_failed', intervalMs: 2 })
    assert.deepEqual(only(run.events, 'jwks.snapshot_write_failed')[0], { event: 'jwks.snapshot_write_failed', issuer: 'corp', file, error: 'ENOENT' })
    assert.equal(run.keys.status().state, 'fresh')
    assert.ok(ok(run.keys.getKey('k1', 'RS256')))
  })
})

describe('a cold start with the IdP down', () => {
  it('uses the snapshot as stale within maxStale, expires it at fetch time + maxStale, and recovers when the IdP returns', async (t) => {
    const idp = await issuer(t)
    const file = join(tempDir(t), 'corp.jwks.json')
    await warm(t, idp, file)
    idp.setStatus(503)
    const run = await started(t, cfg(idp, file), T0 + 10 * 60_000)
    assert.deepEqual(only(run.events, 'jwks.snapshot_loaded'), [{ event: 'jwks.snapshot_loaded', issuer: 'corp', file, fetchedAt: T0, keys: 2 }])
    assert.equal(only(run.events, 'jwks.refresh_failed').length, 1, 'the first fetch still ran')
    const status = run.keys.status()
    assert.equal(status.state, 'stale')
    assert.equal(status.ready, true)
    assert.equal(status.lastSuccess, T0, 'the snapshot keeps its original fetch time')
    assert.ok(ok(run.keys.getKey('k1', 'RS256')), 'a known kid is answered from the snapshot')

    run.clock.runUntil(T0 + HOUR - 1)
    assert.equal(run.keys.status().state, 'stale', 'not before maxStale')
    run.clock.runUntil(T0 + HOUR)
    assert.equal(run.keys.status().state, 'expired')
    assert.deepEqual(run.keys.getKey('k1', 'RS256'), { ok: false, reason: 'keys_unavailable' })

    idp.setStatus(200)
    const mark = run.events.length
    run.clock.runUntil(T0 + HOUR + 10_000) // the backoff retry (capped at minInterval)
    await waitFor(() => run.events.slice(mark).some((e) => e.event === 'jwks.refreshed'), { what: 'a refresh', intervalMs: 2 })
    assert.equal(run.keys.status().state, 'fresh')
    await waitFor(() => only(run.events, 'jwks.snapshot_written').length === 1, { what: 'rewritten', intervalMs: 2 })
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { fetchedAt: string }).fetchedAt, new Date(T0 + HOUR + 10_000).toISOString())
  })

  it('with the IdP up, the first refresh makes the snapshot keys fresh (recovered from stale)', async (t) => {
    const idp = await issuer(t)
    const file = join(tempDir(t), 'corp.jwks.json')
    await warm(t, idp, file)
    const run = await started(t, cfg(idp, file), T0 + 60_000)
    assert.equal(only(run.events, 'jwks.snapshot_loaded').length, 1)
    assert.deepEqual(only(run.events, 'jwks.recovered'), [{ event: 'jwks.recovered', issuer: 'corp', from: 'stale' }])
    assert.equal(run.keys.status().state, 'fresh')
    assert.equal(run.keys.status().lastSuccess, T0 + 60_000)
  })
})

describe('a snapshot that is not used', () => {
  /** Write `mutate(warm snapshot)` and start with the IdP down at `at`: not ready, and one ignored event. */
  async function ignored(t: TestContext, mutate: (doc: Record<string, unknown>, text: string) => string, o: { at?: number; config?: (idp: TestIssuer, file: string) => IssuerConfig } = {}) {
    const idp = await issuer(t)
    const file = join(tempDir(t), 'corp.jwks.json')
    const text = await warm(t, idp, file)
    writeFileSync(file, mutate(JSON.parse(text) as Record<string, unknown>, text))
    idp.setStatus(503)
    const run = await started(t, o.config?.(idp, file) ?? cfg(idp, file), o.at ?? T0 + 60_000)
    assert.equal(only(run.events, 'jwks.snapshot_loaded').length, 0)
    assert.equal(run.keys.status().state, 'loading')
    assert.equal(run.keys.ready(), false)
    assert.deepEqual(run.keys.getKey('k1', 'RS256'), { ok: false, reason: 'keys_unavailable' })
    const events = only(run.events, 'jwks.snapshot_ignored')
    assert.equal(events.length, 1)
    return events[0]!
  }
  const keysOf = (doc: Record<string, unknown>) => (doc['jwks'] as { keys: Array<Record<string, unknown>> }).keys

  it('none yet: missing', async (t) => {
    const idp = await issuer(t)
    idp.setStatus(503)
    const run = await started(t, cfg(idp, join(tempDir(t), 'corp.jwks.json')), T0)
    assert.equal(only(run.events, 'jwks.snapshot_ignored')[0]?.why, 'missing')
  })
  it('bad JSON: invalid', async (t) => {
    assert.equal((await ignored(t, (_d, text) => text.slice(0, 40))).why, 'invalid')
  })
  it('a key changed so the JWKS no longer validates: invalid, the whole snapshot', async (t) => {
    const e = await ignored(t, (doc) => {
      keysOf(doc)[1]!['n'] = 'AQAB' // a 17-bit modulus: refused by the import
      return JSON.stringify(doc)
    })
    assert.equal(e.why, 'invalid')
    assert.match(e.detail, /1 key\(s\) fail validation/)
  })
  it('a private member added: invalid', async (t) => {
    assert.equal((await ignored(t, (doc) => {
      keysOf(doc)[0]!['d'] = 'AQAB'
      return JSON.stringify(doc)
    })).why, 'invalid')
  })
  it('a fetch time in the future: invalid', async (t) => {
    assert.equal((await ignored(t, (doc) => JSON.stringify({ ...doc, fetchedAt: new Date(T0 + 2 * HOUR).toISOString() }))).why, 'invalid')
  })
  it('another issuer: other_issuer', async (t) => {
    assert.equal((await ignored(t, (doc) => JSON.stringify({ ...doc, issuer: 'https://other.example' }))).why, 'other_issuer')
  })
  it('another jwksUri: other_issuer', async (t) => {
    const e = await ignored(t, (_d, text) => text, { config: (idp, file) => cfg(idp, file, { jwksUri: `${idp.url}/other/jwks` }) })
    assert.equal(e.why, 'other_issuer')
  })
  it('older than maxStale: too_old', async (t) => {
    assert.equal((await ignored(t, (_d, text) => text, { at: T0 + HOUR })).why, 'too_old')
  })
})

describe('metrics', () => {
  it('jwt_sidecar_jwks_snapshot_total counts each result from 0', async () => {
    const m = createMetrics({ issuers: ['corp'] })
    m.keyEvent({ event: 'jwks.snapshot_loaded', issuer: 'corp', file: '/x', fetchedAt: T0, keys: 1 })
    m.keyEvent({ event: 'jwks.snapshot_write_failed', issuer: 'corp', file: '/x', error: 'EACCES' })
    const text = await m.expose()
    assert.match(text, /jwt_sidecar_jwks_snapshot_total\{issuer="corp",result="loaded"\} 1/)
    assert.match(text, /jwt_sidecar_jwks_snapshot_total\{issuer="corp",result="write_failed"\} 1/)
    assert.match(text, /jwt_sidecar_jwks_snapshot_total\{issuer="corp",result="ignored"\} 0/)
  })
})
