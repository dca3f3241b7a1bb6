/**
 * How `run` stops on a signal (issue #5; Ctrl-C, issue #14 §6).
 *
 * SIGTERM is how Kubernetes stops a container: readiness fails at once and the sidecar keeps
 * serving for `shutdown.delay` while the endpoints controller and every kube-proxy catch up,
 * then drains in-flight requests for at most `shutdown.timeout`.
 *
 * Ctrl-C at a terminal (SIGINT while stdin or stdout is a TTY) is a person who wants the prompt
 * back. No endpoint routes traffic to a process in a terminal, so the delay would only make
 * them wait: it is skipped, and in-flight requests still get a brief drain
 * (`INTERACTIVE_DRAIN_MS`, or `shutdown.timeout` if shorter). SIGINT without a terminal (a
 * process manager, `kill -INT`, a container's STOPSIGNAL) keeps the full shutdown: nothing
 * says that traffic has stopped arriving. In every case a second signal exits at once.
 */
import type { ShutdownConfig } from './config/types.ts'

export type StopSignal = 'SIGTERM' | 'SIGINT'

/** What a stop waits for, in ms; `interactive` when it is a Ctrl-C at a terminal. */
export interface StopPlan {
  readonly signal: StopSignal
  readonly interactive: boolean
  readonly delay: number
  readonly timeout: number
}

/** Whether the process has a terminal: `process.stdin.isTTY`, `process.stdout.isTTY`. */
export interface Terminal {
  readonly stdinIsTTY: boolean
  readonly stdoutIsTTY: boolean
}

/** The longest drain after a Ctrl-C: long enough for a request in flight, short for a person. */
export const INTERACTIVE_DRAIN_MS = 2000

/**
 * The shutdown a signal asks for.
 *
 * @example
 * stopPlan('SIGINT', { stdinIsTTY: true, stdoutIsTTY: true }, { delay: 5000, timeout: 25000 })
 * // → { signal: 'SIGINT', interactive: true, delay: 0, timeout: 2000 }
 */
export function stopPlan(signal: StopSignal, terminal: Terminal, shutdown: ShutdownConfig): StopPlan {
  const interactive = signal === 'SIGINT' && (terminal.stdinIsTTY || terminal.stdoutIsTTY)
  if (!interactive) return { signal, interactive, delay: shutdown.delay, timeout: shutdown.timeout }
  return { signal, interactive, delay: 0, timeout: Math.min(shutdown.timeout, INTERACTIVE_DRAIN_MS) }
}

/** The terminal of this process. (`isTTY` is `undefined`, not false, on a pipe or a file.) */
export function processTerminal(): Terminal {
  return { stdinIsTTY: process.stdin.isTTY === true, stdoutIsTTY: process.stdout.isTTY === true }
}

/**
 * SIGTERM/SIGINT run `stop` (the graceful shutdown) and exit 0, or 1 if it failed; a second
 * signal exits at once with 130.
 *
 * @example
 * onStopSignals((signal) => app.shutdown(stopPlan(signal, processTerminal(), startConfig.shutdown)))
 */
export function onStopSignals(stop: (signal: StopSignal) => Promise<void>): void {
  let stopping = false
  const handler = (signal: StopSignal): void => {
    if (stopping) process.exit(130)
    stopping = true
    process.stderr.write(`${signal}: shutting down\n`)
    stop(signal).then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
}
