/**
 * src/stop-signals.ts: which signal, with which terminal, waits for shutdown.delay (issue #14
 * §6). The terminal is injected here, so every combination is decided; the real pseudo-terminal
 * and the real signals are test/integration/operations.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { INTERACTIVE_DRAIN_MS, stopPlan } from '../../src/stop-signals.ts'
import type { StopSignal, Terminal } from '../../src/stop-signals.ts'

const shutdown = { delay: 5000, timeout: 25_000 }
const none: Terminal = { stdinIsTTY: false, stdoutIsTTY: false }

test('SIGTERM keeps shutdown.delay and shutdown.timeout, terminal or not (Kubernetes sends it)', () => {
  for (const terminal of [none, { stdinIsTTY: true, stdoutIsTTY: true }, { stdinIsTTY: true, stdoutIsTTY: false }]) {
    assert.deepEqual(stopPlan('SIGTERM', terminal, shutdown), { signal: 'SIGTERM', interactive: false, delay: 5000, timeout: 25_000 })
  }
})

test('SIGINT with stdin or stdout a TTY (Ctrl-C) skips the delay and drains briefly', () => {
  for (const terminal of [{ stdinIsTTY: true, stdoutIsTTY: true }, { stdinIsTTY: true, stdoutIsTTY: false }, { stdinIsTTY: false, stdoutIsTTY: true }]) {
    assert.deepEqual(stopPlan('SIGINT', terminal, shutdown), { signal: 'SIGINT', interactive: true, delay: 0, timeout: INTERACTIVE_DRAIN_MS }, JSON.stringify(terminal))
  }
  assert.equal(INTERACTIVE_DRAIN_MS, 2000)
})

test('a shutdown.timeout shorter than the brief drain is kept', () => {
  assert.equal(stopPlan('SIGINT', { stdinIsTTY: true, stdoutIsTTY: true }, { delay: 5000, timeout: 300 }).timeout, 300)
})

test('SIGINT without a terminal (kill -INT, a process manager) is a full shutdown, like SIGTERM', () => {
  const signals: StopSignal[] = ['SIGINT', 'SIGTERM']
  for (const signal of signals) assert.deepEqual(stopPlan(signal, none, shutdown), { signal, interactive: false, delay: 5000, timeout: 25_000 })
})
