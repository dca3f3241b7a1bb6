import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { waitFor } from '../../src/wait-for.ts'

describe('waitFor', () => {
  it('checks at once: a condition that already holds costs no interval', async () => {
    const t0 = performance.now()
    assert.equal(await waitFor(() => true, { what: 'true', intervalMs: 1_000 }), true)
    assert.ok(performance.now() - t0 < 500)
  })

  it('resolves with the first truthy value, sync or async', async () => {
    let n = 0
    assert.equal(await waitFor(() => (++n >= 3 ? `after ${n}` : undefined), { what: 'three checks', intervalMs: 1 }), 'after 3')
    let m = 0
    assert.deepEqual(await waitFor(async () => (++m === 2 ? { m } : null), { what: 'two checks', intervalMs: 1 }), { m: 2 })
  })

  it('rejects after timeoutMs with a message naming what it waited for; a function is asked only then', async () => {
    let asked = 0
    let checks = 0
    const what = (): string => `the answer (asked ${++asked}x, ${checks} checks)`
    await assert.rejects(waitFor(() => void checks++, { what, timeoutMs: 60, intervalMs: 10 }), (err: unknown) => {
      assert.ok(err instanceof Error)
      assert.match(err.message, /^timed out after 60 ms waiting for the answer \(asked 1x, \d+ checks\)$/)
      return true
    })
    assert.equal(asked, 1)
    assert.ok(checks >= 3 && checks <= 10, `${checks} checks in 60 ms at a 10 ms interval`)
    await assert.rejects(waitFor(() => 0, { what: 'zero to be truthy', timeoutMs: 0 }), /^Error: timed out after 0 ms waiting for zero to be truthy$/)
  })

  it('a condition that throws or rejects ends the wait with its error', async () => {
    await assert.rejects(waitFor(() => {
      throw new Error('child exited')
    }, { what: 'never' }), /child exited/)
    await assert.rejects(waitFor(() => Promise.reject(new Error('socket closed')), { what: 'never' }), /socket closed/)
  })
})
