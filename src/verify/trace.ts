/**
 * What the verifier did, step by step, for whoever asks (`jwt-sidecar verify`). A sink is
 * optional: without one, each step costs one `undefined` check, because `sink?.(…)` does not
 * even build its argument (ECMAScript optional call short-circuits the whole call).
 *
 * Events carry the values the verifier compared, so an explanation is built from the
 * decision itself and can never walk a path the verifier did not take. They may hold the
 * parsed token: a sink must never log them as they are (see cli/explain.ts for what is shown).
 */
import type { Algorithm, IssuerConfig } from '../config/types.ts'
import type { KeyResult, VerificationKey } from '../keys/types.ts'
import type { ClaimRule } from './claims.ts'
import type { TokenReason } from './reasons.ts'
import type { ParsedToken } from './token.ts'

export type VerifyTraceEvent =
  /** The verified-token cache answered: none of the steps below ran again. */
  | { readonly step: 'cache'; readonly issuer: IssuerConfig }
  | { readonly step: 'token'; readonly ok: true; readonly token: ParsedToken }
  | { readonly step: 'token'; readonly ok: false; readonly reason: TokenReason; readonly detail: string }
  /** `issuer` is the configured issuer the exact `iss` names, when one does. */
  | { readonly step: 'issuer'; readonly iss: unknown; readonly issuer: IssuerConfig | undefined; readonly reason: TokenReason | undefined }
  | { readonly step: 'algorithm'; readonly ok: boolean; readonly alg: string; readonly issuer: IssuerConfig }
  /** `refetched`: the kid was not in the cached set and the lookup waited for an unknown-kid refresh. */
  | { readonly step: 'key'; readonly issuer: IssuerConfig; readonly kid: string | undefined; readonly alg: Algorithm; readonly refetched: boolean; readonly result: KeyResult }
  /**
   * One signature check. `candidate`: a token without kid tried against several keys
   * (kidless.maxCandidates), this is the n-th of them; one event per check, the last one decides.
   */
  | { readonly step: 'signature'; readonly ok: boolean; readonly alg: Algorithm; readonly key: VerificationKey; readonly candidate?: { readonly n: number; readonly of: number } }
  | { readonly step: 'typ'; readonly ok: boolean; readonly expected: string; readonly typ: unknown }
  /** One claim rule, in table order; `now` in seconds, the instant the rule was checked at. */
  | { readonly step: 'claim'; readonly rule: ClaimRule; readonly reason: TokenReason | undefined; readonly payload: ParsedToken['payload']; readonly now: number }

export type VerifyTrace = (event: VerifyTraceEvent) => void
