/**
 * RFC 9449 DPoP proof verification (§4.3), framework-free: the proof JWT from the `DPoP`
 * header against the request it came with and the access token it accompanies.
 *
 * Checks, in order: a compact JWS (the same strict parser as access tokens: canonical
 * base64url, no `crit`/`b64`) with `typ: dpop+jwt`; an asymmetric `alg` (never `none` or HS*:
 * the key is the client's own, so a MAC would prove nothing); a header `jwk` that is a public
 * key with no private members (§4.2); the signature by that key; `htm` = the request method;
 * `htu` = the request URI without query and fragment, both sides normalised alike (§4.3 step
 * 9, RFC 3986 §6.2.2/§6.2.3 through WHATWG URL); `iat` within `maxAge` (+ clock skew on both
 * sides); `jti` present; `ath` = base64url(SHA-256(access token)) (§4.3 step 10); the RFC 7638
 * thumbprint of the proof key = the token's `cnf.jkt` (§6.1); and last, `jti` not seen before
 * (dpop-replay.ts), so a proof refused for another reason never fills the replay cache.
 * Server nonces (§8, §9) are not implemented: freshness rests on `iat` and the replay cache.
 */
import { createHash, createPublicKey, timingSafeEqual } from 'node:crypto'
import type { JsonWebKey, KeyObject } from 'node:crypto'
import type { Algorithm } from '../config/types.ts'
import { parseStrictObject } from './json.ts'
import { splitCompactJws } from './token.ts'
import { verifySignature } from './signature.ts'
import type { ReplayCache } from './dpop-replay.ts'

/** §4.3 step 5: asymmetric only. The same set the access tokens may use. */
export const DPOP_ALGORITHMS: readonly Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
const ALLOWED = new Set<string>(DPOP_ALGORITHMS)

/** A proof is a small JWS: an RSA-4096 jwk header and a few claims fit in well under this. */
const PROOF_MAX_BYTES = 8192
/** Typical jti values are UUIDs or 16–32 random bytes; a longer one is refused. */
const JTI_MAX_CHARS = 256
/** RFC 7517 private key members (RSA, EC, OKP) and the symmetric `k`. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
/** RFC 7638 §3.2: the required members per key type, in lexicographic order. */
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  RSA: ['e', 'kty', 'n'],
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
}

export interface ProofContext {
  /** The request method as received (§4.3 step 8: compared case-sensitively). */
  readonly method: string
  /** The request URI the client addressed: scheme://host/path (no query); normalised here. */
  readonly uri: string
  /** The access token the proof must be bound to (`ath`). */
  readonly accessToken: string
  /** The access token's `cnf.jkt`. */
  readonly jkt: string
}

export interface ProofOptions {
  /** ms: how old (by its iat) a proof may be. */
  readonly maxAge: number
  /** ms of tolerance on iat, both ways. */
  readonly clockSkew: number
  /** epoch ms */
  readonly now: number
  readonly replay: ReplayCache
}

export type ProofResult =
  | { readonly ok: true; readonly jkt: string }
  | { readonly ok: false; readonly reason: 'invalid_dpop_proof' | 'dpop_replay' | 'token_bound'; readonly detail: string }

function invalid(detail: string): ProofResult {
  return { ok: false, reason: 'invalid_dpop_proof', detail }
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url), or undefined when a required member is not a string. */
export function jwkThumbprint(jwk: Readonly<Record<string, unknown>>): string | undefined {
  const members = typeof jwk.kty === 'string' ? THUMBPRINT_MEMBERS[jwk.kty] : undefined
  if (members === undefined) return undefined
  const parts: string[] = []
  for (const m of members) {
    const v = jwk[m]
    if (typeof v !== 'string') return undefined
    parts.push(`${JSON.stringify(m)}:${JSON.stringify(v)}`)
  }
  return createHash('sha256').update(`{${parts.join(',')}}`).digest('base64url')
}

/** scheme://host[:port]/path of a URI, normalised (lower-case scheme and host, default port dropped, dot segments resolved); undefined if not an http(s) URI. */
export function normaliseHtu(uri: string): string | undefined {
  let u: URL
  try {
    u = new URL(uri)
  } catch {
    return undefined
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined
  return `${u.protocol}//${u.host}${u.pathname}`
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * Proof keys already imported, by RFC 7638 thumbprint. A client signs every proof of a session
 * with one key, and importing a JWK costs more than verifying with it; the thumbprint hashes
 * every public member the import reads, so one thumbprint is one key. Bounded: cleared when full.
 */
const IMPORTED_MAX = 1024
const imported = new Map<string, KeyObject>()

function importProofKey(thumbprint: string, jwk: Readonly<Record<string, unknown>>): KeyObject | string {
  const cached = imported.get(thumbprint)
  if (cached !== undefined) return cached
  let key: KeyObject
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
  } catch {
    return 'jwk is not a usable public key'
  }
  if (key.type !== 'public') return 'jwk is not a public key'
  if (imported.size >= IMPORTED_MAX) imported.clear()
  imported.set(thumbprint, key)
  return key
}

/**
 * The checks of RFC 9449 §4.3, in the order checkProof runs them: `jws` (a compact JWS within
 * the size cap), `typ`, `alg`, `jwk`, `signature`, `jti`, `htm`, `htu`, `iat`, `ath`, `jkt`
 * (the proof key against the token's cnf.jkt, §6.1), `replay`.
 */
export type ProofCheck = 'jws' | 'typ' | 'alg' | 'jwk' | 'signature' | 'jti' | 'htm' | 'htu' | 'iat' | 'ath' | 'jkt' | 'replay'

/**
 * Told of each check as it passes or fails, with the values compared (`jwt-sidecar verify`):
 * the proof's own claims and the key thumbprint, never the proof or the access token. Absent
 * on the proxy path, where `trace?.(…)` builds none of its arguments.
 */
export type ProofTrace = (check: ProofCheck, ok: boolean, detail: string) => void

/** A client's value for a trace line: JSON, one line, bounded. */
function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? typeof v
  return s.length > 120 ? `${s.slice(0, 120)}…` : s
}

const seconds = (ms: number): string => `${ms / 1000}s`

/** What an iat is compared with, for a trace line. */
function iatWindow(opts: ProofOptions): string {
  return `now ${Math.floor(opts.now / 1000)} (${new Date(opts.now).toISOString()}), dpop.proofMaxAge ${seconds(opts.maxAge)}, tokens.clockSkew ${seconds(opts.clockSkew)}`
}

/**
 * @example
 * const r = checkProof(req.headers.dpop, { method: 'GET', uri: 'http://api.example/orders', accessToken, jkt: claims.cnf.jkt }, { maxAge: 60_000, clockSkew: 30_000, now: Date.now(), replay })
 * if (!r.ok) deny(r.reason)
 */
export function checkProof(proof: string, ctx: ProofContext, opts: ProofOptions, trace?: ProofTrace): ProofResult {
  const split = splitCompactJws(proof, PROOF_MAX_BYTES)
  if (!split.ok) {
    trace?.('jws', false, `not a compact JWS: ${split.detail}`)
    return invalid(`not a compact JWS: ${split.detail}`)
  }
  trace?.('jws', true, `a compact JWS of ${proof.length} bytes (at most ${PROOF_MAX_BYTES})`)
  const { header, payloadStart, payloadEnd, signingInput, signature } = split.parts
  // RFC 7515 §4.1.9: media type names compare case-insensitively.
  if (header.typ === undefined || header.typ.toLowerCase() !== 'dpop+jwt') {
    trace?.('typ', false, `typ ${header.typ === undefined ? 'absent' : shown(header.typ)} must be dpop+jwt (RFC 9449 §4.2)`)
    return invalid('typ is not dpop+jwt')
  }
  trace?.('typ', true, `typ ${shown(header.typ)}`)
  if (!ALLOWED.has(header.alg)) {
    trace?.('alg', false, `alg ${shown(header.alg)} is not one of ${DPOP_ALGORITHMS.join(' ')} (asymmetric only, RFC 9449 §4.3)`)
    return invalid(`alg ${JSON.stringify(header.alg).slice(0, 20)} is not an allowed asymmetric algorithm`)
  }
  trace?.('alg', true, `alg ${header.alg}, an allowed asymmetric algorithm`)
  const full = parseStrictObject(Buffer.from(proof.slice(0, payloadStart - 1), 'base64url').toString('utf8'))
  if (!full.ok) return jwkRefused(trace, 'header is not a JSON object')
  const jwk = full.value.jwk
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return jwkRefused(trace, 'header has no jwk object')
  const jwkObj = jwk as Record<string, unknown>
  if (PRIVATE_MEMBERS.some((m) => m in jwkObj)) return jwkRefused(trace, 'jwk carries private key members')
  const thumbprint = jwkThumbprint(jwkObj)
  if (thumbprint === undefined) return jwkRefused(trace, 'jwk is not an RSA, EC or OKP public key')
  const key = importProofKey(thumbprint, jwkObj)
  if (typeof key === 'string') return jwkRefused(trace, key)
  trace?.('jwk', true, `a public ${shown(jwkObj.kty)}${jwkObj.crv === undefined ? '' : ` ${shown(jwkObj.crv)}`} key, no private members; RFC 7638 thumbprint ${thumbprint}`)
  if (!verifySignature(header.alg as Algorithm, key, signingInput, signature)) {
    trace?.('signature', false, `the ${header.alg} signature does not verify with the header jwk`)
    return invalid('signature does not verify with the header jwk')
  }
  trace?.('signature', true, `the ${header.alg} signature verifies with the header jwk`)
  const payload = payloadStart === payloadEnd ? undefined : parseStrictObject(Buffer.from(proof.slice(payloadStart, payloadEnd), 'base64url').toString('utf8'))
  if (payload === undefined || !payload.ok) {
    trace?.('jti', false, 'the payload is empty or not a JSON object')
    return invalid(payload === undefined ? 'empty payload' : 'payload is not a JSON object')
  }
  const { jti, htm, htu, iat, ath } = payload.value
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > JTI_MAX_CHARS) {
    trace?.('jti', false, `jti ${jti === undefined ? 'absent' : typeof jti === 'string' ? `of ${jti.length} characters` : shown(jti)}: must be a string of 1 to ${JTI_MAX_CHARS} characters`)
    return invalid('jti is missing, empty or too long')
  }
  trace?.('jti', true, `jti present (${jti.length} characters)`)
  if (typeof htm !== 'string' || htm !== ctx.method) {
    trace?.('htm', false, `htm ${htm === undefined ? 'absent' : shown(htm)} is not the request method ${shown(ctx.method)} (compared case-sensitively)`)
    return invalid('htm does not match the request method')
  }
  trace?.('htm', true, `htm ${shown(htm)} is the request method`)
  const expected = normaliseHtu(ctx.uri)
  if (typeof htu !== 'string' || expected === undefined || normaliseHtu(htu) !== expected) {
    trace?.('htu', false, `htu ${htu === undefined ? 'absent' : shown(htu)}${typeof htu === 'string' && normaliseHtu(htu) !== htu ? ` (normalised ${shown(normaliseHtu(htu) ?? 'not an http(s) URI')})` : ''} is not the request URI ${shown(expected ?? ctx.uri)}`)
    return invalid('htu does not match the request URI')
  }
  trace?.('htu', true, `htu ${shown(htu)} is the request URI ${shown(expected)} (normalised alike; query and fragment ignored)`)
  if (typeof iat !== 'number' || !Number.isFinite(iat)) {
    trace?.('iat', false, `iat ${iat === undefined ? 'absent' : shown(iat)} is not a number`)
    return invalid('iat is missing or not a number')
  }
  const iatMs = iat * 1000
  if (iatMs > opts.now + opts.clockSkew) {
    trace?.('iat', false, `iat ${iat} is in the future: ${iatWindow(opts)}`)
    return invalid('iat is in the future')
  }
  if (iatMs < opts.now - opts.maxAge - opts.clockSkew) {
    trace?.('iat', false, `iat ${iat} is older than proofMaxAge + clockSkew: ${iatWindow(opts)}`)
    return invalid('iat is older than dpop.proofMaxAge')
  }
  trace?.('iat', true, `iat ${iat} is within the window: ${iatWindow(opts)}`)
  const tokenHash = createHash('sha256').update(ctx.accessToken).digest('base64url')
  if (typeof ath !== 'string' || !sameString(ath, tokenHash)) {
    trace?.('ath', false, `ath ${ath === undefined ? 'absent' : shown(ath)} is not base64url(SHA-256(the access token)) ${tokenHash}`)
    return invalid('ath does not match the access token')
  }
  trace?.('ath', true, 'ath is base64url(SHA-256(the access token))')
  if (!sameString(thumbprint, ctx.jkt)) {
    trace?.('jkt', false, `the proof key's thumbprint ${thumbprint} is not the token's cnf.jkt ${shown(ctx.jkt)}`)
    return { ok: false, reason: 'token_bound', detail: 'the proof key is not the key the token is bound to (cnf.jkt)' }
  }
  trace?.('jkt', true, `the proof key's thumbprint is the token's cnf.jkt ${thumbprint}`)
  // This proof is accepted until iat + maxAge + skew (the iat check above): remembered exactly
  // that long, so an honest client's proof (iat ≈ now) costs maxAge + skew of cache, not + 2·skew.
  const ttl = iatMs + opts.maxAge + opts.clockSkew - opts.now
  const seen = opts.replay.check(thumbprint, jti, opts.now, ttl)
  if (seen !== 'fresh') {
    trace?.('replay', false, seen === 'replay' ? `jti already used with this key, remembered until iat + proofMaxAge + clockSkew` : `the replay cache is full (${opts.replay.capacity} live proofs): this proof cannot be recorded`)
    return { ok: false, reason: 'dpop_replay', detail: seen === 'replay' ? 'jti already used within the window' : 'replay cache full: the proof cannot be recorded' }
  }
  trace?.('replay', true, `jti not seen with this key before; remembered for ${Math.ceil(ttl / 1000)}s more (until iat + proofMaxAge + clockSkew)`)
  return { ok: true, jkt: thumbprint }
}

function jwkRefused(trace: ProofTrace | undefined, detail: string): ProofResult {
  trace?.('jwk', false, detail)
  return invalid(detail)
}
