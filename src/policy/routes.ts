/**
 * Route rules: the first rule whose path and method match wins; no match is a denial
 * (fail closed). The path is matched as the upstream will see it, and the query string
 * never takes part.
 */
import type { RouteConfig } from '../config/types.ts'

/** The route label for requests no rule matched (route names cannot start with `_`): a closed-set metric label. */
export const UNMATCHED_ROUTE = '_unmatched'

export interface RouteMatcher {
  /** `path` is `normalizePath(...).path`: no query string, normalised. */
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
