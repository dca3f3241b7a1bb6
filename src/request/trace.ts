/**
 * The request decision's steps (decide.ts), around the verifier's own (verify/trace.ts), in
 * the order of the request path: path → method → route → source → [verifier] → [dpop proof
 * checks] → binding → authorization.
 * Like the verifier's, a sink is optional and costs one `undefined` check per step when absent.
 */
import type { RouteConfig } from '../config/types.ts'
import type { RouteAuthorizer } from '../policy/authorize.ts'
import type { Payload } from '../verify/claims.ts'
import type { Reason } from '../verify/reasons.ts'
import type { VerifyTraceEvent } from '../verify/trace.ts'
import type { TokenScheme } from '../verify/extract.ts'
import type { ProofCheck } from '../verify/dpop.ts'
import type { BindingResult } from './binding.ts'

export type RequestTraceEvent =
  | VerifyTraceEvent
  /** The request target normalised (policy/normalize.ts), or why it cannot be. */
  | { readonly step: 'path'; readonly ok: true; readonly rawPath: string; readonly path: string; readonly query: string | undefined }
  | { readonly step: 'path'; readonly ok: false; readonly why: string }
  /** Only when `requests.methodOverride: honor` makes the matched method differ from the request's, or refuses it. */
  | { readonly step: 'method'; readonly method: string; readonly effective: string | { readonly invalid: string } }
  /** The first matching route rule; undefined when none matches. */
  | { readonly step: 'route'; readonly method: string; readonly path: string; readonly route: RouteConfig | undefined }
  /** Where the token was looked for: `not_read` on an `auth: none` route (an `auth: deny` route stops at the route step). */
  | { readonly step: 'source'; readonly route: RouteConfig; readonly found: 'not_read' | 'none' | 'token' | 'invalid'; readonly detail: string | undefined }
  /** One DPoP proof check (verify/dpop.ts, RFC 9449 §4.3), in the order they run, before the binding step that sums them up. */
  | { readonly step: 'dpop'; readonly check: ProofCheck; readonly ok: boolean; readonly detail: string }
  /** How the token was presented (bearer or DPoP) against its binding (binding.ts). */
  | { readonly step: 'binding'; readonly scheme: TokenScheme; readonly mode: 'off' | 'allowed' | 'required'; readonly result: BindingResult }
  /** The route's requirements against a verified token (policy/authorize.ts). */
  | { readonly step: 'authorization'; readonly route: RouteConfig; readonly authorizer: RouteAuthorizer; readonly issuer: string; readonly claims: Payload; readonly refused: Reason | undefined }

export type RequestTrace = (event: RequestTraceEvent) => void
