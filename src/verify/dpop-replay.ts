/**
 * The DPoP proof replay cache (RFC 9449 §11.1): a proof's `jti` is remembered for as long as
 * the proof itself could still be accepted, so the same proof sent twice is refused.
 *
 * Bounded: at most `maxEntries` entries, each a fixed-size SHA-256 of (key thumbprint, jti),
 * never the client's own text, so memory is ≈ maxEntries × 120 B whatever clients send. An
 * entry lives as long as its proof could be accepted (dpop.ts: until iat + proofMaxAge +
 * clockSkew). Proofs arrive in about iat order, so insertion order is about expiry order and
 * purging is a walk from the front that stops at the first live entry: an entry behind a
 * longer-lived one may stay a little past its time, which costs room, never safety. When the
 * cache is full of live entries, a new proof is refused (`full`): evicting a live entry would
 * reopen the replay window (fail closed).
 */
import { createHash } from 'node:crypto'

export type ReplayCheck = 'fresh' | 'replay' | 'full'

export interface ReplayCacheStats {
  replays: number
  full: number
}

export interface ReplayCache {
  /**
   * Records (thumbprint, jti) until `now + ttl` and says `fresh`, or says `replay` when it is
   * already there, or `full` when it cannot be recorded. `now` and `ttl` in ms.
   */
  check(jkt: string, jti: string, now: number, ttl: number): ReplayCheck
  readonly size: number
  /** The bound on `size`. */
  readonly capacity: number
  readonly stats: Readonly<ReplayCacheStats>
}

/**
 * Default bound (`tokens.dpopReplayCache.maxEntries`): 100k proofs in flight, about 12 MB;
 * with proofMaxAge 60 s and clockSkew 60 s each is kept ≈ 120 s: ≈ 830 DPoP requests/s.
 */
const DEFAULT_REPLAY_ENTRIES = 100_000

/**
 * @example
 * const replay = createReplayCache(100_000)
 * replay.check(jkt, jti, Date.now(), 120_000) // 'fresh', then 'replay'
 */
export function createReplayCache(maxEntries: number = DEFAULT_REPLAY_ENTRIES): ReplayCache {
  // key → expiry (epoch ms); Map keeps insertion order.
  const seen = new Map<string, number>()
  const stats: ReplayCacheStats = { replays: 0, full: 0 }

  function purge(now: number): void {
    for (const [k, expires] of seen) {
      if (expires > now) break
      seen.delete(k)
    }
  }

  return {
    check(jkt, jti, now, ttl) {
      purge(now)
      const key = createHash('sha256').update(jkt).update('\0').update(jti).digest('base64url')
      if (seen.has(key)) {
        stats.replays++
        return 'replay'
      }
      if (seen.size >= maxEntries) {
        stats.full++
        return 'full'
      }
      seen.set(key, now + ttl)
      return 'fresh'
    },
    get size() {
      return seen.size
    },
    capacity: maxEntries,
    stats,
  }
}
