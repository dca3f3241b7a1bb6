/**
 * An immutable, validated key set built from one JWKS document (RFC 7517), and the diff
 * between two sets.
 *
 * Every JWK is checked against the rules below and imported ONCE with
 * `crypto.createPublicKey` (never per request). A key that fails a rule is skipped and
 * reported with a short `why`; one bad key never spoils the rest of the set. Deciding what an
 * empty set means (keep the previous one) is the caller's job.
 */
import { createPublicKey } from 'node:crypto'
import type { JsonWebKey, KeyObject } from 'node:crypto'
// The subpath alone: the package root loads all of jose (JWE, JWT, remote sets) for one function.
import { calculateJwkThumbprint } from 'jose/jwk/thumbprint'
import { SUPPORTED_ALGORITHMS } from '../config/types.ts'
import { KeyError } from './errors.ts'
import type { KeyErrorCode } from './errors.ts'
import { clip, isObject, show } from './untrusted.ts'
import type { Algorithm } from '../config/types.ts'
import { rsaKeyProblem } from './rsa-hygiene.ts'
import type { KeySource, VerificationKey } from './types.ts'

/** A JWK that was skipped, and why (for the `jwks.key_rejected` event). */
export interface RejectedKey {
  readonly kid: string | undefined
  readonly why: string
}

/** The usable keys of one JWKS document. Frozen; a refresh builds a new one. */
export interface KeySet {
  /** Usable keys in document order. May be empty: the caller decides that is an error. */
  readonly keys: readonly VerificationKey[]
  /** kid → key, for the usable keys that carry a kid (the first one wins on duplicates). */
  readonly byKid: ReadonlyMap<string, VerificationKey>
  readonly rejected: readonly RejectedKey[]
}

/**
 * The closed set of reasons a whole JWKS document is refused (errors.ts): `invalid_jwks` (not
 * `{"keys": [...]}`), `too_many_keys` (more than {@link MAX_JWKS_KEYS} entries, refused before
 * any key is imported). Branch on these, never on the message.
 */
export type JwksErrorCode = Extract<KeyErrorCode, 'invalid_jwks' | 'too_many_keys'>

/** The document as a whole is refused; no key in it was considered (`code` says why). */
export class InvalidJwksError extends KeyError {
  override readonly name = 'InvalidJwksError'
  declare readonly code: JwksErrorCode

  constructor(code: JwksErrorCode, message: string) {
    super(code, message)
  }
}

/**
 * Most entries a JWKS may list (usable or not). Real providers publish 1 to 10 (Google, Auth0,
 * Okta, Keycloak, Entra ID, a Kubernetes API server: the current key, the next and the
 * previous, sometimes per algorithm or with `enc` keys). 100 is ten times the largest of them,
 * so a provider mid-rotation is never refused, while a hostile or broken endpoint cannot make
 * us import, thumbprint and hold thousands of KeyObjects on every refresh (issue #9 §8: 5,000).
 * Counted before the first import: the set is refused whole, never truncated (which keys a
 * cut would keep is arbitrary, and the next fetch may cut differently).
 */
export const MAX_JWKS_KEYS = 100

// RFC 7518 §3.3 / §3.5: an RSA key can produce any RS* or PS* signature.
const RSA_ALGS: readonly Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
// RFC 7518 §3.4: each ES* algorithm is bound to exactly one curve.
const EC_ALGS: Readonly<Record<string, readonly Algorithm[]>> = {
  'P-256': ['ES256'],
  'P-384': ['ES384'],
  'P-521': ['ES512'],
}
// RFC 8037 §3.1: EdDSA over Ed25519. Ed448 is not offered (jose and most providers lack it).
const OKP_ALGS: Readonly<Record<string, readonly Algorithm[]>> = { Ed25519: ['EdDSA'] }

/** RSA moduli below this are refused (NIST SP 800-131A; RFC 7518 §3.3 requires ≥ 2048). */
const MIN_RSA_BITS = 2048

/**
 * Members that carry private or secret material (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
 * A JWKS should never contain them; if one does, we refuse the key rather than hold it.
 */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const

const SUPPORTED: ReadonlySet<string> = new Set(SUPPORTED_ALGORITHMS)

/**
 * Validate a JWKS document and import its usable keys.
 *
 * Rejected (skipped, reported in `rejected`): private or secret members; `kty: oct`; RSA with
 * a weak public exponent or the ROCA fingerprint (rsa-hygiene.ts);
 * `use` other than `sig`; `key_ops` without `verify`; RSA below 2048 bits; EC curves other than
 * P-256/P-384/P-521; OKP other than Ed25519; an `alg` outside SUPPORTED_ALGORITHMS or not fit
 * for the key; no algorithm left after intersecting with `allowedAlgorithms`; a kid already
 * used by an earlier usable key. Throws InvalidJwksError when the document is not `{keys: [...]}`
 * (`invalid_jwks`) or lists more than {@link MAX_JWKS_KEYS} entries (`too_many_keys`).
 *
 * @example
 * ```ts
 * const set = await parseJwks(await fetchJwks(url), ['RS256', 'ES256'])
 * if (set.keys.length === 0) throw new Error('no usable keys') // keep the previous set
 * for (const r of set.rejected) log.warn({ kid: r.kid, why: r.why }, 'JWK rejected')
 * ```
 */
export interface ParseOptions {
  /** Recorded on every key (default `jwks`). */
  readonly source?: KeySource
  /** Static keys: a key without kid gets its RFC 7638 thumbprint as kid. */
  readonly kidFromThumbprint?: boolean
}

export async function parseJwks(json: unknown, allowedAlgorithms: readonly Algorithm[], options: ParseOptions = {}): Promise<KeySet> {
  const source: KeySource = options.source ?? 'jwks'
  if (!isObject(json)) throw new InvalidJwksError('invalid_jwks', 'JWKS is not a JSON object')
  const list = json['keys']
  if (!Array.isArray(list)) throw new InvalidJwksError('invalid_jwks', 'JWKS has no "keys" array')
  if (list.length > MAX_JWKS_KEYS) {
    throw new InvalidJwksError('too_many_keys', `JWKS lists ${list.length} keys, more than ${MAX_JWKS_KEYS}: refused before any import`)
  }

  const allowed = new Set(allowedAlgorithms)
  const keys: VerificationKey[] = []
  const byKid = new Map<string, VerificationKey>()
  const rejected: RejectedKey[] = []

  for (const entry of list as unknown[]) {
    const checked = check(entry, allowed)
    if ('why' in checked) {
      rejected.push(Object.freeze(checked))
      continue
    }
    const { publicJwk, algorithms, alg } = checked
    // RFC 7638: the thumbprint covers only the required public members, so it is the key's
    // identity regardless of kid, alg or decoration.
    const thumbprint = await calculateJwkThumbprint(publicJwk, 'sha256')
    const kid = checked.kid ?? (options.kidFromThumbprint === true ? thumbprint : undefined)
    // Duplicate kids are ambiguous; the first usable key wins (a `use: enc` key sharing the
    // kid of a signing key does not shadow it, because it was never usable).
    if (kid !== undefined && byKid.has(kid)) {
      rejected.push(Object.freeze({ kid, why: 'duplicate kid (the first key with this kid is kept)' }))
      continue
    }
    let key: KeyObject
    try {
      // Only the public members reach the importer (see `check`), so nothing private is ever held.
      key = createPublicKey({ key: publicJwk, format: 'jwk' })
    } catch (err) {
      rejected.push(Object.freeze({ kid, why: `invalid key material: ${clip(err instanceof Error ? err.message : String(err), 100)}` }))
      continue
    }
    const bits = key.asymmetricKeyDetails?.modulusLength
    if (publicJwk.kty === 'RSA' && (bits === undefined || bits < MIN_RSA_BITS)) {
      rejected.push(Object.freeze({ kid, why: `RSA modulus of ${bits ?? 'unknown'} bits is below ${MIN_RSA_BITS}` }))
      continue
    }
    const kty = publicJwk.kty as VerificationKey['kty']
    const vk: VerificationKey = Object.freeze({ kid, thumbprint, kty, alg, algorithms, key, source })
    keys.push(vk)
    if (kid !== undefined) byKid.set(kid, vk)
  }

  return Object.freeze({ keys: Object.freeze(keys), byKid, rejected: Object.freeze(rejected) })
}

/**
 * What changed between two key sets (RFC 7638 thumbprint + kid is a key's identity):
 * - `changed`: the same kid now names different key material (a rotation done in place, or a
 *   substitution: a warning either way);
 * - `added` / `removed`: every other key present in only one set;
 * - `replaced`: both sets have keys and none in common (a wholesale swap: a warning).
 */
export interface KeySetDiff {
  readonly added: readonly VerificationKey[]
  readonly removed: readonly VerificationKey[]
  readonly changed: readonly { readonly key: VerificationKey; readonly previous: VerificationKey }[]
  readonly replaced: boolean
}

/**
 * Compare two key sets. `prev` undefined or empty (the first load) makes every key "added".
 *
 * @example
 * ```ts
 * const { added, removed, changed, replaced } = diffKeySets(current, next)
 * for (const c of changed) emit({ event: 'jwks.key_changed', kid: c.key.kid, previousThumbprint: c.previous.thumbprint, ... })
 * ```
 */
export function diffKeySets(
  prev: { readonly keys: readonly VerificationKey[] } | undefined,
  next: { readonly keys: readonly VerificationKey[] },
): KeySetDiff {
  const before = prev?.keys ?? []
  const beforeIds = new Set(before.map(identity))
  const afterIds = new Set(next.keys.map(identity))
  const newKeys = next.keys.filter((k) => !beforeIds.has(identity(k)))
  const goneKeys = before.filter((k) => !afterIds.has(identity(k)))
  // A kid that disappears with one key and reappears with another is a change, not two events.
  const goneByKid = new Map(goneKeys.filter((k) => k.kid !== undefined).map((k) => [k.kid, k]))
  const changed: { key: VerificationKey; previous: VerificationKey }[] = []
  const added: VerificationKey[] = []
  for (const k of newKeys) {
    const previous = k.kid === undefined ? undefined : goneByKid.get(k.kid)
    if (previous === undefined) added.push(k)
    else {
      changed.push({ key: k, previous })
      goneByKid.delete(k.kid)
    }
  }
  const changedPrev = new Set(changed.map((c) => c.previous))
  const removed = goneKeys.filter((k) => !changedPrev.has(k))
  const common = next.keys.length - newKeys.length
  return { added, removed, changed, replaced: before.length > 0 && next.keys.length > 0 && common === 0 }
}

/** A key's identity across sets: thumbprint and kid (kid undefined and "" kept apart). */
export function identity(k: VerificationKey): string {
  return `${k.thumbprint} ${k.kid === undefined ? '-' : `=${k.kid}`}`
}

type Checked =
  | RejectedKey
  | { readonly kid: string | undefined; readonly publicJwk: JsonWebKey; readonly algorithms: ReadonlySet<Algorithm>; readonly alg: Algorithm | undefined }

/** Every rule that needs no import, in the order a reader would check them. */
function check(entry: unknown, allowed: ReadonlySet<Algorithm>): Checked {
  if (!isObject(entry)) return { kid: undefined, why: 'not a JSON object' }
  const rawKid = entry['kid']
  if (rawKid !== undefined && typeof rawKid !== 'string') return { kid: undefined, why: 'kid is not a string' }
  const kid = rawKid
  const reject = (why: string): RejectedKey => ({ kid, why })

  const kty = entry['kty']
  if (typeof kty !== 'string') return reject('missing kty')
  // RFC 7518 §6.4: a symmetric key in a public key set is a leaked secret, never a verifier
  // (accepting it would let anyone who reads the JWKS mint tokens).
  if (kty === 'oct') return reject('symmetric key (kty "oct") is never accepted')
  const priv = PRIVATE_MEMBERS.find((m) => m in entry)
  if (priv !== undefined) return reject(`private key material ("${priv}") is never held`)

  // RFC 7517 §4.2 / §4.3: honour the publisher's statement of what the key is for.
  const use = entry['use']
  if (use !== undefined && use !== 'sig') return reject(`use ${show(use)} is not "sig"`)
  const ops = entry['key_ops']
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes('verify'))) return reject('key_ops does not include "verify"')

  const alg = entry['alg']
  if (alg !== undefined && !(typeof alg === 'string' && SUPPORTED.has(alg))) return reject(`alg ${show(alg)} is not supported`)

  let family: readonly Algorithm[]
  let publicJwk: JsonWebKey
  const crv = entry['crv']
  if (kty === 'RSA') {
    const { n, e } = entry
    if (typeof n !== 'string' || typeof e !== 'string') return reject('RSA key without "n" and "e"')
    const problem = rsaKeyProblem(n, e)
    if (problem !== undefined) return reject(problem)
    family = RSA_ALGS
    publicJwk = { kty, n, e }
  } else if (kty === 'EC') {
    const algs = typeof crv === 'string' ? EC_ALGS[crv] : undefined
    if (algs === undefined || typeof crv !== 'string') return reject(`EC curve ${show(crv)} is not supported`)
    const { x, y } = entry
    if (typeof x !== 'string' || typeof y !== 'string') return reject('EC key without "x" and "y"')
    family = algs
    publicJwk = { kty, crv, x, y }
  } else if (kty === 'OKP') {
    const algs = typeof crv === 'string' ? OKP_ALGS[crv] : undefined
    if (algs === undefined || typeof crv !== 'string') return reject(`OKP curve ${show(crv)} is not supported`)
    const { x } = entry
    if (typeof x !== 'string') return reject('OKP key without "x"')
    family = algs
    publicJwk = { kty, crv, x }
  } else {
    return reject(`key type ${show(kty)} is not supported`)
  }

  // An `alg` the key type cannot produce (RS256 on an EC key, ES384 on P-256) is a broken JWK.
  const own = alg === undefined ? family : family.filter((a) => a === alg)
  if (own.length === 0) return reject(`alg ${show(alg)} does not fit a ${kty}${typeof crv === 'string' ? ` ${crv}` : ''} key`)
  const algorithms = own.filter((a) => allowed.has(a))
  if (algorithms.length === 0) return reject(`no allowed algorithm (key: ${own.join(', ')})`)

  return { kid, publicJwk, algorithms: new Set(algorithms), alg: alg as Algorithm | undefined }
}
