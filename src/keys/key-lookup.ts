/**
 * The lookup core of one issuer: the merged index `getKey` reads, the swap that replaces it,
 * and the events that say what changed. No I/O and no timers: the sources (refresher.ts for
 * the remote JWKS, static-source.ts for key files) hand it their keys, and issuer-keys.ts
 * wires the three together.
 */
import type { Algorithm } from '../config/types.ts'
import { EMPTY_INDEX, buildIndex, mergeSources } from './key-index.ts'
import type { KeyIndex } from './key-index.ts'
import { diffKeySets, identity } from './key-set.ts'
import type { RejectedKey } from './key-set.ts'
import type { KeyEvent, KeyInfo, KeyResult, KeySource, VerificationKey } from './types.ts'

// Shared, frozen failure results: the hot path returns these without allocating.
export const KEYS_UNAVAILABLE: KeyResult = Object.freeze({ ok: false, reason: 'keys_unavailable' })
export const UNKNOWN_KID: KeyResult = Object.freeze({ ok: false, reason: 'unknown_kid' })
const BAD_SIGNATURE: KeyResult = Object.freeze({ ok: false, reason: 'bad_signature' })

/** The keys one source skipped in this load, and which source that is. */
export interface SourceRejections {
  readonly list: readonly RejectedKey[]
  readonly source: KeySource
}

export interface KeyLookupDeps {
  /** Epoch ms, for `firstSeen`. */
  readonly now: () => number
  readonly emit: (event: KeyEvent) => void
  /**
   * A kid the index does not hold (and the index is not empty): the refresher may fetch for
   * it; without a remote source it is unknown at once.
   */
  readonly unknownKid: (kid: string, alg: Algorithm) => KeyResult | Promise<KeyResult>
}

export interface KeyLookupOptions {
  /** issuers[].kidless.maxCandidates: keys a token without kid may be tried against (key-index.ts). Default 1. */
  readonly maxCandidates?: number
}

export interface KeyLookup {
  /** Synchronous unless the kid is unknown and `unknownKid` waits for a refresh. */
  readonly getKey: (kid: string | undefined, alg: Algorithm) => KeyResult | Promise<KeyResult>
  /** What the current index says about (kid, alg); undefined for a kid it does not hold. Never fetches. */
  find(kid: string | undefined, alg: Algorithm): KeyResult | undefined
  /** The index in use; a new object on every swap (IssuerKeys.version). */
  readonly current: () => KeyIndex
  /**
   * Replace the keys of the source(s) given (`remote: []` drops the remote set), rebuild the
   * merged index, swap it in and emit what changed: first the newly rejected keys, then
   * added, removed, changed and a wholesale replacement.
   */
  swap(keys: { readonly static?: readonly VerificationKey[]; readonly remote?: readonly VerificationKey[] }, rejected: readonly SourceRejections[]): void
  /** Report a refused document's rejected keys (once each) without touching the index. */
  reportRejected(list: readonly RejectedKey[], source: KeySource): void
  /** Public data for /keys, with the time each key was first seen. */
  keyList(): KeyInfo[]
}

/**
 * @example
 * ```ts
 * const lookup = createKeyLookup('corp', { now: Date.now, emit, unknownKid: () => UNKNOWN_KID })
 * lookup.swap({ static: load.keys }, [{ list: load.rejected, source: 'file:/keys/a.pem' }])
 * lookup.getKey('k1', 'RS256') // { ok: true, key }
 * ```
 */
export function createKeyLookup(name: string, deps: KeyLookupDeps, options: KeyLookupOptions = {}): KeyLookup {
  const { now, emit, unknownKid } = deps
  const maxCandidates = options.maxCandidates ?? 1
  let index: KeyIndex = EMPTY_INDEX
  let staticKeys: readonly VerificationKey[] = []
  let remoteKeys: readonly VerificationKey[] = []
  const firstSeen = new Map<string, string>()
  /** Rejections already reported, so a key the provider keeps publishing is reported once. */
  let reported = new Set<string>()

  function report(rejected: readonly RejectedKey[], source: KeySource, keep: Set<string>): void {
    for (const r of rejected) {
      const id = `${source}\n${r.kid ?? ''}\n${r.why}`
      keep.add(id)
      if (!reported.has(id)) emit({ event: 'jwks.key_rejected', issuer: name, kid: r.kid, why: r.why, source })
    }
  }

  function find(kid: string | undefined, alg: Algorithm): KeyResult | undefined {
    if (kid === undefined) return index.noKid.get(alg) ?? UNKNOWN_KID
    const hit = index.byKid.get(kid)
    if (hit === undefined) return undefined
    // RFC 7517 §4.4: a key that declares an alg verifies only that alg, and a key type only
    // its own family: the key the token names cannot have produced this signature.
    return hit.key.algorithms.has(alg) ? hit.result : BAD_SIGNATURE
  }

  return {
    getKey: (kid, alg) => {
      if (index.keys.length === 0) return KEYS_UNAVAILABLE
      const found = find(kid, alg)
      if (found !== undefined) return found
      return unknownKid(kid as string, alg)
    },
    find,
    current: () => index,
    swap(keys, rejected) {
      if (keys.static !== undefined) staticKeys = keys.static
      if (keys.remote !== undefined) remoteKeys = keys.remote
      // Static keys first: an operator's file outranks the network (key-index.ts).
      const merged = mergeSources(staticKeys, remoteKeys)
      const keep = new Set<string>()
      for (const r of rejected) report(r.list, r.source, keep)
      for (const c of merged.conflicts) report([{ kid: c.key.kid, why: c.why }], c.key.source, keep)
      // Rejections of the source not reloaded this time stay reported.
      for (const id of reported) if (!rejected.some((r) => id.startsWith(`${r.source}\n`))) keep.add(id)
      reported = keep

      const diff = diffKeySets(index, { keys: merged.keys })
      index = buildIndex(merged.keys, maxCandidates) // the swap: readers see the old or the new index, never a mix
      const at = new Date(now()).toISOString()
      for (const k of merged.keys) if (!firstSeen.has(identity(k))) firstSeen.set(identity(k), at)
      for (const k of diff.removed) firstSeen.delete(identity(k))
      for (const c of diff.changed) firstSeen.delete(identity(c.previous))
      const fields = (k: VerificationKey) => ({ issuer: name, kid: k.kid, kty: k.kty, alg: k.alg, thumbprint: k.thumbprint, source: k.source, ...chain(k) })
      for (const k of diff.added) emit({ event: 'jwks.key_added', ...fields(k) })
      for (const k of diff.removed) emit({ event: 'jwks.key_removed', ...fields(k) })
      for (const c of diff.changed) emit({ event: 'jwks.key_changed', ...fields(c.key), previousThumbprint: c.previous.thumbprint })
      if (diff.replaced) emit({ event: 'jwks.keyset_replaced', issuer: name, added: diff.added.length + diff.changed.length, removed: diff.removed.length + diff.changed.length })
    },
    reportRejected(list, source) {
      const keep = new Set(reported)
      report(list, source, keep)
      reported = keep
    },
    keyList: () => index.keys.map((k): KeyInfo => ({
      kid: k.kid, kty: k.kty, alg: k.alg, thumbprint: k.thumbprint, source: k.source, ...chain(k),
      firstSeen: firstSeen.get(identity(k)) ?? '',
    })),
  }
}

/** `chainLength` only for a key from a certificate chain, so every other key's data stays as it was. */
function chain(k: VerificationKey): { readonly chainLength?: number } {
  return k.chainLength === undefined ? {} : { chainLength: k.chainLength }
}
