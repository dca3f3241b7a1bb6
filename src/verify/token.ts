/**
 * Strict parsing of a compact JWS (RFC 7515 §7.1) into header, payload and signature.
 * Nothing here is trusted yet: the caller verifies the signature before using any claim
 * beyond `iss`, which selects the issuer (and is then checked again against it).
 */
import { parseStrictObject } from './json.ts'
import type { TokenReason } from './reasons.ts'

export interface JoseHeader {
  readonly alg: string
  readonly kid: string | undefined
  readonly typ: string | undefined
}

export interface ParsedToken {
  readonly header: JoseHeader
  readonly payload: Readonly<Record<string, unknown>>
  /** `BASE64URL(header) || '.' || BASE64URL(payload)`: the bytes the signature covers. */
  readonly signingInput: Buffer
  readonly signature: Buffer
}

export type ParseResult =
  | { readonly ok: true; readonly token: ParsedToken }
  | { readonly ok: false; readonly reason: TokenReason; readonly detail: string }

// base64url alphabet (RFC 4648 §5); 1 = allowed.
const B64URL = new Uint8Array(128)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') B64URL[c.charCodeAt(0)] = 1
const B64URL_VALUE = new Uint8Array(128)
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('').forEach((c, i) => { B64URL_VALUE[c.charCodeAt(0)] = i })

/**
 * RFC 7515 §2: base64url without padding, and nothing else. Node's decoder silently skips
 * foreign characters and ignores non-zero trailing bits; both would let two different
 * strings decode to the same bytes (Wycheproof's "lenient decoder" vectors), so reject them.
 */
function isCanonicalBase64url(s: string, start: number, end: number): boolean {
  const len = end - start
  if (len % 4 === 1) return false
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c > 127 || B64URL[c] !== 1) return false
  }
  // The unused low bits of the last character must be zero.
  const rem = len % 4
  if (rem !== 0) {
    const last = B64URL_VALUE[s.charCodeAt(end - 1)]!
    if ((rem === 2 && (last & 0x0f) !== 0) || (rem === 3 && (last & 0x03) !== 0)) return false
  }
  return true
}

/** A segment's JSON object, strict (no duplicate member names), or why not. */
function parseJsonObject(s: string, start: number, end: number): Record<string, unknown> | string {
  const r = parseStrictObject(Buffer.from(s.slice(start, end), 'base64url').toString('utf8'))
  return r.ok ? r.value : r.why
}

function fail(reason: TokenReason, detail: string): { ok: false; reason: TokenReason; detail: string } {
  return { ok: false, reason, detail }
}

export interface JwsParts {
  readonly header: JoseHeader
  /** Index of the second dot: the payload segment is token.slice(header end + 1, payloadEnd). */
  readonly payloadStart: number
  readonly payloadEnd: number
  readonly signingInput: Buffer
  readonly signature: Buffer
}

export type SplitResult =
  | { readonly ok: true; readonly parts: JwsParts }
  | { readonly ok: false; readonly reason: TokenReason; readonly detail: string }

/**
 * Header segments already accepted, and what they said: an issuer signs with a handful of
 * keys, so nearly every token repeats one of a few header segments (same `alg`, `kid`, `typ`),
 * and the base64 decode, JSON parse and checks are done once per segment instead of once per
 * request. The key is the segment's exact text, so a hit is exactly what the checks accepted.
 * Only accepted headers are kept, at most MEMO_MAX of at most MEMO_SEGMENT_MAX characters
 * (≈20 KiB); when full it starts over, so a client sending ever-new headers only costs itself
 * the parse it would have paid anyway.
 */
const acceptedHeaders = new Map<string, JoseHeader>()
const MEMO_MAX = 64
const MEMO_SEGMENT_MAX = 256

/**
 * The JWS layer only: three canonical base64url segments, a JSON object header with a
 * string `alg`, no `crit`/`b64`, a non-empty signature. The payload is not interpreted.
 */
export function splitCompactJws(token: string, maxBytes: number): SplitResult {
  if (token.length > maxBytes) return fail('malformed', 'token larger than tokens.maxBytes')
  const dot1 = token.indexOf('.')
  const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1)
  if (dot2 < 0) return fail('malformed', 'not three dot-separated segments')
  if (token.indexOf('.', dot2 + 1) >= 0) {
    return fail('malformed', 'more than three segments (JWE is not accepted)')
  }
  if (dot1 === 0) return fail('malformed', 'empty header')
  if (dot2 === token.length - 1) return fail('malformed', 'empty signature (unsecured JWS)')
  if (!isCanonicalBase64url(token, 0, dot1) || !isCanonicalBase64url(token, dot1 + 1, dot2) || !isCanonicalBase64url(token, dot2 + 1, token.length)) {
    return fail('malformed', 'segment is not canonical base64url')
  }
  const segment = token.slice(0, dot1)
  let header = acceptedHeaders.get(segment)
  if (header === undefined) {
    const h = parseJsonObject(token, 0, dot1)
    if (typeof h === 'string') return fail('malformed', `header: ${h}`)
    const { alg, kid, typ, crit } = h
    if (typeof alg !== 'string' || alg.length === 0) return fail('malformed', 'header has no "alg"')
    if (kid !== undefined && typeof kid !== 'string') return fail('malformed', '"kid" is not a string')
    if (typ !== undefined && typeof typ !== 'string') return fail('malformed', '"typ" is not a string')
    if (crit !== undefined) return fail('malformed', '"crit" names an extension we do not implement')
    // RFC 7797: an unencoded payload changes what the signature covers; we never accept it.
    if (h.b64 !== undefined) return fail('malformed', '"b64" header is not supported')
    header = Object.freeze({ alg, kid, typ })
    if (segment.length <= MEMO_SEGMENT_MAX) {
      if (acceptedHeaders.size >= MEMO_MAX) acceptedHeaders.clear()
      acceptedHeaders.set(segment, header)
    }
  }
  return {
    ok: true,
    parts: {
      header,
      payloadStart: dot1 + 1,
      payloadEnd: dot2,
      signingInput: Buffer.from(token.slice(0, dot2), 'latin1'),
      signature: Buffer.from(token.slice(dot2 + 1), 'base64url'),
    },
  }
}

/**
 * Parses a compact JWS whose payload is a JWT claim set (RFC 7519 §7.2). Rejects JWE (five
 * segments), unsecured JWS (empty signature), non-canonical base64url, non-object header or
 * payload, and any `crit` header: we implement no JWS extension, and RFC 7515 §4.1.11
 * requires rejecting what we do not understand.
 *
 * @example
 * const r = parseCompactJws(token, 8192)
 * if (r.ok) console.log(r.token.header.alg)
 */
export function parseCompactJws(token: string, maxBytes: number): ParseResult {
  const split = splitCompactJws(token, maxBytes)
  if (!split.ok) return split
  const { header, payloadStart, payloadEnd, signingInput, signature } = split.parts
  if (payloadStart === payloadEnd) return fail('malformed', 'empty payload')
  const payload = parseJsonObject(token, payloadStart, payloadEnd)
  if (typeof payload === 'string') return fail('malformed', `payload: ${payload}`)
  return { ok: true, token: { header, payload, signingInput, signature } }
}
