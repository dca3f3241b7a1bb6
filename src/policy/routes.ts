/**
 * Route rules: the first rule whose path and method match wins; no match is a denial
 * (fail closed). The path is matched as the upstream will see it, and the query string
 * never takes part.
 *
 * The sidecar must never be less strict than the app behind it (issue #9 §6). Express,
 * koa and nginx `location ~*` route `/ADMIN` to `/admin` handlers, and Express, koa and
 * http.server serve `/api/users/` as `/api/users`; other apps do neither. So a route that
 * protects (`auth: required` or `deny`) matches generously — any letter case unless
 * `caseSensitive: true`, with or without a trailing slash — and a route that admits without
 * a token (`none`, `optional`) matches exactly as written. Whichever way the app reads a
 * path, the sidecar then picks the stricter route.
 */
import type { RouteConfig } from '../config/types.ts'

/** The route label for requests no rule matched (route names cannot start with `_`): a closed-set metric label. */
export const UNMATCHED_ROUTE = '_unmatched'

export interface RouteMatcher {
  /** `path` is `normalizePath(...).path`: no query string, normalised. */
  match(method: string, path: string): RouteConfig | undefined
}

export interface PathMatchOptions {
  /** Compare letter case exactly (default true). */
  readonly caseSensitive?: boolean
  /** An exact or `*` pattern also matches the path with one trailing `/` (default false). */
  readonly trailingSlash?: boolean
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Routes that protect match generously (see the module comment). */
function protects(route: Pick<RouteConfig, 'auth'>): boolean {
  return route.auth === 'required' || route.auth === 'deny'
}

/** `/exact`, `/prefix/**` (the prefix itself and everything below it), `*` = one segment. */
export function compilePathPattern(pattern: string, options: PathMatchOptions = {}): (path: string) => boolean {
  const caseSensitive = options.caseSensitive ?? true
  const trailingSlash = options.trailingSlash ?? false
  const prefix = pattern.endsWith('/**')
  if (!pattern.includes('*') && caseSensitive) {
    if (!trailingSlash || pattern.endsWith('/')) return (path) => path === pattern
    const n = pattern.length
    return (path) => path === pattern || (path.length === n + 1 && path.charCodeAt(n) === 47 /* / */ && path.startsWith(pattern))
  }
  const body = prefix ? pattern.slice(0, -3) : pattern
  // `/**` alone: any path (it starts with '/'), whatever the case.
  if (prefix && body === '') return (path) => path.startsWith('/')
  const tail = prefix ? '(?:/.*)?' : trailingSlash && !pattern.endsWith('/') ? '/?' : ''
  const re = new RegExp('^' + body.split('*').map(escapeRegExp).join('[^/]+') + tail + '$', caseSensitive ? '' : 'i')
  return (path) => re.test(path)
}

/** The matcher a route's own settings call for. */
function compileRoutePath(route: Pick<RouteConfig, 'path' | 'auth' | 'caseSensitive'>): (path: string) => boolean {
  return compilePathPattern(route.path, { caseSensitive: route.caseSensitive, trailingSlash: protects(route) })
}

/**
 * @example
 * const routes = createRouteMatcher(config.routes)
 * routes.match('GET', '/healthz')?.name // 'health'
 */
export function createRouteMatcher(routes: readonly RouteConfig[]): RouteMatcher {
  const compiled = routes.map((route) => ({
    route,
    test: compileRoutePath(route),
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
