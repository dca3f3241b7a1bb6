import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { createKeyStore } from '../../src/keys/store.ts'
import type { KeyStoreDeps, Schedule } from '../../src/keys/store.ts'
import type { Algorithm, IssuerConfig } from '../../src/config/types.ts'
import type { KeyEvent, KeyResult, KeyStore } from '../../src/keys/types.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer } from '../helpers/issuer.ts'

interface CfgOverrides {
  readonly name?: string
  readonly algorithms?: readonly Algorithm[]
  readonly interval?: number
  readonly unknownKidCooldown?: number
  readonly unknownKidWait?: number
  readonly timeout?: number
}

function cfg(idp: TestIssuer, o: CfgOverrides = {}): IssuerConfig {
  return {
    name: o.name ?? 'test',
    issuer: idp.issuer,
    jwksUri: idp.jwksUri,
    audiences: ['test-api'],
    algorithms: o.algorithms ?? ['ES256'],
    allowInsecureHttp: false,
    fetch: { timeout: o.timeout ?? 2_000, maxBytes: 64 * 1024 },
    refresh: {
      interval: o.interval ?? 60_000,
      unknownKidCooldown: o.unknownKidCooldown ?? 30_000,
      unknownKidWait: o.unknownKidWait ?? 1_000,
    },
  }
}

/** A schedule the test fires by hand: no sleeping for intervals. */
function manualSchedule() {
  const timers: { fn: () => void; ms: number; state: 'pending' | 'fired' | 'cancelled' }[] = []
  const schedule: Schedule = (fn, ms) => {
    const t = { fn, ms, state: 'pending' as 'pending' | 'fired' | 'cancelled' }
    timers.push(t)
    return {
      cancel: () => {
        if (t.state === 'pending') t.state = 'cancelled'
      },
    }
  }
  return {
    schedule,
    all: () => timers,
    pending: () => timers.filter((t) => t.state === 'pending'),
    /** Fire the only pending timer with this delay. */
    fire(ms: number) {
      const due = timers.filter((t) => t.state === 'pending' && t.ms === ms)
      assert.equal(due.length, 1, `expected one pending ${ms} ms timer, have ${JSON.stringify(timers.map((t) => [t.ms, t.state]))}`)
      due[0]!.state = 'fired'
      due[0]!.fn()
    },
  }
}

async function until(cond: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await sleep(5)
  }
}

async function setup(t: TestContext, o: CfgOverrides & { kids?: string[]; deps?: KeyStoreDeps; load?: boolean } = {}) {
  const idp = await startTestIssuer({ alg: 'ES256', kids: o.kids ?? ['k1'] })
  const events: KeyEvent[] = []
  const store = createKeyStore([cfg(idp, o)], { onEvent: (e) => events.push(e), ...o.deps })
  t.after(async () => {
    await store.stop()
    await idp.close()
  })
  const keys = store.issuer(o.name ?? 'test')!
  if (o.load ?? true) {
    store.start()
    await until(() => store.ready())
  }
  return { idp, events, store, keys }
}

function sync(r: KeyResult | Promise<KeyResult>): KeyResult {
  assert.ok(!(r instanceof Promise), 'expected a synchronous answer')
  return r
}

const fetches = (events: KeyEvent[]) => events.filter((e) => e.event === 'jwks.fetch')

void describe('createKeyStore', () => {
  void it('is not ready and answers keys_unavailable until the first load, then answers a known kid synchronously', async (t) => {
    const { idp, events, store, keys } = await setup(t, { load: false })
    assert.equal(store.issuer('nope'), undefined)
    assert.equal(store.ready(), false)
    assert.equal(keys.ready(), false)
    assert.deepEqual(sync(keys.getKey('k1', 'ES256')), { ok: false, reason: 'keys_unavailable' })
    assert.equal(idp.fetchCount(), 0, 'nothing happens before start()')

    store.start()
    store.start() // idempotent
    await until(() => store.ready())
    const r = sync(keys.getKey('k1', 'ES256'))
    assert.ok(r.ok)
    assert.equal(r.key.kid, 'k1')
    assert.equal(r.key.key.asymmetricKeyType, 'ec')
    assert.equal(keys.getKey('k1', 'ES256'), r, 'the hot path returns the pre-allocated result')
    assert.equal(idp.fetchCount(), 1)

    const [status] = store.status()
    assert.equal(status?.issuer, 'test')
    assert.equal(status?.ready, true)
    assert.equal(status?.keys, 1)
    assert.equal(typeof status?.lastSuccess, 'number')
    assert.equal(status?.lastError, undefined)
    assert.deepEqual(keys.status(), status)

    const fetch = fetches(events)
    assert.equal(fetch.length, 1)
    assert.equal(fetch[0]!.result, 'success')
    assert.equal(fetch[0]!.trigger, 'startup')
    assert.equal(fetch[0]!.keys, 1)
    assert.equal(typeof fetch[0]!.durationMs, 'number')
    assert.deepEqual(events.filter((e) => e.event === 'jwks.key_added'), [
      { event: 'jwks.key_added', issuer: 'test', kid: 'k1', thumbprint: r.key.thumbprint },
    ])
  })

  void it('answers bad_signature when the named key cannot have produced the alg', async (t) => {
    const { keys, idp } = await setup(t, { algorithms: ['ES256', 'RS256', 'ES384'] })
    assert.deepEqual(sync(keys.getKey('k1', 'RS256')), { ok: false, reason: 'bad_signature' })
    assert.deepEqual(sync(keys.getKey('k1', 'ES384')), { ok: false, reason: 'bad_signature' })
    assert.equal(idp.fetchCount(), 1, 'a known kid never triggers a fetch')
  })

  void it('without a kid, uses the one key that supports the alg, else unknown_kid (never tries every key)', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256', kids: ['a', 'b'] })
    await idp.addKey('c', 'ES384')
    const store = createKeyStore([cfg(idp, { algorithms: ['ES256', 'ES384', 'EdDSA'] })])
    t.after(async () => {
      await store.stop()
      await idp.close()
    })
    store.start()
    await until(() => store.ready())
    const keys = store.issuer('test')!
    assert.deepEqual(sync(keys.getKey(undefined, 'ES256')), { ok: false, reason: 'unknown_kid' })
    const only = sync(keys.getKey(undefined, 'ES384'))
    assert.ok(only.ok)
    assert.equal(only.key.kid, 'c')
    assert.equal(keys.getKey('c', 'ES384'), only, 'same pre-allocated result as by kid')
    assert.deepEqual(sync(keys.getKey(undefined, 'EdDSA')), { ok: false, reason: 'unknown_kid' })
    assert.equal(idp.fetchCount(), 1)
  })

  void it('an unknown kid triggers exactly one refetch, and the rotated-in key is then found', async (t) => {
    const { idp, events, keys } = await setup(t)
    const k2 = await idp.addKey('k2')
    idp.removeKey('k1')
    const pending = keys.getKey('k2', 'ES256')
    assert.ok(pending instanceof Promise)
    const r = await pending
    assert.ok(r.ok)
    assert.equal(r.key.kid, 'k2')
    assert.equal(idp.fetchCount(), 2)
    assert.ok(sync(keys.getKey('k2', 'ES256')).ok)
    // k1 left the set; asking for it now is inside the cooldown: an immediate unknown_kid.
    assert.deepEqual(sync(keys.getKey('k1', 'ES256')), { ok: false, reason: 'unknown_kid' })
    assert.equal(idp.fetchCount(), 2)

    const last = fetches(events).at(-1)!
    assert.deepEqual({ result: last.result, trigger: last.trigger, keys: last.keys }, { result: 'success', trigger: 'unknown_kid', keys: 1 })
    const changes = events.filter((e) => e.event === 'jwks.key_added' || e.event === 'jwks.key_removed').slice(1)
    assert.deepEqual(changes.map((e) => [e.event, e.kid]), [['jwks.key_added', 'k2'], ['jwks.key_removed', 'k1']])
    assert.ok(changes.every((e) => 'thumbprint' in e && typeof e.thumbprint === 'string'))
    assert.equal(k2.published, true)
  })

  void it('a key replaced under the same kid is reported as removed and added', async (t) => {
    const { idp, events, keys, store } = await setup(t, { unknownKidCooldown: 0 })
    const before = sync(keys.getKey('k1', 'ES256'))
    idp.removeKey('k1')
    await idp.addKey('k1b')
    // Publish a new key under the old kid by serving a hand-made document.
    const replacement = idp.jwks().keys.map((k) => ({ ...k, kid: 'k1' }))
    idp.setBody(JSON.stringify({ keys: replacement }))
    assert.equal((await keys.getKey('zz', 'ES256')).ok, false) // any unknown kid triggers the refetch
    const after = sync(keys.getKey('k1', 'ES256'))
    assert.ok(before.ok && after.ok)
    assert.notEqual(after.key.thumbprint, before.key.thumbprint)
    const changes = events.filter((e) => e.event === 'jwks.key_added' || e.event === 'jwks.key_removed').slice(1)
    assert.deepEqual(changes.map((e) => [e.event, e.kid]), [['jwks.key_added', 'k1'], ['jwks.key_removed', 'k1']])
    assert.equal(store.status()[0]?.keys, 1)
  })

  void it('a flood of 1,000 concurrent random kids costs at most one fetch per cooldown', async (t) => {
    const { idp, keys } = await setup(t, { unknownKidCooldown: 150, unknownKidWait: 500 })
    const before = idp.fetchCount()
    const results = await Promise.all(Array.from({ length: 1_000 }, async () => keys.getKey(randomUUID(), 'ES256')))
    assert.ok(results.every((r) => !r.ok && r.reason === 'unknown_kid'))
    assert.ok(idp.fetchCount() - before <= 1, `fetches: ${idp.fetchCount() - before}`)
    const afterFlood = idp.fetchCount()

    // Still inside the cooldown: fail at once, no fetch.
    assert.deepEqual(sync(keys.getKey(randomUUID(), 'ES256')), { ok: false, reason: 'unknown_kid' })
    assert.equal(idp.fetchCount(), afterFlood)

    // After the cooldown one more refetch is allowed.
    await sleep(170)
    const late = await keys.getKey(randomUUID(), 'ES256')
    assert.equal(late.ok, false)
    assert.equal(idp.fetchCount(), afterFlood + 1)
  })

  void it('requests wait for an unknown-kid refetch at most unknownKidWait (slow JWKS server)', async (t) => {
    const { idp, keys } = await setup(t, { unknownKidWait: 100, timeout: 5_000 })
    idp.setDelay(2_000)
    const t0 = Date.now()
    const pending = keys.getKey('new', 'ES256')
    // Known keys stay synchronous while the refetch is in flight.
    assert.ok(sync(keys.getKey('k1', 'ES256')).ok)
    const joined = keys.getKey('new-too', 'ES256') // shares the same refetch and wait
    assert.deepEqual(await pending, { ok: false, reason: 'unknown_kid' })
    assert.deepEqual(await joined, { ok: false, reason: 'unknown_kid' })
    const waited = Date.now() - t0
    assert.ok(waited >= 90 && waited < 800, `waited ${waited} ms`)
    assert.equal(idp.fetchCount(), 2)
  })

  void it('a failed refresh keeps the previous keys (error status, empty set, invalid JSON, only rejected keys)', async (t) => {
    const { idp, events, keys, store } = await setup(t, { unknownKidCooldown: 0 })
    const good = sync(keys.getKey('k1', 'ES256'))
    const cases: [() => void, RegExp][] = [
      [() => idp.setStatus(500), /^status: HTTP 500/],
      [() => (idp.setStatus(200), idp.setBody('{"keys": []}')), /^no_usable_keys/],
      [() => idp.setBody('<html>oops</html>'), /^invalid_json/],
      [() => idp.setBody('{"nokeys": 1}'), /^invalid_jwks/],
      [() => idp.setBody(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }] })), /^no_usable_keys: no usable keys \(1 rejected\)/],
    ]
    for (const [breakIt, error] of cases) {
      breakIt()
      assert.deepEqual(await keys.getKey('rotated?', 'ES256'), { ok: false, reason: 'unknown_kid' })
      assert.equal(keys.getKey('k1', 'ES256'), good, 'the previous set is still served')
      assert.equal(store.ready(), true)
      const last = fetches(events).at(-1)!
      assert.equal(last.result, 'error')
      assert.equal(last.trigger, 'unknown_kid')
      assert.match(last.error ?? '', error)
      assert.match(store.status()[0]?.lastError ?? '', error)
    }
    assert.deepEqual(events.filter((e) => e.event === 'jwks.key_rejected'), [
      { event: 'jwks.key_rejected', issuer: 'test', kid: 'hmac', why: 'symmetric key (kty "oct") is never accepted' },
    ])
    assert.ok(!events.some((e) => e.event === 'jwks.key_removed'))

    idp.setBody(undefined)
    await keys.getKey('again', 'ES256')
    assert.equal(store.status()[0]?.lastError, undefined)
  })

  void it('provider down at start: start() does not throw, keys_unavailable, retried after min(interval, 10s)', async (t) => {
    const clock = manualSchedule()
    const { idp, events, store, keys } = await setup(t, { load: false, deps: { schedule: clock.schedule } })
    idp.setStatus(503)
    assert.doesNotThrow(() => store.start())
    await until(() => fetches(events).length === 1)
    assert.equal(fetches(events)[0]!.result, 'error')
    assert.equal(store.ready(), false)
    assert.deepEqual(sync(keys.getKey('k1', 'ES256')), { ok: false, reason: 'keys_unavailable' })
    assert.deepEqual(sync(keys.getKey(undefined, 'ES256')), { ok: false, reason: 'keys_unavailable' })
    assert.equal(idp.fetchCount(), 1, 'a request never triggers a fetch before the first load')
    assert.match(store.status()[0]?.lastError ?? '', /HTTP 503/)

    idp.setStatus(200)
    clock.fire(10_000)
    await until(() => store.ready())
    assert.equal(fetches(events)[1]!.trigger, 'interval')
    assert.deepEqual(clock.pending().map((p) => p.ms), [60_000], 'back on the normal interval')
  })

  void it('retries a failed fetch after the interval when it is shorter than 10s', async (t) => {
    const clock = manualSchedule()
    let calls = 0
    const { store } = await setup(t, {
      load: false,
      interval: 3_000,
      deps: {
        schedule: clock.schedule,
        fetchJwks: () => {
          calls++
          return Promise.reject(new Error('boom'))
        },
      },
    })
    store.start()
    await until(() => clock.pending().length === 1)
    assert.deepEqual(clock.pending().map((p) => p.ms), [3_000])
    assert.equal(calls, 1)
  })

  void it('refreshes in the background on the interval', async (t) => {
    const clock = manualSchedule()
    const { idp, events, keys } = await setup(t, { interval: 45_000, deps: { schedule: clock.schedule } })
    await idp.addKey('k2')
    clock.fire(45_000)
    await until(() => fetches(events).length === 2)
    assert.equal(fetches(events)[1]!.trigger, 'interval')
    assert.ok(sync(keys.getKey('k2', 'ES256')).ok)
    assert.deepEqual(clock.pending().map((p) => p.ms), [45_000])
  })

  void it('single-flight: an unknown-kid trigger joins the fetch already in flight', async (t) => {
    const clock = manualSchedule()
    const idp = await startTestIssuer({ alg: 'ES256' })
    const extra = await idp.addKey('x', 'ES256', { publish: false })
    let calls = 0
    let release!: (doc: unknown) => void
    const store = createKeyStore([cfg(idp, { interval: 1_000 })], {
      schedule: clock.schedule,
      fetchJwks: () => {
        calls++
        if (calls === 1) return Promise.resolve(idp.jwks())
        return new Promise((resolve) => (release = resolve))
      },
    })
    t.after(async () => {
      await store.stop()
      await idp.close()
    })
    store.start()
    await until(() => store.ready())
    clock.fire(1_000) // interval fetch #2 starts and hangs
    assert.equal(calls, 2)
    const p1 = store.issuer('test')!.getKey('x', 'ES256')
    const p2 = store.issuer('test')!.getKey('x', 'ES256')
    assert.equal(calls, 2, 'no second fetch while one is in flight')
    release({ keys: [...idp.jwks().keys, extra.jwk] })
    const [r1, r2] = await Promise.all([p1, p2])
    assert.ok(r1.ok && r2.ok)
    assert.equal(r1, r2)
    assert.equal(calls, 2)
  })

  void it('reports a rejected key once, not on every refresh', async (t) => {
    const clock = manualSchedule()
    const idp = await startTestIssuer({ alg: 'ES256' })
    await idp.addKey('enc', 'ES256', { jwk: { use: 'enc' } })
    const events: KeyEvent[] = []
    const store = createKeyStore([cfg(idp)], { schedule: clock.schedule, onEvent: (e) => events.push(e) })
    t.after(async () => {
      await store.stop()
      await idp.close()
    })
    store.start()
    await until(() => store.ready())
    clock.fire(60_000)
    await until(() => fetches(events).length === 2)
    assert.deepEqual(events.filter((e) => e.event === 'jwks.key_rejected'), [
      { event: 'jwks.key_rejected', issuer: 'test', kid: 'enc', why: 'use "enc" is not "sig"' },
    ])
  })

  void it('ready() needs every issuer; status() lists each', async (t) => {
    const up = await startTestIssuer({ alg: 'ES256' })
    const down = await startTestIssuer({ alg: 'ES256' })
    down.setStatus(500)
    const store = createKeyStore([cfg(up, { name: 'up' }), cfg(down, { name: 'down' })])
    t.after(async () => {
      await store.stop()
      await Promise.all([up.close(), down.close()])
    })
    store.start()
    await until(() => store.issuer('up')!.ready() && down.fetchCount() === 1)
    assert.equal(store.ready(), false)
    assert.deepEqual(store.status().map((s) => [s.issuer, s.ready]), [['up', true], ['down', false]])
  })

  void it('stop() cancels timers: no timer fires and no fetch starts afterwards', async (t) => {
    const clock = manualSchedule()
    const { idp, store, keys } = await setup(t, { unknownKidCooldown: 0, deps: { schedule: clock.schedule } })
    assert.equal(clock.pending().length, 1)
    await store.stop()
    assert.equal(clock.pending().length, 0)
    // Even a stale callback or an unknown kid after stop starts nothing.
    for (const timer of clock.all()) timer.fn()
    assert.deepEqual(await keys.getKey('after-stop', 'ES256'), { ok: false, reason: 'unknown_kid' })
    store.start()
    await sleep(20)
    assert.equal(idp.fetchCount(), 1)
  })

  void it('stop() with real timers: nothing fires afterwards', async (t) => {
    const { idp, store } = await setup(t, { interval: 30 })
    await until(() => idp.fetchCount() >= 2) // the interval really runs
    await store.stop()
    const count = idp.fetchCount()
    await sleep(100)
    assert.equal(idp.fetchCount(), count)
  })

  void it('stop() aborts an in-flight fetch promptly and emits nothing after', async (t) => {
    const { idp, events, store } = await setup(t, { load: false, timeout: 10_000 })
    idp.setDelay(5_000)
    store.start()
    await until(() => idp.fetchCount() === 1)
    const t0 = Date.now()
    await store.stop()
    assert.ok(Date.now() - t0 < 500, `stop took ${Date.now() - t0} ms`)
    assert.equal(store.ready(), false)
    assert.deepEqual(events, [])
  })

  void it('releases waiting requests on stop()', async (t) => {
    const { idp, store, keys } = await setup(t, { unknownKidWait: 5_000, timeout: 10_000 })
    idp.setDelay(5_000)
    const pending = keys.getKey('new', 'ES256')
    await sleep(10)
    const t0 = Date.now()
    await store.stop()
    assert.deepEqual(await pending, { ok: false, reason: 'unknown_kid' })
    assert.ok(Date.now() - t0 < 500)
  })

  void it('sends User-Agent jwt-sidecar/<package version> by default', async (t) => {
    const { idp } = await setup(t)
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    assert.equal(idp.lastRequest()?.headers['user-agent'], `jwt-sidecar/${version}`)
    assert.equal(idp.lastRequest()?.headers['accept'], 'application/json')
  })

  void it('survives an event observer that throws', async (t) => {
    const { store, keys } = await setup(t, {
      deps: {
        onEvent: () => {
          throw new Error('observer bug')
        },
      },
    })
    assert.equal(store.ready(), true)
    assert.ok(sync(keys.getKey('k1', 'ES256')).ok)
  })
})

// Keep the KeyStore type import honest: the factory returns the contract type.
const _typecheck: (i: readonly IssuerConfig[]) => KeyStore = createKeyStore
void _typecheck
