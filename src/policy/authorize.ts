/**
 * Least privilege per route, after the token is verified: the route's accepted issuers, its
 * required scopes and claim values. A failure is 403 (RFC 6750 §3.1 insufficient_scope),
 * never 401: the token is valid, it just does not grant this.
 */
import type { ClaimValue, RouteConfig } from '../config/types.ts'
import { claimAt } from '../verify/claims.ts'
import type { Payload } from '../verify/claims.ts'

export type Denied = 'issuer_not_allowed' | 'insufficient_scope' | 'claim_mismatch'

export interface RouteAuthorizer {
  /** undefined when the token may use the route. */
  authorize(issuer: string, claims: Payload): Denied | undefined
  /** Each requirement, whether the token meets it (undefined: nothing required), and what it has; for `jwt-sidecar verify`. */
  explain(issuer: string, claims: Payload): { readonly ok: boolean | undefined; readonly line: string }[]
}

/**
 * Granted scopes: `scope` as a space-delimited string (RFC 8693 §4.2, RFC 9068 §2.2.3) or
 * `scp` as a string or an array (Entra ID, Okta).
 */
export function grantedScopes(claims: Payload): Set<string> {
  const out = new Set<string>()
  for (const v of [claimAt(claims, ['scope']), claimAt(claims, ['scp'])]) {
    if (typeof v === 'string') for (const s of v.split(' ')) if (s !== '') out.add(s)
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string') out.add(s)
  }
  return out
}

/** The claim, or any element of an array claim, equals one of the allowed values (same type). */
export function claimMatches(value: unknown, allowed: readonly ClaimValue[]): boolean {
  if (Array.isArray(value)) return value.some((v) => allowed.includes(v as ClaimValue))
  return allowed.includes(value as ClaimValue)
}

/**
 * @example
 * const a = createRouteAuthorizer(route)
 * a.authorize('corp', claims) // undefined | 'insufficient_scope' | …
 */
export function createRouteAuthorizer(route: RouteConfig): RouteAuthorizer {
  const issuers = route.issuers.length === 0 ? undefined : new Set(route.issuers)
  const scopes = route.require.scopes
  const claims = Object.entries(route.require.claims).map(([path, allowed]) => ({ path, segments: path.split('.'), allowed }))
  return {
    authorize(issuer, payload) {
      if (issuers !== undefined && !issuers.has(issuer)) return 'issuer_not_allowed'
      if (scopes.length > 0) {
        const granted = grantedScopes(payload)
        for (const s of scopes) if (!granted.has(s)) return 'insufficient_scope'
      }
      for (const c of claims) if (!claimMatches(claimAt(payload, c.segments), c.allowed)) return 'claim_mismatch'
      return undefined
    },
    explain(issuer, payload) {
      const out: { ok: boolean | undefined; line: string }[] = []
      if (issuers === undefined) out.push({ ok: undefined, line: 'issuers: any' })
      else out.push({ ok: issuers.has(issuer), line: `issuers ${JSON.stringify([...issuers])}: ${issuer} ${issuers.has(issuer) ? 'accepted' : 'NOT ACCEPTED'}` })
      if (scopes.length > 0) {
        const granted = grantedScopes(payload)
        const missing = scopes.filter((s) => !granted.has(s))
        out.push({ ok: missing.length === 0, line: `scopes required ${JSON.stringify(scopes)}, granted ${JSON.stringify([...granted])}${missing.length === 0 ? '' : `: MISSING ${missing.join(' ')}`}` })
      }
      for (const c of claims) {
        const v = claimAt(payload, c.segments)
        const ok = claimMatches(v, c.allowed)
        out.push({ ok, line: `claim ${c.path} = ${v === undefined ? 'absent' : JSON.stringify(v).slice(0, 80)} must be one of ${JSON.stringify(c.allowed)}${ok ? '' : ': NO MATCH'}` })
      }
      return out
    },
  }
}
