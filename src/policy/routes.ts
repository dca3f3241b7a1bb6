/**
 * Route rules: the first rule whose path and method match wins; no match is a denial
 * (fail closed). The path is matched as the upstream will see it, and the query string
 * never takes part.
 */
import type { RouteConfig } from '../config/types.ts'

export interface RouteMatcher {
  /** `path` is the request path without the query string, already vetted by `checkPath`. */
  match(method: string, path: string): RouteConfig | undefined
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** `/exact`, `/prefix/**` (the prefix itself and everything below it), `*` = one segment. */
export function compilePathPattern(pattern: string): (path: string) => boolean {
  if (!pattern.includes('*')) return (path) => path === pattern
  let body = pattern
  let tail = ''
  if (pattern.endsWith('/**')) {
    body = pattern.slice(0, -3)
    tail = '(?:/.*)?'
  }
  const re = new RegExp('^' + body.split('*').map(escapeRegExp).join('[^/]+') + tail + '$')
  // `/**` alone: body is '' and the path must still start with '/'.
  return body === '' ? (path) => path.startsWith('/') : (path) => re.test(path)
}

/**
 * @example
 * const routes = createRouteMatcher(config.routes)
 * routes.match('GET', '/healthz')?.name // 'health'
 */
export function createRouteMatcher(routes: readonly RouteConfig[]): RouteMatcher {
  const compiled = routes.map((route) => ({
    route,
    test: compilePathPattern(route.path),
    methods: route.methods.length === 0 ? undefined : new Set(route.methods),
  }))
  return {
    match(method, path) {
      for (const c of compiled) {
        if (c.methods !== undefined && !c.methods.has(method)) continue
        if (c.test(path)) return c.route
      }
      return undefined
    },
  }
}

// Encoded '.', '/', '\' and raw '\' can make a path mean one thing to the matcher and
// another to the upstream (the route-bypass class seen in oauth2-proxy and Envoy).
const AMBIGUOUS = /%2e|%2f|%5c|\\/i

/**
 * Returns a reason the path is refused, or undefined when it is unambiguous. The path is
 * refused rather than normalised: dot segments and empty segments are rejected outright,
 * so the rule that matched is the resource the upstream serves.
 */
export function checkPath(path: string): string | undefined {
  if (path.charCodeAt(0) !== 47 /* / */) return 'path does not start with /'
  if (AMBIGUOUS.test(path)) return 'path has an encoded dot, slash or backslash'
  if (path.includes('//')) return 'path has an empty segment'
  if (path.includes('/.')) {
    for (const seg of path.split('/')) if (seg === '.' || seg === '..') return 'path has a dot segment'
  }
  return undefined
}
