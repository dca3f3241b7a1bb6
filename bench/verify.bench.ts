/**
 * Verification cost per token, our verifier (node:crypto.verify with KeyObjects imported once
 * per fetch) against jose's jwtVerify (WebCrypto) on the same key and token.
 */
import { performance } from 'node:perf_hooks'
import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose'
import type { Algorithm, IssuerConfig } from '../src/config/types.ts'
import { createKeyStore } from '../src/keys/store.ts'
import { createVerifier } from '../src/verify/verifier.ts'

export interface VerifyBenchResult {
  readonly alg: Algorithm
  readonly oursPerSec: number
  readonly josePerSec: number
}

const ISS = 'https://bench.example'

async function measure(n: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(500, n); i++) await fn() // warm-up
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const r = fn()
    if (r instanceof Promise) await r
  }
  return (n / (performance.now() - t0)) * 1000
}

export async function benchVerify(alg: Algorithm, n: number): Promise<VerifyBenchResult> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg, use: 'sig' }
  const token = await new SignJWT({ sub: 'alice', scope: 'a b' })
    .setProtectedHeader({ alg, kid: 'k1' }).setIssuer(ISS).setAudience('api').setIssuedAt().setExpirationTime('1h')
    .sign(privateKey)
  const issuer: IssuerConfig = {
    name: 'bench', issuer: ISS, jwksUri: 'https://bench.example/jwks', tenants: undefined, discovery: false, discoveryUrl: undefined, keys: [], audiences: ['api'], audienceClaim: 'aud', algorithms: [alg],
    requiredClaims: ['exp'], maxLifetime: undefined, typ: undefined,
    allowInsecureHttp: false,
    kidless: { maxCandidates: 1 }, dpop: { mode: 'off', proofMaxAge: 60_000 },
    fetch: { timeout: 5000, maxBytes: 1 << 20, headers: {}, bearerTokenFile: undefined, caFile: undefined },
    refresh: {
      interval: 3_600_000, minInterval: 60_000, maxInterval: 3_600_000, unknownKidCooldown: 30_000,
      unknownKidWait: 2000, maxStale: 86_400_000, discoveryInterval: 86_400_000,
    },
  }
  // The key set comes from memory: this measures verification, not fetching.
  const keys = createKeyStore([issuer], {
    fetcherFor: () => () => Promise.resolve({ status: 'ok', body: { keys: [jwk] }, validators: { etag: undefined, lastModified: undefined }, maxAgeMs: undefined }),
  })
  keys.start()
  await keys.settled()
  const verifier = createVerifier({ issuers: [issuer], clockSkew: 60_000, maxBytes: 8192 }, { keys })
  const check = verifier.verify(token)
  if (check instanceof Promise || !check.ok) throw new Error(`bench token does not verify: ${JSON.stringify(check)}`)
  const oursPerSec = await measure(n, () => verifier.verify(token))
  const joseKey = await importJWK(jwk, alg)
  const josePerSec = await measure(Math.ceil(n / 2), () => jwtVerify(token, joseKey, { issuer: ISS, audience: 'api', algorithms: [alg] }))
  await keys.stop()
  return { alg, oursPerSec, josePerSec }
}
