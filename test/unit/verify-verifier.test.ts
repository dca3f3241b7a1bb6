/**
 * The verifier (src/verify/verifier.ts) over a real key store: keys generated at test time and
 * served by a loopback issuer (test/helpers/issuer.ts) or read from a key file, the store built
 * as app.ts builds it (test/helpers/key-store.ts). Every branch of `verify`, in the verifier's
 * order: JWS form, iss, algorithm, key, signature, typ, claims; then the verified-token cache and
 * the separation of issuers. The clock is injected (T0 is in 2030, far from the real one, so a
 * `Date.now` slip shows).
 */
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { KeyObject, constants, createHmac, createPublicKey, sign } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ReconfigurableKeyStore } from '../../src/keys/store.ts'
import { ENTRY_OVERHEAD_BYTES, createTokenCacheStats } from '../../src/verify/token-cache.ts'
import type { TokenCacheStats } from '../../src/verify/token-cache.ts'
import { createVerifier } from '../../src/verify/verifier.ts'
import type { Verifier, VerifierOptions, VerifyResult } from '../../src/verify/verifier.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { SignOptions, TestIssuer, TestIssuerOptions } from '../helpers/issuer.ts'
import { issuerConfig, startKeyStore } from '../helpers/key-store.ts'
import type { IssuerConfigOptions } from '../helpers/key-store.ts'

const T0 = Date.UTC(2030, 0, 1, 12)
/** T0 in seconds, the unit of exp, nbf and iat. */
const t0 = T0 / 1000
const SKEW_MS = 60_000

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

/** A compact JWS from parts, for tokens no signer would make. */
const raw = (header: unknown, payload: unknown, signature = 'c2lnbmF0dXJl'): string => `${b64(header)}.${b64(payload)}.${signature}`

/**
 * An RSASSA-PSS (RFC 7518 §3.5) token signed by one of the issuer's RSA keys: jose's CryptoKeys
 * are bound to the algorithm they were made for, so the test issuer cannot sign PS256 with an
 * RS256 key; node:crypto can.
 */
function signPs256(idp: TestIssuer, kid: string, claims: Readonly<Record<string, unknown>>): string {
  const input = `${b64({ alg: 'PS256', typ: 'JWT', kid })}.${b64({ iss: idp.issuer, aud: 'test-api', iat: t0, exp: t0 + 300, ...claims })}`
  const key = KeyObject.from(idp.keys().find((k) => k.kid === kid)!.privateKey)
  const signature = sign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
  return `${input}.${signature.toString('base64url')}`
}

const reason = (r: VerifyResult): string => (r.ok ? 'ok' : r.reason)

/** The result of a verification that must not wait (the key is held, or the answer needs none). */
function now(r: VerifyResult | Promise<VerifyResult>): VerifyResult {
  assert.ok(!(r instanceof Promise), 'answered synchronously')
  return r
}

/** The result of a verification that waits for an unknown-kid refetch. */
async function later(r: VerifyResult | Promise<VerifyResult>): Promise<VerifyResult> {
  assert.ok(r instanceof Promise, 'waits for a refetch')
  return r
}

interface World {
  readonly idp: TestIssuer
  readonly store: ReconfigurableKeyStore
  readonly verifier: Verifier
  readonly stats: TokenCacheStats
  /** The verifier's clock, epoch ms; tests move it. */
  readonly clock: { now: number }
  /** A token from `idp` valid at T0 for 300 s (iat T0, exp T0 + 300), `claims` on top. */
  sign(claims?: Readonly<Record<string, unknown>>, opts?: SignOptions): Promise<string>
}

interface WorldOptions {
  readonly idp?: TestIssuerOptions
  readonly issuer?: Partial<IssuerConfigOptions>
  readonly verifier?: Partial<VerifierOptions>
  /** Runs after the issuer starts and before the key store's first fetch. */
  readonly beforeKeys?: (idp: TestIssuer) => void
}

/** One ES256 issuer named `corp` with key `k1`, a key store over its JWKS and a verifier, all closed after the test. */
async function world(t: TestContext, o: WorldOptions = {}): Promise<World> {
  const idp = await startTestIssuer({ alg: 'ES256', ...o.idp })
  t.after(() => idp.close())
  o.beforeKeys?.(idp)
  const cfg = issuerConfig({ name: 'corp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: [o.idp?.alg ?? 'ES256'], ...o.issuer })
  const { store } = await startKeyStore([cfg])
  t.after(() => store.stop())
  const stats = createTokenCacheStats()
  const clock = { now: T0 }
  const verifier = createVerifier({ issuers: [cfg], clockSkew: SKEW_MS, maxBytes: 8192, ...o.verifier }, { keys: store, now: () => clock.now, cacheStats: stats })
  return { idp, store, verifier, stats, clock, sign: (claims = {}, opts = {}) => idp.sign({ iat: t0, exp: t0 + 300, ...claims }, opts) }
}

describe('createVerifier: the token and its issuer', () => {
  test('a valid token: ok, with the issuer config, the claims and the kid, synchronously when the key is held', async (t) => {
    const w = await world(t)
    const r = now(w.verifier.verify(await w.sign({ sub: 'alice' })))
    assert.ok(r.ok)
    assert.equal(r.issuer.name, 'corp')
    assert.equal(r.claims.sub, 'alice')
    assert.equal(r.claims.iss, w.idp.issuer)
    assert.equal(r.kid, 'k1')
  })

  test('not a compact JWS with a claim-set payload: malformed, no issuer named, nothing fetched', async (t) => {
    const w = await world(t)
    const good = await w.sign()
    const [h, p, s] = good.split('.') as [string, string, string]
    const fetches = w.idp.fetchCount()
    const cases: Record<string, string> = {
      'empty': '',
      'one segment': 'abc',
      'two segments': `${h}.${p}`,
      'four segments': `${good}.x`,
      'empty signature (unsecured JWS)': `${h}.${p}.`,
      'payload is a JSON array': `${h}.${b64([{ iss: w.idp.issuer }])}.${s}`,
      'payload is not JSON': `${h}.${Buffer.from('foo').toString('base64url')}.${s}`,
      'padding in a segment': `${h}.${p}=.${s}`,
      'crit header': raw({ alg: 'ES256', kid: 'k1', crit: ['exp'], exp: 1 }, { iss: w.idp.issuer }),
    }
    for (const [what, token] of Object.entries(cases)) {
      const r = now(w.verifier.verify(token))
      assert.deepEqual([reason(r), r.ok ? 'ok' : r.issuer], ['malformed', undefined], what)
    }
    assert.equal(w.idp.fetchCount(), fetches)
  })

  test('tokens.maxBytes: a token of exactly maxBytes is read, one byte more is malformed', async (t) => {
    const w = await world(t)
    const token = await w.sign()
    const at = createVerifier({ issuers: [issuerConfig({ name: 'corp', issuer: w.idp.issuer, jwksUri: w.idp.jwksUri, algorithms: ['ES256'] })], clockSkew: 0, maxBytes: token.length }, { keys: w.store, now: () => T0 })
    assert.equal(reason(now(at.verify(token))), 'ok')
    assert.equal(reason(now(at.verify(`${token}A`))), 'malformed')
  })

  test('iss: missing or null → unknown_issuer, not a string → bad_claim_type, no exact match → unknown_issuer; no issuer named, nothing fetched', async (t) => {
    const w = await world(t)
    const fetches = w.idp.fetchCount()
    const cases: [string, unknown, string][] = [
      ['absent', undefined, 'unknown_issuer'],
      ['null', null, 'unknown_issuer'],
      ['a number', 42, 'bad_claim_type'],
      ['an array', [w.idp.issuer], 'bad_claim_type'],
      // RFC 7519 §4.1.1: compared exactly, case included; no trailing-slash normalisation.
      ['in upper case', w.idp.issuer.toUpperCase(), 'unknown_issuer'],
      ['with a trailing slash', `${w.idp.issuer}/`, 'unknown_issuer'],
      ['another issuer', 'https://elsewhere.example', 'unknown_issuer'],
    ]
    for (const [what, iss, want] of cases) {
      const r = now(w.verifier.verify(await w.sign({ iss }, { kid: 'not-a-kid-of-corp' })))
      assert.deepEqual([reason(r), r.ok ? 'ok' : r.issuer], [want, undefined], `iss ${what}`)
    }
    assert.equal(w.idp.fetchCount(), fetches, 'an unknown iss never causes a fetch')
  })

  test('an issuer the key store does not hold is a construction error', async (t) => {
    const w = await world(t)
    const stranger = issuerConfig({ name: 'stranger', issuer: 'https://stranger.example', jwksUri: 'https://stranger.example/jwks' })
    assert.throws(() => createVerifier({ issuers: [stranger], clockSkew: 0, maxBytes: 8192 }, { keys: w.store }), /key store has no issuer named stranger/)
  })
})

describe('createVerifier: algorithm and key', () => {
  test('an alg outside the allowlist is refused before any key is touched: none, HS256 keyed with the RSA public key, PS256 for an RS256-only issuer, an unknown alg', async (t) => {
    const w = await world(t, { idp: { alg: 'RS256' }, issuer: { refresh: { unknownKidCooldown: 0 } } })
    const claims = { iss: w.idp.issuer, aud: 'test-api', iat: t0, exp: t0 + 300 }
    const fetches = w.idp.fetchCount()
    // CVE-2015-9235: a library that takes the key's bytes as an HMAC secret verifies this.
    const pem = createPublicKey({ key: w.idp.keys()[0]!.jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' })
    const hsInput = `${b64({ alg: 'HS256', kid: 'k1' })}.${b64(claims)}`
    const cases: Record<string, string> = {
      'none (with a signature, so it is not an unsecured JWS)': raw({ alg: 'none', kid: 'k1' }, claims),
      'HS256 with the public key as the secret': `${hsInput}.${createHmac('sha256', pem).update(hsInput).digest('base64url')}`,
      // A correct PS256 signature by the issuer's own key: the allowlist still says no.
      'PS256 signed by the RS256 key': signPs256(w.idp, 'k1', {}),
      'ES256K': raw({ alg: 'ES256K', kid: 'k1' }, claims),
      'kid of no key, alg none': raw({ alg: 'none', kid: 'unknown' }, claims),
    }
    for (const [what, token] of Object.entries(cases)) {
      const r = now(w.verifier.verify(token))
      assert.deepEqual([reason(r), r.ok ? 'ok' : r.issuer], ['alg_not_allowed', 'corp'], what)
    }
    assert.equal(w.idp.fetchCount(), fetches, 'no unknown-kid refetch: the key was never looked up')
  })

  test('unknown kid, static keys only: unknown_kid at once, with no fetch to wait for', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256', kids: ['s1'] })
    t.after(() => idp.close())
    const dir = mkdtempSync(join(tmpdir(), 'verifier-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'jwks.json')
    writeFileSync(file, JSON.stringify(idp.jwks()))
    const cfg = issuerConfig({ name: 'files', issuer: idp.issuer, keys: [{ file, alg: undefined, kid: undefined }], algorithms: ['ES256'] })
    const { store } = await startKeyStore([cfg])
    t.after(() => store.stop())
    const verifier = createVerifier({ issuers: [cfg], clockSkew: SKEW_MS, maxBytes: 8192 }, { keys: store, now: () => T0 })
    const claims = { iat: t0, exp: t0 + 300 }
    assert.equal(reason(now(verifier.verify(await idp.sign(claims, { kid: 's1' })))), 'ok')
    const r = now(verifier.verify(await idp.sign(claims, { kid: 's2', key: 's1' })))
    assert.deepEqual([reason(r), r.ok ? 'ok' : r.issuer], ['unknown_kid', 'files'])
    assert.equal(idp.fetchCount(), 0)
  })

  test('unknown kid with a remote JWKS: one refetch; a key published since verifies, a kid still unknown is unknown_kid', async (t) => {
    const w = await world(t, { issuer: { refresh: { unknownKidCooldown: 0 } } })
    await w.idp.addKey('k2')
    const fetches = w.idp.fetchCount()
    assert.equal(reason(await later(w.verifier.verify(await w.sign({}, { kid: 'k2' })))), 'ok')
    assert.equal(w.idp.fetchCount(), fetches + 1)
    const ghost = await w.sign({}, { kid: 'ghost', key: 'k1' })
    const r = await later(w.verifier.verify(ghost))
    assert.deepEqual([reason(r), r.ok ? 'ok' : r.issuer], ['unknown_kid', 'corp'])
    assert.equal(w.idp.fetchCount(), fetches + 2)
    // Proven unknown by a fetch that started after it was asked for: answered at once from now on.
    assert.equal(reason(now(w.verifier.verify(ghost))), 'unknown_kid')
    assert.equal(w.idp.fetchCount(), fetches + 2)
  })

  test('unknown kid within the refetch cooldown: unknown_kid at once', async (t) => {
    const w = await world(t, { issuer: { refresh: { unknownKidCooldown: 3_600_000 } } })
    await w.idp.addKey('k2')
    assert.equal(reason(await later(w.verifier.verify(await w.sign({}, { kid: 'k2' })))), 'ok')
    await w.idp.addKey('k3')
    assert.equal(reason(now(w.verifier.verify(await w.sign({}, { kid: 'k3' })))), 'unknown_kid')
  })

  test('a token without kid: verified when exactly one key fits its alg, unknown_kid (without a fetch) when two do', async (t) => {
    const w = await world(t, { issuer: { refresh: { unknownKidCooldown: 0 } } })
    assert.equal(reason(now(w.verifier.verify(await w.sign({}, { kid: null })))), 'ok')
    await w.idp.addKey('k2')
    assert.equal(reason(await later(w.verifier.verify(await w.sign({}, { kid: 'k2' })))), 'ok')
    const fetches = w.idp.fetchCount()
    assert.equal(reason(now(w.verifier.verify(await w.sign({}, { kid: null })))), 'unknown_kid')
    assert.equal(w.idp.fetchCount(), fetches)
  })

  test('kidless.maxCandidates 2, a rotation overlap publishing two keys without kid: a token signed by either verifies, a forged one is bad_signature after 2 checks; a third key: unknown_kid with none tried', async (t) => {
    // Shaped like a provider that signs without kid: the JWKS entries have no kid, the second not even alg.
    const idp = await startTestIssuer({ alg: 'ES256', kids: [] })
    t.after(() => idp.close())
    await idp.addKey('old', 'ES256', { jwk: { kid: undefined } })
    await idp.addKey('new', 'ES256', { jwk: { kid: undefined, alg: undefined, use: undefined } })
    await idp.addKey('rogue', 'ES256', { publish: false })
    const cfg = issuerConfig({ name: 'corp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['ES256'], maxCandidates: 2, refresh: { unknownKidCooldown: 0 } })
    const { store } = await startKeyStore([cfg])
    t.after(() => store.stop())
    const reports: [string, number, string][] = []
    const stats = createTokenCacheStats()
    const verifier = createVerifier({ issuers: [cfg], clockSkew: SKEW_MS, maxBytes: 8192, cache: { maxEntries: 10, maxBytes: 1 << 20 } }, {
      keys: store, now: () => T0, cacheStats: stats, kidless: (issuer, checks, result) => void reports.push([issuer, checks, result]),
    })
    const sign = (key: string) => idp.sign({ iat: t0, exp: t0 + 300 }, { kid: null, key })
    const signatures: unknown[] = []
    const trace = (e: Parameters<NonNullable<Parameters<Verifier['verify']>[1]>>[0]) => {
      if (e.step === 'signature') signatures.push([e.ok, e.candidate])
    }

    assert.equal(reason(now(verifier.verify(await sign('old'), trace))), 'ok')
    assert.deepEqual(signatures.splice(0), [[true, { n: 1, of: 2 }]])
    const fresh = await sign('new')
    assert.equal(reason(now(verifier.verify(fresh, trace))), 'ok')
    assert.deepEqual(signatures.splice(0), [[false, { n: 1, of: 2 }], [true, { n: 2, of: 2 }]])
    const forged = now(verifier.verify(await sign('rogue'), trace))
    assert.equal(reason(forged), 'bad_signature')
    assert.deepEqual(signatures.splice(0), [[false, { n: 1, of: 2 }], [false, { n: 2, of: 2 }]])
    assert.deepEqual(reports.splice(0), [['corp', 1, 'verified'], ['corp', 2, 'verified'], ['corp', 2, 'bad_signature']])
    // The verified-token cache keeps working for a token without kid: no signature check the second time.
    assert.equal(reason(now(verifier.verify(fresh, trace))), 'ok')
    assert.equal(stats.hits, 1)
    assert.deepEqual([signatures, reports], [[], []])

    // A third fitting key (published with a kid: it fits a token without one all the same).
    await idp.addKey('third', 'ES256')
    assert.equal(reason(await later(verifier.verify(await idp.sign({ iat: t0, exp: t0 + 300 }, { kid: 'third' })))), 'ok')
    const fetches = idp.fetchCount()
    assert.equal(reason(now(verifier.verify(await sign('old'), trace))), 'unknown_kid', 'three fit, the bound is 2: none is tried')
    assert.deepEqual([signatures, reports], [[], [['corp', 0, 'unknown_kid']]])
    assert.equal(idp.fetchCount(), fetches, 'and no refetch: a kid-less token has no kid to look for')
  })

  test('keys_unavailable while the issuer has no keys (its JWKS endpoint failing), with the issuer named', async (t) => {
    const w = await world(t, { beforeKeys: (idp) => idp.setStatus(503) })
    const r = now(w.verifier.verify(await w.sign()))
    assert.deepEqual([reason(r), r.ok ? 'ok' : r.issuer], ['keys_unavailable', 'corp'])
  })

  test('bad_signature: a key the issuer never published under a published kid, a payload changed after signing', async (t) => {
    const w = await world(t)
    await w.idp.addKey('rogue', 'ES256', { publish: false })
    const rogue = now(w.verifier.verify(await w.sign({}, { kid: 'k1', key: 'rogue' })))
    assert.deepEqual([reason(rogue), rogue.ok ? 'ok' : rogue.issuer], ['bad_signature', 'corp'])
    const [h, , s] = (await w.sign({ sub: 'alice' })).split('.') as [string, string, string]
    const forged = `${h}.${b64({ iss: w.idp.issuer, aud: 'test-api', iat: t0, exp: t0 + 300, sub: 'admin' })}.${s}`
    assert.equal(reason(now(w.verifier.verify(forged))), 'bad_signature')
  })

  test('bad_signature: a key that declares RS256 is not used for PS256, though both are allowed (RFC 7517 §4.4)', async (t) => {
    const w = await world(t, { idp: { alg: 'RS256' }, issuer: { algorithms: ['RS256', 'PS256'] } })
    assert.equal(reason(now(w.verifier.verify(await w.sign()))), 'ok')
    assert.equal(reason(now(w.verifier.verify(signPs256(w.idp, 'k1', {})))), 'bad_signature')
  })
})

describe('createVerifier: typ and claims', () => {
  test('typ: at+jwt, compared case-insensitively with or without application/ (RFC 8725 §3.11, RFC 9068 §4); another or none is bad_type', async (t) => {
    const w = await world(t, { issuer: { typ: 'at+jwt' } })
    const typ = async (v: string | undefined): Promise<string> => reason(now(w.verifier.verify(await w.sign({}, { header: { typ: v } }))))
    assert.equal(await typ('at+jwt'), 'ok')
    assert.equal(await typ('application/AT+JWT'), 'ok')
    assert.equal(await typ('JWT'), 'bad_type')
    assert.equal(await typ(undefined), 'bad_type')
    // After the signature: a forged token with the wrong typ is a bad signature first.
    await w.idp.addKey('rogue', 'ES256', { publish: false })
    assert.equal(reason(now(w.verifier.verify(await w.sign({}, { kid: 'k1', key: 'rogue', header: { typ: 'JWT' } })))), 'bad_signature')
  })

  test('typ is not checked when the issuer does not configure it', async (t) => {
    const w = await world(t)
    assert.equal(reason(now(w.verifier.verify(await w.sign({}, { header: { typ: 'anything' } })))), 'ok')
  })

  test('exp, nbf and iat against the injected clock, with the configured clock skew', async (t) => {
    const w = await world(t)
    const at = async (ms: number, claims: Record<string, unknown>): Promise<string> => {
      w.clock.now = ms
      return reason(now(w.verifier.verify(await w.sign(claims))))
    }
    // RFC 7519 §4.1.4: valid before exp; the skew (60 s) widens the window.
    assert.equal(await at(T0 + 69_999, { exp: t0 + 10 }), 'ok')
    assert.equal(await at(T0 + 70_000, { exp: t0 + 10 }), 'expired')
    // In 2030 this token is long expired; under the real clock it would still be valid.
    assert.equal(await at(T0, { iat: t0 - 600, exp: t0 - 120 }), 'expired')
    // RFC 7519 §4.1.5
    assert.equal(await at(T0, { nbf: t0 + 61 }), 'not_yet_valid')
    assert.equal(await at(T0, { nbf: t0 + 60 }), 'ok')
    assert.equal(await at(T0 + 1_000, { nbf: t0 + 61 }), 'ok')
    // RFC 7519 §4.1.6: an iat in the future means a clock is wrong.
    assert.equal(await at(T0, { iat: t0 + 61 }), 'issued_in_future')
    assert.equal(await at(T0, { iat: t0 + 60 }), 'ok')
    // exp is always required, and a NumericDate.
    assert.equal(await at(T0, { exp: undefined }), 'missing_claim')
    assert.equal(await at(T0, { exp: String(t0 + 300) }), 'bad_claim_type')
    const r = now(w.verifier.verify(await w.sign({ exp: t0 - 3600 })))
    assert.deepEqual([reason(r), r.ok ? 'ok' : r.issuer], ['expired', 'corp'])
  })

  test('clockSkew 0: expired at exp exactly', async (t) => {
    const w = await world(t, { verifier: { clockSkew: 0 } })
    w.clock.now = T0 + 299_999
    assert.equal(reason(now(w.verifier.verify(await w.sign()))), 'ok')
    w.clock.now = T0 + 300_000
    assert.equal(reason(now(w.verifier.verify(await w.sign()))), 'expired')
  })

  test('aud, requiredClaims, maxLifetime and the registered claim types, each with its reason', async (t) => {
    const w = await world(t, { issuer: { audiences: ['api-a', 'api-b'], requiredClaims: ['exp', 'sub'], maxLifetime: 3_600_000 } })
    const check = async (claims: Record<string, unknown>): Promise<string> => reason(now(w.verifier.verify(await w.sign({ aud: 'api-a', sub: 'alice', ...claims }))))
    assert.equal(await check({}), 'ok')
    // RFC 7519 §4.1.3: one configured audience is enough.
    assert.equal(await check({ aud: 'api-b' }), 'ok')
    assert.equal(await check({ aud: ['other', 'api-b'] }), 'ok')
    assert.equal(await check({ aud: 'other' }), 'bad_audience')
    assert.equal(await check({ aud: ['other'] }), 'bad_audience')
    assert.equal(await check({ aud: undefined }), 'bad_audience')
    assert.equal(await check({ sub: undefined }), 'missing_claim')
    assert.equal(await check({ sub: null }), 'missing_claim')
    assert.equal(await check({ sub: 42 }), 'bad_claim_type')
    assert.equal(await check({ aud: 42 }), 'bad_claim_type')
    assert.equal(await check({ exp: t0 + 3600 }), 'ok')
    assert.equal(await check({ exp: t0 + 3601 }), 'lifetime_exceeded')
    assert.equal(await check({ iat: undefined }), 'missing_claim', 'maxLifetime needs iat')
  })
})

describe('createVerifier: the verified-token cache', () => {
  const CACHE = { cache: { maxEntries: 100, maxBytes: 1024 * 1024 } }

  test('a hit returns the very result object; cacheUsage counts entries and bytes; a refusal is never cached', async (t) => {
    const w = await world(t, { verifier: CACHE })
    const token = await w.sign({ sub: 'alice' })
    const first = now(w.verifier.verify(token))
    assert.ok(first.ok)
    assert.equal(now(w.verifier.verify(token)), first)
    assert.deepEqual({ hits: w.stats.hits, misses: w.stats.misses }, { hits: 1, misses: 1 })
    const usage = w.verifier.cacheUsage()
    assert.equal(usage.entries, 1)
    assert.ok(usage.bytes >= token.length + ENTRY_OVERHEAD_BYTES, `bytes ${usage.bytes}`)
    const refused = await w.sign({ aud: 'other' })
    assert.equal(reason(now(w.verifier.verify(refused))), 'bad_audience')
    assert.equal(reason(now(w.verifier.verify(refused))), 'bad_audience')
    assert.deepEqual(w.verifier.cacheUsage(), usage)
  })

  test('without a cache: nothing is kept, every verification is a new result', async (t) => {
    const w = await world(t)
    const token = await w.sign()
    const first = now(w.verifier.verify(token))
    const second = now(w.verifier.verify(token))
    assert.ok(first.ok && second.ok)
    assert.notEqual(second, first)
    assert.deepEqual(w.verifier.cacheUsage(), { entries: 0, bytes: 0 })
    assert.deepEqual({ hits: w.stats.hits, misses: w.stats.misses }, { hits: 0, misses: 0 })
  })

  test('a key-set change invalidates the entry: after a rotation it is verified again, after its key is withdrawn it is refused', async (t) => {
    const w = await world(t, { verifier: CACHE, issuer: { refresh: { unknownKidCooldown: 0 } } })
    const token = await w.sign()
    const first = now(w.verifier.verify(token))
    assert.equal(now(w.verifier.verify(token)), first)
    // A new key: the refetch swaps the issuer's key index.
    await w.idp.addKey('k2')
    assert.equal(reason(await later(w.verifier.verify(await w.sign({}, { kid: 'k2' })))), 'ok')
    const again = now(w.verifier.verify(token))
    assert.ok(again.ok)
    assert.notEqual(again, first, 'verified again, not answered from the cache')
    assert.equal(w.stats.evictedKeys, 1)
    // k1 withdrawn: the next refetch drops it, and the cached verification goes with it.
    w.idp.removeKey('k1')
    assert.equal(reason(await later(w.verifier.verify(await w.sign({}, { kid: 'k3', key: 'k2' })))), 'unknown_kid')
    assert.equal(reason(await later(w.verifier.verify(token))), 'unknown_kid')
    assert.equal(w.stats.evictedKeys, 2)
  })

  test('an entry past exp + skew is not served: the full path answers expired', async (t) => {
    const w = await world(t, { verifier: CACHE })
    const token = await w.sign({ exp: t0 + 100 })
    const first = now(w.verifier.verify(token))
    w.clock.now = T0 + 159_999
    assert.equal(now(w.verifier.verify(token)), first)
    w.clock.now = T0 + 160_000
    assert.equal(reason(now(w.verifier.verify(token))), 'expired')
    assert.equal(w.stats.evictedExpired, 1)
    assert.equal(w.verifier.cacheUsage().entries, 0)
  })

  test('a result that waited for an unknown-kid refetch is not cached; the next verification caches it', async (t) => {
    const w = await world(t, { verifier: CACHE, issuer: { refresh: { unknownKidCooldown: 0 } } })
    await w.idp.addKey('k2')
    const token = await w.sign({}, { kid: 'k2' })
    assert.equal(reason(await later(w.verifier.verify(token))), 'ok')
    assert.equal(w.verifier.cacheUsage().entries, 0)
    const second = now(w.verifier.verify(token))
    assert.equal(w.verifier.cacheUsage().entries, 1)
    assert.equal(now(w.verifier.verify(token)), second)
  })
})

describe('createVerifier: issuers are kept apart', () => {
  test("a kid is looked up only among the keys of the issuer the token names: another issuer's key never verifies it", async (t) => {
    const a = await startTestIssuer({ alg: 'ES256', kids: ['k1', 'only-a'] })
    const b = await startTestIssuer({ alg: 'ES256', kids: ['k1'] })
    t.after(() => Promise.all([a.close(), b.close()]))
    const refresh = { unknownKidCooldown: 0 }
    const issuers = [
      issuerConfig({ name: 'a', issuer: a.issuer, jwksUri: a.jwksUri, algorithms: ['ES256'], refresh }),
      issuerConfig({ name: 'b', issuer: b.issuer, jwksUri: b.jwksUri, algorithms: ['ES256'], refresh }),
    ]
    const { store } = await startKeyStore(issuers)
    t.after(() => store.stop())
    const verifier = createVerifier({ issuers, clockSkew: 0, maxBytes: 8192 }, { keys: store, now: () => T0 })
    const claims = { iat: t0, exp: t0 + 300 }
    const fetches = { a: a.fetchCount(), b: b.fetchCount() }
    assert.equal(reason(now(verifier.verify(await a.sign(claims, { kid: 'k1' })))), 'ok')
    // Signed by a's k1, claiming to be b's: b's own k1 does not verify it.
    const crossed = now(verifier.verify(await a.sign({ ...claims, iss: b.issuer }, { kid: 'k1' })))
    assert.deepEqual([reason(crossed), crossed.ok ? 'ok' : crossed.issuer], ['bad_signature', 'b'])
    // A kid only a has: b refetches its own JWKS and finds nothing; a is never asked.
    const foreign = await later(verifier.verify(await a.sign({ ...claims, iss: b.issuer }, { kid: 'only-a' })))
    assert.deepEqual([reason(foreign), foreign.ok ? 'ok' : foreign.issuer], ['unknown_kid', 'b'])
    assert.deepEqual({ a: a.fetchCount(), b: b.fetchCount() }, { a: fetches.a, b: fetches.b + 1 })
  })
})
