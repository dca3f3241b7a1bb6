import { test } from 'node:test'
import assert from 'node:assert/strict'
import { normalizePath } from '../../src/policy/normalize.ts'

const cases: Array<[string, string]> = [
  ['/api/orders/1', '/api/orders/1'],
  ['/a.b/c..d/.well-known', '/a.b/c..d/.well-known'],
  ['/%61dmin/%7Eusers/a%2Db', '/admin/~users/a-b'],
  ['/files/a%20b%3f', '/files/a%20b%3F'],
  ['/public/../admin', '/admin'],
  ['/public/%2e%2e/admin', '/admin'],
  ['/public/%2E./admin', '/admin'],
  ['/a/./b/.', '/a/b/'],
  ['/a/b/..', '/a/'],
  ['/../../etc/passwd', '/etc/passwd'],
  ['//admin', '/admin'],
  ['/a///b//', '/a/b/'],
  ['/admin;x', '/admin;x'],
  ['/', '/'],
]
for (const [input, expected] of cases) {
  test(`normalises ${input} to ${expected}`, () => {
    assert.deepEqual(normalizePath(input), { ok: true, path: expected })
  })
}

test('refuses what it cannot normalise without guessing (400)', () => {
  for (const p of ['/a%2Fb', '/a%2fb', '/a%5cb', '/a\\b', '/a%00b', '/a%0Ab', '/a%7Fb', '/bad%zz', '/trailing%4', 'relative', '/public/..%2fadmin']) {
    const r = normalizePath(p)
    assert.equal(r.ok, false, p)
  }
})

test('an ordinary path is returned as the same string (no allocation on the hot path)', () => {
  const p = '/api/orders/42'
  const r = normalizePath(p)
  assert.ok(r.ok && r.path === p)
})
