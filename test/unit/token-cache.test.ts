/**
 * The verified-token cache's bounds and bookkeeping (src/verify/token-cache.ts). What makes a
 * hit count (key-set version, exp, claims) is the verifier's job and is tested through the
 * real sidecar in test/integration/token-cache.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ENTRY_OVERHEAD_BYTES, createTokenCache, createTokenCacheStats, entryBytes } from '../../src/verify/token-cache.ts'
import type { CacheEntry } from '../../src/verify/token-cache.ts'

const VERSION = {}
const entry = (value: string, bytes = 100): CacheEntry<string> => ({ value, keys: VERSION, bytes })

test('least recently used goes first when maxEntries is reached; a get refreshes recency', () => {
  const stats = createTokenCacheStats()
  const cache = createTokenCache<string>({ maxEntries: 2, maxBytes: 1e9 }, stats)
  cache.set('a', entry('A'))
  cache.set('b', entry('B'))
  assert.equal(cache.get('a')?.value, 'A')
  cache.set('c', entry('C'))
  assert.equal(cache.get('b'), undefined)
  assert.equal(cache.get('a')?.value, 'A')
  assert.equal(cache.get('c')?.value, 'C')
  assert.equal(cache.size, 2)
  assert.deepEqual(stats, { hits: 3, misses: 1, evictedCapacity: 1, evictedExpired: 0, evictedKeys: 0 })
})

test('an entry hit at least once per maxEntries/2 insertions is never evicted, however long the churn', () => {
  const stats = createTokenCacheStats()
  const cache = createTokenCache<string>({ maxEntries: 100, maxBytes: 1e9 }, stats)
  cache.set('hot', entry('H'))
  for (let i = 0; i < 10_000; i++) {
    cache.set(`t${i}`, entry(String(i)))
    if (i % 49 === 0) assert.equal(cache.get('hot')?.value, 'H', `evicted after ${i} insertions`)
  }
  // And one hit less often than that ages out like any other entry.
  cache.set('cold', entry('C'))
  for (let i = 0; i < 100; i++) cache.set(`u${i}`, entry(String(i)))
  assert.equal(cache.get('cold'), undefined)
})

test('maxBytes bounds the sum of entry bytes; an entry larger than the budget is not stored', () => {
  const stats = createTokenCacheStats()
  const cache = createTokenCache<string>({ maxEntries: 100, maxBytes: 250 }, stats)
  cache.set('a', entry('A', 100))
  cache.set('b', entry('B', 100))
  cache.set('c', entry('C', 100)) // 300 > 250: a goes
  assert.equal(cache.bytes, 200)
  assert.equal(cache.get('a'), undefined)
  cache.set('huge', entry('H', 251))
  assert.equal(cache.get('huge'), undefined)
  assert.equal(cache.size, 2)
  assert.equal(cache.bytes, 200)
  assert.equal(stats.evictedCapacity, 1)
})

test('setting a token again replaces its entry without counting it twice', () => {
  const cache = createTokenCache<string>({ maxEntries: 2, maxBytes: 1000 }, createTokenCacheStats())
  cache.set('a', entry('A1', 100))
  cache.set('a', entry('A2', 150))
  assert.equal(cache.size, 1)
  assert.equal(cache.bytes, 150)
  assert.equal(cache.get('a')?.value, 'A2')
})

test('a stale entry is removed on lookup, counted by why, and answered as a miss; a missing token is a plain miss', () => {
  const stats = createTokenCacheStats()
  const stale: Record<string, 'expired' | 'keys'> = { A: 'expired', B: 'keys' }
  const cache = createTokenCache<string>({ maxEntries: 10, maxBytes: 1000 }, stats, (e) => stale[e.value])
  cache.set('a', entry('A'))
  cache.set('b', entry('B'))
  cache.set('c', entry('C'))
  assert.equal(cache.get('a'), undefined)
  assert.equal(cache.get('b'), undefined)
  assert.equal(cache.get('zzz'), undefined)
  assert.equal(cache.get('c')?.value, 'C')
  assert.equal(cache.size, 1)
  assert.equal(cache.bytes, entry('C').bytes)
  assert.equal(stats.evictedExpired, 1)
  assert.equal(stats.evictedKeys, 1)
  assert.deepEqual([stats.hits, stats.misses], [1, 3])
})

test('the key is the whole token: tokens sharing a signature segment are different entries', () => {
  const cache = createTokenCache<string>({ maxEntries: 10, maxBytes: 1e6 }, createTokenCacheStats())
  cache.set('h.p1.sig', entry('first'))
  assert.equal(cache.get('h.p2.sig'), undefined)
  assert.equal(cache.get('h2.p1.sig'), undefined)
  assert.equal(cache.get('h.p1.sig')?.value, 'first')
})

test('eviction stays constant-time per insertion under churn (100,000 inserts into 1,000 slots)', () => {
  const stats = createTokenCacheStats()
  const cache = createTokenCache<number>({ maxEntries: 1000, maxBytes: 1e9 }, stats)
  for (let i = 0; i < 100_000; i++) cache.set(`t${i}`, { value: i, keys: VERSION, bytes: 1 })
  assert.equal(cache.size, 1000)
  assert.equal(stats.evictedCapacity, 99_000)
  assert.equal(cache.get('t99999')?.value, 99_999)
  assert.equal(cache.get('t98999'), undefined)
})

test('entryBytes charges the token, twice the claims JSON, and the fixed overhead', () => {
  assert.equal(entryBytes('x'.repeat(1000), 600), 1000 + 1200 + ENTRY_OVERHEAD_BYTES)
})
