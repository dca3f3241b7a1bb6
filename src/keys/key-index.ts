/**
 * The structure `getKey` reads on every request: built once per key-set change, swapped in
 * whole, and holding pre-allocated results so a lookup allocates nothing.
 */
import type { Algorithm } from '../config/types.ts'
import type { KeyResult, VerificationKey } from './types.ts'

export interface KeyIndex {
  readonly keys: readonly VerificationKey[]
  /** kid → the pre-allocated `{ok: true, key}` result. */
  readonly byKid: ReadonlyMap<string, { readonly key: VerificationKey; readonly result: KeyResult }>
  /** For a token without kid, per alg: the key (or up to maxCandidates keys) to try, or unknown_kid with how many fit. */
  readonly noKid: ReadonlyMap<Algorithm, KeyResult>
}

export interface MergeConflict {
  readonly key: VerificationKey
  readonly why: string
}

/**
 * Static keys first, then remote ones: an operator's file outranks the network. A remote key
 * whose kid a static key already uses is left out (and reported), so a kid never means two keys.
 */
export function mergeSources(staticKeys: readonly VerificationKey[], remoteKeys: readonly VerificationKey[]): { keys: VerificationKey[]; conflicts: MergeConflict[] } {
  const keys = [...staticKeys]
  const taken = new Map(staticKeys.filter((k) => k.kid !== undefined).map((k) => [k.kid, k.source]))
  const conflicts: MergeConflict[] = []
  for (const k of remoteKeys) {
    const other = k.kid === undefined ? undefined : taken.get(k.kid)
    if (other === undefined) keys.push(k)
    else conflicts.push({ key: k, why: `duplicate kid (a static key from ${other.slice(5)} has it)` })
  }
  return { keys, conflicts }
}

/**
 * `maxCandidates` (issuers[].kidless.maxCandidates, issue #12): how many keys a token without
 * kid may be checked against. Each is one signature check a forged token can trigger, so when
 * more keys fit than that, none is tried (unknown_kid, as with 1 and several keys before):
 * trying only the first N would make a valid token's fate depend on the key order.
 *
 * @example const idx = buildIndex(keys, 1); idx.byKid.get('k1')?.result
 */
export function buildIndex(keys: readonly VerificationKey[], maxCandidates = 1): KeyIndex {
  const byKid = new Map<string, { readonly key: VerificationKey; readonly result: KeyResult }>()
  const results = new Map<VerificationKey, KeyResult>()
  for (const key of keys) {
    const result: KeyResult = Object.freeze({ ok: true, key })
    results.set(key, result)
    if (key.kid !== undefined && !byKid.has(key.kid)) byKid.set(key.kid, Object.freeze({ key, result }))
  }
  // The keys that fit each alg (key-set.ts decided `algorithms` from kty, crv and a declared
  // alg), in index order: static files first, then the JWKS in document order. A stable order
  // the operator can read in /keys; which key is newest is not something a JWKS says.
  const candidates = new Map<Algorithm, VerificationKey[]>()
  for (const key of keys) {
    for (const alg of key.algorithms) {
      const list = candidates.get(alg)
      if (list === undefined) candidates.set(alg, [key])
      else list.push(key)
    }
  }
  const noKid = new Map<Algorithm, KeyResult>()
  for (const [alg, list] of candidates) {
    if (list.length === 1) noKid.set(alg, results.get(list[0]!)!)
    else if (list.length <= maxCandidates) noKid.set(alg, Object.freeze({ ok: true, key: list[0]!, candidates: Object.freeze(list) }))
    else noKid.set(alg, Object.freeze({ ok: false, reason: 'unknown_kid', fitting: list.length }))
  }
  return Object.freeze({ keys: Object.freeze([...keys]), byKid, noKid })
}

export const EMPTY_INDEX: KeyIndex = buildIndex([])
