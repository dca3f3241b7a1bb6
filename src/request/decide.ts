/**
 * The sidecar's decision for one request, in the order of the request path: normalise the
 * target → match the route → auth mode → extract the token → verify → route requirements.
 * One implementation, used by the proxy's onRequest hook (proxy/server.ts, which runs the
 * steps itself to time the verification and stay callback-style) and by `jwt-sidecar verify`
 * (through `decide`, with a trace: cli/explain.ts), so the explanation is the decision.
 * Free of fastify: the request is a plain `RequestIn`.
 */
import type { IssuerConfig, RouteConfig } from '../config/types.ts'
import { parseTarget } from '../policy/normalize.ts'
import type { ParsedTarget } from '../policy/normalize.ts'
import { UNMATCHED_ROUTE } from '../policy/routes.ts'
import type { Reason } from '../verify/reasons.ts'
import type { Claims, VerifyResult } from '../verify/verifier.ts'
import { isToken } from '../http/grammar.ts'
import { METHOD_OVERRIDE_HEADERS } from './headers.ts'
import type { Pipeline } from './pipeline.ts'
import { denial, missingToken } from './denials.ts'
import type { Denial } from './denials.ts'
import type { RequestTrace } from './trace.ts'
import { checkBinding } from './binding.ts'
import type { BoundTo, PresentedToken } from './binding.ts'
import type { Connection } from './client-cert.ts'

type Headers = Readonly<Record<string, string | string[] | undefined>>

/** The request as the decision reads it: what node:http parsed, the target already normalised (`readTarget`). */
export interface RequestIn {
  readonly method: string
  readonly target: ParsedTarget & { readonly ok: true }
  /** Lower-cased names, as node:http gives them. */
  readonly headers: Headers
  /** Names and values as received, alternating (node:http `rawHeaders`). */
  readonly rawHeaders: readonly string[]
  /** The data-plane listener's scheme, the one a DPoP proof's htu names (default http). */
  readonly listenerScheme?: 'http' | 'https' | undefined
  /** The connection (node's socket): read only for a certificate-bound token (client-cert.ts). */
  readonly connection?: Connection | undefined
}

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
      /** What a sender-constrained token was proven with (binding.ts); absent for an unbound one. */
      readonly binding?: BoundTo
    }

export type Next = Decision | ({ readonly kind: 'verify'; readonly route: RouteConfig } & PresentedToken)

/** Decisions that never vary for a route, built once per pipeline (no allocation per request). */
export interface FixedDecisions {
  readonly anonymous: Decision
  readonly missingToken: Decision
  /** `auth: deny`. */
  readonly denied: Decision
}

/** `issuers`: every configured issuer; the route's own (`route.issuers`, empty = all) decide its missing-token challenge. */
export function fixedDecisions(route: RouteConfig, issuers: readonly IssuerConfig[]): FixedDecisions {
  return {
    anonymous: { kind: 'admit', route: route.name, outcome: 'anonymous', issuer: undefined, claims: undefined },
    missingToken: deny(route.name, 'missing_token', undefined, missingToken(routeDpop(route, issuers))),
    denied: deny(route.name, 'route_denied'),
  }
}

/**
 * What the route's issuers make of DPoP, for the challenge of a request without a token:
 * `required` when every one of them requires it, `allowed` when at least one accepts it,
 * else `off` (denials.ts `missingToken`).
 */
function routeDpop(route: RouteConfig, issuers: readonly IssuerConfig[]): 'off' | 'allowed' | 'required' {
  const accepted = route.issuers.length === 0 ? issuers : issuers.filter((i) => route.issuers.includes(i.name))
  if (accepted.length > 0 && accepted.every((i) => i.dpop.mode === 'required')) return 'required'
  return accepted.some((i) => i.dpop.mode !== 'off') ? 'allowed' : 'off'
}

/**
 * The method routes are matched with. `requests.methodOverride: honor` (the app runs
 * express's method-override or the like): a POST carrying an override header is matched as
 * the method it names, since that is what the app will do. Two different overrides are
 * ambiguous, and a value that is not a method token is malformed. With `strip` (the default)
 * the headers were already removed, so this returns `method`.
 */
export function effectiveMethod(p: Pipeline, method: string, headers: Headers): string | { readonly invalid: string } {
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

/** Fail closed: what an exception anywhere in the decision becomes. */
export function internalError(route: string): Decision {
  return deny(route, 'internal_error')
}

function deny(route: string, reason: Reason, issuer?: string, answer: Denial = denial(reason), detail?: string): Decision {
  return { kind: 'deny', route, reason, issuer, answer, detail }
}

/** The request target split and normalised (policy/normalize.ts); a failure is `badRequest(why)`. */
export function readTarget(url: string, trace?: RequestTrace): ParsedTarget {
  const t = parseTarget(url)
  trace?.(t.ok ? { step: 'path', ok: true, rawPath: t.rawPath, path: t.path, query: t.query } : { step: 'path', ok: false, why: t.why })
  return t
}

/**
 * Everything before verification, for a target already normalised (`readTarget`).
 *
 * @example
 * const target = readTarget(request.url)
 * const next = target.ok ? begin(pipeline, { method, target, headers, rawHeaders }) : badRequest(target.why)
 * if (next.kind === 'verify') decision = afterVerify(pipeline, next.route, await pipeline.verifier.verify(next.token))
 */
export function begin(p: Pipeline, req: RequestIn, trace?: RequestTrace): Next {
  const { path, query } = req.target
  const m = effectiveMethod(p, req.method, req.headers)
  if (m !== req.method) trace?.({ step: 'method', method: req.method, effective: m })
  if (typeof m !== 'string') return badRequest(m.invalid)
  const route = p.routes.match(m, path)
  trace?.({ step: 'route', method: m, path, route })
  if (route === undefined) return NO_ROUTE
  const fixed = p.policies.get(route)!.fixed
  if (route.auth === 'deny') return fixed.denied
  if (route.auth === 'none') {
    trace?.({ step: 'source', route, found: 'not_read', detail: undefined })
    return fixed.anonymous
  }
  const found = p.extractor.extract(req.headers, req.rawHeaders, query)
  trace?.({ step: 'source', route, found: found.kind, detail: found.kind === 'invalid' ? found.detail : undefined })
  if (found.kind === 'invalid') return deny(route.name, 'invalid_request', undefined, undefined, found.detail)
  if (found.kind === 'none') return route.auth === 'optional' ? fixed.anonymous : fixed.missingToken
  return { kind: 'verify', route, token: found.token, scheme: found.scheme, request: req }
}

/** A verified (or refused) token against the route's issuers and requirements. */
export function afterVerify(p: Pipeline, next: { readonly route: RouteConfig } & PresentedToken, result: VerifyResult, trace?: RequestTrace): Decision {
  const route = next.route
  if (!result.ok) return deny(route.name, result.reason, result.issuer, undefined, result.detail)
  // How the token was presented against how it is bound (cnf, DPoP): binding.ts.
  // With a trace, each DPoP proof check is an event of its own (a closure only then: the proxy passes none).
  const bound = checkBinding(result.issuer, result.claims, next, p.binding, trace === undefined ? undefined : (check, ok, detail) => trace({ step: 'dpop', check, ok, detail }))
  // Shown only where there is a binding to speak of: a plain bearer token under dpop.mode off has none.
  if (next.scheme === 'dpop' || result.claims.cnf !== undefined || result.issuer.dpop.mode !== 'off') {
    trace?.({ step: 'binding', scheme: next.scheme, mode: result.issuer.dpop.mode, result: bound })
  }
  if (!bound.ok) return deny(route.name, bound.reason, result.issuer.name, undefined, bound.detail)
  const policy = p.policies.get(route)!
  const refused = policy.authorizer.authorize(result.issuer.name, result.claims)
  trace?.({ step: 'authorization', route, authorizer: policy.authorizer, issuer: result.issuer.name, claims: result.claims, refused })
  if (refused !== undefined) return deny(route.name, refused, result.issuer.name, policy.forbidden[refused])
  return bound.jkt === undefined && bound.x5t === undefined
    ? { kind: 'admit', route: route.name, outcome: 'allowed', issuer: result.issuer.name, claims: result.claims }
    : { kind: 'admit', route: route.name, outcome: 'allowed', issuer: result.issuer.name, claims: result.claims, binding: bound }
}

/**
 * The whole decision for one request, as the proxy makes it (minus the inbound header strip,
 * which a request built for it does not need), failing closed on any internal error.
 *
 * @example
 * const d = await decide(pipeline, { method: 'GET', url: '/orders?x=1', headers, rawHeaders }, (e) => steps.push(e))
 */
export async function decide(
  p: Pipeline,
  req: Omit<RequestIn, 'target'> & { readonly url: string },
  trace?: RequestTrace,
): Promise<Decision> {
  let route: string = UNMATCHED_ROUTE
  try {
    const target = readTarget(req.url, trace)
    if (!target.ok) return badRequest(target.why)
    const next = begin(p, { ...req, target }, trace)
    if (next.kind !== 'verify') return next
    route = next.route.name
    return afterVerify(p, next, await p.verifier.verify(next.token, trace), trace)
  } catch {
    return internalError(route)
  }
}
