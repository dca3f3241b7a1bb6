/**
 * The DPoP replay cache (verify/dpop-replay.ts) as metrics, read at scrape time: how full it
 * is, and what it refused. `full` is the one to watch: the cache refuses new proofs rather
 * than evict live ones (RFC 9449 §11.1), so a full cache turns into 401s for honest clients.
 */
import type { Registry } from 'prom-client'
import type { ReplayCache } from '../verify/dpop-replay.ts'
import { scrapedCounter, scrapedGauge } from './scraped.ts'

/**
 * @example
 * registerDpopMetrics(metrics.registry, replay)
 */
export function registerDpopMetrics(registry: Registry, replay: ReplayCache): void {
  scrapedGauge(registry, 'jwt_sidecar_dpop_replay_cache_entries', 'DPoP proofs the replay cache remembers (at most tokens.dpopReplayCache.maxEntries, each until its iat + proofMaxAge + tokens.clockSkew).', () => replay.size)
  scrapedCounter(registry, 'jwt_sidecar_dpop_replay_refusals_total', 'DPoP proofs refused by the replay cache (401 dpop_replay), by cause (replay: its jti was already used with that key; full: the cache is full of live proofs and refuses rather than evicts). Any full means honest clients are refused: more DPoP proofs per window than tokens.dpopReplayCache.maxEntries.', 'cause', {
    replay: () => replay.stats.replays,
    full: () => replay.stats.full,
  })
}
