import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { hasRocaFingerprint, rsaKeyProblem } from '../../src/keys/rsa-hygiene.ts'

const b64 = (n: bigint): string => Buffer.from(n.toString(16).padStart(2, '0').replace(/^(.(..)*)$/, '0$1'), 'hex').toString('base64url')

test('freshly generated 2048-bit keys pass (no false positives over 20 keys)', () => {
  for (let i = 0; i < 20; i++) {
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' })
    assert.equal(rsaKeyProblem(jwk.n!, jwk.e!), undefined)
  }
})

test('public exponents: 1, 3, even and >= 2^256 are refused; 65537 is fine', () => {
  const n = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!
  for (const e of [1n, 3n, 65536n, 65538n, 1n << 256n]) assert.match(rsaKeyProblem(n, b64(e)) ?? '', /public exponent/, String(e))
  assert.equal(rsaKeyProblem(n, b64(65537n)), undefined)
})

test('a modulus built with the ROCA structure (n = k*M + 65537^a mod M) is detected', () => {
  // Every residue of 65537^a mod p (p | M) lies in the subgroup by construction.
  const primes = [3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n, 41n, 43n, 47n, 53n, 59n, 61n, 67n, 71n, 73n, 79n, 83n, 89n, 97n, 101n, 103n, 107n, 109n, 113n, 127n, 131n, 137n, 139n, 149n, 151n, 157n, 163n, 167n]
  const M = primes.reduce((a, b) => a * b, 1n)
  let g = 1n
  for (let i = 0; i < 1234; i++) g = (g * 65537n) % M
  const n = 987654321987654321n * M + g
  assert.equal(hasRocaFingerprint(n), true)
  assert.equal(hasRocaFingerprint(n + 1n), false)
})
