/**
 * The verified-token cache: a token that passed signature and claims once is not verified
 * again while nothing that decided it has changed. Envoy's jwt_authn keeps the same kind of
 * cache (`jwt_cache_config`, keyed by the whole token); jose has none.
 *
 * What keeps it safe (the verifier does the checking; this unit only stores and bounds):
 * - The key is the whole token string, compared in full by the Map: a signature reused with
 *   another header or payload is another key, so it misses.
 * - Only successful verifications are stored, with the issuer's key-set version at the time
 *   (IssuerKeys.version): when the issuer's key index is swapped — a key withdrawn, keys
 *   expired past maxStale, any refresh that rebuilt the set — the entry no longer counts.
 * - Time claims are checked again on every hit (the same claim rules, RFC 7519 §4.1.4/§4.1.5,
 *   with the same clock skew; `exp` is always required), and an entry found past its `exp` +
 *   skew is dropped.
 * - One cache per verifier, and a verifier per config: a reload starts from an empty cache.
 *
 * Bounds: at most `maxEntries` entries and `maxBytes` estimated bytes (token text + parsed
 * claims + bookkeeping, an over-estimate of what V8 holds: bench/run.ts measures RSS). Eviction
 * is least-recently-used, approximately, with a Map in insertion order: an insertion past a
 * bound removes from the front, and a hit moves its entry to the end once the entry has aged
 * into the older half (at least size/2 insertions or moves since it was last put at the end).
 * An entry in the newer half is far from eviction, and moving it on every hit is costly: V8's
 * Map leaves each deleted slot in its hash chain until the next rehash, so one token hit
 * thousands of times in a row grew its bucket's chain by one per hit, and every lookup walked
 * it (with 10,000 entries cached, the same-token load ran ≈10 % slower than the 10,000-token
 * one, measured; also a cheap way for one client to slow everyone's lookups). Every operation
 * is O(1), and only a token that passed a full verification can be inserted, so a flood of
 * junk tokens cannot churn it.
 */

export interface TokenCacheOptions {
  readonly maxEntries: number
  readonly maxBytes: number
}

/** Cumulative counts, shared by the caches of successive configs and read at scrape time (no metric call per request). */
export interface TokenCacheStats {
  hits: number
  misses: number
  /** Removed for room (entries or bytes). */
  evictedCapacity: number
  /** Refused by a claim rule on a hit: past `exp` (+ skew), most often. */
  evictedExpired: number
  /** Found under an older key-set version. */
  evictedKeys: number
}

export function createTokenCacheStats(): TokenCacheStats {
  return { hits: 0, misses: 0, evictedCapacity: 0, evictedExpired: 0, evictedKeys: 0 }
}

export interface CacheEntry<V> {
  readonly value: V
  /** The issuer's IssuerKeys.version() when the token was verified. */
  readonly keys: object
  readonly bytes: number
}

/**
 * Why a stored entry no longer stands (the verifier's judgement, asked on every hit):
 * `expired` (a claim rule refuses it now, past `exp` most often), `keys` (its issuer's key
 * index changed), or undefined while it stands.
 */
export type Staleness<V> = (entry: CacheEntry<V>) => 'expired' | 'keys' | undefined

interface Slot<V> {
  readonly entry: CacheEntry<V>
  /** `seq` when it was last put at the end of the Map. */
  seq: number
}

export interface TokenCache<V> {
  /**
   * The live entry for `token`, moved towards most-recently-used. A stale one is removed
   * (counted by why) and answered like a miss: `hits` counts only answers the cache gave.
   */
  get(token: string): CacheEntry<V> | undefined
  set(token: string, entry: CacheEntry<V>): void
  readonly size: number
  /** Estimated bytes held (entryBytes summed). */
  readonly bytes: number
}

/**
 * Bookkeeping per entry beyond its strings: the Map slot, the entry and result objects, the
 * claims object's hidden class share. Measured with bench/run.ts's memory step and rounded up.
 */
export const ENTRY_OVERHEAD_BYTES = 512

/**
 * The bytes an entry is charged: the token (one byte per character: JWS compact serialisation
 * is ASCII) and the claims, estimated at twice their JSON length (V8 objects with string
 * values hold about that), plus the fixed overhead.
 */
export function entryBytes(token: string, payloadJsonLength: number): number {
  return token.length + 2 * payloadJsonLength + ENTRY_OVERHEAD_BYTES
}

/**
 * @example
 * const cache = createTokenCache<Verified>({ maxEntries: 10_000, maxBytes: 32 * 2 ** 20 }, stats, staleness)
 * const hit = cache.get(token) // undefined when absent or stale
 */
export function createTokenCache<V>(options: TokenCacheOptions, stats: TokenCacheStats, staleness: Staleness<V> = () => undefined): TokenCache<V> {
  const map = new Map<string, Slot<V>>()
  let bytes = 0
  /** Counts insertions and moves: the Map's order is the order of the slots' `seq`. */
  let seq = 0

  function remove(token: string, slot: Slot<V>): void {
    map.delete(token)
    bytes -= slot.entry.bytes
  }

  return {
    get(token) {
      const slot = map.get(token)
      const stale = slot === undefined ? undefined : staleness(slot.entry)
      if (slot === undefined || stale !== undefined) {
        if (slot !== undefined) {
          remove(token, slot)
          if (stale === 'expired') stats.evictedExpired++
          else stats.evictedKeys++
        }
        stats.misses++
        return undefined
      }
      stats.hits++
      // Recently used goes last (the front is what eviction takes), but only once it has
      // aged into the older half: see the module comment for why not on every hit.
      if (seq - slot.seq >= map.size >>> 1) {
        map.delete(token)
        slot.seq = ++seq
        map.set(token, slot)
      }
      return slot.entry
    },
    set(token, entry) {
      // An entry larger than the whole budget is simply not cached.
      if (entry.bytes > options.maxBytes || options.maxEntries === 0) return
      const old = map.get(token)
      if (old !== undefined) remove(token, old)
      while (map.size >= options.maxEntries || bytes + entry.bytes > options.maxBytes) {
        const first = map.entries().next().value
        if (first === undefined) break
        remove(first[0], first[1])
        stats.evictedCapacity++
      }
      map.set(token, { entry, seq: ++seq })
      bytes += entry.bytes
    },
    get size() {
      return map.size
    },
    get bytes() {
      return bytes
    },
  }
}
