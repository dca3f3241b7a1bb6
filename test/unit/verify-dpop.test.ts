/**
 * The pieces of verify/dpop.ts and verify/dpop-replay.ts that HTTP cannot reach precisely:
 * the RFC 7638 thumbprint against the RFC's own example, htu normalisation, and the replay
 * cache's bound (full is a refusal, never an eviction of a live entry).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { jwkThumbprint, normaliseHtu } from '../../src/verify/dpop.ts'
import { createReplayCache } from '../../src/verify/dpop-replay.ts'

test('jwkThumbprint: RFC 7638 §3.1 example; extra members ignored; unknown kty or a missing member is no thumbprint', () => {
  const jwk = {
    kty: 'RSA',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    e: 'AQAB',
    alg: 'RS256',
    kid: '2011-04-29',
  }
  assert.equal(jwkThumbprint(jwk), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')
  assert.equal(jwkThumbprint({ kty: 'oct', k: 'AAAA' }), undefined)
  assert.equal(jwkThumbprint({ kty: 'EC', crv: 'P-256', x: 'AAAA' }), undefined)
})

test('normaliseHtu: case, default port and dot segments normalised; query and fragment dropped; only http(s)', () => {
  assert.equal(normaliseHtu('HTTPS://API.Example.com:443/a/./b/../c?x=1#f'), 'https://api.example.com/a/c')
  assert.equal(normaliseHtu('http://127.0.0.1:8080/api/x'), 'http://127.0.0.1:8080/api/x')
  assert.equal(normaliseHtu('ftp://example.com/x'), undefined)
  assert.equal(normaliseHtu('not a uri'), undefined)
})

test('replay cache: a jti is refused while remembered, per key; full refuses instead of evicting a live entry; expired entries make room', () => {
  const c = createReplayCache(2)
  assert.equal(c.check('k1', 'a', 0, 1000), 'fresh')
  assert.equal(c.check('k1', 'a', 10, 1000), 'replay')
  assert.equal(c.check('k2', 'a', 20, 1000), 'fresh')
  assert.equal(c.check('k1', 'b', 30, 1000), 'full')
  assert.equal(c.size, 2)
  assert.deepEqual({ ...c.stats }, { replays: 1, full: 1 })
  // After the first entry expires, there is room again, and its jti may be reused.
  assert.equal(c.check('k1', 'b', 1000, 1000), 'fresh')
  assert.equal(c.check('k1', 'a', 1001, 1000), 'full')
  assert.equal(c.check('k1', 'a', 1020, 1000), 'fresh')
})
