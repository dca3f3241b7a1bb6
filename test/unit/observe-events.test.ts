import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { createLogger } from '../../src/observe/log.ts'
import { OVERFLOW_KEY, createRateLimitedLog } from '../../src/observe/events.ts'
import type { RateLimitedLogOptions } from '../../src/observe/events.ts'

type Line = Record<string, unknown> & { level: string; event: string; msg: string }

/** A real pino logger (redaction and all) writing JSON lines into an array. */
function capture(level: 'info' | 'warn' = 'info') {
  const lines: Line[] = []
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as Line)
      cb()
    },
  })
  return { log: createLogger({ level }, sink), lines }
}

/** Manual clock and one-shot timers: `advance` runs what falls due, in order. */
function fakeTime() {
  let t = 0
  const timers: { at: number; fn: () => void; live: boolean }[] = []
  return {
    now: () => t,
    schedule: (fn: () => void, ms: number) => {
      const timer = { at: t + ms, fn, live: true }
      timers.push(timer)
      return { cancel: () => { timer.live = false } }
    },
    pending: () => timers.filter((x) => x.live).length,
    advance(ms: number) {
      const end = t + ms
      for (;;) {
        const due = timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0]
        if (due === undefined) break
        due.live = false
        t = due.at
        due.fn()
      }
      t = end
    },
  }
}

const INTERVAL = 10_000

function setup(opts: Partial<RateLimitedLogOptions> = {}, level: 'info' | 'warn' = 'info') {
  const { log, lines } = capture(level)
  const time = fakeTime()
  const events = createRateLimitedLog(log, { perKeyPerInterval: 3, intervalMs: INTERVAL, now: time.now, schedule: time.schedule, ...opts })
  const denied = (key = 'auth.denied:expired:default', lvl: 'info' | 'warn' | 'error' = 'info') =>
    events.log(lvl, key, { event: 'auth.denied', reason: 'expired', route: 'default' }, 'request denied')
  const of = (event: string) => lines.filter((l) => l.event === event)
  return { events, lines, time, denied, of }
}

test('a key writes at most its budget per interval and gets a fresh budget in the next', () => {
  const { events, time, denied, of } = setup()
  for (let i = 0; i < 10; i++) denied()
  assert.equal(of('auth.denied').length, 3)
  const first = of('auth.denied')[0]!
  assert.equal(first.msg, 'request denied')
  assert.equal(first.reason, 'expired')
  assert.equal(first.level, 'info')

  time.advance(INTERVAL)
  for (let i = 0; i < 10; i++) denied()
  assert.equal(of('auth.denied').length, 6)
  events.close()
})

test('suppressed lines are summarised exactly once per interval, then the count starts over', () => {
  const { events, time, denied, of } = setup()
  for (let i = 0; i < 10; i++) denied()
  assert.equal(of('log.suppressed').length, 0, 'no summary before the interval ends')

  time.advance(INTERVAL)
  assert.deepEqual(of('log.suppressed').map(({ key, suppressed, intervalMs, level }) => ({ key, suppressed, intervalMs, level })), [
    { key: 'auth.denied:expired:default', suppressed: 7, intervalMs: INTERVAL, level: 'info' },
  ])

  // Nothing suppressed since: neither the timer nor an explicit flush repeats the summary.
  time.advance(INTERVAL)
  events.flush()
  events.flush()
  assert.equal(of('log.suppressed').length, 1)

  for (let i = 0; i < 5; i++) denied()
  time.advance(INTERVAL)
  assert.deepEqual(of('log.suppressed').map((l) => l.suppressed), [7, 2])
  events.close()
})

test('different keys have independent budgets and summaries', () => {
  const { events, time, denied, of } = setup()
  for (let i = 0; i < 10; i++) denied('auth.denied:expired:default')
  for (let i = 0; i < 4; i++) denied('auth.denied:bad_signature:api')
  for (let i = 0; i < 2; i++) denied('auth.denied:expired:api')
  assert.equal(of('auth.denied').length, 3 + 3 + 2)

  time.advance(INTERVAL)
  const summaries = new Map(of('log.suppressed').map((l) => [l.key, l.suppressed]))
  assert.deepEqual(summaries, new Map([['auth.denied:expired:default', 7], ['auth.denied:bad_signature:api', 1]]))
  events.close()
})

test('the summary is logged at the highest level that was suppressed', () => {
  const { events, time, denied, of } = setup({ perKeyPerInterval: 0 })
  denied('k', 'info')
  denied('k', 'error')
  denied('k', 'warn')
  denied('j', 'warn')
  time.advance(INTERVAL)
  assert.deepEqual(of('log.suppressed').map(({ key, level, suppressed }) => ({ key, level, suppressed })), [
    { key: 'k', level: 'error', suppressed: 3 },
    { key: 'j', level: 'warn', suppressed: 1 },
  ])
  events.close()
})

test('keys past the cap share one overflow budget, and the overflow is reported once per interval', () => {
  const { events, time, denied, of } = setup({ perKeyPerInterval: 1, maxKeys: 2 })
  for (const key of ['a', 'b', 'c', 'd', 'e', 'a', 'b']) denied(key)
  // a and b have their own budgets (spent by the first line each); c takes the overflow
  // budget; d and e are counted into the overflow key.
  assert.equal(of('auth.denied').length, 3)
  assert.equal(of('log.keys_overflow').length, 1)
  assert.equal(of('log.keys_overflow')[0]!.maxKeys, 2)
  assert.equal(of('log.keys_overflow')[0]!.level, 'warn')

  time.advance(INTERVAL)
  const summaries = new Map(of('log.suppressed').map((l) => [l.key, l.suppressed]))
  assert.deepEqual(summaries, new Map([['a', 1], ['b', 1], [OVERFLOW_KEY, 2]]))

  // Still at the cap (a and b were active): the next interval warns again, once.
  denied('f')
  denied('g')
  assert.equal(of('log.keys_overflow').length, 2)
  events.close()
})

test('a key idle for a whole interval is forgotten and frees its slot under the cap', () => {
  const { events, time, denied, of } = setup({ perKeyPerInterval: 1, maxKeys: 1 })
  denied('a')
  time.advance(INTERVAL) // a was active: kept, budget reset
  time.advance(INTERVAL) // a was idle for this interval: forgotten
  denied('b')
  assert.equal(of('log.keys_overflow').length, 0)
  assert.equal(of('auth.denied').length, 2)
  events.close()
})

test('the interval rolls on the next line even when the timer has not fired (a busy loop delays timers)', () => {
  const { log, lines } = capture()
  let t = 0
  const events = createRateLimitedLog(log, { perKeyPerInterval: 1, intervalMs: INTERVAL, now: () => t, schedule: () => ({ cancel() {} }) })
  const line = () => events.log('warn', 'k', { event: 'jwks.unknown_kid', issuer: 'corp' }, 'unknown kid')
  line()
  line()
  t = INTERVAL
  line()
  assert.deepEqual(lines.map((l) => [l.event, l.suppressed]), [
    ['jwks.unknown_kid', undefined],
    ['log.suppressed', 1],
    ['jwks.unknown_kid', undefined],
  ])
  events.close()
})

test('a timer firing after the hot path already rolled the interval does not cut the new one short', () => {
  const { events, time, denied, of } = setup({ perKeyPerInterval: 1 })
  time.advance(INTERVAL - 1) // timer due at INTERVAL has not fired yet
  denied()
  denied()
  events.flush() // starts a new interval at INTERVAL - 1
  assert.equal(of('log.suppressed').length, 1)
  denied()
  time.advance(1) // the original timer fires here and must reschedule, not roll
  denied()
  assert.equal(of('auth.denied').length, 2, 'second line in the same interval is suppressed')
  time.advance(INTERVAL - 1)
  assert.deepEqual(of('log.suppressed').map((l) => l.suppressed), [1, 1])
  events.close()
})

test('close() cancels the timer and writes the pending summaries; nothing fires afterwards', () => {
  const { events, time, denied, of, lines } = setup({ perKeyPerInterval: 1 })
  assert.equal(time.pending(), 1)
  denied()
  denied()
  events.close()
  assert.equal(time.pending(), 0)
  assert.deepEqual(of('log.suppressed').map((l) => l.suppressed), [1])
  const count = lines.length
  time.advance(10 * INTERVAL)
  assert.equal(lines.length, count)
  events.close() // idempotent
  assert.equal(lines.length, count)
})

test('a level the logger has disabled uses no budget', () => {
  const { events, time, denied, of } = setup({ perKeyPerInterval: 1 }, 'warn')
  denied('k', 'info')
  denied('k', 'info')
  denied('k', 'warn')
  assert.deepEqual(of('auth.denied').map((l) => l.level), ['warn'])
  time.advance(INTERVAL)
  assert.equal(of('log.suppressed').length, 0)
  events.close()
})

test('fields still pass through pino redaction', () => {
  const { events, lines } = setup()
  events.log('warn', 'k', { event: 'auth.denied', headers: { authorization: 'Bearer secret-token' } }, 'denied')
  assert.ok(!JSON.stringify(lines).includes('secret'))
  events.close()
})

test('options are validated', () => {
  const { log } = capture()
  assert.throws(() => createRateLimitedLog(log, { perKeyPerInterval: -1, intervalMs: 1000 }), RangeError)
  assert.throws(() => createRateLimitedLog(log, { perKeyPerInterval: 1.5, intervalMs: 1000 }), RangeError)
  assert.throws(() => createRateLimitedLog(log, { perKeyPerInterval: 1, intervalMs: 0 }), RangeError)
  assert.throws(() => createRateLimitedLog(log, { perKeyPerInterval: 1, intervalMs: 1000, maxKeys: 0 }), RangeError)
})

test('the default timer is unref\'d: it never keeps the process alive', () => {
  const { log } = capture()
  const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = refTimers()
  const events = createRateLimitedLog(log, { perKeyPerInterval: 1, intervalMs: 3_600_000 })
  events.log('info', 'k', { event: 'x' }, 'x')
  assert.equal(refTimers(), before)
  events.close()
})
