/**
 * Route rules: the first rule whose path and method match wins; no match is a denial
 * (fail closed). The path is matched as the upstream will see it, and the query string
 * never takes part.
 */
import type { RouteConfig } from '../config/types.ts'

export interface RouteMatcher {
  /** `path` is `checkPath(...).path`: no query string, unreserved escapes decoded. */
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
const PERCENT = /%([0-9A-Fa-f]{2})/g
// RFC 3986 §2.3 unreserved, less '.' (an encoded dot is refused above, never decoded).
const UNRESERVED = /^[A-Za-z0-9_~-]$/

export type PathCheck = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly why: string }

/**
 * The path that route rules are matched against, or why the request is refused (400).
 *
 * Refused rather than guessed: encoded dot, slash or backslash, a raw backslash, a malformed
 * percent-escape, dot segments and empty segments. Percent-encoded unreserved characters are
 * decoded for matching (RFC 3986 §6.2.2.2: `/%61dmin` and `/admin` are the same resource), so
 * a rule cannot be dodged by encoding a letter; the upstream still receives the path as sent.
 */
export function checkPath(path: string): PathCheck {
  if (path.charCodeAt(0) !== 47 /* / */) return { ok: false, why: 'path does not start with /' }
  if (AMBIGUOUS.test(path)) return { ok: false, why: 'path has an encoded dot, slash or backslash' }
  let matched = path
  if (path.includes('%')) {
    if (/%(?![0-9A-Fa-f]{2})/.test(path)) return { ok: false, why: 'path has a malformed percent-escape' }
    matched = path.replace(PERCENT, (escape, hex: string) => {
      const c = String.fromCharCode(parseInt(hex, 16))
      return UNRESERVED.test(c) ? c : escape.toUpperCase()
    })
  }
  if (matched.includes('//')) return { ok: false, why: 'path has an empty segment' }
  if (matched.includes('/.')) {
    for (const seg of matched.split('/')) if (seg === '.' || seg === '..') return { ok: false, why: 'path has a dot segment' }
  }
  return { ok: true, path: matched }
}
