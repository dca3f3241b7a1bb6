/**
 * The sidecar's decision for one request, in the order of the request path: (the caller
 * normalises the path) → match the route → auth mode → extract the token → (verify) → route
 * requirements.
 * One implementation, used by the proxy's onRequest hook and by `jwt-sidecar verify`, so the
 * explanation can never decide differently from the proxy. Verification itself is left to the
 * caller (it may be asynchronous, and the proxy times it): `begin` says what to verify,
 * `afterVerify` finishes the decision.
 */
import type { RouteConfig } from '../config/types.ts'
import { UNMATCHED_ROUTE } from '../policy/routes.ts'
import type { Reason } from '../verify/reasons.ts'
import type { Claims, VerifyResult } from '../verify/verifier.ts'
import { isToken } from '../http/grammar.ts'
import { METHOD_OVERRIDE_HEADERS } from './headers.ts'
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

export type Next = Decision | { readonly kind: 'verify'; readonly route: RouteConfig; readonly token: string }

/** Decisions that never vary for a route, built once per pipeline (no allocation per request). */
export interface FixedDecisions {
  readonly anonymous: Decision
  readonly missingToken: Decision
  /** `auth: deny`. */
  readonly denied: Decision
}

export function fixedDecisions(route: RouteConfig): FixedDecisions {
  return {
    anonymous: { kind: 'admit', route: route.name, outcome: 'anonymous', issuer: undefined, claims: undefined },
    missingToken: deny(route.name, 'missing_token'),
    denied: deny(route.name, 'route_denied'),
  }
}

/**
 * The method routes are matched with. `requests.methodOverride: honor` (the app runs
 * express's method-override or the like): a POST carrying an override header is matched as
 * the method it names, since that is what the app will do. Two different overrides are
 * ambiguous, and a value that is not a method token is malformed. With `strip` (the default)
 * the headers were already removed, so this returns `method`.
 */
export function effectiveMethod(p: Pipeline, method: string, headers: Readonly<Record<string, string | string[] | undefined>>): string | { readonly invalid: string } {
  if (p.config.requests.methodOverride !== 'honor' || method !== 'POST') return method
  let found: string | undefined
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const v = headers[name]
    if (v === undefined) continue
    if (Array.isArray(v)) return { invalid: `${name} is repeated` }
    const m = v.toUpperCase()
    if (!isToken(m)) return { invalid: `${name} is not a method` }
    if (found !== undefined && found !== m) return { invalid: 'method override headers disagree' }
    found = m
  }
  return found ?? method
}

export const NO_ROUTE: Decision = deny(UNMATCHED_ROUTE, 'no_route')

/**
 * A request refused before any route is matched (400 invalid_request): a target that cannot
 * be normalised (policy/normalize.ts), a fragment, a header name `identity.underscoreHeaders:
 * reject` refuses.
 */
export function badRequest(why: string): Decision {
  return deny(UNMATCHED_ROUTE, 'invalid_request', undefined, undefined, why)
}

function deny(route: string, reason: Reason, issuer?: string, answer: Denial = denial(reason), detail?: string): Decision {
  return { kind: 'deny', route, reason, issuer, answer, detail }
}

/**
 * Everything before verification, for a target already parsed and normalised (parseTarget, or badRequest).
 *
 * @example
 * const t = parseTarget(request.url)
 * const next = t.ok ? begin(pipeline, method, t.path, t.query, headers, rawHeaders) : badRequest(t.why)
 * if (next.kind === 'verify') decision = afterVerify(pipeline, next.route, await pipeline.verifier.verify(next.token))
 */
export function begin(
  p: Pipeline,
  method: string,
  path: string,
  query: string | undefined,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  rawHeaders: readonly string[],
): Next {
  const m = effectiveMethod(p, method, headers)
  if (typeof m !== 'string') return badRequest(m.invalid)
  const route = p.routes.match(m, path)
  if (route === undefined) return NO_ROUTE
  const fixed = p.policies.get(route)!.fixed
  if (route.auth === 'none') return fixed.anonymous
  if (route.auth === 'deny') return fixed.denied
  const found = p.extractor.extract(headers, rawHeaders, query)
  if (found.kind === 'invalid') return deny(route.name, 'invalid_request', undefined, undefined, found.detail)
  if (found.kind === 'none') return route.auth === 'optional' ? fixed.anonymous : fixed.missingToken
  return { kind: 'verify', route, token: found.token }
}

/** A verified (or refused) token against the route's issuers and requirements. */
export function afterVerify(p: Pipeline, route: RouteConfig, result: VerifyResult): Decision {
  if (!result.ok) return deny(route.name, result.reason, result.issuer, undefined, result.detail)
  const policy = p.policies.get(route)!
  const refused = policy.authorizer.authorize(result.issuer.name, result.claims)
  if (refused !== undefined) return deny(route.name, refused, result.issuer.name, policy.forbidden[refused])
  return { kind: 'admit', route: route.name, outcome: 'allowed', issuer: result.issuer.name, claims: result.claims }
}
