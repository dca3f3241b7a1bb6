/**
 * Poll a condition until it holds, or fail after a bound with a message that says what was
 * awaited. The one polling loop for tests, the bench and any tool that waits for something
 * with no event to wait on (a port to accept, a log line to appear). Where an event exists,
 * wait on it instead: key loading has `keys.settled()` (keys/types.ts).
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'

export interface WaitForOptions {
  /**
   * What is awaited, for the timeout message ("timed out after 5000 ms waiting for <what>").
   * A function is called only on timeout, so the message can carry the state at that moment.
   */
  readonly what: string | (() => string)
  /** ms; default 5 000. Measured on the monotonic clock. */
  readonly timeoutMs?: number
  /** ms between checks; default 20. */
  readonly intervalMs?: number
}

type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>

/**
 * Resolve with the first truthy value `condition` returns (sync or async), checked at once and
 * then every `intervalMs`; reject with `timed out after <timeoutMs> ms waiting for <what>` once
 * `timeoutMs` has passed. A condition that throws (or rejects) ends the wait with that error.
 *
 * @example
 * ```ts
 * await waitFor(() => upstream.requests.length === 2, { what: 'both requests at the upstream' })
 * const started = await waitFor(() => logs().find((l) => l.event === 'server.started'), { what: 'server.started', timeoutMs: 15_000 })
 * ```
 */
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitForOptions): Promise<Truthy<T>> {
  const timeoutMs = options.timeoutMs ?? 5_000
  const intervalMs = options.intervalMs ?? 20
  const t0 = performance.now()
  for (;;) {
    const value = await condition()
    if (value) return value as Truthy<T>
    if (performance.now() - t0 > timeoutMs) {
      const what = typeof options.what === 'function' ? options.what() : options.what
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await sleep(intervalMs)
  }
}
