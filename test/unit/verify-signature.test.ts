/**
 * The signature layer against jose as an oracle: jose signs with every supported algorithm,
 * our node:crypto path must accept exactly those signatures and nothing altered.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createPublicKey } from 'node:crypto'
import { CompactSign, exportJWK, generateKeyPair } from 'jose'
import { SUPPORTED_ALGORITHMS } from '../../src/config/types.ts'
import type { Algorithm } from '../../src/config/types.ts'
import { verifySignature } from '../../src/verify/signature.ts'
import { splitCompactJws } from '../../src/verify/token.ts'

async function signed(alg: Algorithm) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const jws = await new CompactSign(new TextEncoder().encode('{"sub":"alice"}')).setProtectedHeader({ alg }).sign(privateKey)
  const key = createPublicKey({ key: await exportJWK(publicKey), format: 'jwk' })
  const parts = splitCompactJws(jws, 8192)
  assert.ok(parts.ok)
  return { key, ...parts.parts }
}

for (const alg of SUPPORTED_ALGORITHMS) {
  test(`${alg}: jose's signature verifies; altered data, signature or algorithm does not`, async () => {
    const { key, signingInput, signature } = await signed(alg)
    assert.equal(verifySignature(alg, key, signingInput, signature), true)
    const data = Buffer.from(signingInput)
    data[data.length - 1]! ^= 1
    assert.equal(verifySignature(alg, key, data, signature), false)
    const sig = Buffer.from(signature)
    sig[sig.length - 1]! ^= 1
    assert.equal(verifySignature(alg, key, signingInput, sig), false)
    assert.equal(verifySignature(alg, key, signingInput, signature.subarray(0, signature.length - 1)), false, 'truncated signature')
    // Another hash of the same family must not verify (RS256 vs RS384, PS256 vs RS256…).
    for (const other of SUPPORTED_ALGORITHMS) {
      if (other !== alg) assert.equal(verifySignature(other, key, signingInput, signature), false, `${alg} signature accepted as ${other}`)
    }
  })
}

test('ECDSA: a DER-encoded signature is refused (JWS uses raw R||S, RFC 7518 §3.4)', async () => {
  const { key, signingInput, signature } = await signed('ES256')
  const r = signature.subarray(0, 32)
  const s = signature.subarray(32)
  const int = (b: Buffer) => (b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b)
  const ri = int(r)
  const si = int(s)
  const der = Buffer.concat([Buffer.from([0x30, ri.length + si.length + 4, 0x02, ri.length]), ri, Buffer.from([0x02, si.length]), si])
  assert.equal(verifySignature('ES256', key, signingInput, der), false)
})
