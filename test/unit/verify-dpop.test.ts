/**
 * The pieces of verify/dpop.ts and verify/dpop-replay.ts that HTTP cannot reach precisely:
 * the RFC 7638 thumbprint against the RFC's own example, htu normalisation, the replay
 * cache's bound (full is a refusal, never an eviction of a live entry), and the trace that
 * names each check (what `jwt-sidecar verify` shows).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SignJWT } from 'jose'
import { checkProof, jwkThumbprint, normaliseHtu } from '../../src/verify/dpop.ts'
import type { ProofCheck } from '../../src/verify/dpop.ts'
import { createReplayCache } from '../../src/verify/dpop-replay.ts'
import { dpopClient, dpopProof } from '../helpers/dpop.ts'

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

test('checkProof trace: every check in order when the proof is good; a refused proof stops at the check that refused it, with the same result as without a trace', async () => {
  const client = await dpopClient()
  const token = 'h.p.s'
  const uri = 'http://api.example/orders'
  const now = Date.now()
  const ctx = { method: 'GET', uri, accessToken: token, jkt: client.jkt }
  const opts = (replay = createReplayCache()) => ({ maxAge: 60_000, clockSkew: 30_000, now, replay })
  const run = (proof: string, c = ctx, o = opts()) => {
    const events: Array<[ProofCheck, boolean, string]> = []
    const traced = checkProof(proof, c, o, (check, ok, detail) => events.push([check, ok, detail]))
    return { traced, events }
  }

  const good = run(await dpopProof(client, token, uri))
  assert.deepEqual(good.traced, { ok: true, jkt: client.jkt })
  assert.deepEqual(good.events.map(([c, ok]) => [c, ok]), ['jws', 'typ', 'alg', 'jwk', 'signature', 'jti', 'htm', 'htu', 'iat', 'ath', 'jkt', 'replay'].map((c) => [c, true]))

  const hs256 = await new SignJWT({ htm: 'GET', htu: uri, iat: Math.floor(now / 1000), jti: 'j' }).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: client.jwk }).sign(new Uint8Array(32))
  const other = await dpopClient()
  const cases: Array<[ProofCheck, string | (() => Promise<string>), typeof ctx?]> = [
    ['jws', 'not-a-jws'],
    ['typ', () => dpopProof(client, token, uri, { typ: 'JWT' })],
    ['alg', async () => hs256],
    ['jwk', () => dpopProof(client, token, uri, { jwk: { ...client.jwk, d: 'AAAA' } })],
    ['htm', () => dpopProof(client, token, uri, { htm: 'POST' })],
    ['htu', () => dpopProof(client, token, uri, { htu: 'http://api.example/other' })],
    ['iat', () => dpopProof(client, token, uri, { iat: Math.floor(now / 1000) - 600 })],
    ['ath', () => dpopProof(client, token, uri, { ath: 'x' })],
    ['jkt', () => dpopProof(client, token, uri), { ...ctx, jkt: other.jkt }],
  ]
  for (const [check, make, c] of cases) {
    const proof = typeof make === 'string' ? make : await make()
    const { traced, events } = run(proof, c)
    assert.equal(traced.ok, false, check)
    assert.deepEqual(traced, checkProof(proof, c ?? ctx, opts()), `${check}: the trace changes nothing`)
    assert.deepEqual(events.at(-1)?.slice(0, 2), [check, false], check)
    assert.ok(events.slice(0, -1).every(([, ok]) => ok), `${check}: only the last check failed`)
  }

  // Replay: the second use of one proof stops at the replay check, every other check passed.
  const replay = createReplayCache()
  const once = await dpopProof(client, token, uri)
  assert.equal(run(once, ctx, opts(replay)).traced.ok, true)
  const again = run(once, ctx, opts(replay))
  assert.deepEqual(again.traced, { ok: false, reason: 'dpop_replay', detail: 'jti already used within the window' })
  assert.deepEqual(again.events.at(-1)?.slice(0, 2), ['replay', false])
  assert.equal(again.events.length, 12)
})

test('a proof is remembered until it could no longer be accepted (iat + proofMaxAge + clockSkew), then makes room', async () => {
  const client = await dpopClient()
  const token = 'h.p.s'
  const uri = 'http://api.example/orders'
  const t0 = 1_800_000_000_000
  const ctx = { method: 'GET', uri, accessToken: token, jkt: client.jkt }
  const replay = createReplayCache(10)
  const opts = (now: number) => ({ maxAge: 60_000, clockSkew: 5_000, now, replay })
  // iat 50 s ago: acceptable for 15 s more (60 + 5 − 50), so remembered 15 s.
  const old = await dpopProof(client, token, uri, { iat: (t0 - 50_000) / 1000 })
  assert.equal(checkProof(old, ctx, opts(t0)).ok, true)
  const again = checkProof(old, ctx, opts(t0 + 14_000))
  assert.ok(!again.ok && again.reason === 'dpop_replay', 'replayed within its window')
  const later = checkProof(old, ctx, opts(t0 + 15_001))
  assert.ok(!later.ok && later.reason === 'invalid_dpop_proof' && /older/.test(later.detail), 'past its window the iat check refuses it, so the cache need not hold it')
  // A fresh proof then purges the old entry: only the fresh one is held.
  assert.equal(checkProof(await dpopProof(client, token, uri, { iat: (t0 + 15_001) / 1000 }), ctx, opts(t0 + 15_001)).ok, true)
  assert.equal(replay.size, 1)
})
