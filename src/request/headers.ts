/**
 * Strip before you add. Every inbound header a client could use to impersonate a verified
 * identity is removed before anything else runs, on every route (auth: none included, the
 * websocket upgrade included); only then are the verified identity headers set on the
 * upstream request.
 *
 * Names are compared as the app will read them, not as they were sent: CGI, FastCGI/PHP,
 * WSGI, Rack and many servlet containers fold case and `_`/`-` (header-names.ts), so
 * `X_Auth_Subject` is `X-Auth-Subject` to them and is stripped like it (issue #9 §1).
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { ArrayForm, IdentityConfig } from '../config/types.ts'
import { FRAMING, HOP_BY_HOP, foldHeaderName, headerNameMatcher } from '../http/header-names.ts'
import { claimAt } from '../verify/claims.ts'
import type { Claims } from '../verify/verifier.ts'
import type { BoundTo } from './binding.ts'

/**
 * An identity header not sent: its value was over `identity.maxValueBytes` (`too_long`), or
 * an array claim in the `space` form held an element that is not a scope token (`not_joinable`).
 */
export interface Dropped {
  readonly header: string
  readonly cause: 'too_long' | 'not_joinable'
  /** The value's size; 0 for `not_joinable` (nothing was formatted). */
  readonly bytes: number
}

/**
 * Why an inbound header name was removed or refused; a closed set (a metric label):
 * - `protected`: the name of an identity header, a strip pattern or a method override;
 * - `alias`: a name with `_` that folds onto a protected name or one the sidecar owns;
 * - `underscore`: any other name with `_` (identity.underscoreHeaders: drop | reject).
 */
export type HeaderNameKind = 'protected' | 'alias' | 'underscore'
export const HEADER_NAME_KINDS: readonly HeaderNameKind[] = ['protected', 'alias', 'underscore']

/** What stripInbound did; undefined when it did nothing (the common case allocates nothing). */
export interface InboundStrip {
  /** Set when `underscoreHeaders: reject` refuses the request: the first offending name. */
  readonly rejected: { readonly name: string; readonly kind: HeaderNameKind } | undefined
  /** Names removed (lower case, as received), with why. */
  readonly dropped: readonly { readonly name: string; readonly kind: HeaderNameKind }[]
}

/**
 * Headers some frameworks read as the method to act on (express's method-override,
 * Symfony, Rails' Rack::MethodOverride): a `POST` would get past a method-scoped route as a
 * `DELETE` (issue #9 §6). Stripped unless `requests.methodOverride: honor`.
 */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = ['x-http-method-override', 'x-http-method', 'x-method-override']

/** Headers the sidecar itself sets on the upstream request (proxy/server.ts forwardedHeaders). */
const FORWARDING = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip']

export interface HeaderPolicyOptions {
  /** Lower-cased token source header names: never stripped, but their `_` aliases are (the app could read another token there). */
  readonly tokenHeaders?: readonly string[]
  /** Strip the method-override headers (default true). */
  readonly stripMethodOverride?: boolean
  /**
   * Lower-cased names the sidecar reads and removes before forwarding (the trusted ingress's
   * client-certificate header): not stripped on the way in, but their `_` aliases are.
   */
  readonly consumedHeaders?: readonly string[]
}

export interface HeaderPolicy {
  /** Deletes spoofable identity headers and their aliases from the inbound request, in place. */
  stripInbound(headers: IncomingHttpHeaders): InboundStrip | undefined
  /**
   * Sets the verified identity headers on an outbound header object (a copy). A value over
   * `identity.maxValueBytes` is not set; the dropped ones are returned (for a log line), and
   * nothing is allocated when none is.
   */
  setIdentity(out: Record<string, string | string[] | undefined>, claims: Claims, binding?: BoundTo): Dropped[] | undefined
  /** Lower-cased upstream identity header names, the claims and binding headers included (always stripped). */
  readonly identityNames: readonly string[]
}

/**
 * @example
 * const h = createHeaderPolicy(config.identity, { tokenHeaders: ['authorization'] })
 * h.stripInbound(req.headers)            // X-Auth-*, x_auth_subject gone
 * h.setIdentity(outHeaders, verified)    // x-auth-subject: <sub>
 */
export function createHeaderPolicy(identity: IdentityConfig, options: HeaderPolicyOptions = {}): HeaderPolicy {
  // A dotted claim name is a path into nested claims (realm_access.roles), own properties only.
  const mapping = Object.entries(identity.headers).map(([header, rule]) => {
    const { claim, arrays } = typeof rule === 'string' ? { claim: rule, arrays: identity.arrays } : { claim: rule.claim, arrays: rule.arrays ?? identity.arrays }
    return { name: header.toLowerCase(), path: claim.split('.'), arrays }
  })
  const claimsHeader = identity.claimsHeader?.toLowerCase()
  const bindingHeader = identity.bindingHeader?.toLowerCase()
  const identityNames = [...mapping.map((m) => m.name), ...[claimsHeader, bindingHeader].filter((n) => n !== undefined)]
  const { maxValueBytes, underscoreHeaders } = identity
  const protectedNames = [...identityNames, ...(options.stripMethodOverride === false ? [] : METHOD_OVERRIDE_HEADERS)]
  // Removed whenever a client sends them, whatever their spelling.
  const isProtected = headerNameMatcher(protectedNames, identity.strip)
  // A `_` spelling of these is never the real header: it can only be read as one by an app
  // that folds names (a second token, a forged X-Forwarded-For, a second Transfer-Encoding, a
  // method override the routes were not matched with under `methodOverride: honor`).
  const owned = new Set([...(options.tokenHeaders ?? []), ...(options.consumedHeaders ?? []), ...FORWARDING, ...HOP_BY_HOP, ...FRAMING, ...METHOD_OVERRIDE_HEADERS].map(foldHeaderName))

  return {
    identityNames,
    stripInbound(headers) {
      let dropped: { name: string; kind: HeaderNameKind }[] | undefined
      for (const name in headers) {
        // An HTTP/2 pseudo-header (`:path`…) is the request line, not a field: never a
        // protected name (a `*` strip pattern must not remove `:path`), never forwarded.
        if (name.charCodeAt(0) === 0x3a) continue
        // Node lower-cases names; only a name with `_` needs folding (the common case does not).
        const underscore = name.includes('_')
        const folded = underscore ? name.replaceAll('_', '-') : name
        let kind: HeaderNameKind
        if (!underscore) {
          if (!isProtected(name)) continue
          kind = 'protected'
        } else {
          kind = isProtected(folded) || owned.has(folded) ? 'alias' : 'underscore'
          if (underscoreHeaders === 'reject') return { rejected: { name, kind }, dropped: dropped ?? [] }
          if (underscoreHeaders === 'allow' && kind === 'underscore') continue
        }
        delete headers[name]
        ;(dropped ??= []).push({ name, kind })
      }
      return dropped === undefined ? undefined : { rejected: undefined, dropped }
    },
    setIdentity(out, claims, binding) {
      let dropped: Dropped[] | undefined
      for (const m of mapping) {
        const v = formatClaim(claimAt(claims, m.path), m.arrays)
        if (v === null) (dropped ??= []).push({ header: m.name, cause: 'not_joinable', bytes: 0 })
        else if (v !== undefined) dropped = setBounded(out, m.name, v, maxValueBytes, dropped)
      }
      // The whole verified payload, base64url JSON.
      if (claimsHeader !== undefined) dropped = setBounded(out, claimsHeader, Buffer.from(JSON.stringify(claims)).toString('base64url'), maxValueBytes, dropped)
      // What the binding was proven with, never the proof (RFC 7800 member names; base64url values).
      if (bindingHeader !== undefined && binding !== undefined) {
        const parts: string[] = []
        if (binding.jkt !== undefined) parts.push(`jkt=${binding.jkt}`)
        if (binding.x5t !== undefined) parts.push(`x5t#S256=${binding.x5t}`)
        if (parts.length > 0) dropped = setBounded(out, bindingHeader, parts.join(', '), maxValueBytes, dropped)
      }
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
  list.push({ header: name, cause: 'too_long', bytes: v.length })
  return list
}

/**
 * Claim value → header value. Strings as they are, numbers and booleans as text, arrays
 * joined with "," (`join`, other elements as JSON), as JSON (`json`) or joined with one space
 * (`space`), objects as JSON. A value that is not plain printable ASCII (CR, LF, NUL,
 * non-ASCII…), or that itself starts like an ext-value, is sent as an RFC 8187 ext-value,
 * `UTF-8''` + percent-encoded UTF-8, so it can neither split the header nor be read two ways.
 *
 * Returns undefined for an absent claim, and null for an array the `space` form cannot carry:
 * `space` promises the RFC 6749 §3.3 / RFC 9068 `scope` shape, a list split on single spaces,
 * so every element must be a scope token (a non-empty string of printable ASCII without space,
 * `"` or `\`). `["orders:read write"]` would arrive as two scopes, so such a value is refused
 * whole (the caller drops the header and logs it) rather than sent in a shape read two ways.
 */
export function formatClaim(value: unknown, arrays: ArrayForm = 'join'): string | undefined | null {
  let s: string
  if (value === undefined || value === null) return undefined
  if (typeof value === 'string') s = value
  else if (typeof value === 'number' || typeof value === 'boolean') s = String(value)
  else if (Array.isArray(value) && arrays === 'join') s = value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(',')
  else if (Array.isArray(value) && arrays === 'space') {
    if (!value.every((v) => typeof v === 'string' && SCOPE_TOKEN.test(v))) return null
    s = value.join(' ')
  } else s = JSON.stringify(value)
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

// RFC 6749 §3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), the pattern routes[].require.scopes
// uses too. Printable ASCII, so a space-joined list is sent raw unless it starts like an ext-value.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/

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
