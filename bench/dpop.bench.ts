/**
 * The cost of one DPoP proof check (verify/dpop.ts) per request, on top of the access token's
 * own verification: parse, jwk import, signature, claims, ath hash, thumbprint, replay cache.
 * Proofs are signed beforehand, each with its own jti (as clients send them), so only the
 * check is timed. Run: node --import tsx bench/dpop.bench.ts [n]
 */
import { createHash, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import { checkProof } from '../src/verify/dpop.ts'
import { createReplayCache } from '../src/verify/dpop-replay.ts'

export async function benchDpop(alg: 'ES256' | 'RS256' | 'EdDSA', n: number): Promise<{ alg: string; microsPerCheck: number }> {
  const { privateKey, publicKey } = await generateKeyPair(alg)
  const jwk = await exportJWK(publicKey)
  const jkt = await calculateJwkThumbprint(jwk)
  const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln'
  const uri = 'http://api.example:8080/orders'
  const ath = createHash('sha256').update(token).digest('base64url')
  const iat = Math.floor(Date.now() / 1000)
  const proofs: string[] = []
  for (let i = 0; i < n + 500; i++) {
    proofs.push(await new SignJWT({ htm: 'GET', htu: uri, iat, jti: randomUUID(), ath }).setProtectedHeader({ alg, typ: 'dpop+jwt', jwk }).sign(privateKey))
  }
  const replay = createReplayCache()
  const ctx = { method: 'GET', uri, accessToken: token, jkt }
  const check = (p: string): void => {
    const r = checkProof(p, ctx, { maxAge: 60_000, clockSkew: 30_000, now: Date.now(), replay })
    if (!r.ok) throw new Error(r.detail)
  }
  for (let i = 0; i < 500; i++) check(proofs[i]!) // warm-up
  const t0 = performance.now()
  for (let i = 500; i < n + 500; i++) check(proofs[i]!)
  return { alg, microsPerCheck: ((performance.now() - t0) * 1000) / n }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 5000)
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
    const r = await benchDpop(alg, n)
    console.log(`DPoP proof check ${r.alg}: ${r.microsPerCheck.toFixed(1)} µs/request (${n} proofs)`)
  }
}
