import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { backoffDelay, cacheLifetimeMs, nextRefreshDelay, parseHttpDate } from '../../src/keys/freshness.ts'
import type { RefreshSettings } from '../../src/config/types.ts'

const NOW = Date.UTC(2024, 5, 1, 12, 0, 0) // Sat, 01 Jun 2024 12:00:00 GMT
const httpDate = (ms: number): string => new Date(ms).toUTCString()

const REFRESH: RefreshSettings = {
  interval: 600_000,
  minInterval: 30_000,
  maxInterval: 86_400_000,
  unknownKidCooldown: 30_000,
  unknownKidWait: 1_000,
  maxStale: 86_400_000,
  discoveryInterval: 3_600_000,
}

void describe('cacheLifetimeMs', () => {
  void it('reads Cache-Control max-age', () => {
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=300' }, NOW), 300_000)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'public, Max-Age=60, must-revalidate' }, NOW), 60_000)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age="120"' }, NOW), 120_000, 'quoted form (RFC 9111 §5.2)')
    assert.equal(cacheLifetimeMs({ 'cache-control': ['public', 'max-age=45'] }, NOW), 45_000, 'repeated field lines')
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=10, max-age=99999' }, NOW), 10_000, 'first occurrence wins')
  })

  void it('treats no-store, no-cache and max-age=0 as 0', () => {
    assert.equal(cacheLifetimeMs({ 'cache-control': 'no-store' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'no-cache' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=0' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=3600, no-store' }, NOW), 0, 'most restrictive wins')
    assert.equal(cacheLifetimeMs({ 'cache-control': 'NO-CACHE, max-age=3600' }, NOW), 0)
  })

  void it('does not let qualified no-cache or quoted commas stop caching', () => {
    assert.equal(cacheLifetimeMs({ 'cache-control': 'no-cache="set-cookie, x-foo", max-age=60' }, NOW), 60_000)
  })

  void it('treats an unreadable max-age as stale', () => {
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=abc' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=-5' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age' }, NOW), 0)
  })

  void it('saturates a huge max-age at 2^31 seconds (RFC 9111 §1.2.2)', () => {
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=99999999999999999999' }, NOW), 2_147_483_648_000)
  })

  void it('ignores s-maxage (we are a private cache)', () => {
    assert.equal(cacheLifetimeMs({ 'cache-control': 's-maxage=600' }, NOW), undefined)
    assert.equal(cacheLifetimeMs({ 'cache-control': 's-maxage=600, max-age=60' }, NOW), 60_000)
  })

  void it('uses Expires minus Date', () => {
    const date = NOW - 3_600_000 // the provider's clock is an hour behind ours: only the difference counts
    assert.equal(cacheLifetimeMs({ expires: httpDate(date + 900_000), date: httpDate(date) }, NOW), 900_000)
  })

  void it('uses Expires minus now when Date is absent or invalid', () => {
    assert.equal(cacheLifetimeMs({ expires: httpDate(NOW + 120_000) }, NOW), 120_000)
    assert.equal(cacheLifetimeMs({ expires: httpDate(NOW + 120_000), date: 'yesterday' }, NOW), 120_000)
    assert.equal(cacheLifetimeMs({ expires: httpDate(NOW - 120_000) }, NOW), 0, 'an Expires in the past is 0, not negative')
  })

  void it('treats an invalid Expires as already expired (RFC 9111 §5.3)', () => {
    assert.equal(cacheLifetimeMs({ expires: '0' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ expires: '-1' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ expires: 'Thu, 31 Feb 2030 00:00:00 GMT' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ expires: 'not a date', date: httpDate(NOW) }, NOW), 0)
  })

  void it('prefers max-age over Expires when both are present', () => {
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=60', expires: httpDate(NOW + 3_600_000), date: httpDate(NOW) }, NOW), 60_000)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'public', expires: httpDate(NOW + 3_600_000), date: httpDate(NOW) }, NOW), 3_600_000)
  })

  void it('subtracts Age (a cache served the response)', () => {
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=3600', age: '3500' }, NOW), 100_000)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=60', age: '120' }, NOW), 0)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'max-age=60', age: 'junk' }, NOW), 60_000)
  })

  void it('returns undefined when the response says nothing', () => {
    assert.equal(cacheLifetimeMs({}, NOW), undefined)
    assert.equal(cacheLifetimeMs({ 'cache-control': 'public, must-revalidate', date: httpDate(NOW) }, NOW), undefined)
  })
})

void describe('parseHttpDate', () => {
  void it('accepts the three HTTP-date forms (RFC 9110 §5.6.7)', () => {
    const expected = Date.UTC(1994, 10, 6, 8, 49, 37)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW), expected)
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), expected)
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW), expected)
  })

  void it('rejects what Date.parse would accept but HTTP does not', () => {
    for (const bad of ['0', '-1', '2024-06-01T12:00:00Z', 'Sun, 06 Nov 1994 08:49:37 PST', 'Sun, 06 Nov 1994 25:00:00 GMT', '']) {
      assert.equal(parseHttpDate(bad, NOW), undefined, bad)
    }
  })
})

void describe('nextRefreshDelay', () => {
  const min = (): number => 0
  const max = (): number => 1

  void it('uses the lifetime, jittered down by at most 20%', () => {
    assert.equal(nextRefreshDelay(300_000, REFRESH, max), 300_000)
    assert.equal(nextRefreshDelay(300_000, REFRESH, min), 240_000)
    assert.equal(nextRefreshDelay(300_000, REFRESH, () => 0.5), 270_000)
  })

  void it('falls back to the interval without a lifetime', () => {
    assert.equal(nextRefreshDelay(undefined, REFRESH, max), 600_000)
    assert.equal(nextRefreshDelay(undefined, REFRESH, min), 480_000)
  })

  void it('clamps to [minInterval, maxInterval] before the jitter', () => {
    assert.equal(nextRefreshDelay(0, REFRESH, max), 30_000, 'no-store: as often as minInterval allows')
    assert.equal(nextRefreshDelay(0, REFRESH, min), 24_000)
    assert.equal(nextRefreshDelay(365 * 86_400_000, REFRESH, max), 86_400_000)
    assert.equal(nextRefreshDelay(365 * 86_400_000, REFRESH, min), 69_120_000)
  })

  void it('stays within the bounds for any random value, even a misbehaving one', () => {
    for (const r of [0, 0.1, 0.5, 0.999, 1, -3, 7, Number.NaN]) {
      const d = nextRefreshDelay(100_000, REFRESH, () => r)
      assert.ok(d >= 80_000 && d <= 100_000, `random ${r} → ${d}`)
    }
    for (let i = 0; i < 1_000; i++) {
      const d = nextRefreshDelay(100_000, REFRESH)
      assert.ok(d >= 80_000 && d <= 100_000, `Math.random → ${d}`)
    }
  })
})

void describe('backoffDelay', () => {
  void it('doubles from 1 s and caps at minInterval', () => {
    const nominal = [1, 2, 3, 4, 5, 6, 7, 8, 50, 5_000].map((n) => backoffDelay(n, REFRESH, () => 1))
    assert.deepEqual(nominal, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000, 30_000])
  })

  void it('uses equal jitter: between half and all of the nominal delay', () => {
    assert.equal(backoffDelay(1, REFRESH, () => 0), 500)
    assert.equal(backoffDelay(3, REFRESH, () => 0), 2_000)
    assert.equal(backoffDelay(3, REFRESH, () => 0.5), 3_000)
    assert.equal(backoffDelay(99, REFRESH, () => 0), 15_000)
    for (let n = 1; n <= 12; n++) {
      const nominal = Math.min(REFRESH.minInterval, 1_000 * 2 ** (n - 1))
      for (let i = 0; i < 100; i++) {
        const d = backoffDelay(n, REFRESH)
        assert.ok(d >= nominal / 2 && d <= nominal, `failure ${n} → ${d}`)
      }
    }
  })

  void it('treats failures < 1 as the first failure, and a minInterval below 1 s as the cap', () => {
    assert.equal(backoffDelay(0, REFRESH, () => 1), 1_000)
    assert.equal(backoffDelay(1, { ...REFRESH, minInterval: 400 }, () => 1), 400)
  })
})
