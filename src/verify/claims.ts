/**
 * The claim checks that follow a valid signature (RFC 7519 §4.1), as a table of rules: the
 * verifier runs `check`, `jwt-sidecar verify` prints `explain` — one source of truth, so the
 * explanation can never disagree with the decision.
 */
import type { IssuerConfig } from '../config/types.ts'
import type { TokenReason } from './reasons.ts'

export type Payload = Readonly<Record<string, unknown>>

export interface ClaimRule {
  /** What is checked, for explanations. */
  readonly name: string
  /** undefined when the rule holds. `now` in seconds. */
  check(payload: Payload, now: number): TokenReason | undefined
  /** The values compared, e.g. `exp 1700000300 > now 1700000000 - skew 60`. */
  explain(payload: Payload, now: number): string
}

/**
 * Own properties only, through dotted paths (`realm_access.roles`): a claim named
 * `__proto__` or a missing member never reaches Object.prototype.
 */
export function claimAt(payload: Payload, path: readonly string[]): unknown {
  let v: unknown = payload
  for (const seg of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, seg)) return undefined
    v = (v as Record<string, unknown>)[seg]
  }
  return v
}

const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/**
 * RFC 7519 §4.1 (and §2 for StringOrURI and NumericDate): the JSON type of each registered
 * claim. A token whose `sub` is `12345` or `{"id":"admin"}` is malformed: forwarded, it would
 * become `X-Auth-Subject: {"id":"admin"}` (issue #9 §2). `null` counts as absent, as
 * everywhere else (requiredClaims, identity headers).
 */
const REGISTERED_CLAIM_TYPES: readonly (readonly [string, string, (v: unknown) => boolean])[] = [
  ['iss', 'a string', (v) => typeof v === 'string'],
  ['sub', 'a string', (v) => typeof v === 'string'],
  ['aud', 'a string or an array of strings', (v) => typeof v === 'string' || (Array.isArray(v) && v.every((a) => typeof a === 'string'))],
  ['exp', 'a NumericDate', isNumericDate],
  ['nbf', 'a NumericDate', isNumericDate],
  ['iat', 'a NumericDate', isNumericDate],
  ['jti', 'a string', (v) => typeof v === 'string'],
]

/** The first registered claim with the wrong JSON type, with what it should be; undefined when all fit. */
function wrongClaimType(payload: Payload): { readonly claim: string; readonly expected: string } | undefined {
  for (const [claim, expected, fits] of REGISTERED_CLAIM_TYPES) {
    const v = payload[claim]
    if (v !== undefined && v !== null && Object.hasOwn(payload, claim) && !fits(v)) return { claim, expected }
  }
  return undefined
}
const iso = (s: number): string => (Number.isFinite(s) && Math.abs(s) < 8.64e12 ? new Date(s * 1000).toISOString() : String(s))
const show = (v: unknown): string => (v === undefined ? 'absent' : JSON.stringify(v).slice(0, 80))

/**
 * @example
 * const rules = createClaimRules(issuer, 60_000)
 * for (const r of rules) { const reason = r.check(payload, Date.now() / 1000); if (reason) return reason }
 */
export function createClaimRules(issuer: IssuerConfig, clockSkewMs: number, tenant?: string): readonly ClaimRule[] {
  const skew = clockSkewMs / 1000
  const audiences = new Set(issuer.audiences)
  const audienceClaim = issuer.audienceClaim
  const required = issuer.requiredClaims.filter((c) => c !== 'exp')
  const maxLifetime = issuer.maxLifetime === undefined ? undefined : issuer.maxLifetime / 1000
  const rules: ClaimRule[] = [
    {
      name: 'types',
      // First: every later rule may then rely on the types.
      check: (p) => (wrongClaimType(p) === undefined ? undefined : 'bad_claim_type'),
      explain(p) {
        const wrong = wrongClaimType(p)
        return wrong === undefined
          ? 'registered claims have their RFC 7519 types (iss, sub, jti strings; aud a string or strings; exp, nbf, iat NumericDates)'
          : `${wrong.claim} ${show(p[wrong.claim])} must be ${wrong.expected} (RFC 7519 §4.1)`
      },
    },
    {
      name: 'exp',
      // exp is always required: a token that never expires cannot be revoked by time.
      check(p, now) {
        const exp = p.exp
        if (exp === undefined || exp === null) return 'missing_claim'
        if (!isNumericDate(exp)) return 'bad_claim_type'
        // RFC 7519 §4.1.4: the current time must be before exp; skew widens the window.
        return now >= exp + skew ? 'expired' : undefined
      },
      explain: (p, now) => `exp ${show(p.exp)}${isNumericDate(p.exp) ? ` (${iso(p.exp)})` : ''} must be after now ${Math.floor(now)} (${iso(now)}) minus skew ${skew}s`,
    },
    {
      name: 'nbf',
      check(p, now) {
        const nbf = p.nbf
        if (nbf === undefined || nbf === null) return undefined
        if (!isNumericDate(nbf)) return 'bad_claim_type'
        return now + skew < nbf ? 'not_yet_valid' : undefined
      },
      explain: (p, now) => (p.nbf === undefined ? 'nbf absent' : `nbf ${show(p.nbf)} must be at most now ${Math.floor(now)} plus skew ${skew}s`),
    },
    {
      name: 'iat',
      // A token issued in the future means a clock is wrong, here or at the issuer.
      check(p, now) {
        const iat = p.iat
        if (iat === undefined || iat === null) return undefined
        if (!isNumericDate(iat)) return 'bad_claim_type'
        return iat > now + skew ? 'issued_in_future' : undefined
      },
      explain: (p, now) => (p.iat === undefined ? 'iat absent' : `iat ${show(p.iat)} must be at most now ${Math.floor(now)} plus skew ${skew}s`),
    },
  ]
  const present = (p: Payload, c: string): boolean => Object.hasOwn(p, c) && p[c] !== null && p[c] !== undefined
  if (required.length > 0) {
    rules.push({
      name: 'requiredClaims',
      check: (p) => (required.every((c) => present(p, c)) ? undefined : 'missing_claim'),
      explain: (p) => `required claims ${required.join(', ')}: ${required.map((c) => `${c} ${present(p, c) ? 'present' : 'MISSING'}`).join(', ')}`,
    })
  }
  if (maxLifetime !== undefined) {
    rules.push({
      name: 'maxLifetime',
      check(p) {
        if (!isNumericDate(p.iat) || !isNumericDate(p.exp)) return 'missing_claim'
        return p.exp - p.iat > maxLifetime ? 'lifetime_exceeded' : undefined
      },
      explain: (p) => `exp - iat = ${isNumericDate(p.exp) && isNumericDate(p.iat) ? `${p.exp - p.iat}s` : 'unknown (iat or exp absent)'} must be at most maxLifetime ${maxLifetime}s`,
    })
  }
  rules.push({
    name: 'aud',
    // RFC 7519 §4.1.3: a string or an array of strings; one configured audience is enough.
    // `audienceClaim` reads it from another claim with the same exact-match semantics: AWS
    // Cognito's access tokens name their app client in `client_id` and carry no `aud`.
    check(p) {
      const aud = Object.hasOwn(p, audienceClaim) ? p[audienceClaim] : undefined
      if (typeof aud === 'string') return audiences.has(aud) ? undefined : 'bad_audience'
      if (Array.isArray(aud)) for (const a of aud) if (typeof a === 'string' && audiences.has(a)) return undefined
      return 'bad_audience'
    },
    explain: (p) => `${audienceClaim} ${show(Object.hasOwn(p, audienceClaim) ? p[audienceClaim] : undefined)} must contain one of ${JSON.stringify([...audiences])}${audienceClaim === 'aud' ? '' : ' (audienceClaim)'}`,
  })
  if (tenant !== undefined) {
    rules.push({
      name: 'tid',
      // Entra ID multi-tenant: the iss matched the {tenantid} template with this tenant, and
      // the token's own tenant claim must agree (Microsoft's guidance for multi-tenant apps:
      // validate iss against tid). A mismatch is a token from no configured tenant.
      check: (p) => (p.tid === tenant ? undefined : 'unknown_issuer'),
      explain: (p) => `tid ${show(p.tid)} must equal the tenant in iss, ${JSON.stringify(tenant)}`,
    })
  }
  return rules
}

/**
 * RFC 8725 §3.11 / RFC 9068 §4: compare `typ` case-insensitively, with or without the
 * `application/` prefix (`at+jwt` equals `application/at+JWT`).
 */
export function typMatches(expected: string, actual: string | undefined): boolean {
  if (actual === undefined) return false
  const norm = (t: string): string => {
    const l = t.toLowerCase()
    return l.startsWith('application/') ? l.slice(12) : l
  }
  return norm(expected) === norm(actual)
}
