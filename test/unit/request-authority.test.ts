import { test } from 'node:test'
import assert from 'node:assert/strict'
import { http2Authority } from '../../src/request/authority.ts'

type Headers = Record<string, string | string[] | undefined>

/** Node's HTTP/2 header object and rawHeaders for these fields (a repeated host keeps the first, as Node does). */
function request(fields: ReadonlyArray<readonly [string, string]>): { headers: Headers; raw: string[] } {
  const headers: Headers = {}
  for (const [n, v] of fields) headers[n] ??= v
  return { headers, raw: fields.flat() }
}

test('http2Authority: :authority becomes host; host alone is the authority (RFC 9113 §8.3.1)', () => {
  const a = request([[':method', 'GET'], [':authority', 'api.example:8443'], [':path', '/']])
  assert.equal(http2Authority(a.headers, a.raw), undefined)
  assert.equal(a.headers.host, 'api.example:8443')
  const b = request([[':method', 'GET'], [':path', '/'], ['host', 'api.example']])
  assert.equal(http2Authority(b.headers, b.raw), undefined)
  assert.equal(b.headers.host, 'api.example')
  // The same authority in both, its case aside: one authority, the :authority's spelling.
  const c = request([[':authority', 'API.example'], ['host', 'api.EXAMPLE']])
  assert.equal(http2Authority(c.headers, c.raw), undefined)
  assert.equal(c.headers.host, 'API.example')
})

test('http2Authority refuses what could be read two ways, and leaves host alone then', () => {
  const cases: Array<[string, ReadonlyArray<readonly [string, string]>, RegExp]> = [
    ['host differs from :authority', [[':authority', 'api.example'], ['host', 'evil.example']], /differs from :authority/],
    ['a port only in one', [[':authority', 'api.example:443'], ['host', 'api.example']], /differs from :authority/],
    ['two hosts (the second differs)', [[':authority', 'api.example'], ['host', 'api.example'], ['host', 'evil.example']], /more than one host/],
    ['two hosts, no :authority', [['host', 'api.example'], ['host', 'evil.example']], /more than one host/],
    ['neither', [[':method', 'GET'], [':path', '/']], /without :authority or host/],
    ['an empty :authority and no host', [[':authority', '']], /without :authority or host/],
    ['userinfo', [[':authority', 'user@api.example']], /userinfo/],
  ]
  for (const [name, fields, why] of cases) {
    const r = request(fields)
    const before = r.headers.host
    assert.match(http2Authority(r.headers, r.raw) ?? 'accepted', why, name)
    assert.equal(r.headers.host, before, name)
  }
})
