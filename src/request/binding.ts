/**
 * Sender-constrained tokens (issue #13 §2): after the token verifies, how it was presented
 * must fit how it is bound. A token carrying `cnf` (RFC 7800) is bound to a key or a
 * certificate: accepting it as a plain bearer token would give whoever stole it what the
 * binding exists to stop, so that is refused whatever the issuer's `dpop.mode`. A `cnf` the
 * sidecar cannot check (`x5t#S256`, RFC 8705, until the TLS listener checks it) is refused too.
 *
 * DPoP (RFC 9449 §7.1): `Authorization: DPoP <token>` plus exactly one `DPoP` proof header,
 * verified by verify/dpop.ts against the request as the client addressed it: the listener's
 * scheme and the `Host` header, the path as sent. X-Forwarded-* are never trusted for it:
 * behind a proxy that rewrites Host or terminates TLS, the client's htu would not match, and
 * trusting a client-supplied X-Forwarded-Host would let a proof for another origin pass.
 */
import type { IssuerConfig } from '../config/types.ts'
import { checkProof } from '../verify/dpop.ts'
import type { ReplayCache } from '../verify/dpop-replay.ts'
import type { TokenScheme } from '../verify/extract.ts'
import type { Reason } from '../verify/reasons.ts'
import type { Claims } from '../verify/verifier.ts'

type Headers = Readonly<Record<string, string | string[] | undefined>>

/** The token as begin() found it, and the request it came in (no copy of its fields: one object per request). */
export interface PresentedToken {
  readonly token: string
  readonly scheme: TokenScheme
  readonly request: {
    readonly method: string
    /** `rawPath`: the path as the client sent it (no query). */
    readonly target: { readonly rawPath: string }
    readonly headers: Headers
    readonly rawHeaders: readonly string[]
    /** The data-plane listener's scheme (default http). */
    readonly listenerScheme?: 'http' | 'https'
  }
}

export type BindingResult =
  | { readonly ok: true; readonly jkt: string | undefined }
  | { readonly ok: false; readonly reason: Reason; readonly detail: string }

export interface BindingDeps {
  readonly replay: ReplayCache
  /** ms */
  readonly clockSkew: number
  /** epoch ms */
  readonly now: () => number
}

const UNBOUND: BindingResult = { ok: true, jkt: undefined }

function fail(reason: Reason, detail: string): BindingResult {
  return { ok: false, reason, detail }
}

function countHeader(rawHeaders: readonly string[], name: string): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) n++
  return n
}

/**
 * @example
 * const b = checkBinding(issuer, claims, { token, scheme: 'dpop', method, rawPath, headers, rawHeaders, listenerScheme: 'http' }, deps)
 * if (!b.ok) deny(b.reason)
 */
export function checkBinding(issuer: IssuerConfig, claims: Claims, req: PresentedToken, deps: BindingDeps): BindingResult {
  const { mode } = issuer.dpop
  const cnf = claims.cnf
  if (req.scheme === 'bearer') {
    if (cnf !== undefined) return fail('token_bound', 'a token with cnf was presented as a plain bearer token')
    if (mode === 'required') return fail('dpop_required', `issuer ${issuer.name} requires DPoP (dpop.mode: required)`)
    return UNBOUND
  }
  if (mode === 'off') return fail('dpop_not_allowed', `issuer ${issuer.name} has dpop.mode: off`)
  const jkt = typeof cnf === 'object' && cnf !== null && !Array.isArray(cnf) ? (cnf as Record<string, unknown>).jkt : undefined
  if (typeof jkt !== 'string') {
    return cnf === undefined ? fail('dpop_not_allowed', 'DPoP scheme but the token has no cnf.jkt') : fail('token_bound', 'cnf has no jkt: a binding this request cannot prove')
  }
  const { request } = req
  const proof = request.headers.dpop
  // RFC 9449 §4.3 step 1: exactly one DPoP header.
  if (proof === undefined) return fail('invalid_dpop_proof', 'no DPoP proof header')
  if (Array.isArray(proof) || countHeader(request.rawHeaders, 'dpop') > 1) return fail('invalid_dpop_proof', 'more than one DPoP header')
  const host = request.headers.host
  if (typeof host !== 'string' || host === '') return fail('invalid_dpop_proof', 'no Host header to match htu against')
  const r = checkProof(proof, { method: request.method, uri: `${request.listenerScheme ?? 'http'}://${host}${request.target.rawPath}`, accessToken: req.token, jkt }, {
    maxAge: issuer.dpop.proofMaxAge,
    clockSkew: deps.clockSkew,
    now: deps.now(),
    replay: deps.replay,
  })
  return r.ok ? { ok: true, jkt: r.jkt } : fail(r.reason, r.detail)
}
