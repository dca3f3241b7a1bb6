/**
 * Liveness from the event loop. A sidecar whose loop is blocked (a catastrophic regex, a
 * huge synchronous JSON parse, a CPU-starved container) still accepts TCP connections, so
 * only the loop's own delay tells that every request through it is stalling.
 *
 * `perf_hooks.monitorEventLoopDelay` samples the delay with a libuv timer every
 * `resolutionMs`, recording the time between two ticks only when the later one runs, i.e.
 * after a block is over. It has no windowed maximum, so each window we keep its max as the
 * previous window's and reset it: a block stays visible for one to two windows after it ended.
 * `reset()` has two traps (seen on Node 20, pinned by the regression tests):
 * 1. a sample still pending is lost: a window timer that fell due during a block can run
 *    right after it, before the sampler's tick. A late window timer therefore does not
 *    rotate: it retries after two sampler ticks, once the block is recorded;
 * 2. it also forgets the time of the last tick, so the sampler records nothing until its
 *    second tick after the reset: a block starting in between (e.g. another callback in the
 *    same timer batch) would vanish. A one-shot probe timer, due one resolution after the
 *    reset, measures its own lateness to cover that interval.
 *
 * Choose `windowMs` at least the probe period, so the next probe sees a block that ended
 * between two probes. No probe can see a block in progress: it is served on the same loop,
 * once the block is over.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'

export interface LoopMonitorOptions {
  /** Delay (ms) beyond which the loop counts as blocked. */
  readonly thresholdMs: number
  /** Window length in ms (default 10_000); a block stays visible for one to two windows. */
  readonly windowMs?: number
  /** Sampling interval in ms (default 20): finer costs more wake-ups, coarser misses short blocks. */
  readonly resolutionMs?: number
}

export interface LoopMonitor {
  /** ms of the worst event-loop delay in the last window (one to two windows, see above). */
  readonly maxDelayMs: () => number
  /** false when the loop has been blocked beyond the threshold recently */
  healthy(): boolean
  /** Stops sampling and the window timer. */
  close(): void
}

/**
 * @example
 * const loop = createLoopMonitor({ thresholdMs: 1_000 })
 * admin.get('/healthz', (_req, reply) =>
 *   reply.code(loop.healthy() ? 200 : 503).send({ eventLoopDelayMs: loop.maxDelayMs() }))
 * // on shutdown
 * loop.close()
 */
export function createLoopMonitor(options: LoopMonitorOptions): LoopMonitor {
  const { thresholdMs, windowMs = 10_000, resolutionMs = 20 } = options
  if (!Number.isFinite(thresholdMs) || thresholdMs <= 0) throw new RangeError(`thresholdMs must be a positive number, got ${thresholdMs}`)
  // monitorEventLoopDelay itself requires an integer resolution ≥ 1.
  if (!Number.isSafeInteger(resolutionMs) || resolutionMs < 1) throw new RangeError(`resolutionMs must be a positive integer, got ${resolutionMs}`)
  if (!Number.isFinite(windowMs) || windowMs <= resolutionMs) {
    throw new RangeError(`windowMs must be a number greater than resolutionMs (${resolutionMs}), got ${windowMs}`)
  }

  const histogram = monitorEventLoopDelay({ resolution: resolutionMs })
  histogram.enable()
  /** Worst delay (ms) of the last complete window. */
  let previousMs = 0
  /** Delay (ms) the probe measured across the interval the last reset() made the histogram skip. */
  let gapMs = 0
  let windowStart = 0
  let due = 0
  let windowTimer: NodeJS.Timeout | undefined
  let probeTimer: NodeJS.Timeout | undefined
  let closed = false
  startWindow(performance.now())

  function currentMs(): number {
    // The histogram records the whole interval between two sampler ticks (ns), not the
    // delay: an idle loop reads `resolutionMs`. An empty histogram reads 0.
    return Math.max(histogram.max / 1e6 - resolutionMs, gapMs, 0)
  }

  function startWindow(t: number): void {
    histogram.reset()
    gapMs = 0
    windowStart = t
    // Trap 2: measure the interval the histogram now skips (after enable() too, which has
    // the same blind first interval).
    probeTimer = unrefd(setTimeout(probe, resolutionMs))
    due = t + windowMs
    windowTimer = unrefd(setTimeout(rotate, windowMs))
  }

  function rotate(): void {
    const t = performance.now()
    if (t - due > resolutionMs) {
      // Trap 1: we ran late, so the loop was just blocked and the sampler may not have
      // recorded it yet. Its tick is overdue now, so it runs before this retry.
      due = t + 2 * resolutionMs
      windowTimer = unrefd(setTimeout(rotate, 2 * resolutionMs))
      return
    }
    previousMs = currentMs()
    startWindow(t)
  }

  function probe(): void {
    probeTimer = undefined
    gapMs = Math.max(gapMs, performance.now() - windowStart - resolutionMs)
  }

  function maxDelayMs(): number {
    return Math.max(previousMs, currentMs())
  }

  return {
    maxDelayMs,
    healthy: () => maxDelayMs() <= thresholdMs,
    close() {
      if (closed) return
      closed = true
      if (windowTimer !== undefined) clearTimeout(windowTimer)
      if (probeTimer !== undefined) clearTimeout(probeTimer)
      histogram.disable()
    },
  }
}

/** Monitoring must never keep the process alive on its own (the sampler's own timer is unref'd too). */
function unrefd(t: NodeJS.Timeout): NodeJS.Timeout {
  t.unref()
  return t
}
