import { test } from 'node:test'
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { createLoopMonitor } from '../../src/observe/loop-monitor.ts'

// Small windows keep the test short; the real default is 10 s.
const WINDOW = 200
const THRESHOLD = 100
const RESOLUTION = 10

function blockFor(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // busy-wait: the event loop cannot turn until this returns
  }
}

/** Polls `cond` every few ms; resolves with the elapsed ms, or rejects after `limitMs`. */
async function waitUntil(cond: () => boolean, limitMs: number): Promise<number> {
  const start = performance.now()
  while (!cond()) {
    if (performance.now() - start > limitMs) throw new Error(`condition not met within ${limitMs} ms`)
    await sleep(10)
  }
  return performance.now() - start
}

test('an idle loop is healthy and reports a small delay', async () => {
  const loop = createLoopMonitor({ thresholdMs: THRESHOLD, windowMs: WINDOW, resolutionMs: RESOLUTION })
  try {
    assert.equal(loop.maxDelayMs(), 0, 'no sample yet reads 0, not the histogram\'s empty sentinel')
    assert.ok(loop.healthy())
    await sleep(100)
    assert.ok(loop.healthy(), `maxDelayMs=${loop.maxDelayMs()}`)
    assert.ok(loop.maxDelayMs() < THRESHOLD)
  } finally {
    loop.close()
  }
})

test('a 300 ms block makes it unhealthy for about a window after the block, then healthy again', async () => {
  const loop = createLoopMonitor({ thresholdMs: THRESHOLD, windowMs: WINDOW, resolutionMs: RESOLUTION })
  try {
    await sleep(50)
    blockFor(300)
    const blockEnded = performance.now()
    // Let the sampler tick once after the block: that tick records it.
    await sleep(3 * RESOLUTION)
    assert.equal(loop.healthy(), false)
    assert.ok(loop.maxDelayMs() >= 250, `maxDelayMs=${loop.maxDelayMs()}`)

    // Still visible well into the following window, although the loop has been free since.
    await sleep(WINDOW / 2 - 3 * RESOLUTION)
    assert.equal(loop.healthy(), false, 'the block stays visible for a window after it ended')

    await waitUntil(() => loop.healthy(), 5 * WINDOW)
    const visibleFor = performance.now() - blockEnded
    // One to two windows (plus scheduling slack), by design.
    assert.ok(visibleFor >= WINDOW / 2 && visibleFor <= 2 * WINDOW + 150, `visible for ${visibleFor} ms`)
    assert.ok(loop.maxDelayMs() < THRESHOLD)
  } finally {
    loop.close()
  }
})

// Both regression tests use a timer of the window's duration, which Node runs in the same
// batch as the monitor's window timer (same list, insertion order): deterministic, no sleeps
// tuned to the sampler.

test('a block just before the window timer runs is not lost (regression: reset() drops the pending sample)', async () => {
  // Created first, so it runs first: the window timer then runs right after the block,
  // before the sampler has recorded it. A reset at that moment forgets the block.
  const blocked = new Promise<void>((resolve) => setTimeout(() => {
    blockFor(300)
    resolve()
  }, WINDOW))
  const loop = createLoopMonitor({ thresholdMs: THRESHOLD, windowMs: WINDOW, resolutionMs: RESOLUTION })
  try {
    await blocked
    await sleep(5 * RESOLUTION)
    assert.equal(loop.healthy(), false, `maxDelayMs=${loop.maxDelayMs()}`)
    assert.ok(loop.maxDelayMs() >= 250, `maxDelayMs=${loop.maxDelayMs()}`)
  } finally {
    loop.close()
  }
})

test('a block just after a window reset is not lost (regression: reset() also blinds the next sample)', async () => {
  const loop = createLoopMonitor({ thresholdMs: THRESHOLD, windowMs: WINDOW, resolutionMs: RESOLUTION })
  try {
    // Created after the monitor, so it runs right after its reset(), before the sampler
    // ticks again: the histogram alone records no interval spanning the block.
    await new Promise<void>((resolve) => setTimeout(() => {
      blockFor(300)
      resolve()
    }, WINDOW))
    await sleep(3 * RESOLUTION)
    assert.equal(loop.healthy(), false, `maxDelayMs=${loop.maxDelayMs()}`)
    assert.ok(loop.maxDelayMs() >= 250, `maxDelayMs=${loop.maxDelayMs()}`)
  } finally {
    loop.close()
  }
})

test('a block right after start is not lost (enable() has the same blind first interval)', async () => {
  const loop = createLoopMonitor({ thresholdMs: THRESHOLD, windowMs: WINDOW, resolutionMs: RESOLUTION })
  try {
    blockFor(300)
    await sleep(3 * RESOLUTION)
    assert.ok(loop.maxDelayMs() >= 250, `maxDelayMs=${loop.maxDelayMs()}`)
  } finally {
    loop.close()
  }
})

test('close() stops sampling and leaves nothing that keeps the process alive', async () => {
  const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = refTimers()
  const loop = createLoopMonitor({ thresholdMs: THRESHOLD, windowMs: WINDOW, resolutionMs: RESOLUTION })
  assert.equal(refTimers(), before, 'the window timer is unref\'d')
  await sleep(30)
  loop.close()
  loop.close() // idempotent
  const frozen = loop.maxDelayMs()
  blockFor(150)
  await sleep(3 * RESOLUTION)
  assert.equal(loop.maxDelayMs(), frozen, 'no sampling after close()')
})

test('options are validated', () => {
  assert.throws(() => createLoopMonitor({ thresholdMs: 0 }), RangeError)
  assert.throws(() => createLoopMonitor({ thresholdMs: 100, resolutionMs: 0 }), RangeError)
  assert.throws(() => createLoopMonitor({ thresholdMs: 100, resolutionMs: 2.5 }), RangeError)
  assert.throws(() => createLoopMonitor({ thresholdMs: 100, windowMs: 10, resolutionMs: 20 }), RangeError)
})
