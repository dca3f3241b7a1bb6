/**
 * Header names as every hop reads them: the hop-by-hop set, the names listed in Connection,
 * and the folding legacy stacks apply. One module, so the request path, the config checks and
 * the key fetcher agree on which names are special (issue #9 §5).
 */

/**
 * RFC 9110 §7.6.1 (was RFC 7230 §6.1): headers meant for one connection only, never forwarded,
 * plus the de-facto Keep-Alive and Proxy-Connection. Lower case.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
])

/** RFC 9112 §6–7: the headers that frame a message or name its target; whoever sends the message owns them. */
export const FRAMING: ReadonlySet<string> = new Set(['host', 'content-length', 'transfer-encoding'])

/**
 * The name as CGI (RFC 3875 §4.1.18), FastCGI/PHP, WSGI (PEP 3333 `HTTP_*`), Rack and many
 * servlet containers see it: letter case and `-` versus `_` are lost, so `X_Auth_Subject`,
 * `x-auth_subject` and `X-Auth-Subject` are one header to the app. Folded to lower case with
 * `-`, so a name without `_` folds to its own lower-case form.
 *
 * @example
 * foldHeaderName('X_Auth_Subject') // 'x-auth-subject'
 */
export function foldHeaderName(name: string): string {
  const lower = name.toLowerCase()
  return lower.includes('_') ? lower.replaceAll('_', '-') : lower
}

/**
 * RFC 9110 §7.6.1: the names listed in `Connection` are hop-by-hop for this one connection.
 * Lower-cased; empty when there is no Connection header.
 */
export function connectionNamed(headers: Readonly<Record<string, string | string[] | undefined>>): ReadonlySet<string> {
  const c = headers.connection
  if (c === undefined) return NO_NAMES
  // What nearly every response and request says, answered without parsing or allocating.
  if (c === 'keep-alive') return KEEP_ALIVE
  if (c === 'close') return CLOSE
  return new Set((Array.isArray(c) ? c.join(',') : c).split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== ''))
}
const NO_NAMES: ReadonlySet<string> = new Set()
const KEEP_ALIVE: ReadonlySet<string> = new Set(['keep-alive'])
const CLOSE: ReadonlySet<string> = new Set(['close'])

/**
 * A fresh copy of a request's end-to-end headers for the next hop: without the hop-by-hop set,
 * the names its Connection header lists (RFC 9110 §7.6.1), the names in `drop` (what the
 * sender of the next request owns, such as `host`), and HTTP/2 pseudo-headers (`:method`,
 * `:path`, `:authority`, `:scheme`, which Node's HTTP/2 header object holds too): they are
 * control data of the HTTP/2 hop (RFC 9113 §8.3), never fields, and no HTTP/1.1 field name
 * starts with `:` (RFC 9110 §5.1 token).
 *
 * @example
 * endToEndHeaders({ connection: 'x-a', 'x-a': '1', 'x-b': '2', host: 'h' }, new Set(['host'])) // { 'x-b': '2' }
 */
export function endToEndHeaders(inbound: Readonly<Record<string, string | string[] | undefined>>, drop: ReadonlySet<string>): Record<string, string | string[] | undefined> {
  const named = connectionNamed(inbound)
  const out: Record<string, string | string[] | undefined> = {}
  for (const name in inbound) {
    if (!HOP_BY_HOP.has(name) && !drop.has(name) && !named.has(name) && name.charCodeAt(0) !== 0x3a) out[name] = inbound[name]
  }
  return out
}

/**
 * A test for header names against exact names and `*` patterns (`*` = any run of
 * characters), compared after {@link foldHeaderName} on both sides: `X-Auth-*` also covers
 * `x_auth_subject`. Give it folded names only (Node's lower-cased names, folded).
 *
 * @example
 * const covered = headerNameMatcher(['X-Auth-Subject'], ['X-Internal-*'])
 * covered(foldHeaderName('x_internal_role')) // true
 */
export function headerNameMatcher(names: Iterable<string>, patterns: Iterable<string>): (folded: string) => boolean {
  const exact = new Set<string>()
  for (const n of names) exact.add(foldHeaderName(n))
  const sources: string[] = []
  for (const p of patterns) {
    if (p.includes('*')) sources.push(foldHeaderName(p).split('*').map(escapeRegExp).join('.*'))
    else exact.add(foldHeaderName(p))
  }
  if (sources.length === 0) return (folded) => exact.has(folded)
  const re = new RegExp(`^(?:${sources.join('|')})$`)
  return (folded) => exact.has(folded) || re.test(folded)
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * How many times `name` (lower case) was received, from Node's flat `rawHeaders` list: Node's
 * header object joins or drops repeats, so a header that must come once (a token, a DPoP
 * proof, a client certificate) is counted here. Only names of the right length are lowered.
 */
export function headerCount(rawHeaders: readonly string[], name: string): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const h = rawHeaders[i]!
    if (h.length === name.length && h.toLowerCase() === name) n++
  }
  return n
}
