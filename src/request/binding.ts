/**
 * Sender-constrained tokens (issue #13 §2): after the token verifies, how it was presented
 * must fit how it is bound. A token carrying `cnf` (RFC 7800) is bound to a key or a
 * certificate: accepting it without the proof would give whoever stole it what the binding
 * exists to stop. So every confirmation method in `cnf` must be proven, and a method the
 * sidecar cannot prove (`jwk`, `kid`, `jku`, …) refuses the token.
 *
 * DPoP (RFC 9449 §7.1), `cnf.jkt`: `Authorization: DPoP <token>` plus exactly one `DPoP` proof
 * header, verified by verify/dpop.ts against the request as the client addressed it: the
 * listener's scheme and the `Host` header, the path as sent. X-Forwarded-* are never trusted
 * for it: behind a proxy that rewrites Host or terminates TLS, the client's htu would not
 * match, and trusting a client-supplied X-Forwarded-Host would let a proof for another origin pass.
 *
 * mTLS (RFC 8705 §3), `cnf["x5t#S256"]`: presented with the Bearer scheme over a connection
 * whose client certificate has that SHA-256 thumbprint (request/client-cert.ts: the TLS
 * listener's handshake, or a trusted ingress's header).
 */
import type { IssuerConfig } from '../config/types.ts'
import { headerCount } from '../http/header-names.ts'
import { checkProof } from '../verify/dpop.ts'
import type { ProofTrace } from '../verify/dpop.ts'
import type { ReplayCache } from '../verify/dpop-replay.ts'
import type { TokenScheme } from '../verify/extract.ts'
import type { Reason } from '../verify/reasons.ts'
import type { Claims } from '../verify/verifier.ts'
import type { ClientCertificates, Connection } from './client-cert.ts'

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
    readonly listenerScheme?: 'http' | 'https' | undefined
    /** For a certificate-bound token: the peer address and TLS client certificate. */
    readonly connection?: Connection | undefined
  }
}

/** What a bound token was proven with: RFC 7638 / RFC 8705 thumbprints, base64url. */
export interface BoundTo {
  /** The DPoP proof key's thumbprint (cnf.jkt). */
  readonly jkt: string | undefined
  /** The client certificate's SHA-256 thumbprint (cnf x5t#S256). */
  readonly x5t: string | undefined
}

export type BindingResult =
  | ({ readonly ok: true } & BoundTo)
  | { readonly ok: false; readonly reason: Reason; readonly detail: string }

export interface BindingDeps {
  readonly replay: ReplayCache
  /** Where a certificate-bound token's client certificate is read. */
  readonly certificates: ClientCertificates
  /** ms */
  readonly clockSkew: number
  /** epoch ms */
  readonly now: () => number
}

const UNBOUND: BindingResult = { ok: true, jkt: undefined, x5t: undefined }

function fail(reason: Reason, detail: string): BindingResult {
  return { ok: false, reason, detail }
}


/**
 * @example
 * const b = checkBinding(issuer, claims, { token, scheme: 'dpop', request }, deps)
 * if (!b.ok) deny(b.reason)
 */
export function checkBinding(issuer: IssuerConfig, claims: Claims, req: PresentedToken, deps: BindingDeps, trace?: ProofTrace): BindingResult {
  const { mode } = issuer.dpop
  const cnf = claims.cnf
  if (cnf === undefined) {
    if (req.scheme === 'dpop') return fail('dpop_not_allowed', mode === 'off' ? `issuer ${issuer.name} has dpop.mode: off` : 'DPoP scheme but the token has no cnf.jkt')
    if (mode === 'required') return fail('dpop_required', `issuer ${issuer.name} requires DPoP (dpop.mode: required)`)
    return UNBOUND
  }
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) return fail('token_bound', 'cnf is not a JSON object')
  const c = cnf as Record<string, unknown>
  for (const member in c) {
    if (member !== 'jkt' && member !== 'x5t#S256') return fail('token_bound', 'cnf has a confirmation method other than jkt and x5t#S256 (RFC 7800 jwk, jwe, kid, jku: not provable here)')
  }
  const jkt = c.jkt
  const x5t = c['x5t#S256']
  if (jkt !== undefined && typeof jkt !== 'string') return fail('token_bound', 'cnf.jkt is not a string')
  if (x5t !== undefined && typeof x5t !== 'string') return fail('token_bound', 'cnf x5t#S256 is not a string')
  if (jkt === undefined && x5t === undefined) return fail('token_bound', 'cnf has no confirmation method')
  let proven: string | undefined
  if (req.scheme === 'bearer') {
    if (jkt !== undefined) return fail('token_bound', 'a token bound to a DPoP key (cnf.jkt) was presented as a plain bearer token')
    if (mode === 'required') return fail('dpop_required', `issuer ${issuer.name} requires DPoP (dpop.mode: required)`)
  } else {
    if (mode === 'off') return fail('dpop_not_allowed', `issuer ${issuer.name} has dpop.mode: off`)
    if (jkt === undefined) return fail('token_bound', 'cnf has no jkt: a binding this request cannot prove with DPoP')
    const r = checkDpop(issuer, req, jkt, deps, trace)
    if (!r.ok) return r
    proven = r.jkt
  }
  if (x5t === undefined) return { ok: true, jkt: proven, x5t: undefined }
  // RFC 8705 §3: the thumbprint of the certificate this request came with.
  const cert = deps.certificates.read(req.request)
  if (!cert.ok) return fail(deps.certificates.source === 'none' ? 'token_bound' : 'certificate_required', cert.why)
  if (cert.thumbprint !== x5t) return fail('certificate_mismatch', 'the client certificate SHA-256 thumbprint is not cnf x5t#S256')
  return { ok: true, jkt: proven, x5t }
}

/** RFC 9449 §4.3: the proof, against this request and this token. */
function checkDpop(issuer: IssuerConfig, req: PresentedToken, jkt: string, deps: BindingDeps, trace: ProofTrace | undefined): BindingResult {
  const { request } = req
  const proof = request.headers.dpop
  // RFC 9449 §4.3 step 1: exactly one DPoP header.
  if (proof === undefined) return fail('invalid_dpop_proof', 'no DPoP proof header')
  if (Array.isArray(proof) || headerCount(request.rawHeaders, 'dpop') > 1) return fail('invalid_dpop_proof', 'more than one DPoP header')
  const host = request.headers.host
  if (typeof host !== 'string' || host === '') return fail('invalid_dpop_proof', 'no Host header to match htu against')
  const r = checkProof(proof, { method: request.method, uri: `${request.listenerScheme ?? 'http'}://${host}${request.target.rawPath}`, accessToken: req.token, jkt }, {
    maxAge: issuer.dpop.proofMaxAge,
    clockSkew: deps.clockSkew,
    now: deps.now(),
    replay: deps.replay,
  }, trace)
  return r.ok ? { ok: true, jkt: r.jkt, x5t: undefined } : fail(r.reason, r.detail)
}
