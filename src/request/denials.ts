/**
 * Denial responses, precomputed per reason: RFC 6750 §3 challenges and a small JSON body
 * that names the reason and never echoes the token.
 */
import { REASONS } from '../verify/reasons.ts'
import type { Reason } from '../verify/reasons.ts'
import { DPOP_ALGORITHMS } from '../verify/dpop.ts'

export interface Denial {
  readonly status: number
  readonly body: string
  readonly headers: Readonly<Record<string, string>>
}

/** Seconds a client should wait when the sidecar itself cannot verify (keys_unavailable). */
const RETRY_AFTER_SECONDS = 5

const REALM = 'jwt-sidecar'

/**
 * Refusals about the DPoP binding itself get a `DPoP` challenge (RFC 9449 §7.1), naming the
 * proof algorithms accepted (`algs`), so a DPoP client knows what to send; the others keep
 * the Bearer one.
 */
const DPOP_REASONS: ReadonlySet<Reason> = new Set<Reason>(['dpop_required', 'invalid_dpop_proof', 'dpop_replay', 'dpop_not_allowed'])
const DPOP_ALGS = DPOP_ALGORITHMS.join(' ')

function build(reason: Reason, scope?: string): Denial {
  const { status, error } = REASONS[reason]
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    // Auth failures must not be cached by intermediaries (RFC 6749 §5.2 does the same).
    'cache-control': 'no-store',
  }
  if (status === 401 || status === 400) {
    // RFC 6750 §3.1: with no token at all, the challenge carries no error attribute.
    headers['www-authenticate'] = error === undefined
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="${error}", error_description="${reason}"`
  }
  if (DPOP_REASONS.has(reason)) {
    headers['www-authenticate'] = `DPoP realm="${REALM}", error="${error}", error_description="${reason}", algs="${DPOP_ALGS}"`
  }
  if (error === 'insufficient_scope') {
    // RFC 6750 §3: the 403 challenge names the scopes the resource requires.
    headers['www-authenticate'] = `Bearer realm="${REALM}", error="${error}", error_description="${reason}"${scope === undefined || scope === '' ? '' : `, scope="${scope}"`}`
  }
  if (status === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS)
  // Ends with a newline, as the admin port's answers do: `curl` at a terminal then leaves the
  // prompt (or the next command's output) on a line of its own.
  return { status, headers, body: `${JSON.stringify({ error: error ?? 'invalid_token', reason })}\n` }
}

const DENIALS = Object.fromEntries((Object.keys(REASONS) as Reason[]).map((r) => [r, build(r)])) as Record<Reason, Denial>

export function denial(reason: Reason): Denial {
  return DENIALS[reason]
}

/**
 * The 401 for a request with no token, by the DPoP modes of the issuers its route accepts.
 * A client that holds no token yet learns from the challenges which schemes it may use: RFC
 * 6750 §3 (`Bearer`) and RFC 9449 §7.1 (`DPoP`, with the proof algorithms accepted); RFC 9110
 * §11.6.1 lets one `WWW-Authenticate` field carry several challenges, comma-separated. No
 * `error` attribute: the request carried no credentials (RFC 6750 §3.1, RFC 9449 §7.1).
 * `off`: no issuer accepts DPoP, Bearer only; `allowed`: both; `required`: every issuer
 * requires DPoP, so only the DPoP challenge (a Bearer token would be refused, dpop_required).
 */
const MISSING_TOKEN: Readonly<Record<'off' | 'allowed' | 'required', Denial>> = {
  off: DENIALS.missing_token,
  allowed: withChallenge(DENIALS.missing_token, `Bearer realm="${REALM}", DPoP realm="${REALM}", algs="${DPOP_ALGS}"`),
  required: withChallenge(DENIALS.missing_token, `DPoP realm="${REALM}", algs="${DPOP_ALGS}"`),
}

function withChallenge(d: Denial, challenge: string): Denial {
  return { ...d, headers: { ...d.headers, 'www-authenticate': challenge } }
}

/** Built once per route (request/decide.ts `fixedDecisions`), never per request. */
export function missingToken(dpop: 'off' | 'allowed' | 'required'): Denial {
  return MISSING_TOKEN[dpop]
}

/**
 * A 403 for a route, whose challenge carries the route's required scopes (space-delimited,
 * RFC 6750 §3). Build these once per route, not per request.
 */
export function forbidden(reason: 'insufficient_scope' | 'claim_mismatch' | 'issuer_not_allowed', requiredScopes: readonly string[]): Denial {
  return build(reason, requiredScopes.join(' '))
}
