/**
 * Project Wycheproof's JWS and JWK vectors (../shared/vectors/wycheproof, read in place), every
 * one driven through the production code. Each test group's key material is served as a JWKS on
 * a loopback port and imported by a real key store (createKeyStore → fetcher → parseJwks → key
 * index: the path a provider's JWKS takes), one issuer per group. What is asserted for each
 * vector is an outcome: `ok` or a reason from the closed set (src/verify/reasons.ts).
 *
 * Wycheproof's tokens are JWS over arbitrary payloads ("foo", a number, nothing), not JWT claim
 * sets, and the verifier parses the payload as a claim set (RFC 7519 §7.2) before it reads
 * `iss`, chooses a key or checks a signature. So each vector is driven in up to four ways:
 * 1. As published, through createVerifier: every one is refused `malformed`.
 * 2. At the signature layer: the verifier's own units in the verifier's order, the payload
 *    parse being the one step left out: splitCompactJws, the algorithm allowlist, the key
 *    store's getKey (key selection is production's, never the test's) and verifySignature.
 *    The reason each vector must get follows from what Wycheproof says it tests (its comment):
 *    see `expected`.
 * 3. Each valid vector as a JWT, through createVerifier: its header segment and its group's key
 *    kept, the payload a claim set for the group's issuer, signed again with the group's private
 *    key. Valid → ok, unless the sidecar refuses it by design, with the reason.
 * 4. Through the proxy, as published: every vector is rejected and none reaches the upstream.
 *
 * A missing vector directory fails the run: nothing here can tell CI from a local run (.ci/run
 * sets no marker), and a suite that skips quietly in CI proves nothing.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { constants, createHmac, createPrivateKey, sign } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { SUPPORTED_ALGORITHMS } from '../../src/config/types.ts'
import type { Algorithm, IssuerConfig } from '../../src/config/types.ts'
import type { IssuerKeys, KeyStore } from '../../src/keys/types.ts'
import { verifySignature } from '../../src/verify/signature.ts'
import { splitCompactJws } from '../../src/verify/token.ts'
import { createVerifier } from '../../src/verify/verifier.ts'
import type { Verifier, VerifyResult } from '../../src/verify/verifier.ts'
import { isB64Token } from '../../src/http/grammar.ts'
import { startHttpServer, startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestServer } from '../helpers/issuer.ts'
import { issuerConfig, startKeyStore } from '../helpers/key-store.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'

const dir = fileURLToPath(new URL('../../../shared/vectors/wycheproof/', import.meta.url))
const present = existsSync(`${dir}json_web_signature_test.json`)
const missing = `Wycheproof vectors not found at ${dir}: this suite needs ../shared (with vectors/wycheproof/) beside the checkout, as CI has it`
// A missing fixture fails the run (one failing test naming it) rather than passing it quietly.
const skip = present ? false : missing
test('the Wycheproof vectors are present', () => {
  assert.ok(present, missing)
})

interface Vector { tcId: number; comment: string; jws: string; result: 'valid' | 'invalid' | 'acceptable'; flags?: string[] }
type Jwk = Record<string, unknown>
interface Group { type: string; comment?: string; public?: Jwk; private?: Jwk; tests: Vector[] }
interface Suite { numberOfTests: number; testGroups: Group[] }

/** The files and how many tests each holds (SOURCE.md): a truncated copy fails, it does not shrink the test. */
const FILES = { 'json_web_signature_test.json': 401, 'json_web_key_test.json': 26 } as const
type File = keyof typeof FILES

/**
 * What the signature layer (part 2) answers, counted: the vectors add up to each file's total,
 * and forged signatures as well as valid ones reached the signature check.
 */
const SIGNATURE_LAYER_TALLY: Readonly<Record<File, Readonly<Record<string, number>>>> = {
  'json_web_signature_test.json': { ok: 32, bad_signature: 300, malformed: 46, alg_not_allowed: 15, keys_unavailable: 6, unknown_kid: 2 },
  'json_web_key_test.json': { ok: 1, alg_not_allowed: 15, keys_unavailable: 10 },
}
/** Part 3: the valid vectors of each file, and how many of them verify as JWTs (the rest are refused by design). */
const AS_JWT_TALLY: Readonly<Record<File, { readonly valid: number; readonly ok: number }>> = {
  'json_web_signature_test.json': { valid: 46, ok: 32 },
  'json_web_key_test.json': { valid: 5, ok: 1 },
}
const load = (name: string): Suite => JSON.parse(readFileSync(dir + name, 'utf8')) as Suite

type Outcome = 'ok' | (VerifyResult & { ok: false })['reason']

// ---------------------------------------------------------------------------------------------
// What each vector must get, from what Wycheproof says it tests
// ---------------------------------------------------------------------------------------------

/**
 * Not a compact JWS this sidecar accepts (RFC 7515 §7.1 and §2): a segment missing, empty or
 * extra, the JSON serialization, an empty signature (`alg: none` included: an unsecured JWS),
 * bytes outside the base64url alphabet, non-zero unused bits. tc372/tc373 are valid for
 * Wycheproof only "for lenient base64 decoders".
 */
const NOT_A_COMPACT_JWS = new Set([
  'rejectsMissingSignature', 'rejectsMissingSignatureAndSeparator', 'rejectsMissingPayloadAndSeparator',
  'rejectsMissingHeader', 'rejectsMissingHeaderAndSeparator', 'rejectsMissingHeaderAndSignature',
  'rejectsMissingHeaderSignatureAndSeparator', 'rejectsMissingHeaderSignatureAndSeparators', 'rejectsEmptyString',
  'rejectsExtraEmptyComponent', 'rejectsExtraComponent', 'rejectsValidJsonSerialization',
  'rejectsNoneAlgorithmAndMissingSignature', 'algIsNone',
  'rejectsSpacesInMac', 'rejectsInvalidCharacterInsertedInMac', 'rejects0ReplacedbyInvalidCharacter', 'rejectsInvalidCharacters',
  'spacesInHeader', 'invalidCharactersInHeader', 'InvalidCharacterInsertedInHeader',
])
/** The same, with the defect in the payload segment only: a vector re-made as a JWT (part 3) no longer has it. */
const PAYLOAD_DEFECTS = new Set([
  'spacesInPayload', 'invalidCharactersInPayload', 'InvalidCharacterInPayload', 'InvalidCharacterInsertedInPayload',
  'ModifiedUnusedBitsInPayload', 'MacOfIncorrectlyEncodedMessage',
])
/**
 * Symmetric algorithms: never accepted (a verifier holding an HMAC secret can mint tokens; an
 * RSA or EC public key used as an HMAC secret is the classic confusion, tc31). Note: in this
 * copy tc367/tc370 ("invalidBase64Padding") are byte-identical to tc357 (SOURCE.md), so they are
 * well-formed HS256 tokens and get this reason too.
 */
const SYMMETRIC = new Set(['HS256', 'HS384', 'HS512'])
/**
 * Groups whose key the import must refuse, so their issuer never has a key: `use: enc`,
 * `key_ops` without verify, the ROCA fingerprint, a 1024-bit modulus, public exponent 1, an alg
 * the key's curve cannot produce or no registered alg at all (ES521, ES224: RFC 7518 §3.1 names
 * ES512; tc347/tc351 are RFC 7520 Figure 27 with that same "ES521"), an invalid point, a
 * key whose members do not fit its kty or curve.
 */
const KEY_REFUSED = new Set([
  'rejectWrongUse', 'rejectWrongKeyOps', 'Figure27',
  'rejectsWrongUse', 'rejectsKeyWithRocaVulnerability', 'rejects1024bitRsaKey', 'rejectsPublicExponent1',
  'mismatchedAlgAndCurve', 'rejectsModifiedKey',
])
/** The header's kid was altered: no key of the issuer has it (an unknown-kid refetch finds none). */
const KID_ALTERED = new Set(['rejectsModifiedHeader'])
/**
 * RFC 7520 Figure 20 (tc346/tc350): the JWK declares alg PS256, the token says PS384. A key is
 * used only with the algorithm it declares (RFC 7517 §4.4), or key-type confusion opens up.
 */
const ALG_NOT_THE_KEYS = new Set(['Figure20'])

/** The vector's header, read leniently: only to know which rule applies and which key signs part 3's JWT. */
function headerOf(jws: string): Jwk {
  try {
    const h: unknown = JSON.parse(Buffer.from(jws.slice(0, jws.indexOf('.')), 'base64url').toString('utf8'))
    return typeof h === 'object' && h !== null ? (h as Jwk) : {}
  } catch {
    return {}
  }
}

/**
 * The outcomes allowed for a vector at the signature layer (part 2), or as a JWT (part 3,
 * `asJwt`: the payload is replaced, so a payload defect is gone). First rule that applies wins,
 * in the verifier's order: JWS form, algorithm, key, signature.
 */
function expected(v: Vector, asJwt = false): readonly Outcome[] {
  if (NOT_A_COMPACT_JWS.has(v.comment) || (!asJwt && PAYLOAD_DEFECTS.has(v.comment))) return ['malformed']
  if (SYMMETRIC.has(String(headerOf(v.jws).alg))) return ['alg_not_allowed']
  if (KEY_REFUSED.has(v.comment)) return ['keys_unavailable']
  if (KID_ALTERED.has(v.comment)) return ['unknown_kid']
  if (ALG_NOT_THE_KEYS.has(v.comment)) return ['bad_signature']
  switch (v.result) {
    case 'valid':
      return ['ok']
    // Every other invalid vector is a signature (or signed data) that does not verify under the
    // key: modified padding, DER, PSS fields, ECDSA r/s edge values, the wrong RSA primitive.
    case 'invalid':
      return ['bad_signature']
    // None in this copy; should one appear, it may pass or fail, but only at the signature.
    case 'acceptable':
      return ['ok', 'bad_signature']
  }
}

// ---------------------------------------------------------------------------------------------
// The production setup: one issuer per test group, its keys served as a JWKS
// ---------------------------------------------------------------------------------------------

interface Entry {
  readonly file: File
  readonly group: Group
  readonly issuer: IssuerConfig
}

/** The epoch ms the verifier is told it is (part 3's tokens are valid for 10 minutes from it). */
const T0 = Date.UTC(2030, 0, 1, 12)
const MAX_BYTES = 1024 * 1024
const AUDIENCE = 'wycheproof'

/**
 * The key material a group gives: its public key (set), or for the HMAC groups, which have none,
 * their secret one, served as a provider that publishes its secrets would. The import refuses
 * every such key (kty oct, private members), so those issuers have no key at all.
 */
function jwksOf(group: Group): { keys: unknown[] } {
  const material = group.public ?? group.private ?? {}
  return Array.isArray(material.keys) ? { keys: material.keys as unknown[] } : { keys: [material] }
}

/** The group's private key that signs for `kid` (or its first): part 3 signs with it again. */
function signingKeyOf(group: Group, kid: unknown): Jwk {
  const material = group.private ?? {}
  const keys = Array.isArray(material.keys) ? (material.keys as Jwk[]) : [material]
  return keys.find((k) => k.kid === kid) ?? keys[0]!
}

/** A JWS signature over `input` with a private JWK: HMAC, RSASSA-PKCS1-v1_5, RSASSA-PSS or ECDSA (RFC 7518 §3). */
function signAs(alg: string, jwk: Jwk, input: string): Buffer {
  const hash = `sha${alg.slice(2)}`
  const data = Buffer.from(input, 'latin1')
  if (alg.startsWith('HS')) return createHmac(hash, Buffer.from(String(jwk.k), 'base64url')).update(data).digest()
  const key = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' })
  if (alg.startsWith('RS')) return sign(hash, data, key)
  if (alg.startsWith('PS')) return sign(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
  if (alg.startsWith('ES')) return sign(hash, data, { key, dsaEncoding: 'ieee-p1363' })
  throw new Error(`no signer for alg ${alg}`)
}

/**
 * The vector as a JWT: the header segment exactly as published, a claim set for the group's
 * issuer, and a fresh signature by the group's key under the header's alg.
 */
function asJwt(v: Vector, entry: Entry): string {
  const header = v.jws.slice(0, v.jws.indexOf('.'))
  const claims = { iss: entry.issuer.issuer, aud: AUDIENCE, iat: T0 / 1000, exp: T0 / 1000 + 600 }
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const { alg, kid } = headerOf(v.jws)
  return `${input}.${signAs(String(alg), signingKeyOf(entry.group, kid), input).toString('base64url')}`
}

const ALLOWED: ReadonlySet<string> = new Set(SUPPORTED_ALGORITHMS)

/**
 * Part 2: the verifier's steps after the payload parse, each through the unit the verifier
 * calls (src/verify/verifier.ts), in its order. Every issuer allows every supported algorithm.
 */
async function atSignatureLayer(jws: string, keys: IssuerKeys): Promise<Outcome> {
  const split = splitCompactJws(jws, MAX_BYTES)
  if (!split.ok) return split.reason
  const { header, signingInput, signature } = split.parts
  if (!ALLOWED.has(header.alg)) return 'alg_not_allowed'
  const alg = header.alg as Algorithm
  const found = await keys.getKey(header.kid, alg)
  if (!found.ok) return found.reason
  return verifySignature(alg, found.key.key, signingInput, signature) ? 'ok' : 'bad_signature'
}

const outcome = (r: VerifyResult): Outcome => (r.ok ? 'ok' : r.reason)

describe('Wycheproof vectors through the verifier', { skip }, () => {
  const entries: Entry[] = []
  let jwksServer: TestServer
  let store: KeyStore
  let verifier: Verifier

  before(async () => {
    // GET /<issuer name> serves that issuer's group's keys.
    const jwksByName = new Map<string, { keys: unknown[] }>()
    jwksServer = await startHttpServer((req, res) => {
      const jwks = jwksByName.get((req.url ?? '').slice(1))
      res.writeHead(jwks === undefined ? 404 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(jwks ?? { error: 'not_found' }))
    })
    for (const file of Object.keys(FILES) as File[]) {
      load(file).testGroups.forEach((group, i) => {
        const name = `${file === 'json_web_key_test.json' ? 'jwk' : 'jws'}-${i}`
        jwksByName.set(name, jwksOf(group))
        const issuer = issuerConfig({ name, issuer: `https://wycheproof.test/${name}`, jwksUri: `${jwksServer.url}/${name}`, audiences: [AUDIENCE] })
        entries.push({ file, group, issuer })
      })
    }
    const issuers = entries.map((e) => e.issuer)
    store = (await startKeyStore(issuers)).store
    verifier = createVerifier({ issuers, clockSkew: 0, maxBytes: MAX_BYTES }, { keys: store, now: () => T0 })
  })
  after(async () => {
    await store?.stop()
    await jwksServer?.close()
  })

  const inFile = (file: File): Entry[] => entries.filter((e) => e.file === file)

  for (const [file, count] of Object.entries(FILES) as [File, number][]) {
    test(`${file}: as published, createVerifier refuses every vector as malformed (none is a JWT claim set)`, async () => {
      const wrong: string[] = []
      let n = 0
      for (const { group } of inFile(file)) {
        for (const v of group.tests) {
          n++
          const got = outcome(await verifier.verify(v.jws))
          if (got !== 'malformed') wrong.push(`tc${v.tcId} (${v.comment}): ${got}`)
        }
      }
      assert.deepEqual(wrong, [])
      assert.equal(n, count, 'vectors exercised')
    })

    test(`${file}: at the signature layer (JWS layer, allowlist, key store, signature) each vector gets the reason its comment calls for`, async () => {
      const wrong: string[] = []
      const tally: Record<string, number> = {}
      for (const entry of inFile(file)) {
        const keys = store.issuer(entry.issuer.name)!
        for (const v of entry.group.tests) {
          const got = await atSignatureLayer(v.jws, keys)
          tally[got] = (tally[got] ?? 0) + 1
          const want = expected(v)
          if (!want.includes(got)) wrong.push(`tc${v.tcId} (${v.comment}, wycheproof ${v.result}): expected ${want.join(' or ')}, got ${got}`)
        }
      }
      assert.deepEqual(wrong, [])
      assert.deepEqual(tally, SIGNATURE_LAYER_TALLY[file])
      assert.equal(Object.values(tally).reduce((a, b) => a + b, 0), count, 'vectors exercised')
    })

    test(`${file}: every valid vector as a JWT (its header, its group's key) verifies, or gets the reason the sidecar refuses it by design`, async () => {
      const wrong: string[] = []
      let n = 0
      let ok = 0
      for (const entry of inFile(file)) {
        for (const v of entry.group.tests) {
          if (v.result !== 'valid') continue
          n++
          const got = outcome(await verifier.verify(asJwt(v, entry)))
          if (got === 'ok') ok++
          const want = expected(v, true)
          if (!want.includes(got)) wrong.push(`tc${v.tcId} (${v.comment}): expected ${want.join(' or ')}, got ${got}`)
        }
      }
      assert.deepEqual(wrong, [])
      assert.deepEqual({ valid: n, ok }, AS_JWT_TALLY[file], 'valid vectors exercised, and verified')
    })
  }
})

describe('Wycheproof vectors through the proxy', { skip }, () => {
  let sidecar: Awaited<ReturnType<typeof startSidecar>>
  let upstream: Awaited<ReturnType<typeof startUpstream>>
  let issuer: Awaited<ReturnType<typeof startTestIssuer>>
  before(async () => {
    issuer = await startTestIssuer()
    upstream = await startUpstream()
    sidecar = await startSidecar(sidecarYaml({
      upstream: upstream.url,
      issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri, algorithms: [...SUPPORTED_ALGORITHMS] }],
    }), { env: {} })
  })
  after(async () => {
    await sidecar?.close()
    await Promise.all([upstream?.close(), issuer?.close()])
  })

  test('every vector is rejected (401, or 400 when it is no b64token at all) and none reaches the upstream', async () => {
    const vectors = [...load('json_web_signature_test.json').testGroups, ...load('json_web_key_test.json').testGroups].flatMap((g) => g.tests)
    const seen = upstream.requests()
    const statuses = new Map<number, number>()
    for (const v of vectors) {
      const res = await request(`${sidecar.proxyUrl}/api/wycheproof`, { headers: { authorization: `Bearer ${v.jws}` } })
      await res.body.dump()
      // Issue #9 §3: a credential with bytes outside RFC 6750's b64token (the "lenient decoder"
      // vectors: spaces, line breaks) is a malformed request, refused before any parsing. An empty
      // one leaves `Authorization: Bearer`, which is no bearer token at all (401 missing_token).
      assert.equal(res.statusCode, v.jws === '' || isB64Token(v.jws) ? 401 : 400, `tc${v.tcId}`)
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    }
    assert.ok((statuses.get(401) ?? 0) > 400, JSON.stringify([...statuses]))
    assert.equal(upstream.requests(), seen)
  })
})
