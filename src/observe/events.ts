/**
 * Security events at a bounded rate. A denied request is worth a log line, but a client
 * that sends a million bad tokens must not turn into a million lines: that fills disks,
 * drowns the lines that matter and costs the sidecar the CPU it needs to keep denying.
 * Each key gets a budget of lines per interval; what is over budget is counted, and one
 * `log.suppressed` line per key and interval says how much was dropped. Metrics still
 * count every request (observe/metrics.ts): the log is for examples, not for totals.
 *
 * Memory stays bounded with attacker-controlled traffic in two ways:
 * 1. Callers build keys ONLY from closed sets: event name, reason code
 *    (verify/reasons.ts), configured route and issuer names, e.g.
 *    `auth.denied:expired:default`. Never a kid, an `iss`, a path, a subject or an IP:
 *    those come from the request, and each distinct value would be a new key.
 * 2. As a backstop against a caller that breaks rule 1, at most `maxKeys` keys are tracked;
 *    lines of further keys share the budget of one {@link OVERFLOW_KEY}, and a
 *    `log.keys_overflow` warning (once per interval) points at the bug.
 * Keys idle for a whole interval are forgotten, so the table holds the keys in use now.
 */
import { performance } from 'node:perf_hooks'
import type { Logger } from './log.ts'

export type RateLimitedLevel = 'info' | 'warn' | 'error'

/** The budget key that lines of keys beyond `maxKeys` share. */
export const OVERFLOW_KEY = '(overflow)'

/** Default cap on tracked keys: far above the closed sets' product, far below a memory problem. */
const DEFAULT_MAX_KEYS = 1000

export interface RateLimitedLogOptions {
  /** Lines each key may write per interval (e.g. 10). 0 writes none but still summarises. */
  readonly perKeyPerInterval: number
  /** Interval length in ms (e.g. 10_000). */
  readonly intervalMs: number
  /** Keys tracked at once (default {@link DEFAULT_MAX_KEYS}). */
  readonly maxKeys?: number
  /** Monotonic ms clock (default `performance.now`); injected so tests control time. */
  readonly now?: () => number
  /** One-shot timer (default an unref'd `setTimeout`); injected so tests drive the interval. */
  readonly schedule?: (fn: () => void, ms: number) => { cancel(): void }
}

export interface RateLimitedLog {
  /**
   * Logs `fields` (which must carry a stable `event` name) at `level`, unless this key
   * (e.g. `auth.denied:expired:default`) has used its budget in the current interval; then
   * it is counted as suppressed. Build `key` from closed sets only (see the module comment).
   * A level the logger has disabled costs nothing and uses no budget.
   */
  log(level: RateLimitedLevel, key: string, fields: Readonly<Record<string, unknown>> & { readonly event: string }, msg: string): void
  /**
   * Ends the current interval: emits, per key with suppressed lines, one summary line
   * `{event: 'log.suppressed', key, suppressed: n, intervalMs}` (at the highest level that
   * was suppressed) and resets every budget. Its own unref'd timer calls it every interval.
   */
  flush(): void
  /** Stops the timer and flushes. Later calls still log within budget (shutdown logs are wanted). */
  close(): void
}

/** Per-key counters, mutated in place: the hot path allocates nothing once a key is known. */
interface KeyState {
  logged: number
  suppressed: number
  /** Highest level among the suppressed lines (0 none, 1 info, 2 warn, 3 error). */
  worst: number
}

/**
 * @example
 * const events = createRateLimitedLog(log, { perKeyPerInterval: 10, intervalMs: 10_000 })
 * // key from closed sets only: event, reason code, configured route name
 * events.log('info', `auth.denied:${reason}:${route.name}`, { event: 'auth.denied', reason, route: route.name }, 'request denied')
 * // on shutdown: stop the timer and write the last summaries
 * events.close()
 */
export function createRateLimitedLog(log: Logger, options: RateLimitedLogOptions): RateLimitedLog {
  const { perKeyPerInterval, intervalMs } = options
  const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
  if (!Number.isSafeInteger(perKeyPerInterval) || perKeyPerInterval < 0) {
    throw new RangeError(`perKeyPerInterval must be a non-negative integer, got ${perKeyPerInterval}`)
  }
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`intervalMs must be a positive number, got ${intervalMs}`)
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError(`maxKeys must be a positive integer, got ${maxKeys}`)
  // Monotonic by default: a wall-clock step back would freeze every budget for the length
  // of the step, a step forward would hand out fresh budgets early.
  const now = options.now ?? (() => performance.now())
  const schedule = options.schedule ?? defaultSchedule

  const states = new Map<string, KeyState>()
  // Kept outside the map so the map never holds more than maxKeys entries.
  const overflow: KeyState = { logged: 0, suppressed: 0, worst: 0 }
  let overflowWarned = false
  let windowStart = now()
  let closed = false
  let timer = schedule(tick, intervalMs)

  function tick(): void {
    if (closed) return
    const t = now()
    // The hot path may have rolled the interval already (the timer ran late, or flush() was
    // called): wait out the rest of the current interval instead of cutting it short, which
    // would let a key log twice its budget within intervalMs.
    const left = windowStart + intervalMs - t
    if (left > 0) {
      timer = schedule(tick, left)
      return
    }
    roll(t)
    timer = schedule(tick, intervalMs)
  }

  function roll(t: number): void {
    windowStart = t
    overflowWarned = false
    for (const [key, s] of states) {
      if (s.suppressed > 0) summarise(key, s)
      else if (s.logged === 0) {
        // Idle for a whole interval: forget it, so the cap counts keys in use, not keys ever seen.
        // (Deleting the entry being visited is safe in a Map iteration.)
        states.delete(key)
        continue
      }
      s.logged = 0
      s.suppressed = 0
      s.worst = 0
    }
    if (overflow.suppressed > 0) summarise(OVERFLOW_KEY, overflow)
    overflow.logged = 0
    overflow.suppressed = 0
    overflow.worst = 0
  }

  function summarise(key: string, s: KeyState): void {
    // At the level of what was dropped: an error flood must not be reported at info, and an
    // info flood must not page anyone through a warn.
    log[levelName(s.worst)]({ event: 'log.suppressed', key, suppressed: s.suppressed, intervalMs }, 'log lines suppressed by rate limit')
  }

  return {
    log(level, key, fields, msg) {
      if (!log.isLevelEnabled(level)) return
      const t = now()
      // Roll here too, not only on the timer: a busy or blocked loop delays timers, and the
      // budget must not stay spent (hiding new events) for however long that lasts.
      if (t - windowStart >= intervalMs) roll(t)
      let s = states.get(key)
      if (s === undefined) {
        if (states.size < maxKeys) {
          s = { logged: 0, suppressed: 0, worst: 0 }
          states.set(key, s)
        } else {
          s = overflow
          if (!overflowWarned) {
            overflowWarned = true
            log.warn({ event: 'log.keys_overflow', maxKeys, intervalMs }, 'rate-limited log keys exceed maxKeys: a key is built from an open set')
          }
        }
      }
      if (s.logged < perKeyPerInterval) {
        s.logged++
        log[level](fields, msg)
        return
      }
      s.suppressed++
      const rank = levelRank(level)
      if (rank > s.worst) s.worst = rank
    },
    flush() {
      roll(now())
    },
    close() {
      if (closed) return
      closed = true
      timer.cancel()
      roll(now())
    },
  }
}

function levelRank(level: RateLimitedLevel): number {
  switch (level) {
    case 'info': return 1
    case 'warn': return 2
    case 'error': return 3
  }
}

function levelName(rank: number): RateLimitedLevel {
  return rank >= 3 ? 'error' : rank === 2 ? 'warn' : 'info'
}

function defaultSchedule(fn: () => void, ms: number): { cancel(): void } {
  const t = setTimeout(fn, ms)
  // The summary timer must never keep the process alive on its own.
  t.unref()
  return { cancel: () => clearTimeout(t) }
}
