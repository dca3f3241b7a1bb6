import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCompactJws } from '../../src/verify/token.ts'

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
const jws = (h: unknown, p: unknown, sig = 'c2ln'): string => `${b64(h)}.${b64(p)}.${sig}`

test('a well-formed JWS parses into header, payload, signing input and signature', () => {
  const token = jws({ alg: 'RS256', kid: 'k1', typ: 'JWT' }, { iss: 'x', sub: 'alice' })
  const r = parseCompactJws(token, 8192)
  assert.ok(r.ok)
  assert.deepEqual(r.token.header, { alg: 'RS256', kid: 'k1', typ: 'JWT' })
  assert.equal(r.token.payload.sub, 'alice')
  assert.equal(r.token.signingInput.toString('latin1'), token.slice(0, token.lastIndexOf('.')))
  assert.equal(r.token.signature.toString(), 'sig')
})

const rejected: Array<[string, string, RegExp]> = [
  ['two segments', `${b64({ alg: 'RS256' })}.${b64({})}`, /three/],
  ['JWE (five segments)', 'a.b.c.d.e', /JWE/],
  ['empty signature (unsecured JWS)', `${b64({ alg: 'none' })}.${b64({})}.`, /unsecured/],
  ['empty header', `.${b64({})}.c2ln`, /empty header/],
  ['empty payload', `${b64({ alg: 'RS256' })}..c2ln`, /empty payload/],
  ['padding characters', `${b64({ alg: 'RS256' })}=.${b64({})}.c2ln`, /base64url/],
  ['standard base64 alphabet', `${b64({ alg: 'RS256' })}.${b64({})}.c2l+`, /base64url/],
  ['non-canonical trailing bits', `${b64({ alg: 'RS256' })}.${b64({})}.c2m`, /base64url/],
  ['header not JSON', `${b64('nope')}.${b64({})}.c2ln`, /header/],
  ['header is an array', `${b64([1])}.${b64({})}.c2ln`, /header/],
  ['no alg', jws({ kid: 'k' }, {}), /alg/],
  ['numeric kid', jws({ alg: 'RS256', kid: 7 }, {}), /kid/],
  ['crit header (RFC 7515 §4.1.11)', jws({ alg: 'RS256', crit: ['exp'], exp: 1 }, {}), /crit/],
  ['b64 header (RFC 7797)', jws({ alg: 'RS256', b64: false }, {}), /b64/],
  ['payload not an object', jws({ alg: 'RS256' }, 'foo'), /payload/],
]
for (const [name, token, detail] of rejected) {
  test(`rejects as malformed: ${name}`, () => {
    const r = parseCompactJws(token, 8192)
    assert.equal(r.ok, false)
    if (!r.ok) {
      assert.equal(r.reason, 'malformed')
      assert.match(r.detail, detail)
    }
  })
}

test('a token over tokens.maxBytes is rejected before any decoding', () => {
  const token = jws({ alg: 'RS256' }, { pad: 'x'.repeat(200) })
  const r = parseCompactJws(token, 100)
  assert.equal(r.ok, false)
  if (!r.ok) assert.match(r.detail, /maxBytes/)
})

test('a repeated header segment is answered from what was accepted: the same header, and a refused one is refused every time', () => {
  const header = { alg: 'ES256', kid: 'memo-k', typ: 'JWT' }
  const a = parseCompactJws(jws(header, { sub: 'a' }), 8192)
  const b = parseCompactJws(jws(header, { sub: 'b' }), 8192)
  assert.ok(a.ok && b.ok)
  assert.equal(a.token.header, b.token.header, 'one header object for one segment')
  assert.deepEqual(b.token.header, header)
  assert.equal(b.token.payload.sub, 'b', 'the payload is still parsed per token')
  assert.ok(Object.isFrozen(a.token.header))
  // Refused headers are never remembered.
  for (let i = 0; i < 2; i++) {
    const r = parseCompactJws(jws({ alg: 'RS256', crit: ['x'], x: 1 }, {}), 8192)
    assert.ok(!r.ok && /crit/.test(r.detail))
  }
  // Past its bound (64 segments) it starts over and keeps answering correctly.
  for (let i = 0; i < 200; i++) {
    const r = parseCompactJws(jws({ alg: 'RS256', kid: `k${i}` }, { i }), 8192)
    assert.ok(r.ok && r.token.header.kid === `k${i}` && r.token.payload.i === i)
  }
  const again = parseCompactJws(jws(header, { sub: 'c' }), 8192)
  assert.ok(again.ok)
  assert.deepEqual(again.token.header, header)
})
