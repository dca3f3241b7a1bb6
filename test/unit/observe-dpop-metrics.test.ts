/** The DPoP replay cache's fill level and refusals, as scraped (observe/dpop-metrics.ts). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMetrics } from '../../src/observe/metrics.ts'
import { createReplayCache } from '../../src/verify/dpop-replay.ts'

test('replay cache metrics: entries, and refusals by cause (replay, full), counted at scrape time', async () => {
  const replay = createReplayCache(2)
  const metrics = createMetrics({ dpopReplay: replay })
  const scrape = async (): Promise<string> => metrics.registry.metrics()
  const before = await scrape()
  assert.match(before, /^jwt_sidecar_dpop_replay_cache_entries 0$/m)
  assert.match(before, /^jwt_sidecar_dpop_replay_refusals_total\{cause="full"\} 0$/m, 'both causes start at 0, so increase() sees the first')
  const now = Date.now()
  assert.equal(replay.check('k', 'a', now, 60_000), 'fresh')
  assert.equal(replay.check('k', 'a', now, 60_000), 'replay')
  assert.equal(replay.check('k', 'b', now, 60_000), 'fresh')
  assert.equal(replay.check('k', 'c', now, 60_000), 'full')
  assert.equal(replay.check('k', 'd', now, 60_000), 'full')
  const after = await scrape()
  assert.match(after, /^jwt_sidecar_dpop_replay_cache_entries 2$/m)
  assert.match(after, /^jwt_sidecar_dpop_replay_refusals_total\{cause="replay"\} 1$/m)
  assert.match(after, /^jwt_sidecar_dpop_replay_refusals_total\{cause="full"\} 2$/m)
  // A second scrape adds nothing new.
  assert.match(await scrape(), /^jwt_sidecar_dpop_replay_refusals_total\{cause="full"\} 2$/m)
})
