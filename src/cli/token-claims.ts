/**
 * The payload `jwt-sidecar token` signs: the issuer's `iss` (with `tid` for a `{tenantid}`
 * issuer) and first audience (in its `audienceClaim`), `iat`/`exp`
 * from `--ttl`, `--sub`, `--scope`, then each `--claim path=value` in order.
 *
 * A claim path is dotted (`realm_access.roles`), split exactly as the sidecar splits the paths
 * in `identity.headers` and `routes[].require.claims`, so what one can set the other can read.
 */

/** A `--claim` that cannot be applied; the CLI answers it as a usage error (exit 2). */
export class ClaimError extends Error {}

// Names that would reach Object.prototype through a plain-object assignment.
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype'])

/** JSON when the text parses (`["admin"]`, `42`, `true`, `{"a":1}`), else the text as a string. */
export function claimValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/**
 * Sets `path=value` into `payload`, creating the objects on the way.
 *
 * @example
 * const p = {}
 * setClaim(p, 'realm_access.roles=["admin"]') // p = { realm_access: { roles: ['admin'] } }
 */
export function setClaim(payload: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=')
  if (eq <= 0) throw new ClaimError(`--claim ${JSON.stringify(assignment)}: expected path=value, like realm_access.roles='["admin"]'`)
  const path = assignment.slice(0, eq)
  const segments = path.split('.')
  if (segments.some((s) => s === '')) throw new ClaimError(`--claim ${JSON.stringify(path)}: a claim path is names joined by dots, like realm_access.roles`)
  const bad = segments.find((s) => FORBIDDEN.has(s))
  if (bad !== undefined) throw new ClaimError(`--claim ${JSON.stringify(path)}: "${bad}" is not allowed as a claim name`)
  let node = payload
  for (const [i, seg] of segments.slice(0, -1).entries()) {
    const next = Object.hasOwn(node, seg) ? node[seg] : undefined
    if (next === undefined) {
      const created: Record<string, unknown> = {}
      node[seg] = created
      node = created
    } else if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      node = next as Record<string, unknown>
    } else {
      throw new ClaimError(`--claim ${JSON.stringify(path)}: ${segments.slice(0, i + 1).join('.')} is already set to a value that is not an object`)
    }
  }
  node[segments[segments.length - 1]!] = claimValue(assignment.slice(eq + 1))
}

export interface PayloadOptions {
  readonly iss: string
  readonly aud: readonly string[]
  /** The claim the audience goes in: the issuer's `audienceClaim` (`aud`, or e.g. Cognito's `client_id`). */
  readonly audienceClaim: string
  /** A `{tenantid}` issuer's tenant: its `tid` claim (Entra ID). */
  readonly tid: string | undefined
  /** Epoch seconds. */
  readonly now: number
  /** Seconds. */
  readonly ttl: number
  readonly sub: string | undefined
  readonly scope: string | undefined
  /** `path=value` assignments, applied last, in order: they may override any claim above. */
  readonly claims: readonly string[]
}

/** The claims, in the order a reader expects them (iss, sub, aud, iat, exp, scope, the rest). */
export function buildPayload(o: PayloadOptions): Record<string, unknown> {
  const payload: Record<string, unknown> = { iss: o.iss }
  if (o.sub !== undefined) payload.sub = o.sub
  // RFC 7519 §4.1.3: a single audience may be a string; several are an array.
  payload[o.audienceClaim] = o.aud.length === 1 ? o.aud[0] : [...o.aud]
  if (o.tid !== undefined) payload.tid = o.tid
  payload.iat = o.now
  payload.exp = o.now + o.ttl
  if (o.scope !== undefined) payload.scope = o.scope
  for (const c of o.claims) setClaim(payload, c)
  return payload
}
