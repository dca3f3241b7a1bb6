/**
 * Finds routes a method can walk around (issue #9 §4). With
 * `[{path: /api/**, methods: [GET, HEAD], require: {scopes: [orders:read]}}, {path: /**, auth: required}]`
 * a `POST /api/orders` with any valid token falls through to the catch-all: the first route
 * limits *who may read*, and nothing limits who may write. Nobody writing that config meant it,
 * so check-config warns, naming both routes and the methods; `auth: deny` (or listing the
 * methods) closes the path.
 *
 * The analysis runs the real matcher over sample paths drawn from each route's own pattern,
 * so it agrees with what the proxy does. A method that reaches a route listing that very method
 * (`orders-write` with `methods: [POST]`) was given its own rule on purpose and is not reported.
 */
import type { RouteConfig } from '../config/types.ts'
import { createRouteMatcher } from './routes.ts'

/**
 * Methods a request can carry to a route. CONNECT is left out: Node's HTTP server never hands
 * it to the request path (it is a tunnel, answered by closing the connection).
 */
const ROUTABLE_METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']

export interface FallThrough {
  /** Index of the route whose requirements the methods escape. */
  readonly route: number
  /** Index of the weaker route they reach. */
  readonly to: number
  readonly methods: readonly string[]
  readonly message: string
}

/** Concrete paths a pattern covers: `*` becomes a segment, `/**` both its prefix and a path below it. */
export function samplePaths(pattern: string): string[] {
  const concrete = (p: string): string => p.split('/').map((seg) => (seg.includes('*') ? seg.replaceAll('*', 'x') : seg)).join('/')
  if (!pattern.endsWith('/**')) return [concrete(pattern)]
  const body = concrete(pattern.slice(0, -3))
  return body === '' ? ['/', '/x'] : [body, `${body}/x`]
}

function hasRequirements(r: RouteConfig): boolean {
  return r.issuers.length > 0 || r.require.scopes.length > 0 || Object.keys(r.require.claims).length > 0
}

/** True when a request admitted by `weaker` need not meet everything `strict` requires. */
export function requiresLess(weaker: RouteConfig, strict: RouteConfig): boolean {
  if (weaker.auth === 'deny') return false
  if (weaker.auth !== 'required') return true
  // Every issuer the weaker route accepts must be one the strict route accepts.
  if (strict.issuers.length > 0 && (weaker.issuers.length === 0 || weaker.issuers.some((i) => !strict.issuers.includes(i)))) return true
  if (strict.require.scopes.some((s) => !weaker.require.scopes.includes(s))) return true
  for (const [claim, allowed] of Object.entries(strict.require.claims)) {
    const theirs = weaker.require.claims[claim]
    if (theirs === undefined || theirs.some((v) => !allowed.includes(v))) return true
  }
  return false
}

/**
 * @example
 * for (const f of findFallThroughs(config.routes)) console.warn(f.message)
 */
export function findFallThroughs(routes: readonly RouteConfig[]): FallThrough[] {
  const matcher = createRouteMatcher(routes)
  const out: FallThrough[] = []
  routes.forEach((route, i) => {
    if (route.methods.length === 0 || route.auth !== 'required' || !hasRequirements(route)) return
    const escaped = new Map<number, string[]>()
    for (const method of ROUTABLE_METHODS) {
      if (route.methods.includes(method)) continue
      for (const path of samplePaths(route.path)) {
        const other = matcher.match(method, path)
        // No route (403 no_route), or a route that names this method itself: a decision, not a fall-through.
        if (other === undefined || other.methods.includes(method) || !requiresLess(other, route)) continue
        const j = routes.indexOf(other)
        const list = escaped.get(j) ?? []
        if (!list.includes(method)) list.push(method)
        escaped.set(j, list)
      }
    }
    for (const [j, methods] of escaped) {
      const other = routes[j]!
      out.push({
        route: i,
        to: j,
        methods,
        message:
          `route ${route.name} requires ${describe(route)} only for ${route.methods.join(', ')}; ` +
          `${methods.join(', ')} on ${route.path} fall through to routes[${j}] (${other.name}), which ${other.auth === 'required' ? `requires only ${describe(other)}` : `has auth: ${other.auth}`}. ` +
          `If that is not intended, add a route {path: ${route.path}, auth: deny} right after this one, or list those methods here`,
      })
    }
  })
  return out
}

function describe(r: RouteConfig): string {
  const parts: string[] = []
  if (r.issuers.length > 0) parts.push(`issuers ${r.issuers.join(', ')}`)
  if (r.require.scopes.length > 0) parts.push(`scopes ${r.require.scopes.join(' ')}`)
  for (const [claim, values] of Object.entries(r.require.claims)) parts.push(`${claim} in ${JSON.stringify(values)}`)
  return parts.length === 0 ? 'a valid token' : parts.join('; ')
}
