/**
 * The path route rules are matched against, which is also the path the upstream receives:
 * normalising for the matcher but forwarding the original would let the two disagree (the
 * route-bypass class seen in oauth2-proxy and Envoy before `normalize_path`).
 *
 * RFC 3986 §6.2.2: percent-encoded unreserved characters are decoded and other escapes
 * upper-cased (§6.2.2.1–2), repeated slashes merged, then dot segments removed (§5.2.4).
 * What cannot be normalised without guessing how the app decodes is refused (400): an
 * encoded slash or backslash (one segment or two?), a raw backslash, an encoded control
 * character, a malformed escape. The query string never takes part.
 */

export type NormalizedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly why: string }

export type ParsedTarget =
  | {
      readonly ok: true
      /** The path as sent (for the access log and to know whether it changed). */
      readonly rawPath: string
      /** normalizePath(rawPath): what routes match and what the upstream receives. */
      readonly path: string
      /** After `?`; undefined when there is none. */
      readonly query: string | undefined
    }
  | { readonly ok: false; readonly why: string }

/**
 * An origin-form request target (RFC 9112 §3.2.1: `absolute-path [ "?" query ]`) split and
 * normalised. A fragment has no place in a request target: `/admin#x` would be matched as
 * the literal path `/admin#x` (missing `/admin/**`) while the upstream drops the fragment and
 * serves `/admin` (issue #9 §6), so any `#` is refused before a route is matched.
 *
 * @example
 * parseTarget('/a/./b?x=1') // { ok: true, rawPath: '/a/./b', path: '/a/b', query: 'x=1' }
 * parseTarget('/admin#x')   // { ok: false, why: 'request target has a fragment (#)…' }
 */
export function parseTarget(target: string): ParsedTarget {
  if (target.includes('#')) return { ok: false, why: 'request target has a fragment (#); RFC 9112 §3.2 allows none' }
  const q = target.indexOf('?')
  const rawPath = q < 0 ? target : target.slice(0, q)
  const n = normalizePath(rawPath)
  if (!n.ok) return n
  return { ok: true, rawPath, path: n.path, query: q < 0 ? undefined : target.slice(q + 1) }
}

// RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~"
const UNRESERVED = /^[A-Za-z0-9._~-]$/
const ESCAPE = /%([0-9A-Fa-f]{2})/g
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/
// %2F %5C: a slash the app may or may not split on; %00-%1F %7F: control characters.
const AMBIGUOUS_ESCAPE = /%(2f|5c|[01][0-9a-f]|7f)/i

/**
 * @example
 * normalizePath('/public/../%61dmin//x') // { ok: true, path: '/admin/x' }
 * normalizePath('/a%2Fb')                 // { ok: false, why: 'encoded slash or backslash…' }
 */
export function normalizePath(raw: string): NormalizedPath {
  if (raw.charCodeAt(0) !== 47 /* / */) return { ok: false, why: 'path does not start with /' }
  // Fast path: most paths need nothing, and are returned as they are (no allocation).
  if (!raw.includes('%') && !raw.includes('//') && !raw.includes('/.') && !raw.includes('\\')) return { ok: true, path: raw }
  if (raw.includes('\\')) return { ok: false, why: 'path has a backslash' }
  let path = raw
  if (path.includes('%')) {
    if (BAD_ESCAPE.test(path)) return { ok: false, why: 'path has a malformed percent-escape' }
    if (AMBIGUOUS_ESCAPE.test(path)) return { ok: false, why: 'path has an encoded slash, backslash or control character' }
    path = path.replace(ESCAPE, (escape, hex: string) => {
      const c = String.fromCharCode(parseInt(hex, 16))
      return UNRESERVED.test(c) ? c : escape.toUpperCase()
    })
  }
  path = path.replace(/\/{2,}/g, '/')
  if (path.includes('/.')) path = removeDotSegments(path)
  return { ok: true, path }
}

/** RFC 3986 §5.2.4 for an absolute path; `..` above the root stays at the root. */
function removeDotSegments(path: string): string {
  const out: string[] = []
  const segments = path.split('/')
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!
    const last = i === segments.length - 1
    if (seg === '.' || seg === '..') {
      if (seg === '..') out.pop()
      // A trailing dot segment leaves a directory path: `/a/b/..` is `/a/`.
      if (last) out.push('')
    } else {
      out.push(seg)
    }
  }
  return '/' + out.join('/')
}
