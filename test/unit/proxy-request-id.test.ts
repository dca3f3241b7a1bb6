/**
 * The request id (src/proxy/request-id.ts): a client's X-Request-Id kept when it is a bounded
 * RFC 9110 token, else a generated one, unique in the process and across processes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { MAX_COUNTER, MAX_REQUEST_ID_LENGTH, createRequestIds, isValidRequestId } from '../../src/proxy/request-id.ts'

const req = (id?: string | string[]): IncomingMessage => ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as unknown as IncomingMessage

test("a client's id is kept when it is 1 to 128 token characters", () => {
  for (const ok of ['abc', '0f8fad5b-d9cb-469f-a165-70867728950e', '01ARZ3NDEKTSV4RRFFQ69G5FAV', "!#$%&'*+-.^_`|~", 'x'.repeat(MAX_REQUEST_ID_LENGTH)]) {
    assert.equal(isValidRequestId(ok), true, ok)
    assert.equal(createRequestIds()(req(ok)), ok)
  }
})

test('anything else is replaced, not repaired: empty, too long, spaces, quotes, separators, control bytes, non-ASCII, two headers joined', () => {
  const ids = createRequestIds({ randomPrefix: () => 'p' })
  for (const bad of ['', 'x'.repeat(MAX_REQUEST_ID_LENGTH + 1), 'a b', 'a, b', '"a"', 'a/b', 'a:b', 'a=b', 'a\u0001', 'a\u007f', 'é', 'a\tb']) {
    assert.equal(isValidRequestId(bad), false, JSON.stringify(bad))
    assert.match(ids(req(bad)), /^p-[0-9a-z]+$/, JSON.stringify(bad))
  }
  // Node joins repeated unknown headers with ", " (a space: refused); an array is never kept.
  assert.match(ids(req(['a', 'b'])), /^p-[0-9a-z]+$/)
})

test('generated ids: a random prefix per process and a counter; a new prefix when the counter wraps', () => {
  const a = createRequestIds()
  const b = createRequestIds()
  const first = a(req())
  assert.match(first, /^[0-9a-f]{12}-1$/)
  assert.notEqual(first.split('-')[0], b(req()).split('-')[0], 'two processes, two prefixes')
  const seen = new Set([first])
  for (let i = 0; i < 10_000; i++) seen.add(a(req()))
  assert.equal(seen.size, 10_001)

  // Near the wrap (2^31 - 1 ids is too many to draw here): the last counter value, then a new prefix from 1.
  let draws = 0
  const wrapping = createRequestIds({ randomPrefix: () => `p${++draws}`, counterStart: MAX_COUNTER - 1 })
  assert.deepEqual([wrapping(req()), wrapping(req()), wrapping(req())], [`p1-${MAX_COUNTER.toString(36)}`, 'p2-1', 'p2-2'])
})
