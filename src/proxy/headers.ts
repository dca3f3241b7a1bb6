/**
 * Strip before you add. Every inbound header a client could use to impersonate a verified
 * identity is removed before anything else runs, on every route (auth: none included);
 * only then are the verified identity headers set on the upstream request.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { IdentityConfig } from '../config/types.ts'
import { claimAt } from '../verify/claims.ts'
import type { Claims } from '../verify/verifier.ts'

/** RFC 9110 §7.6.1 (was RFC 7230 §6.1) hop-by-hop headers, plus the legacy Proxy-Connection. */
export const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
])

/** An identity header not sent because its value was over `identity.maxValueBytes`. */
export interface Dropped {
  readonly header: string
  readonly bytes: number
}

/**
 * RFC 9110 §7.6.1: the names listed in `Connection` are hop-by-hop for this one connection.
 * Lower-cased; empty when there is no Connection header.
 */
export function connectionNamed(headers: Readonly<Record<string, string | string[] | undefined>>): ReadonlySet<string> {
  const c = headers.connection
  if (c === undefined) return NO_NAMES
  return new Set((Array.isArray(c) ? c.join(',') : c).split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== ''))
}
const NO_NAMES: ReadonlySet<string> = new Set()

export interface HeaderPolicy {
  /** Deletes spoofable identity headers from the inbound request, in place. */
  stripInbound(headers: IncomingHttpHeaders): void
  /**
   * Sets the verified identity headers on an outbound header object (a copy). A value over
   * `identity.maxValueBytes` is not set; the dropped ones are returned (for a log line), and
   * nothing is allocated when none is.
   */
  setIdentity(out: Record<string, string | string[] | undefined>, claims: Claims): Dropped[] | undefined
  /** Lower-cased upstream identity header names, the claims header included (always stripped). */
  readonly identityNames: readonly string[]
}

function patternToRegExpSource(p: string): string {
  return p.toLowerCase().split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')
}

/**
 * @example
 * const h = createHeaderPolicy(config.identity)
 * h.stripInbound(req.headers)            // X-Auth-* gone
 * h.setIdentity(outHeaders, verified)    // x-auth-subject: <sub>
 */
export function createHeaderPolicy(identity: IdentityConfig): HeaderPolicy {
  // A dotted claim name is a path into nested claims (realm_access.roles), own properties only.
  const mapping = Object.entries(identity.headers).map(([header, claim]) => ({ name: header.toLowerCase(), path: claim.split('.') }))
  const claimsHeader = identity.claimsHeader?.toLowerCase()
  const identityNames = [...mapping.map((m) => m.name), ...(claimsHeader === undefined ? [] : [claimsHeader])]
  const { arrays, maxValueBytes } = identity
  const exact = new Set<string>(identityNames)
  const patterns: string[] = []
  for (const s of identity.strip) {
    if (s.includes('*')) patterns.push(patternToRegExpSource(s))
    else exact.add(s.toLowerCase())
  }
  const re = patterns.length > 0 ? new RegExp(`^(?:${patterns.join('|')})$`) : undefined

  return {
    identityNames,
    stripInbound(headers) {
      // Node lower-cases header names, so exact lookups need no case folding here.
      for (const name in headers) {
        if (exact.has(name) || (re !== undefined && re.test(name))) delete headers[name]
      }
    },
    setIdentity(out, claims) {
      let dropped: Dropped[] | undefined
      for (const m of mapping) {
        const v = formatClaim(claimAt(claims, m.path), arrays)
        if (v !== undefined) dropped = setBounded(out, m.name, v, maxValueBytes, dropped)
      }
      // The whole verified payload, base64url JSON.
      if (claimsHeader !== undefined) dropped = setBounded(out, claimsHeader, Buffer.from(JSON.stringify(claims)).toString('base64url'), maxValueBytes, dropped)
      return dropped
    },
  }
}

/** Sets `name` unless `v` is over the limit; then records it in `dropped` (created on first use). */
function setBounded(out: Record<string, string | string[] | undefined>, name: string, v: string, max: number, dropped: Dropped[] | undefined): Dropped[] | undefined {
  // Header values are ASCII after formatClaim (and base64url), so length is the byte count.
  if (v.length <= max) {
    out[name] = v
    return dropped
  }
  const list = dropped ?? []
  list.push({ header: name, bytes: v.length })
  return list
}

/**
 * Claim value → header value. Strings as they are, numbers and booleans as text, arrays
 * joined with "," (or as JSON with `identity.arrays: json`), objects as JSON. A value that is not plain printable ASCII (CR, LF, NUL,
 * non-ASCII…), or that itself starts like an ext-value, is sent as an RFC 8187 ext-value,
 * `UTF-8''` + percent-encoded UTF-8, so it can neither split the header nor be read two ways.
 */
export function formatClaim(value: unknown, arrays: 'join' | 'json' = 'join'): string | undefined {
  let s: string
  if (value === undefined || value === null) return undefined
  if (typeof value === 'string') s = value
  else if (typeof value === 'number' || typeof value === 'boolean') s = String(value)
  else if (Array.isArray(value) && arrays === 'join') s = value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(',')
  else s = JSON.stringify(value)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return encodeExtValue(s)
  }
  // A raw value that already looks like an ext-value would be decoded by the app as one, so
  // a user-controlled claim ("UTF-8''%0D%0A…") could smuggle what we refuse to send raw.
  if (EXT_VALUE_MARKER.test(s)) return encodeExtValue(s)
  return s
}

const EXT_VALUE_MARKER = /^utf-8'/i

// RFC 8187 §3.2.1 attr-char: ALPHA / DIGIT / "!" "#" "$" "&" "+" "-" "." "^" "_" "`" "|" "~"
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/

function encodeExtValue(s: string): string {
  let out = "UTF-8''"
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte)
    out += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}
