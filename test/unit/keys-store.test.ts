/**
 * The key store (store.ts + issuer-keys.ts, which composes key-lookup.ts, refresher.ts and
 * static-source.ts): the remote key lifecycle of issue #3 and static key files, over REAL
 * loopback HTTP (test/helpers/issuer.ts) with real keys.
 *
 * Schedules are driven by hand: a manual `schedule` records every timer the store arms (the
 * test fires the one it means, by its delay), an injected `now()` clock moves when a timer
 * fires (or when the test advances it), and `random` is pinned so jitter is exact. Only the
 * HTTP round trips and the static-file watcher run in real time.
 */
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { calculateJwkThumbprint } from 'jose'
import type { JWK } from 'jose'
import { MAX_JSON_DEPTH } from '../../src/keys/json-bounds.ts'
import { MAX_JWKS_KEYS } from '../../src/keys/key-set.ts'
import { createKeyStore } from '../../src/keys/store.ts'
import { createMetrics } from '../../src/observe/metrics.ts'
import { waitFor } from '../../src/wait-for.ts'
import type { KeyStoreDeps, Schedule } from '../../src/keys/store.ts'
import type { Algorithm, IssuerConfig, RefreshSettings, StaticKeyConfig } from '../../src/config/types.ts'
import type { IssuerKeys, KeyEvent, KeyResult, KeyStore } from '../../src/keys/types.ts'
import { startHttpServer, startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer, TestIssuerOptions } from '../helpers/issuer.ts'

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/** The injected clock's start (epoch ms): far from the real clock, so a `Date.now` slip shows. */
const T0 = Date.UTC(2030, 0, 1, 12)

/**
 * Delays chosen so every timer the store arms has its own value: refresh 60 s (48 s at jitter 0),
 * backoff 1, 2, 4, 8, 10 s (capped at minInterval), unknown-kid wait 250 ms, expiry 1 h.
 */
const REFRESH: RefreshSettings = {
  interval: 60_000,
  minInterval: 10_000,
  maxInterval: 300_000,
  unknownKidCooldown: 30_000,
  unknownKidWait: 250,
  maxStale: 3_600_000,
  discoveryInterval: 150_000,
}

const UNKNOWN: KeyResult = { ok: false, reason: 'unknown_kid' }
const UNAVAILABLE: KeyResult = { ok: false, reason: 'keys_unavailable' }
const BAD_SIGNATURE: KeyResult = { ok: false, reason: 'bad_signature' }

// Real keys for static files, generated once.
const EC_A = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const EC_B = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const RSA_1024 = generateKeyPairSync('rsa', { modulusLength: 1024 })

const pem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }) as string
const thumbOf = (k: KeyObject): Promise<string> => calculateJwkThumbprint(k.export({ format: 'jwk' }), 'sha256')
const thumbOfJwk = (jwk: JWK): Promise<string> => calculateJwkThumbprint(jwk, 'sha256')

interface CfgOptions {
  readonly name?: string
  readonly issuer: string
  readonly jwksUri?: string | undefined
  readonly discovery?: boolean
  readonly keys?: readonly StaticKeyConfig[]
  readonly algorithms?: readonly Algorithm[]
  readonly refresh?: Partial<RefreshSettings>
}

/** An IssuerConfig built directly (config validation's 1 s minimums do not apply here). */
function issuerCfg(o: CfgOptions): IssuerConfig {
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
    fetch: { timeout: 2_000, maxBytes: 64 * 1024, headers: {}, bearerTokenFile: undefined, caFile: undefined },
    refresh: { ...REFRESH, ...o.refresh },
  }
}

function remoteCfg(idp: TestIssuer, o: Omit<CfgOptions, 'issuer'> = {}): IssuerConfig {
  return issuerCfg({ issuer: idp.issuer, jwksUri: idp.jwksUri, ...o })
}

// ---------------------------------------------------------------------------------------------
// A manual clock and schedule
// ---------------------------------------------------------------------------------------------

interface ManualTimer {
  readonly fn: () => void
  readonly ms: number
  /** Clock time when it was armed. */
  readonly at: number
  state: 'pending' | 'fired' | 'cancelled'
}

/** A clock the test moves and a schedule the test fires by hand: no sleeping for intervals. */
function manualClock(start = T0) {
  let now = start
  const timers: ManualTimer[] = []
  const schedule: Schedule = (fn, ms) => {
    const t: ManualTimer = { fn, ms, at: now, state: 'pending' }
    timers.push(t)
    return {
      cancel: () => {
        if (t.state === 'pending') t.state = 'cancelled'
      },
    }
  }
  const pending = (): ManualTimer[] => timers.filter((t) => t.state === 'pending')
  const describeTimers = (): string => JSON.stringify(timers.map((t) => [t.ms, t.state]))
  return {
    schedule,
    now: (): number => now,
    advance(ms: number): void {
      now += ms
    },
    all: (): readonly ManualTimer[] => timers,
    pending,
    pendingMs: (): number[] => pending().map((t) => t.ms).sort((a, b) => a - b),
    /**
     * Fire the pending timers armed with `ms` (exactly `count` of them must exist). The clock
     * first moves to their due time (minus `early` ms: a real timer can fire early).
     */
    fire(ms: number, { count = 1, early = 0 }: { count?: number; early?: number } = {}): void {
      const due = pending().filter((t) => t.ms === ms)
      assert.equal(due.length, count, `expected ${count} pending ${ms} ms timer(s), have ${describeTimers()}`)
      for (const t of due) {
        now = Math.max(now, t.at + t.ms - early)
        t.state = 'fired'
        t.fn()
      }
    },
    /** Fire every pending timer that is due at the current clock time. */
    fireDue(): number {
      const due = pending().filter((t) => t.at + t.ms <= now)
      for (const t of due) {
        t.state = 'fired'
        t.fn()
      }
      return due.length
    },
  }
}
type ManualClock = ReturnType<typeof manualClock>

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

type EventOf<N extends KeyEvent['event']> = Extract<KeyEvent, { event: N }>
function only<N extends KeyEvent['event']>(events: readonly KeyEvent[], name: N): EventOf<N>[] {
  return events.filter((e): e is EventOf<N> => e.event === name)
}
const names = (events: readonly KeyEvent[]): string[] => events.map((e) => e.event)
const isOutcome = (e: KeyEvent): boolean => e.event === 'jwks.refreshed' || e.event === 'jwks.refresh_failed'

/** Events with a measured duration get it checked, then zeroed so they compare exactly. */
function timed(e: KeyEvent | undefined): KeyEvent {
  assert.ok(e !== undefined, 'expected an event')
  if (!('durationMs' in e)) return e
  assert.ok(Number.isInteger(e.durationMs) && e.durationMs >= 0, `durationMs ${e.durationMs}`)
  return { ...e, durationMs: 0 }
}

function sync(r: KeyResult | Promise<KeyResult>): KeyResult {
  assert.ok(!(r instanceof Promise), 'expected a synchronous answer, got a Promise')
  return r
}

function okKey(r: KeyResult | Promise<KeyResult>): Extract<KeyResult, { ok: true }> {
  const result = sync(r)
  assert.ok(result.ok, `expected a key, got ${JSON.stringify(result)}`)
  return result
}

interface HarnessOptions {
  /** The value `random()` returns (jitter): 1 → factor 1.0, 0 → 0.8. Mutable later via `h.jitter`. */
  readonly jitter?: number
  /** Use the store's default (real, unref'd) timers instead of the manual schedule. */
  readonly realTimers?: boolean
  /** The observer throws after recording each event. */
  readonly observerThrows?: boolean
}

interface Harness {
  readonly store: KeyStore
  readonly clock: ManualClock
  readonly events: KeyEvent[]
  jitter: number
  /** The issuer's keys (default name `test`). */
  keys(name?: string): IssuerKeys
  /**
   * Run `action`, then wait for `count` refresh outcomes (`jwks.refreshed` or
   * `jwks.refresh_failed`) emitted after it; returns every event emitted since.
   */
  step(action: () => void, count?: number): Promise<KeyEvent[]>
  /** Events emitted since `mark` (an earlier `events.length`). */
  since(mark: number): KeyEvent[]
}

function harness(t: TestContext, configs: readonly IssuerConfig[], o: HarnessOptions = {}): Harness {
  const clock = manualClock()
  const events: KeyEvent[] = []
  const state = { jitter: o.jitter ?? 1 }
  const deps: KeyStoreDeps = {
    now: clock.now,
    random: () => state.jitter,
    onEvent: (e) => {
      events.push(e)
      if (o.observerThrows === true) throw new Error('observer bug')
    },
    watch: { debounceMs: 20, pollIntervalMs: 100 },
    ...(o.realTimers === true ? {} : { schedule: clock.schedule }),
  }
  const store = createKeyStore(configs, deps)
  t.after(() => store.stop())
  const since = (mark: number): KeyEvent[] => events.slice(mark)
  return {
    store,
    clock,
    events,
    get jitter() {
      return state.jitter
    },
    set jitter(v: number) {
      state.jitter = v
    },
    keys(name = 'test') {
      const keys = store.issuer(name)
      assert.ok(keys !== undefined, `no issuer ${name}`)
      return keys
    },
    async step(action, count = 1) {
      const mark = events.length
      action()
      await waitFor(() => since(mark).filter(isOutcome).length >= count, { what: `${count} refresh outcome(s)`, intervalMs: 2 })
      return since(mark)
    },
    since,
  }
}

async function issuer(t: TestContext, opts: TestIssuerOptions = {}): Promise<TestIssuer> {
  const idp = await startTestIssuer({ alg: 'ES256', ...opts })
  t.after(() => idp.close())
  return idp
}

/** One remote issuer, started and loaded at T0. */
async function loaded(t: TestContext, o: { idp?: TestIssuerOptions; cfg?: Omit<CfgOptions, 'issuer'>; harness?: HarnessOptions } = {}) {
  const idp = await issuer(t, o.idp)
  const h = harness(t, [remoteCfg(idp, o.cfg)], o.harness)
  const startup = await h.step(() => h.store.start())
  assert.deepEqual(names(startup.filter(isOutcome)), ['jwks.refreshed'], 'the first load succeeds')
  return { idp, h, keys: h.keys(), startup }
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-store-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function pemFile(t: TestContext, key: KeyObject, name = 'signing.pem'): string {
  const file = join(tempDir(t), name)
  writeFileSync(file, pem(key))
  return file
}

// ---------------------------------------------------------------------------------------------
// 1. Start-up
// ---------------------------------------------------------------------------------------------

describe('start-up', () => {
  it('is loading with keys_unavailable before the first load, then fresh with the known kid answered synchronously', async (t) => {
    const idp = await issuer(t, { kids: ['k1'] })
    const h = harness(t, [remoteCfg(idp)])
    const keys = h.keys()
    assert.equal(h.store.issuer('nope'), undefined)
    assert.deepEqual(keys.status(), {
      issuer: 'test', ready: false, state: 'loading', keys: 0, lastSuccess: undefined, nextRefresh: undefined,
      lastError: undefined, jwksUri: idp.jwksUri, keyList: [],
    })
    assert.equal(keys.ready(), false)
    assert.equal(h.store.ready(), false)
    assert.deepEqual(sync(keys.getKey('k1', 'ES256')), UNAVAILABLE)
    assert.deepEqual(sync(keys.getKey(undefined, 'ES256')), UNAVAILABLE)
    assert.equal(idp.fetchCount(), 0, 'nothing happens before start()')

    const startup = await h.step(() => {
      h.store.start()
      h.store.start() // idempotent
      // The first fetch is in flight: still loading, still answered at once.
      assert.equal(keys.status().state, 'loading')
      assert.deepEqual(sync(keys.getKey('k1', 'ES256')), UNAVAILABLE)
    })
    assert.equal(idp.fetchCount(), 1, 'one fetch, and a request never triggers one before the first load')

    const r = okKey(keys.getKey('k1', 'ES256'))
    assert.equal(r.key.kid, 'k1')
    assert.equal(r.key.source, 'jwks')
    assert.equal(r.key.key.asymmetricKeyType, 'ec')
    assert.equal(keys.getKey('k1', 'ES256'), r, 'the hot path hands out the pre-allocated result')

    const thumbprint = await thumbOfJwk(idp.keys()[0]!.jwk)
    assert.equal(r.key.thumbprint, thumbprint)
    assert.deepEqual(startup.map(timed), [
      { event: 'jwks.key_added', issuer: 'test', kid: 'k1', kty: 'EC', alg: 'ES256', thumbprint, source: 'jwks' },
      { event: 'jwks.refreshed', issuer: 'test', trigger: 'startup', result: 'updated', durationMs: 0, keys: 1, nextRefreshMs: 60_000 },
    ])
    assert.deepEqual(keys.status(), {
      issuer: 'test', ready: true, state: 'fresh', keys: 1, lastSuccess: T0, nextRefresh: T0 + 60_000,
      lastError: undefined, jwksUri: idp.jwksUri,
      keyList: [{ kid: 'k1', kty: 'EC', alg: 'ES256', thumbprint, source: 'jwks', firstSeen: new Date(T0).toISOString() }],
    })
    assert.deepEqual(h.store.status(), [keys.status()])
    assert.equal(h.store.ready(), true)
    assert.deepEqual(h.clock.pendingMs(), [60_000, 3_600_000], 'the next refresh and the maxStale expiry are armed')
  })

  it('answers bad_signature for an alg the named key cannot produce; without a kid, only the single key that fits', async (t) => {
    const idp = await issuer(t, { kids: ['a', 'b'] })
    await idp.addKey('c', 'ES384')
    const h = harness(t, [remoteCfg(idp, { algorithms: ['ES256', 'ES384', 'RS256', 'EdDSA'] })])
    await h.step(() => h.store.start())
    const keys = h.keys()
    assert.deepEqual(sync(keys.getKey('a', 'RS256')), BAD_SIGNATURE)
    assert.deepEqual(sync(keys.getKey('a', 'ES384')), BAD_SIGNATURE)
    assert.deepEqual(sync(keys.getKey(undefined, 'ES256')), { ...UNKNOWN, fitting: 2 }, 'two ES256 keys: never try every key')
    const c = okKey(keys.getKey(undefined, 'ES384'))
    assert.equal(c.key.kid, 'c')
    assert.equal(keys.getKey('c', 'ES384'), c)
    assert.deepEqual(sync(keys.getKey(undefined, 'EdDSA')), UNKNOWN)
    assert.equal(idp.fetchCount(), 1, 'a known kid never triggers a fetch')
  })
})

// ---------------------------------------------------------------------------------------------
// 2. Freshness
// ---------------------------------------------------------------------------------------------

describe('freshness', () => {
  it('schedules the next refresh at clamp(max-age, minInterval, maxInterval) × jitter, else at interval', async (t) => {
    const { idp, h, keys, startup } = await loaded(t)
    assert.equal(only(startup, 'jwks.refreshed')[0]?.nextRefreshMs, 60_000, 'no cache headers, jitter 1: interval')

    // [Cache-Control, random(), expected delay]
    const cases: [string | undefined, number, number][] = [
      [undefined, 0, 48_000], // interval × 0.8
      ['max-age=120', 1, 120_000],
      ['max-age=120', 0, 96_000],
      ['public, max-age=999999', 1, 300_000], // clamped to maxInterval
      ['max-age=999999', 0, 240_000],
      ['max-age=1', 1, 10_000], // clamped up to minInterval
      ['no-store', 0, 8_000],
      [undefined, 1, 60_000],
    ]
    let pendingRefresh = 60_000
    for (const [cacheControl, jitter, expected] of cases) {
      idp.setHeaders(cacheControl === undefined ? {} : { 'cache-control': cacheControl })
      h.jitter = jitter
      const ev = await h.step(() => h.clock.fire(pendingRefresh))
      const what = `${cacheControl ?? 'no cache headers'}, random ${jitter}`
      const refreshed = only(ev, 'jwks.refreshed')
      assert.equal(refreshed.length, 1, what)
      assert.equal(refreshed[0]!.trigger, 'schedule')
      assert.equal(refreshed[0]!.nextRefreshMs, expected, what)
      assert.deepEqual(h.clock.pendingMs(), [expected, 3_600_000].sort((a, b) => a - b), `${what}: the armed timer`)
      assert.equal(keys.status().nextRefresh, h.clock.now() + expected, `${what}: status().nextRefresh`)
      assert.equal(keys.status().lastSuccess, h.clock.now())
      pendingRefresh = expected
    }
    assert.equal(idp.fetchCount(), 1 + cases.length)
  })
})

// ---------------------------------------------------------------------------------------------
// 3. Conditional requests
// ---------------------------------------------------------------------------------------------

describe('conditional requests', () => {
  it('revalidates with If-None-Match; a 304 keeps the keys, renews lastSuccess and the expiry, and uses its own max-age', async (t) => {
    const { idp, h, keys } = await loaded(t, { idp: { conditional: true } })
    assert.equal(idp.lastRequest()?.headers['if-none-match'], undefined, 'the first fetch is unconditional')
    const etag = `"${createHash('sha256').update(JSON.stringify(idp.jwks())).digest('base64url')}"`
    const good = okKey(keys.getKey('k1', 'ES256'))
    const firstSeen = keys.status().keyList[0]?.firstSeen

    idp.setHeaders({ 'cache-control': 'max-age=120' })
    const ev = await h.step(() => h.clock.fire(60_000))
    const req = idp.lastRequest()!
    assert.equal(req.headers['if-none-match'], etag)
    assert.equal(typeof req.headers['if-modified-since'], 'string', 'Last-Modified is sent back as If-Modified-Since')
    assert.equal(idp.notModifiedCount(), 1)
    assert.equal(idp.fetchCount(), 2)
    assert.deepEqual(ev.map(timed), [
      { event: 'jwks.refreshed', issuer: 'test', trigger: 'schedule', result: 'not_modified', durationMs: 0, keys: 1, nextRefreshMs: 120_000 },
    ], 'no key events for a 304')
    assert.equal(keys.getKey('k1', 'ES256'), good, 'the very same key set is still served')
    const st = keys.status()
    assert.equal(st.state, 'fresh')
    assert.equal(st.lastSuccess, T0 + 60_000, 'a 304 renews lastSuccess (RFC 9111 §4.3.4)')
    assert.equal(st.nextRefresh, T0 + 60_000 + 120_000)
    assert.equal(st.keyList[0]?.firstSeen, firstSeen)
    const expiry = h.clock.pending().filter((x) => x.ms === 3_600_000)
    assert.deepEqual(expiry.map((x) => x.at), [T0 + 60_000], 'the maxStale expiry counts from the 304')

    // A changed document is fetched in full, and its new validators are used next time.
    await idp.addKey('k2')
    const changed = await h.step(() => h.clock.fire(120_000))
    assert.deepEqual(names(changed), ['jwks.key_added', 'jwks.refreshed'])
    assert.equal(only(changed, 'jwks.refreshed')[0]?.result, 'updated')
    assert.equal(idp.lastRequest()?.headers['if-none-match'], etag, 'still the old validator: the server answered 200')
    okKey(keys.getKey('k2', 'ES256'))
    const again = await h.step(() => h.clock.fire(120_000))
    assert.equal(only(again, 'jwks.refreshed')[0]?.result, 'not_modified')
    assert.notEqual(idp.lastRequest()?.headers['if-none-match'], etag, 'the new ETag is sent')
    assert.equal(idp.notModifiedCount(), 2)
  })
})

// ---------------------------------------------------------------------------------------------
// 4. Unknown kid
// ---------------------------------------------------------------------------------------------

describe('unknown kid', () => {
  it('a rotated-in kid is found after exactly one refresh (trigger unknown_kid)', async (t) => {
    const { idp, h, keys } = await loaded(t)
    await idp.addKey('k2')
    let pending: KeyResult | Promise<KeyResult> | undefined
    const ev = await h.step(() => {
      pending = keys.getKey('k2', 'ES256')
    })
    assert.ok(pending instanceof Promise, 'an unknown kid waits for the refresh')
    assert.ok(h.clock.all().some((x) => x.ms === 250), 'the wait is bounded by unknownKidWait')
    const r = await pending
    assert.ok(r.ok)
    assert.equal(r.key.kid, 'k2')
    assert.equal(idp.fetchCount(), 2, 'exactly one refresh')
    assert.deepEqual(ev.map(timed), [
      { event: 'jwks.unknown_kid', issuer: 'test', action: 'refreshed' },
      { event: 'jwks.key_added', issuer: 'test', kid: 'k2', kty: 'EC', alg: 'ES256', thumbprint: r.key.thumbprint, source: 'jwks' },
      { event: 'jwks.refreshed', issuer: 'test', trigger: 'unknown_kid', result: 'updated', durationMs: 0, keys: 2, nextRefreshMs: 60_000 },
    ])
    assert.equal(okKey(keys.getKey('k2', 'ES256')).key, r.key, 'now answered synchronously')
    assert.deepEqual(h.clock.pendingMs(), [60_000, 3_600_000], 'the wait timer was cancelled by the refresh')
  })

  it('a flood of 1,000 random kids costs one fetch; then cooldown, then known_unknown until the next successful refresh', async (t) => {
    const { idp, h, keys } = await loaded(t)
    const before = idp.fetchCount()
    const mark = h.events.length
    const kids = Array.from({ length: 1_000 }, () => randomUUID())
    const pending = kids.map((kid) => keys.getKey(kid, 'ES256'))
    assert.ok(pending.every((p) => p instanceof Promise))
    const results = await Promise.all(pending)
    const floodFetches = idp.fetchCount() - before
    assert.ok(floodFetches <= 1, `the flood cost ${floodFetches} fetches`)
    assert.equal(floodFetches, 1)
    assert.ok(results.every((r) => r.ok === false && r.reason === 'unknown_kid'))
    const flood = h.since(mark)
    const actions = only(flood, 'jwks.unknown_kid').map((e) => e.action)
    assert.equal(actions.length, 1_000)
    assert.ok(actions.every((a) => a === 'refreshed'), 'every flooded request waited for the one refresh')
    assert.deepEqual(only(flood, 'jwks.refreshed').map((e) => e.trigger), ['unknown_kid'])

    // Within the cooldown: a new unknown kid fails at once, without a fetch.
    h.clock.advance(29_999)
    let m = h.events.length
    assert.deepEqual(sync(keys.getKey(randomUUID(), 'ES256')), UNKNOWN)
    assert.deepEqual(h.since(m), [{ event: 'jwks.unknown_kid', issuer: 'test', action: 'cooldown' }])
    const afterCooldown = idp.fetchCount()
    assert.equal(afterCooldown, before + 1)

    // Past the cooldown: the kid that triggered the refresh was proven unknown by it and is
    // still answered at once. A kid that joined the refresh already under way was not (that
    // fetch started before it arrived), so it may trigger a refresh of its own.
    h.clock.advance(1)
    const [first, last] = [kids[0], kids[999]]
    assert.ok(first !== undefined && last !== undefined)
    m = h.events.length
    assert.deepEqual(sync(keys.getKey(first, 'ES256')), UNKNOWN)
    assert.deepEqual(only(h.since(m), 'jwks.unknown_kid').map((e) => e.action), ['known_unknown'])
    const afterKnownUnknown = idp.fetchCount()
    assert.equal(afterKnownUnknown, afterCooldown)
    const joinedKid = keys.getKey(last, 'ES256')
    assert.ok(joinedKid instanceof Promise, 'not proven by a fetch that started before it')
    assert.deepEqual(await joinedKid, UNKNOWN)
    const afterJoinedKid = idp.fetchCount()
    assert.equal(afterJoinedKid, afterKnownUnknown + 1)

    // The next successful refresh forgets them: past the cooldown the same kid triggers a refresh again.
    await h.step(() => h.clock.fire(60_000))
    h.clock.advance(30_000)
    m = h.events.length
    const again = keys.getKey(first, 'ES256')
    assert.ok(again instanceof Promise)
    assert.deepEqual(await again, UNKNOWN)
    assert.deepEqual(only(h.since(m), 'jwks.unknown_kid').map((e) => e.action), ['refreshed'])
    const end = idp.fetchCount()
    assert.equal(end, afterJoinedKid + 2, 'one scheduled refresh and one unknown-kid refresh')
    t.diagnostic(`fetch counts: start-up ${before}, after 1,000-kid flood ${before + floodFetches} (+${floodFetches}), `
      + `after a cooldown miss ${afterCooldown} (+0), after a known_unknown miss ${afterKnownUnknown} (+0), `
      + `after a joined kid asked again ${afterJoinedKid} (+1), after scheduled refresh + a retried kid ${end}`)
  })

  it('single-flight: an unknown kid joins the scheduled fetch in flight instead of starting another', async (t) => {
    const { idp, h, keys } = await loaded(t)
    idp.setDelay(100)
    const mark = h.events.length
    h.clock.fire(60_000)
    await waitFor(() => idp.fetchCount() === 2, { what: 'the scheduled fetch to reach the server', intervalMs: 2 })
    await idp.addKey('k2') // the response, built after the delay, carries it
    const p1 = keys.getKey('k2', 'ES256')
    const p2 = keys.getKey('k2', 'ES256')
    assert.ok(p1 instanceof Promise && p2 instanceof Promise)
    const [r1, r2] = await Promise.all([p1, p2])
    assert.ok(r1.ok && r2.ok)
    assert.equal(r1, r2, 'both get the one pre-allocated result')
    assert.equal(idp.fetchCount(), 2, 'no second fetch while one is in flight')
    assert.deepEqual(only(h.since(mark), 'jwks.refreshed').map((e) => e.trigger), ['schedule'])
  })

  it('requests wait at most unknownKidWait for a slow JWKS server; the refresh still lands afterwards', async (t) => {
    const { idp, h, keys } = await loaded(t)
    idp.setDelay(300)
    await idp.addKey('k2')
    const mark = h.events.length
    const p1 = keys.getKey('k2', 'ES256')
    const p2 = keys.getKey('other', 'ES256') // joins the same refresh and the same wait
    assert.ok(p1 instanceof Promise && p2 instanceof Promise)
    assert.deepEqual(h.clock.pendingMs(), [250, 60_000, 3_600_000], 'one shared wait timer of unknownKidWait')
    okKey(keys.getKey('k1', 'ES256')) // known kids stay synchronous meanwhile
    await waitFor(() => idp.fetchCount() === 2, { what: 'the refresh to reach the slow server', intervalMs: 2 })
    h.clock.fire(250) // the wait bound passes before the JWKS server answers
    assert.deepEqual(await p1, UNKNOWN)
    assert.deepEqual(await p2, UNKNOWN)
    assert.deepEqual(only(h.since(mark), 'jwks.refreshed'), [], 'released before the fetch completed')

    await waitFor(() => only(h.since(mark), 'jwks.refreshed').length === 1, { what: 'the slow refresh', intervalMs: 2 })
    okKey(keys.getKey('k2', 'ES256'))
    assert.equal(idp.fetchCount(), 2)
  })

  it('requests wait at most unknownKidWait with real timers too', async (t) => {
    const { idp, keys } = await loaded(t, { cfg: { refresh: { unknownKidWait: 100 } }, harness: { realTimers: true } })
    idp.setDelay(1_500)
    const t0 = performance.now()
    assert.deepEqual(await keys.getKey('new', 'ES256'), UNKNOWN)
    const waited = performance.now() - t0
    assert.ok(waited >= 95 && waited < 900, `waited ${Math.round(waited)} ms`)
  })

  it('a failed unknown-kid refresh proves nothing: the kid is not remembered as unknown', async (t) => {
    const { idp, h, keys } = await loaded(t)
    idp.setStatus(500)
    const ev = await h.step(() => void keys.getKey('maybe', 'ES256'))
    assert.deepEqual(only(ev, 'jwks.refresh_failed').map((e) => e.trigger), ['unknown_kid'])
    h.clock.advance(30_000)
    idp.setStatus(200)
    await idp.addKey('maybe')
    const r = keys.getKey('maybe', 'ES256')
    assert.ok(r instanceof Promise, 'not known_unknown: asked again after the cooldown')
    assert.ok((await r).ok)
  })

  it('a kid asked for while an older fetch is in flight gets a refresh of its own right after it (that older fetch proves nothing)', async (t) => {
    const { idp, h, keys } = await loaded(t)
    // The scheduled refresh's response is the set as it was before k2 was published.
    idp.setBody(JSON.stringify(idp.jwks()))
    idp.setDelay(150)
    const mark = h.events.length
    h.clock.fire(60_000)
    await waitFor(() => idp.fetchCount() === 2, { what: 'the scheduled fetch to reach the server', intervalMs: 2 })
    await idp.addKey('k2') // published now; the response in flight predates it
    const joined = keys.getKey('k2', 'ES256')
    assert.ok(joined instanceof Promise)
    // The chained refresh reaches the server only after the stale response was sent.
    await waitFor(() => idp.fetchCount() === 3, { what: 'a refresh chained after the in-flight one', intervalMs: 2 })
    idp.setBody(undefined)
    assert.ok((await joined).ok, 'found by the refresh that started after the request')
    assert.deepEqual(only(h.since(mark), 'jwks.refreshed').map((e) => e.trigger), ['schedule', 'unknown_kid'])
    assert.equal(idp.fetchCount(), 3, 'one unknown-kid fetch, no more')
  })

  it('only a fetch that started after the request can prove a kid unknown', async (t) => {
    const { idp, h, keys } = await loaded(t)
    idp.setDelay(150)
    h.clock.fire(60_000)
    await waitFor(() => idp.fetchCount() === 2, { what: 'the scheduled fetch to reach the server', intervalMs: 2 })
    const r = keys.getKey('never', 'ES256')
    assert.ok(r instanceof Promise)
    assert.deepEqual(await r, UNKNOWN)
    assert.equal(idp.fetchCount(), 3, 'the chained refresh ran')
    // That chained fetch started after the request and succeeded: now proven unknown.
    h.clock.advance(30_000)
    const m = h.events.length
    assert.deepEqual(keys.getKey('never', 'ES256'), UNKNOWN, 'answered synchronously')
    assert.deepEqual(only(h.since(m), 'jwks.unknown_kid').map((e) => e.action), ['known_unknown'])
    idp.setDelay(0)
  })
})

// ---------------------------------------------------------------------------------------------
// 5. Failure and backoff
// ---------------------------------------------------------------------------------------------

describe('failure and backoff', () => {
  it('keeps the keys; refresh_failed with failures 1, 2, 3… and retries 1, 2, 4, 8 s capped at minInterval; stale once', async (t) => {
    const { idp, h, keys } = await loaded(t)
    const good = okKey(keys.getKey('k1', 'ES256'))
    idp.setStatus(500)
    const error = 'status: HTTP 500: expected 200'
    const retries = [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]
    let fire = 60_000
    const all: KeyEvent[] = []
    for (const [i, retryInMs] of retries.entries()) {
      const ev = await h.step(() => h.clock.fire(fire))
      all.push(...ev)
      assert.deepEqual(timed(only(ev, 'jwks.refresh_failed')[0]), {
        event: 'jwks.refresh_failed', issuer: 'test', trigger: 'schedule', durationMs: 0, error, failures: i + 1, retryInMs,
      })
      assert.equal(keys.getKey('k1', 'ES256'), good, 'the last-known-good set is still served')
      assert.equal(h.store.ready(), true)
      const st = keys.status()
      assert.equal(st.state, 'stale')
      assert.equal(st.lastError, error)
      assert.equal(st.lastSuccess, T0)
      assert.equal(st.nextRefresh, h.clock.now() + retryInMs)
      fire = retryInMs
    }
    assert.deepEqual(only(all, 'jwks.stale'), [{ event: 'jwks.stale', issuer: 'test', lastSuccess: T0, error }], 'stale once, not on every failure')
    assert.deepEqual(names(all).filter((n) => n !== 'jwks.refresh_failed' && n !== 'jwks.stale'), [])

    // Recovery: fresh again, back on the normal schedule, the counter reset.
    idp.setStatus(200)
    const back = await h.step(() => h.clock.fire(10_000))
    assert.deepEqual(back.map(timed), [
      { event: 'jwks.refreshed', issuer: 'test', trigger: 'schedule', result: 'updated', durationMs: 0, keys: 1, nextRefreshMs: 60_000 },
      { event: 'jwks.recovered', issuer: 'test', from: 'stale' },
    ], 'same keys: no key events')
    assert.equal(keys.status().state, 'fresh')
    assert.equal(keys.status().lastError, undefined)
    assert.equal(keys.status().lastSuccess, h.clock.now())

    idp.setStatus(503)
    const next = await h.step(() => h.clock.fire(60_000))
    assert.deepEqual(only(next, 'jwks.refresh_failed').map((e) => [e.failures, e.retryInMs]), [[1, 1_000]])
    assert.equal(only(next, 'jwks.stale').length, 1, 'a new outage is reported again')
  })

  it('equal jitter: with random 0 each retry waits half its base', async (t) => {
    const { idp, h } = await loaded(t, { harness: { jitter: 0 } })
    idp.setStatus(500)
    let fire = 48_000
    const got: number[] = []
    for (let i = 0; i < 6; i++) {
      const ev = await h.step(() => h.clock.fire(fire))
      fire = only(ev, 'jwks.refresh_failed')[0]!.retryInMs!
      got.push(fire)
    }
    assert.deepEqual(got, [500, 1_000, 2_000, 4_000, 5_000, 5_000])
  })

  it('invalid JSON, a non-JWKS, only rejected keys, 3xx answers: each keeps the set and reports its own error', async (t) => {
    const { idp, h, keys } = await loaded(t, { cfg: { algorithms: ['ES256', 'RS256'] } })
    const good = okKey(keys.getKey('k1', 'ES256'))
    const weak = { ...RSA_1024.publicKey.export({ format: 'jwk' }), kid: 'weak', alg: 'RS256' }
    const cases: [string, () => void, string | RegExp][] = [
      ['HTTP 500', () => idp.setStatus(500), 'status: HTTP 500: expected 200'],
      ['a 300 (not a redirect to follow)', () => idp.setStatus(300), 'status: HTTP 300: expected 200'],
      ['a 302 to another origin', () => {
        idp.setStatus(302)
        idp.setLocation('http://localhost:9/jwks')
      }, /^redirect: HTTP 302 to another origin "?http:\/\/localhost:9"? refused/],
      ['a 307 to a missing document on the same origin', () => {
        idp.setStatus(307)
        idp.setLocation(undefined)
      }, 'status: HTTP 404: expected 200'],
      ['invalid JSON', () => {
        idp.setStatus(200)
        idp.setBody('<html>oops</html>')
      }, 'invalid_json: response is not JSON (starts "<html>oops</html>")'],
      ['not a JWKS', () => idp.setBody('{"nokeys": 1}'), 'invalid_jwks: JWKS has no "keys" array'],
      ['an empty JWKS', () => idp.setBody('{"keys": []}'), 'no_usable_keys: no usable keys (0 rejected)'],
      ['only rejected keys (oct, RSA 1024)', () => idp.setBody(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }, weak] })),
        'no_usable_keys: no usable keys (2 rejected)'],
    ]
    let fire = 60_000
    const all: KeyEvent[] = []
    for (const [i, [what, breakIt, error]] of cases.entries()) {
      breakIt()
      const ev = await h.step(() => h.clock.fire(fire))
      all.push(...ev)
      const failed = only(ev, 'jwks.refresh_failed')
      assert.equal(failed.length, 1, what)
      if (typeof error === 'string') assert.equal(failed[0]!.error, error, what)
      else assert.match(failed[0]!.error, error, what)
      assert.equal(failed[0]!.failures, i + 1, what)
      assert.equal(keys.getKey('k1', 'ES256'), good, `${what}: the previous set is still served`)
      assert.equal(keys.status().state, 'stale', what)
      assert.equal(keys.status().keys, 1, what)
      assert.equal(keys.status().lastError, failed[0]!.error, what)
      fire = failed[0]!.retryInMs!
    }
    assert.equal(only(all, 'jwks.stale').length, 1)
    assert.deepEqual(only(all, 'jwks.key_rejected'), [
      { event: 'jwks.key_rejected', issuer: 'test', kid: 'hmac', why: 'symmetric key (kty "oct") is never accepted', source: 'jwks' },
      { event: 'jwks.key_rejected', issuer: 'test', kid: 'weak', why: 'RSA modulus of 1024 bits is below 2048', source: 'jwks' },
    ])
    assert.ok(!all.some((e) => e.event === 'jwks.key_removed' || e.event === 'jwks.key_added'))

    idp.setBody(undefined)
    const back = await h.step(() => h.clock.fire(fire))
    assert.deepEqual(names(back), ['jwks.refreshed', 'jwks.recovered'])
    assert.equal(keys.status().lastError, undefined)
  })
})

// ---------------------------------------------------------------------------------------------
// 6. maxStale
// ---------------------------------------------------------------------------------------------

describe('maxStale', () => {
  it('past lastSuccess + maxStale the set expires; the next refresh is unconditional and recovers it', async (t) => {
    const { idp, h, keys } = await loaded(t, { idp: { conditional: true } })
    const thumbprint = okKey(keys.getKey('k1', 'ES256')).key.thumbprint
    idp.setStatus(500)
    await h.step(() => h.clock.fire(60_000))
    assert.equal(typeof idp.lastRequest()?.headers['if-none-match'], 'string', 'while the set is held, refreshes are conditional')
    await h.step(() => h.clock.fire(1_000))
    assert.equal(keys.status().state, 'stale')

    // The expiry timer is due at lastSuccess + maxStale.
    const expiry = h.clock.pending().find((x) => x.ms === 3_600_000)
    assert.equal(expiry?.at, T0)
    const mark = h.events.length
    h.clock.fire(3_600_000)
    assert.equal(h.clock.now(), T0 + 3_600_000)
    assert.deepEqual(h.since(mark), [
      { event: 'jwks.expired', issuer: 'test', lastSuccess: T0 },
      { event: 'jwks.key_removed', issuer: 'test', kid: 'k1', kty: 'EC', alg: 'ES256', thumbprint, source: 'jwks' },
    ])
    assert.deepEqual(sync(keys.getKey('k1', 'ES256')), UNAVAILABLE)
    assert.deepEqual(sync(keys.getKey('rotated?', 'ES256')), UNAVAILABLE, 'no unknown-kid refresh without a set')
    assert.equal(keys.ready(), false)
    assert.equal(h.store.ready(), false)
    const st = keys.status()
    assert.deepEqual([st.state, st.ready, st.keys, st.keyList, st.lastSuccess], ['expired', false, 0, [], T0])

    // The server recovers: the retry must not revalidate keys we no longer hold.
    idp.setStatus(200)
    const fetchesBefore = idp.fetchCount()
    const back = await h.step(() => h.clock.fire(2_000))
    assert.equal(idp.fetchCount(), fetchesBefore + 1)
    assert.equal(idp.lastRequest()?.headers['if-none-match'], undefined, 'unconditional after expiry')
    assert.equal(idp.lastRequest()?.headers['if-modified-since'], undefined)
    assert.equal(idp.notModifiedCount(), 0)
    assert.deepEqual(back.map(timed), [
      { event: 'jwks.key_added', issuer: 'test', kid: 'k1', kty: 'EC', alg: 'ES256', thumbprint, source: 'jwks' },
      { event: 'jwks.refreshed', issuer: 'test', trigger: 'schedule', result: 'updated', durationMs: 0, keys: 1, nextRefreshMs: 60_000 },
      { event: 'jwks.recovered', issuer: 'test', from: 'expired' },
    ])
    okKey(keys.getKey('k1', 'ES256'))
    assert.equal(keys.ready(), true)
    assert.equal(keys.status().state, 'fresh')
    assert.equal(keys.status().lastSuccess, h.clock.now())
  })

  it('an expiry timer that fires early still lets the set expire once maxStale has passed', async (t) => {
    const { idp, h, keys } = await loaded(t)
    idp.setStatus(500)
    await h.step(() => h.clock.fire(60_000))
    h.clock.fire(3_600_000, { early: 1 }) // 1 ms before lastSuccess + maxStale
    assert.equal(keys.status().state, 'stale', 'not expired before maxStale: correct')
    h.clock.advance(5_000) // maxStale has now passed
    const mark = h.events.length
    h.clock.fireDue() // every timer that is due by now (the 1 s retry, and a re-armed expiry)
    await waitFor(() => h.since(mark).some(isOutcome), { what: 'the retry', intervalMs: 2 })
    assert.equal(keys.status().state, 'expired', 'the set must not outlive maxStale')
  })
})

// ---------------------------------------------------------------------------------------------
// 7. Rotation events
// ---------------------------------------------------------------------------------------------

describe('rotation events', () => {
  it('same kid with new key material → key_changed; nothing in common → keyset_replaced', async (t) => {
    const { idp, h, keys } = await loaded(t)
    const before = okKey(keys.getKey('k1', 'ES256')).key
    const next = await idp.addKey('k1-next', 'ES256', { publish: false })
    idp.setBody(JSON.stringify({ keys: [{ ...next.jwk, kid: 'k1' }] }))
    const ev = await h.step(() => h.clock.fire(60_000))
    const thumbprint = await thumbOfJwk(next.jwk)
    assert.deepEqual(ev.map(timed).slice(0, 2), [
      { event: 'jwks.key_changed', issuer: 'test', kid: 'k1', kty: 'EC', alg: 'ES256', thumbprint, source: 'jwks', previousThumbprint: before.thumbprint },
      { event: 'jwks.keyset_replaced', issuer: 'test', added: 1, removed: 1 },
    ])
    assert.deepEqual(names(ev).slice(2), ['jwks.refreshed'])
    assert.equal(okKey(keys.getKey('k1', 'ES256')).key.thumbprint, thumbprint)
    assert.equal(keys.status().keyList[0]?.firstSeen, new Date(T0 + 60_000).toISOString(), 'a changed key is seen for the first time')
  })

  it('a rotation that keeps one key → key_added / key_removed, no keyset_replaced; a full swap of kids → keyset_replaced', async (t) => {
    const { idp, h, keys } = await loaded(t, { idp: { kids: ['k1', 'k2'] } })
    await idp.addKey('k3')
    idp.removeKey('k1')
    const ev = await h.step(() => h.clock.fire(60_000))
    assert.deepEqual(names(ev), ['jwks.key_added', 'jwks.key_removed', 'jwks.refreshed'])
    assert.deepEqual([only(ev, 'jwks.key_added')[0]?.kid, only(ev, 'jwks.key_removed')[0]?.kid], ['k3', 'k1'])
    assert.deepEqual(keys.status().keyList.map((k) => [k.kid, k.firstSeen]), [
      ['k2', new Date(T0).toISOString()],
      ['k3', new Date(T0 + 60_000).toISOString()],
    ], 'a kept key keeps its firstSeen')

    // k2 changes in place while k3 stays: changed, but not replaced.
    const k2next = await idp.addKey('k2-next', 'ES256', { publish: false })
    idp.setBody(JSON.stringify({ keys: [{ ...k2next.jwk, kid: 'k2' }, idp.jwks().keys.find((k) => k.kid === 'k3')] }))
    const changed = await h.step(() => h.clock.fire(60_000))
    assert.deepEqual(names(changed), ['jwks.key_changed', 'jwks.refreshed'])

    // Nothing in common (new kids): added and removed, and replaced.
    idp.setBody(undefined)
    for (const k of idp.keys()) if (k.published) idp.removeKey(k.kid)
    await idp.addKey('m1')
    const swap = await h.step(() => h.clock.fire(60_000))
    assert.deepEqual(names(swap), ['jwks.key_added', 'jwks.key_removed', 'jwks.key_removed', 'jwks.keyset_replaced', 'jwks.refreshed'])
    assert.deepEqual(only(swap, 'jwks.keyset_replaced')[0], { event: 'jwks.keyset_replaced', issuer: 'test', added: 1, removed: 2 })
  })
})

// ---------------------------------------------------------------------------------------------
// 8. Provider down at start
// ---------------------------------------------------------------------------------------------

describe('provider down at start', () => {
  it('start() does not throw, the other issuer becomes ready, retries back off, and the provider coming up recovers from loading', async (t) => {
    const up = await issuer(t, { kids: ['u1'] })
    const down = await issuer(t, { kids: ['d1'] })
    down.setStatus(503)
    const gone = await startHttpServer(() => undefined)
    await gone.close() // nothing listens here any more: connection refused
    const h = harness(t, [
      remoteCfg(up, { name: 'up' }),
      remoteCfg(down, { name: 'down' }),
      issuerCfg({ name: 'refused', issuer: gone.url, jwksUri: `${gone.url}/jwks` }),
    ])
    const ev = await h.step(() => assert.doesNotThrow(() => h.store.start()), 3)
    const byIssuer = (name: string) => ev.filter((e) => 'issuer' in e && e.issuer === name)
    assert.deepEqual(names(byIssuer('up')), ['jwks.key_added', 'jwks.refreshed'])
    assert.deepEqual(byIssuer('down').map(timed), [
      { event: 'jwks.refresh_failed', issuer: 'down', trigger: 'startup', durationMs: 0, error: 'status: HTTP 503: expected 200', failures: 1, retryInMs: 1_000 },
    ])
    const refused = only(byIssuer('refused'), 'jwks.refresh_failed')
    assert.equal(refused.length, 1)
    assert.match(refused[0]!.error, /^network: /)

    assert.equal(h.keys('up').ready(), true)
    assert.equal(h.store.ready(), false)
    assert.deepEqual(h.store.status().map((s) => [s.issuer, s.ready, s.state]), [
      ['up', true, 'fresh'], ['down', false, 'loading'], ['refused', false, 'loading'],
    ])
    assert.equal(h.keys('down').status().lastError, 'status: HTTP 503: expected 200')
    assert.deepEqual(sync(h.keys('down').getKey('d1', 'ES256')), UNAVAILABLE)
    assert.equal(down.fetchCount(), 1, 'a request never triggers a fetch before the first load')

    // Retries follow the backoff (both failing issuers retry at 1 s, then 2 s).
    const second = await h.step(() => h.clock.fire(1_000, { count: 2 }), 2)
    assert.deepEqual(only(second, 'jwks.refresh_failed').map((e) => [e.issuer, e.failures, e.retryInMs]).sort(), [['down', 2, 2_000], ['refused', 2, 2_000]])
    assert.deepEqual(only([...ev, ...second], 'jwks.stale'), [], 'never fresh, so never stale')

    down.setStatus(200)
    const third = await h.step(() => h.clock.fire(2_000, { count: 2 }), 2)
    const downEvents = third.filter((e) => 'issuer' in e && e.issuer === 'down')
    assert.deepEqual(names(downEvents), ['jwks.key_added', 'jwks.refreshed', 'jwks.recovered'])
    assert.deepEqual(only(downEvents, 'jwks.recovered'), [{ event: 'jwks.recovered', issuer: 'down', from: 'loading' }])
    assert.deepEqual(h.store.status().map((s) => [s.issuer, s.ready, s.state]), [
      ['up', true, 'fresh'], ['down', true, 'fresh'], ['refused', false, 'loading'],
    ])
    okKey(h.keys('down').getKey('d1', 'ES256'))
    assert.equal(down.fetchCount(), 3)
    assert.equal(up.fetchCount(), 1, 'the healthy issuer is not disturbed')
  })
})

// ---------------------------------------------------------------------------------------------
// 9. Discovery
// ---------------------------------------------------------------------------------------------

describe('discovery', () => {
  it('finds jwks_uri, loads the keys, and refetches the document only every discoveryInterval', async (t) => {
    const idp = await issuer(t)
    const h = harness(t, [issuerCfg({ issuer: idp.issuer, jwksUri: undefined, discovery: true })])
    const keys = h.keys()
    assert.equal(keys.status().jwksUri, undefined)
    const ev = await h.step(() => h.store.start())
    assert.deepEqual(names(ev), ['jwks.discovered', 'jwks.key_added', 'jwks.refreshed'])
    assert.deepEqual(ev[0], { event: 'jwks.discovered', issuer: 'test', jwksUri: idp.jwksUri })
    assert.equal(keys.status().jwksUri, idp.jwksUri)
    assert.equal(keys.status().state, 'fresh')
    okKey(keys.getKey('k1', 'ES256'))
    assert.deepEqual([idp.discoveryCount(), idp.fetchCount()], [1, 1])

    // JWKS refreshes at +60 s and +120 s reuse the discovered jwks_uri (discoveryInterval 150 s).
    await h.step(() => h.clock.fire(60_000))
    await h.step(() => h.clock.fire(60_000))
    assert.deepEqual([idp.discoveryCount(), idp.fetchCount()], [1, 3])
    // +180 s: the document is due again; same jwks_uri, so no new discovered event.
    const later = await h.step(() => h.clock.fire(60_000))
    assert.deepEqual([idp.discoveryCount(), idp.fetchCount()], [2, 4])
    assert.deepEqual(names(later), ['jwks.refreshed'])
  })

  it('follows a moved jwks_uri, and keeps the known one while the document is broken', async (t) => {
    const idp = await issuer(t)
    const moved = await issuer(t, { kids: ['m1'] })
    const h = harness(t, [issuerCfg({ issuer: idp.issuer, jwksUri: undefined, discovery: true, refresh: { discoveryInterval: 60_000 } })])
    const keys = h.keys()
    await h.step(() => h.store.start())

    idp.setDiscoveryBody(JSON.stringify({ issuer: idp.issuer, jwks_uri: moved.jwksUri }))
    const ev = await h.step(() => h.clock.fire(60_000))
    assert.deepEqual(names(ev), ['jwks.discovered', 'jwks.key_added', 'jwks.key_removed', 'jwks.keyset_replaced', 'jwks.refreshed'])
    assert.deepEqual(ev[0], { event: 'jwks.discovered', issuer: 'test', jwksUri: moved.jwksUri })
    assert.equal(keys.status().jwksUri, moved.jwksUri)
    okKey(keys.getKey('m1', 'ES256'))
    assert.deepEqual([idp.fetchCount(), moved.fetchCount()], [1, 1])

    idp.setDiscoveryStatus(500)
    const broken = await h.step(() => h.clock.fire(60_000))
    assert.deepEqual(names(broken), ['jwks.refreshed'], 'a failing discovery document does not fail the refresh')
    assert.equal(idp.discoveryCount(), 3)
    assert.equal(moved.fetchCount(), 2)
    assert.equal(keys.status().jwksUri, moved.jwksUri)
    assert.equal(keys.status().state, 'fresh')
  })

  it('a discovery document for another issuer fails the load until it is right', async (t) => {
    const idp = await issuer(t)
    idp.setDiscoveryBody(JSON.stringify({ issuer: 'https://other.example', jwks_uri: idp.jwksUri }))
    const h = harness(t, [issuerCfg({ issuer: idp.issuer, jwksUri: undefined, discovery: true })])
    const ev = await h.step(() => h.store.start())
    const failed = only(ev, 'jwks.refresh_failed')
    assert.equal(failed.length, 1)
    assert.match(failed[0]!.error, /^discovery: discovery document issuer "https:\/\/other\.example" does not equal the configured issuer/)
    assert.equal(idp.fetchCount(), 0, 'no JWKS is fetched from an unverified document')
    assert.equal(h.keys().status().state, 'loading')

    idp.setDiscoveryBody(undefined)
    const back = await h.step(() => h.clock.fire(1_000))
    assert.deepEqual(names(back), ['jwks.discovered', 'jwks.key_added', 'jwks.refreshed', 'jwks.recovered'])
    assert.deepEqual(only(back, 'jwks.recovered')[0], { event: 'jwks.recovered', issuer: 'test', from: 'loading' })
  })
})

// ---------------------------------------------------------------------------------------------
// 10. Static keys
// ---------------------------------------------------------------------------------------------

describe('static keys', () => {
  it('loads a PEM file (state static), reloads a replaced file, and keeps the old key when the file turns to garbage', async (t) => {
    const file = pemFile(t, EC_A.publicKey)
    const h = harness(t, [issuerCfg({ issuer: 'https://static.example', keys: [{ file, alg: 'ES256', kid: undefined }] })])
    const keys = h.keys()
    const source = `file:${file}` as const
    const tpA = await thumbOf(EC_A.publicKey)
    const tpB = await thumbOf(EC_B.publicKey)

    const startup = await h.step(() => h.store.start())
    assert.deepEqual(startup.map(timed), [
      { event: 'jwks.key_added', issuer: 'test', kid: tpA, kty: 'EC', alg: 'ES256', thumbprint: tpA, source },
      { event: 'jwks.refreshed', issuer: 'test', trigger: 'startup', result: 'updated', durationMs: 0, keys: 1, nextRefreshMs: undefined },
    ])
    const st = keys.status()
    assert.deepEqual([st.state, st.ready, st.keys, st.nextRefresh, st.jwksUri, st.lastError], ['static', true, 1, undefined, undefined, undefined])
    assert.equal(st.keyList[0]?.source, source)
    assert.equal(okKey(keys.getKey(tpA, 'ES256')).key.source, source, 'kid defaults to the RFC 7638 thumbprint')
    let m = h.events.length
    assert.deepEqual(sync(keys.getKey('other', 'ES256')), UNKNOWN, 'no remote to ask: answered at once')
    assert.deepEqual(h.since(m), [{ event: 'jwks.unknown_kid', issuer: 'test', action: 'known_unknown' }])
    assert.deepEqual(h.clock.pendingMs(), [], 'a static issuer arms no refresh timer')

    // Replace the file: the watcher reloads it.
    const t0 = performance.now()
    const replaced = await h.step(() => writeFileSync(file, pem(EC_B.publicKey)))
    const took = performance.now() - t0
    assert.ok(took < 1_000, `reloaded after ${Math.round(took)} ms`)
    assert.deepEqual(replaced.map(timed), [
      { event: 'jwks.key_added', issuer: 'test', kid: tpB, kty: 'EC', alg: 'ES256', thumbprint: tpB, source },
      { event: 'jwks.key_removed', issuer: 'test', kid: tpA, kty: 'EC', alg: 'ES256', thumbprint: tpA, source },
      { event: 'jwks.keyset_replaced', issuer: 'test', added: 1, removed: 1 },
      { event: 'jwks.refreshed', issuer: 'test', trigger: 'file', result: 'updated', durationMs: 0, keys: 1, nextRefreshMs: undefined },
    ])
    const b = okKey(keys.getKey(tpB, 'ES256'))
    assert.deepEqual(sync(keys.getKey(tpA, 'ES256')), UNKNOWN)

    // Garbage: reported, and the previous key from that file is kept.
    m = h.events.length
    writeFileSync(file, 'garbage')
    await waitFor(() => only(h.since(m), 'jwks.refresh_failed').length > 0, { what: 'the failed reload', intervalMs: 2 })
    assert.deepEqual(only(h.since(m), 'jwks.refresh_failed').map(timed), [{
      event: 'jwks.refresh_failed', issuer: 'test', trigger: 'file', durationMs: 0,
      error: `${file}: unknown format: expected a PEM public key or certificate, a JWK or a JWKS (JSON)`, failures: 1, retryInMs: undefined,
    }])
    assert.equal(okKey(keys.getKey(tpB, 'ES256')).key, b.key, 'the old key still answers')
    assert.deepEqual([keys.status().state, keys.ready()], ['static', true])
    assert.ok(!h.since(m).some((e) => e.event === 'jwks.key_removed'))
  })

  it('a configured kid whose file gets new key material → key_changed', async (t) => {
    const file = pemFile(t, EC_A.publicKey)
    const h = harness(t, [issuerCfg({ issuer: 'https://static.example', keys: [{ file, alg: 'ES256', kid: 'static-1' }] })])
    await h.step(() => h.store.start())
    const ev = await h.step(() => writeFileSync(file, pem(EC_B.publicKey)))
    assert.deepEqual(ev.map(timed).slice(0, 2), [
      { event: 'jwks.key_changed', issuer: 'test', kid: 'static-1', kty: 'EC', alg: 'ES256', thumbprint: await thumbOf(EC_B.publicKey), source: `file:${file}`, previousThumbprint: await thumbOf(EC_A.publicKey) },
      { event: 'jwks.keyset_replaced', issuer: 'test', added: 1, removed: 1 },
    ])
  })

  it('a reload in which the only file failed is not reported as a successful refresh', async (t) => {
    const file = pemFile(t, EC_A.publicKey)
    const h = harness(t, [issuerCfg({ issuer: 'https://static.example', keys: [{ file, alg: 'ES256', kid: undefined }] })])
    await h.step(() => h.store.start())
    const mark = h.events.length
    await h.step(() => writeFileSync(file, 'garbage'))
    await sleep(50)
    assert.deepEqual(names(h.since(mark)), ['jwks.refresh_failed'])
  })

  it('status().lastSuccess reports the last static load, as types.ts and the metric help document', async (t) => {
    const file = pemFile(t, EC_A.publicKey)
    const h = harness(t, [issuerCfg({ issuer: 'https://static.example', keys: [{ file, alg: 'ES256', kid: undefined }] })])
    await h.step(() => h.store.start())
    assert.equal(h.keys().status().lastSuccess, T0)
  })

  it('an issuer with static and remote keys answers kids from both', async (t) => {
    const idp = await issuer(t, { kids: ['k1'] })
    const file = pemFile(t, EC_A.publicKey)
    const h = harness(t, [remoteCfg(idp, { keys: [{ file, alg: 'ES256', kid: 'file-1' }] })])
    await h.step(() => h.store.start(), 2)
    const keys = h.keys()
    assert.equal(okKey(keys.getKey('k1', 'ES256')).key.source, 'jwks')
    assert.equal(okKey(keys.getKey('file-1', 'ES256')).key.source, `file:${file}`)
    assert.deepEqual([keys.status().state, keys.status().keys], ['fresh', 2])
    assert.deepEqual(keys.status().keyList.map((k) => [k.kid, k.source]), [['file-1', `file:${file}`], ['k1', 'jwks']])
  })

  it('a remote key whose kid a static key has is left out and reported once (jwks.key_rejected)', async (t) => {
    const idp = await issuer(t, { kids: ['k1', 'shared'] })
    const file = pemFile(t, EC_A.publicKey)
    const h = harness(t, [remoteCfg(idp, { keys: [{ file, alg: 'ES256', kid: 'shared' }] })])
    await h.step(() => h.store.start(), 2)
    const keys = h.keys()
    const shared = okKey(keys.getKey('shared', 'ES256'))
    assert.equal(shared.key.source, `file:${file}`, 'the operator\'s file outranks the network')
    assert.equal(shared.key.thumbprint, await thumbOf(EC_A.publicKey))
    okKey(keys.getKey('k1', 'ES256'))
    assert.deepEqual(keys.status().keyList.map((k) => [k.kid, k.source]), [['shared', `file:${file}`], ['k1', 'jwks']])
    const rejected = [{ event: 'jwks.key_rejected', issuer: 'test', kid: 'shared', why: `duplicate kid (a static key from ${file} has it)`, source: 'jwks' }]
    assert.deepEqual(only(h.events, 'jwks.key_rejected'), rejected)

    await h.step(() => h.clock.fire(60_000))
    assert.deepEqual(only(h.events, 'jwks.key_rejected'), rejected, 'not reported again on every refresh')
  })
})

// ---------------------------------------------------------------------------------------------
// 11. stop() and the rest
// ---------------------------------------------------------------------------------------------

describe('stop() and robustness', () => {
  it('stop() cancels every timer: stale callbacks, unknown kids and start() start no fetch afterwards', async (t) => {
    const { idp, h, keys } = await loaded(t)
    assert.deepEqual(h.clock.pendingMs(), [60_000, 3_600_000])
    await h.store.stop()
    assert.deepEqual(h.clock.pendingMs(), [], 'all cancelled')
    const mark = h.events.length
    for (const timer of h.clock.all()) timer.fn() // even a callback that slipped through does nothing
    h.clock.advance(60_000)
    assert.deepEqual(sync(keys.getKey('after-stop', 'ES256')), UNKNOWN)
    h.store.start()
    await sleep(30)
    assert.equal(idp.fetchCount(), 1)
    assert.deepEqual(h.clock.pendingMs(), [])
    assert.deepEqual(h.since(mark).filter((e) => e.event !== 'jwks.unknown_kid'), [])
  })

  it('stop() with real timers: nothing fires afterwards', async (t) => {
    const { idp, h } = await loaded(t, { cfg: { refresh: { interval: 20, minInterval: 10, maxInterval: 1_000 } }, harness: { realTimers: true } })
    await waitFor(() => idp.fetchCount() >= 3, { what: 'the real schedule to run', intervalMs: 2 })
    await h.store.stop()
    const count = idp.fetchCount()
    const events = h.events.length
    await sleep(100)
    assert.equal(idp.fetchCount(), count)
    assert.equal(h.events.length, events)
  })

  it('stop() aborts an in-flight fetch promptly and emits nothing after', async (t) => {
    const idp = await issuer(t)
    idp.setDelay(5_000)
    const h = harness(t, [remoteCfg(idp)])
    h.store.start()
    await waitFor(() => idp.fetchCount() === 1, { what: 'the fetch to reach the server', intervalMs: 2 })
    const t0 = performance.now()
    await h.store.stop()
    assert.ok(performance.now() - t0 < 500, `stop took ${Math.round(performance.now() - t0)} ms`)
    await sleep(20)
    assert.deepEqual(h.events, [])
    assert.equal(h.store.ready(), false)
  })

  it('stop() releases requests waiting for an unknown-kid refresh', async (t) => {
    const { idp, h, keys } = await loaded(t)
    idp.setDelay(5_000)
    const pending = keys.getKey('new', 'ES256')
    assert.ok(pending instanceof Promise)
    await waitFor(() => idp.fetchCount() === 2, { what: 'the refresh to reach the server', intervalMs: 2 })
    const t0 = performance.now()
    await h.store.stop()
    assert.deepEqual(await pending, UNKNOWN)
    assert.ok(performance.now() - t0 < 500)
  })

  it('stop() closes the static file watcher', async (t) => {
    const file = pemFile(t, EC_A.publicKey)
    const h = harness(t, [issuerCfg({ issuer: 'https://static.example', keys: [{ file, alg: 'ES256', kid: undefined }] })])
    await h.step(() => h.store.start())
    await h.store.stop()
    const mark = h.events.length
    writeFileSync(file, pem(EC_B.publicKey))
    await sleep(250) // > debounce (20 ms) + poll interval (100 ms)
    assert.deepEqual(h.since(mark), [])
  })

  it('an observer that throws breaks nothing', async (t) => {
    const { idp, h, keys } = await loaded(t, { harness: { observerThrows: true } })
    okKey(keys.getKey('k1', 'ES256'))
    await idp.addKey('k2')
    assert.ok((await keys.getKey('k2', 'ES256')).ok, 'an unknown-kid refresh still works')
    idp.setStatus(500)
    await h.step(() => h.clock.fire(60_000))
    assert.equal(keys.status().state, 'stale')
    assert.deepEqual(h.clock.pendingMs(), [1_000, 3_600_000], 'the retry is still armed')
  })

  it('sends User-Agent jwt-sidecar/<package.json version> and Accept: application/json', async (t) => {
    const { idp } = await loaded(t)
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    assert.equal(idp.lastRequest()?.headers['user-agent'], `jwt-sidecar/${version}`)
    assert.equal(idp.lastRequest()?.headers['accept'], 'application/json')
  })
})

// ---------------------------------------------------------------------------------------------
// 12. Hostile key documents: nesting depth and key count (issue #9 §8)
// ---------------------------------------------------------------------------------------------

describe('hostile key documents (issue #9 §8)', () => {
  /** `{"keys":[[[…]]]}`, 400,000 levels: under 1 MiB, so only the depth bound stops it. */
  const DEEP = `{"keys":${'['.repeat(400_000)}${']'.repeat(400_000)}}`
  const deepError = `too deep: JSON nests deeper than ${MAX_JSON_DEPTH} levels (at character ${8 + MAX_JSON_DEPTH - 1})`
  /** 5,000 distinct kids on one real key: each entry would import if the count were not bounded. */
  const manyKeys = (jwk: JWK | Record<string, unknown>, n = 5_000): string =>
    JSON.stringify({ keys: Array.from({ length: n }, (_, i) => ({ ...jwk, kid: `k${i}` })) })

  it('a 400,000-deep document, then a 5,000-key JWKS: the last good set stays, refresh_failed says why, metrics count errors; a good set recovers', async (t) => {
    const idp = await issuer(t, { kids: ['k1'] })
    const base = remoteCfg(idp)
    // The shipped default cap (config/schema.ts): both documents fit under it.
    const maxBytes = 1024 * 1024
    const h = harness(t, [{ ...base, fetch: { ...base.fetch, maxBytes } }])
    const keys = h.keys()
    await h.step(() => h.store.start())
    const good = okKey(keys.getKey('k1', 'ES256'))

    // 1. The deep document: refused by the fetcher before JSON.parse.
    assert.ok(DEEP.length < maxBytes)
    idp.setBody(DEEP)
    const deep = await h.step(() => h.clock.fire(60_000))
    const tooDeep = `too_deep: response nests deeper than ${MAX_JSON_DEPTH} levels (at character ${8 + MAX_JSON_DEPTH - 1}): not a key document`
    assert.deepEqual(deep.map(timed), [
      { event: 'jwks.refresh_failed', issuer: 'test', trigger: 'schedule', durationMs: 0, error: tooDeep, failures: 1, retryInMs: 1_000 },
      { event: 'jwks.stale', issuer: 'test', lastSuccess: T0, error: tooDeep },
    ])
    assert.equal(keys.getKey('k1', 'ES256'), good, 'the last good set is still served')
    assert.deepEqual([keys.status().state, keys.status().keys, keys.status().lastError], ['stale', 1, tooDeep])

    // 2. 5,000 keys: refused whole before any import, so no key event of any kind.
    const body = manyKeys(idp.keys()[0]!.jwk)
    assert.ok(body.length < maxBytes)
    idp.setBody(body)
    const many = await h.step(() => h.clock.fire(1_000))
    const tooMany = `too_many_keys: JWKS lists 5000 keys, more than ${MAX_JWKS_KEYS}: refused before any import`
    assert.deepEqual(many.map(timed), [
      { event: 'jwks.refresh_failed', issuer: 'test', trigger: 'schedule', durationMs: 0, error: tooMany, failures: 2, retryInMs: 2_000 },
    ])
    assert.equal(keys.getKey('k1', 'ES256'), good)
    assert.deepEqual(keys.status().keyList.map((k) => k.kid), ['k1'], 'none of the 5,000 kids was taken in')
    assert.deepEqual([keys.status().state, keys.status().keys, keys.status().lastError], ['stale', 1, tooMany])

    // 3. A good set again: recovered, same key, nothing re-announced.
    idp.setBody(undefined)
    const back = await h.step(() => h.clock.fire(2_000))
    assert.deepEqual(names(back), ['jwks.refreshed', 'jwks.recovered'], 'the same key again: no key event')
    assert.equal(okKey(keys.getKey('k1', 'ES256')).key.thumbprint, good.key.thumbprint)
    assert.deepEqual([keys.status().state, keys.status().lastError], ['fresh', undefined])

    // The metric path: app.ts hands every key event to observe/metrics.ts.
    const metrics = createMetrics({ issuers: ['test'] })
    for (const e of h.events) metrics.keyEvent(e)
    const text = await metrics.expose()
    const value = (series: string): string | undefined => text.split('\n').find((l) => l.startsWith(`${series} `))?.slice(series.length + 1)
    assert.equal(value('jwt_sidecar_jwks_refresh_total{issuer="test",trigger="schedule",result="error"}'), '2')
    assert.equal(value('jwt_sidecar_jwks_refresh_total{issuer="test",trigger="schedule",result="updated"}'), '1')
    assert.equal(value('jwt_sidecar_jwks_key_rejections_total{issuer="test"}'), '0', 'refused documents reject no single key')
  })

  it('a static JWKS file that turns 400,000 deep, then holds 5,000 keys, keeps its old key; a good file recovers', async (t) => {
    const dir = tempDir(t)
    const file = join(dir, 'jwks.json')
    const jwk = { ...EC_A.publicKey.export({ format: 'jwk' }), kid: 'static-1', alg: 'ES256' }
    const goodJwks = JSON.stringify({ keys: [jwk] })
    writeFileSync(file, goodJwks)
    // Replaced the way the kubelet does it (rename), so the watcher never reads half a file.
    const replace = (content: string): void => {
      writeFileSync(join(dir, 'next.tmp'), content)
      renameSync(join(dir, 'next.tmp'), file)
    }
    const h = harness(t, [issuerCfg({ issuer: 'https://static.example', keys: [{ file, alg: undefined, kid: undefined }] })])
    const keys = h.keys()
    await h.step(() => h.store.start())
    const good = okKey(keys.getKey('static-1', 'ES256'))

    const failedWith = async (content: string, why: string): Promise<void> => {
      const mark = h.events.length
      const error = `${file}: ${why}`
      replace(content)
      await waitFor(() => only(h.since(mark), 'jwks.refresh_failed').some((e) => e.error === error), { what: `refresh_failed "${error}"`, intervalMs: 2 })
      assert.deepEqual(h.since(mark).filter((e) => e.event !== 'jwks.refresh_failed'), [], 'no key event')
      assert.equal(okKey(keys.getKey('static-1', 'ES256')).key, good.key, 'the old key still answers')
      assert.deepEqual([keys.status().state, keys.status().keys], ['static', 1])
    }
    await failedWith(DEEP, deepError)
    await failedWith(manyKeys(jwk), `too many keys: JWKS lists 5000 keys, more than ${MAX_JWKS_KEYS}`)

    const back = await h.step(() => replace(goodJwks))
    assert.deepEqual(names(back), ['jwks.refreshed'], 'the same key again: no key event')
    assert.equal(okKey(keys.getKey('static-1', 'ES256')).key.thumbprint, good.key.thumbprint)
  })
})
