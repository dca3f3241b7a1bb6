/**
 * issuer by `iss` → key by `kid` from that issuer only → signature → claims.
 * Free of fastify and prom-client: it returns a result; proxy/ and observe/ adapt it.
 */
import { SUPPORTED_ALGORITHMS } from '../config/types.ts'
import { issValues } from '../config/tenants.ts'
import type { Algorithm, IssuerConfig } from '../config/types.ts'
import type { KeyResult, KeyStore, VerificationKey } from '../keys/types.ts'
import type { TokenReason } from './reasons.ts'
import { parseCompactJws } from './token.ts'
import type { ParsedToken } from './token.ts'
import { verifySignature } from './signature.ts'
import { createClaimRules, typMatches } from './claims.ts'
import type { ClaimRule } from './claims.ts'
import { createTokenCache, createTokenCacheStats, entryBytes } from './token-cache.ts'
import type { CacheEntry, TokenCacheOptions, TokenCacheStats } from './token-cache.ts'
import type { VerifyTrace } from './trace.ts'

export type Claims = Readonly<Record<string, unknown>>

export type VerifyResult =
  | { readonly ok: true; readonly issuer: IssuerConfig; readonly claims: Claims; readonly kid: string | undefined }
  | {
      readonly ok: false
      readonly reason: TokenReason | 'keys_unavailable'
      /** Configured issuer name once `iss` matched one; a closed-set label. */
      readonly issuer: string | undefined
      /** For logs only: never contains token material beyond header field names. */
      readonly detail: string
    }

export interface VerifierOptions {
  readonly issuers: readonly IssuerConfig[]
  /** ms */
  readonly clockSkew: number
  /** bytes */
  readonly maxBytes: number
  /** The verified-token cache (token-cache.ts); off when undefined. */
  readonly cache?: TokenCacheOptions | undefined
}

export interface VerifierDeps {
  readonly keys: KeyStore
  /** epoch ms */
  readonly now?: () => number
  /** Where the cache counts hits, misses and evictions (shared across reloads). */
  readonly cacheStats?: TokenCacheStats
  /**
   * Told of every token without kid that reached the key lookup: the signature checks it cost
   * (0 to kidless.maxCandidates) and how it ended. The adapters count it (observe/metrics.ts).
   */
  readonly kidless?: KidlessReport
}

/** How a token without kid ended at the key and signature steps: a closed set, used as a metric label. */
export type KidlessResult = 'verified' | 'bad_signature' | 'unknown_kid'
export type KidlessReport = (issuer: string, checks: number, result: KidlessResult) => void

export interface Verifier {
  /**
   * Synchronous when the key is cached (the common case); a promise only while an unknown-kid
   * refetch runs. `trace` receives each step as it is taken (trace.ts); it costs nothing when absent.
   */
  verify(token: string, trace?: VerifyTrace): VerifyResult | Promise<VerifyResult>
  /** Entries and estimated bytes in the verified-token cache (zeros when it is off). */
  cacheUsage(): { readonly entries: number; readonly bytes: number }
}

/** What the cache holds for a verified token: the issuer it passed for and the very result returned. */
interface Verified {
  readonly entry: IssuerEntry
  readonly result: VerifyResult & { readonly ok: true }
}

const SUPPORTED = new Set<string>(SUPPORTED_ALGORITHMS)

interface IssuerEntry {
  readonly config: IssuerConfig
  readonly allowed: ReadonlySet<string>
  readonly rules: readonly ClaimRule[]
  readonly typ: string | undefined
  readonly keys: NonNullable<ReturnType<KeyStore['issuer']>>
}

/**
 * @example
 * const verifier = createVerifier({ issuers: config.issuers, clockSkew: 60_000, maxBytes: 8192 }, { keys })
 * const r = await verifier.verify(token)
 * if (!r.ok) reply.code(401) // r.reason is one of REASONS
 */
export function createVerifier(options: VerifierOptions, deps: VerifierDeps): Verifier {
  const now = deps.now ?? Date.now
  const byIss = new Map<string, IssuerEntry>()
  for (const config of options.issuers) {
    const keys = deps.keys.issuer(config.name)
    if (keys === undefined) throw new Error(`key store has no issuer named ${config.name}`)
    const allowed = new Set(config.algorithms)
    // A {tenantid} template (Entra ID multi-tenant) is one exact iss per accepted tenant, all
    // sharing the issuer's keys and name (the metrics label), each with its own tid rule.
    for (const { iss, tenant } of issValues(config)) {
      byIss.set(iss, { config, keys, allowed, rules: createClaimRules(config, options.clockSkew, tenant), typ: config.typ })
    }
  }

  /** The first claim rule the payload fails at `t` (seconds), in table order. */
  function failedRule(entry: IssuerEntry, payload: Claims, t: number, trace?: VerifyTrace): { readonly rule: ClaimRule; readonly reason: TokenReason } | undefined {
    for (const rule of entry.rules) {
      const reason = rule.check(payload, t)
      trace?.({ step: 'claim', rule, reason, payload, now: t })
      if (reason !== undefined) return { rule, reason }
    }
    return undefined
  }

  /**
   * A cached verification still stands only under the key index it was verified with and
   * while every claim rule still holds at this instant (exp, nbf and iat move with the clock;
   * the others cannot change; exp is always required, so no entry outlives exp + skew).
   * Anything else goes back through the full path, which gives the reason: one
   * implementation of every refusal.
   */
  function staleness(hit: CacheEntry<Verified>): 'expired' | 'keys' | undefined {
    const { entry, result } = hit.value
    if (entry.keys.version() !== hit.keys) return 'keys'
    return failedRule(entry, result.claims, now() / 1000) === undefined ? undefined : 'expired'
  }
  const cache = options.cache === undefined ? undefined : createTokenCache<Verified>(options.cache, deps.cacheStats ?? createTokenCacheStats(), staleness)

  function remember(raw: string, entry: IssuerEntry, keys: object, result: VerifyResult & { readonly ok: true }): void {
    // The payload's JSON is 3/4 of its base64url segment (between the two dots).
    const payloadLength = Math.ceil(((raw.lastIndexOf('.') - raw.indexOf('.') - 1) * 3) / 4)
    cache!.set(raw, { value: { entry, result }, keys, bytes: entryBytes(raw, payloadLength) })
  }

  function fail(reason: TokenReason | 'keys_unavailable', issuer: string | undefined, detail: string): VerifyResult {
    return { ok: false, reason, issuer, detail }
  }

  function finish(entry: IssuerEntry, token: ParsedToken, alg: Algorithm, lookup: KeyResult, refetched: boolean, trace: VerifyTrace | undefined): VerifyResult {
    const name = entry.config.name
    const kidless = token.header.kid === undefined
    trace?.({ step: 'key', issuer: entry.config, kid: token.header.kid, alg, refetched, result: lookup })
    if (!lookup.ok) {
      if (kidless && lookup.reason === 'unknown_kid') deps.kidless?.(name, 0, 'unknown_kid')
      return fail(lookup.reason, name, `key lookup: ${lookup.reason}`)
    }
    const candidates = lookup.candidates
    if (candidates !== undefined) return tryCandidates(entry, token, alg, candidates, trace)
    const verified = verifySignature(alg, lookup.key.key, token.signingInput, token.signature)
    trace?.({ step: 'signature', ok: verified, alg, key: lookup.key })
    if (kidless) deps.kidless?.(name, 1, verified ? 'verified' : 'bad_signature')
    if (!verified) return fail('bad_signature', name, 'signature does not verify')
    return checkClaims(entry, token, trace)
  }

  /**
   * A token without kid that several keys fit (issue #12, kidless.maxCandidates): each key in
   * index order until one verifies. The key index never hands out more than maxCandidates, so
   * a forged token costs at most that many signature checks; the report counts them.
   */
  function tryCandidates(entry: IssuerEntry, token: ParsedToken, alg: Algorithm, candidates: readonly VerificationKey[], trace: VerifyTrace | undefined): VerifyResult {
    const name = entry.config.name
    let checks = 0
    for (const key of candidates) {
      checks++
      const verified = verifySignature(alg, key.key, token.signingInput, token.signature)
      trace?.({ step: 'signature', ok: verified, alg, key, candidate: { n: checks, of: candidates.length } })
      if (verified) {
        deps.kidless?.(name, checks, 'verified')
        return checkClaims(entry, token, trace)
      }
    }
    deps.kidless?.(name, checks, 'bad_signature')
    return fail('bad_signature', name, `no kid: the signature verifies with none of the ${checks} keys that fit ${alg}`)
  }

  // RFC 7519 §4.1: after the signature holds, the claims (claims.ts), in table order.
  function checkClaims(entry: IssuerEntry, token: ParsedToken, trace: VerifyTrace | undefined): VerifyResult {
    const name = entry.config.name
    if (entry.typ !== undefined) {
      const typOk = typMatches(entry.typ, token.header.typ)
      trace?.({ step: 'typ', ok: typOk, expected: entry.typ, typ: token.header.typ })
      if (!typOk) return fail('bad_type', name, `typ ${JSON.stringify(token.header.typ)} is not ${entry.typ}`)
    }
    const failed = failedRule(entry, token.payload, now() / 1000, trace)
    if (failed !== undefined) return fail(failed.reason, name, `${failed.rule.name} check failed`)
    return { ok: true, issuer: entry.config, claims: token.payload, kid: token.header.kid }
  }

  return {
    verify(raw, trace) {
      const hit = cache?.get(raw)
      if (hit !== undefined) {
        trace?.({ step: 'cache', issuer: hit.value.entry.config })
        return hit.value.result
      }
      const parsed = parseCompactJws(raw, options.maxBytes)
      if (!parsed.ok) {
        trace?.({ step: 'token', ok: false, reason: parsed.reason, detail: parsed.detail })
        return fail(parsed.reason, undefined, parsed.detail)
      }
      const token = parsed.token
      trace?.({ step: 'token', ok: true, token })
      const iss = token.payload.iss
      if (iss === undefined || iss === null) {
        trace?.({ step: 'issuer', iss, issuer: undefined, reason: 'unknown_issuer' })
        return fail('unknown_issuer', undefined, '"iss" is missing')
      }
      // RFC 7519 §4.1.1: StringOrURI. Any other type is a malformed token, not an unknown issuer.
      if (typeof iss !== 'string') {
        trace?.({ step: 'issuer', iss, issuer: undefined, reason: 'bad_claim_type' })
        return fail('bad_claim_type', undefined, '"iss" is not a string')
      }
      // Exact match (RFC 7519 §4.1.1 is case-sensitive); an unknown iss never causes a fetch.
      const entry = byIss.get(iss)
      trace?.({ step: 'issuer', iss, issuer: entry?.config, reason: entry === undefined ? 'unknown_issuer' : undefined })
      if (entry === undefined) return fail('unknown_issuer', undefined, 'iss matches no configured issuer')
      const alg = token.header.alg
      // The allowlist is checked before any key is touched: alg confusion (HS256 signed with
      // an RSA public key, `none`) never reaches a verification primitive.
      const allowed = SUPPORTED.has(alg) && entry.allowed.has(alg)
      trace?.({ step: 'algorithm', ok: allowed, alg, issuer: entry.config })
      if (!allowed) return fail('alg_not_allowed', entry.config.name, 'alg is not in the allowlist')
      // The key index the key comes from, read with it: a synchronous lookup cannot straddle a swap.
      const keysVersion = entry.keys.version()
      const lookup = entry.keys.getKey(token.header.kid, alg as Algorithm)
      // After an unknown-kid refetch the index may have moved on between the lookup and here:
      // such a result is used but not cached (the next request for the token caches it).
      if (lookup instanceof Promise) return lookup.then((r) => finish(entry, token, alg as Algorithm, r, true, trace))
      const result = finish(entry, token, alg as Algorithm, lookup, false, trace)
      if (result.ok && cache !== undefined) remember(raw, entry, keysVersion, result)
      return result
    },
    cacheUsage: () => ({ entries: cache?.size ?? 0, bytes: cache?.bytes ?? 0 }),
  }
}
