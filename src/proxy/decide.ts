/**
 * The sidecar's decision for one request, in the order of the request path: normalise the
 * path → match the route → auth mode → extract the token → (verify) → route requirements.
 * One implementation, used by the proxy's onRequest hook and by `jwt-sidecar verify`, so the
 * explanation can never decide differently from the proxy. Verification itself is left to the
 * caller (it may be asynchronous, and the proxy times it): `begin` says what to verify,
 * `afterVerify` finishes the decision.
 */
import type { RouteConfig } from '../config/types.ts'
import { normalizePath } from '../policy/normalize.ts'
import { UNMATCHED_ROUTE } from '../policy/routes.ts'
import type { Reason } from '../verify/reasons.ts'
import type { Claims, VerifyResult } from '../verify/verifier.ts'
import type { Pipeline } from './pipeline.ts'
import { denial } from './respond.ts'
import type { Denial } from './respond.ts'

export type Decision =
  | {
      readonly kind: 'deny'
      /** Route rule name, or `_unmatched`. */
      readonly route: string
      readonly reason: Reason
      readonly issuer: string | undefined
      readonly answer: Denial
      /** For logs: what was wrong, never token material. */
      readonly detail: string | undefined
    }
  | {
      readonly kind: 'admit'
      readonly route: string
      readonly outcome: 'allowed' | 'anonymous'
      readonly issuer: string | undefined
      readonly claims: Claims | undefined
    }

export interface RequestFacts {
  readonly method: string
  /** The request target's path, as sent (no query). */
  readonly rawPath: string
  /** After `?`, undefined when there is none. */
  readonly query: string | undefined
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** Node's flat [name, value, …] list (repeated headers are ambiguous). */
  readonly rawHeaders: readonly string[]
}

export interface Begun {
  /** The normalised path (what the upstream receives), once the path was accepted. */
  readonly path: string | undefined
  readonly next: Decision | { readonly kind: 'verify'; readonly route: RouteConfig; readonly token: string }
}

function deny(route: string, reason: Reason, issuer?: string, answer: Denial = denial(reason), detail?: string): Decision {
  return { kind: 'deny', route, reason, issuer, answer, detail }
}

/**
 * Everything before verification.
 *
 * @example
 * const b = begin(pipeline, facts)
 * if (b.next.kind === 'verify') decision = afterVerify(pipeline, b.next.route, await pipeline.verifier.verify(b.next.token))
 */
export function begin(p: Pipeline, facts: RequestFacts): Begun {
  const normalized = normalizePath(facts.rawPath)
  if (!normalized.ok) return { path: undefined, next: deny(UNMATCHED_ROUTE, 'invalid_request', undefined, undefined, normalized.why) }
  const path = normalized.path
  const route = p.routes.match(facts.method, path)
  if (route === undefined) return { path, next: deny(UNMATCHED_ROUTE, 'no_route') }
  if (route.auth === 'none') return { path, next: { kind: 'admit', route: route.name, outcome: 'anonymous', issuer: undefined, claims: undefined } }
  const found = p.extractor.extract(facts.headers, facts.rawHeaders, facts.query)
  if (found.kind === 'invalid') return { path, next: deny(route.name, 'invalid_request', undefined, undefined, found.detail) }
  if (found.kind === 'none') {
    return {
      path,
      next: route.auth === 'optional'
        ? { kind: 'admit', route: route.name, outcome: 'anonymous', issuer: undefined, claims: undefined }
        : deny(route.name, 'missing_token'),
    }
  }
  return { path, next: { kind: 'verify', route, token: found.token } }
}

/** A verified (or refused) token against the route's issuers and requirements. */
export function afterVerify(p: Pipeline, route: RouteConfig, result: VerifyResult): Decision {
  if (!result.ok) return deny(route.name, result.reason, result.issuer, undefined, result.detail)
  const policy = p.policies.get(route)!
  const refused = policy.authorizer.authorize(result.issuer.name, result.claims)
  if (refused !== undefined) return deny(route.name, refused, result.issuer.name, policy.forbidden[refused])
  return { kind: 'admit', route: route.name, outcome: 'allowed', issuer: result.issuer.name, claims: result.claims }
}
