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
  /** For a token without kid: the result when exactly one key supports the alg. */
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

/** @example const idx = buildIndex(keys); idx.byKid.get('k1')?.result */
export function buildIndex(keys: readonly VerificationKey[]): KeyIndex {
  const byKid = new Map<string, { readonly key: VerificationKey; readonly result: KeyResult }>()
  const results = new Map<VerificationKey, KeyResult>()
  for (const key of keys) {
    const result: KeyResult = Object.freeze({ ok: true, key })
    results.set(key, result)
    if (key.kid !== undefined && !byKid.has(key.kid)) byKid.set(key.kid, Object.freeze({ key, result }))
  }
  // A token without kid gets a key only when exactly one key could have signed it; trying
  // every key would let one request cost N signature checks.
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
  }
  return Object.freeze({ keys: Object.freeze([...keys]), byKid, noKid })
}

export const EMPTY_INDEX: KeyIndex = buildIndex([])
