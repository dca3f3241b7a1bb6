/**
 * Semantic checks of `routes` (first match wins, no match is denied): unique names, path
 * patterns the matcher understands, real methods, known issuers, requirements that are
 * actually checked, and no route that an earlier one makes unreachable.
 */
import type { AddIssue } from './guards.ts'
import { field, isRecord, list, text } from './guards.ts'

/** RFC 9110 §9.3 plus PATCH (RFC 5789). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'])

function routePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with /'
  if (/[?#]/.test(path)) return 'must not contain ? or #: routes match the path only, not the query'
  const segments = path.slice(1).split('/')
  for (const [i, seg] of segments.entries()) {
    const last = i === segments.length - 1
    if (seg === '' && !last) return 'must not contain an empty segment (//)'
    if (seg === '.' || seg === '..') return 'must not contain . or .. segments; request paths are matched as sent'
    // `*` matches within one segment (policy/routes.ts); `**` means "this prefix and below".
    if (seg.includes('**') && !(seg === '**' && last)) return '** is only allowed as the whole last segment, like /api/**'
  }
  return undefined
}

/**
 * Checks every route against the issuer names (from `checkIssuers`).
 *
 * @example
 * checkRoutes(data, checkIssuers(data, add), add)
 */
export function checkRoutes(data: unknown, issuerNames: ReadonlyMap<string, number>, add: AddIssue): void {
  const routeNames = new Map<string, number>()
  const earlier: { index: number; name: string; path: string; methods: readonly string[] }[] = []
  list(data, 'routes').forEach((item, i) => {
    const name = text(item, 'name')
    if (name !== undefined) {
      const first = routeNames.get(name)
      if (first !== undefined) add(['routes', i, 'name'], `duplicate route name "${name}" (also routes[${first}].name)`)
      else routeNames.set(name, i)
    }
    const path = text(item, 'path')
    let valid = path !== undefined
    if (path !== undefined) {
      const problem = routePathProblem(path)
      if (problem !== undefined) {
        add(['routes', i, 'path'], problem)
        valid = false
      }
    }
    const methods: string[] = []
    list(item, 'methods').forEach((m, j) => {
      if (typeof m !== 'string') return
      const upper = m.toUpperCase()
      if (!METHODS.has(upper)) {
        add(['routes', i, 'methods', j], `"${m}" is not an HTTP method (expected one of ${[...METHODS].join(', ')})`)
        valid = false
      } else if (methods.includes(upper)) {
        add(['routes', i, 'methods', j], `${upper} is listed twice`)
      } else {
        methods.push(upper)
      }
    })
    list(item, 'issuers').forEach((n, j) => {
      if (typeof n === 'string' && !issuerNames.has(n)) {
        add(['routes', i, 'issuers', j], `"${n}" is not a configured issuer (expected one of: ${[...issuerNames.keys()].join(', ')})`)
      }
    })
    const claims = field(field(item, 'require'), 'claims')
    if (isRecord(claims)) {
      for (const claimPath of Object.keys(claims)) {
        if (claimPath.split('.').some((seg) => seg === '')) add(['routes', i, 'require', 'claims', claimPath], 'expected a claim path like roles or realm_access.roles')
      }
    }
    const requires = list(item, 'issuers').length > 0 || list(field(item, 'require'), 'scopes').length > 0 || (isRecord(claims) && Object.keys(claims).length > 0)
    const auth = field(item, 'auth')
    if (requires && auth === 'deny') {
      add(['routes', i, 'auth'], 'is deny, so issuers and require would never be checked; remove them or use auth: required')
    } else if (requires && auth === 'none') {
      add(['routes', i, 'auth'], 'is none, so issuers and require would never be checked; use auth: required')
    } else if (requires && auth === 'optional') {
      // Fail closed: a client refused for its token's scope could drop the token and be admitted.
      add(['routes', i, 'auth'], 'is optional, so a request without a token would bypass issuers and require; use auth: required')
    }
    if (!valid || path === undefined) return
    // A route every request of which an earlier route already takes can never match.
    const shadow = earlier.find(
      (e) =>
        (e.path === '/**' || e.path === path) &&
        (e.methods.length === 0 || (methods.length > 0 && methods.every((m) => e.methods.includes(m)))),
    )
    if (shadow !== undefined) {
      add(['routes', i], `unreachable: routes[${shadow.index}] (${shadow.name}) matches all of its requests first (the first matching route wins)`)
    }
    earlier.push({ index: i, name: name ?? `#${i}`, path, methods })
  })
}
