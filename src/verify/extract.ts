/**
 * Finds the bearer token in the configured places: a header with a scheme prefix, a cookie,
 * or a query parameter (RFC 6750 §2.1–2.3). Ambiguity is an error, never a guess: the same
 * header sent twice, or two different tokens in two places, is `invalid_request`, because a
 * proxy and the app behind it could each pick a different one.
 *
 * The credential must be exactly an RFC 6750 §2.1 b64token in every source: `auth-scheme
 * 1*SP b64token`, optional whitespace only SP and HTAB (RFC 9110 §5.6.3). Anything else —
 * a 0xA0 byte after the token, a space inside it — is `invalid_request` (400): the request
 * is malformed, and an app that reads the header itself could read it differently.
 */
import type { TokenSource } from '../config/types.ts'
import { isB64Token, trimOws } from '../http/grammar.ts'
import { headerCount } from '../http/header-names.ts'

/**
 * `dpop`: the token came as `Authorization: DPoP <token>` (RFC 9449 §7.1) and must be
 * presented with a proof; every configured source is `bearer`.
 */
export type TokenScheme = 'bearer' | 'dpop'

export type ExtractResult =
  | { readonly kind: 'token'; readonly token: string; readonly source: TokenSource; readonly scheme: TokenScheme }
  | { readonly kind: 'none' }
  | { readonly kind: 'invalid'; readonly detail: string }

export interface TokenExtractor {
  /**
   * `rawHeaders` is Node's flat [name, value, ...] list, used to see repeated headers;
   * `query` is the request target after `?` (undefined when there is none).
   */
  extract(headers: Readonly<Record<string, string | string[] | undefined>>, rawHeaders: readonly string[], query: string | undefined): ExtractResult
}

const NONE: ExtractResult = { kind: 'none' }

type Found = string | { readonly invalid: string } | undefined

/**
 * @example
 * const ex = createTokenExtractor([{ kind: 'header', header: 'Authorization', prefix: 'Bearer ' }])
 * ex.extract(req.headers, req.rawHeaders, undefined) // { kind: 'token', token: 'eyJ…', source }
 */
export function createTokenExtractor(sources: readonly TokenSource[], options: { readonly dpop?: boolean } = {}): TokenExtractor {
  const readers: { source: TokenSource; read: Reader; scheme: TokenScheme }[] = sources.map((source) => ({ source, read: reader(source), scheme: 'bearer' }))
  // RFC 9449 §7.1: the DPoP scheme, read only when some issuer accepts DPoP.
  if (options.dpop === true) {
    const source: TokenSource = { kind: 'header', header: 'Authorization', prefix: 'DPoP ' }
    readers.push({ source, read: reader(source), scheme: 'dpop' })
  }
  return {
    extract(headers, rawHeaders, query) {
      let found: ExtractResult = NONE
      for (const { source, read, scheme } of readers) {
        const value = read(headers, rawHeaders, query)
        if (value === undefined) continue
        if (typeof value !== 'string') return { kind: 'invalid', detail: value.invalid }
        if (found.kind === 'token' && found.token !== value) {
          return { kind: 'invalid', detail: 'different tokens in different places' }
        }
        if (found.kind !== 'token') found = { kind: 'token', token: value, source, scheme }
      }
      return found
    },
  }
}

type Reader = (headers: Readonly<Record<string, string | string[] | undefined>>, rawHeaders: readonly string[], query: string | undefined) => Found

function reader(source: TokenSource): Reader {
  switch (source.kind) {
    case 'header': {
      const name = source.header.toLowerCase()
      // RFC 7235 §2.1: the auth-scheme is case-insensitive.
      const prefix = source.prefix.toLowerCase()
      return (headers, rawHeaders) => {
        const value = headers[name]
        if (value === undefined) return undefined
        // Node keeps only the first Authorization header and joins others with ", ":
        // count the raw occurrences so a repeated header is never silently resolved.
        if (Array.isArray(value) || headerCount(rawHeaders, name) > 1) return { invalid: `header ${source.header} is repeated` }
        if (value.length < prefix.length || value.slice(0, prefix.length).toLowerCase() !== prefix) return undefined
        // RFC 9110 §11.4: `auth-scheme 1*SP token68`: more spaces after the scheme are allowed.
        let start = prefix.length
        while (value.charCodeAt(start) === 0x20) start++
        return credential(trimOws(value.slice(start)), `header ${source.header}`)
      }
    }
    case 'cookie': {
      const name = source.cookie
      return (headers) => {
        const cookie = headers.cookie
        if (cookie === undefined) return undefined
        return single(cookieValues(Array.isArray(cookie) ? cookie.join('; ') : cookie, name), `cookie ${name}`)
      }
    }
    case 'query': {
      const name = source.query
      return (_headers, _raw, query) => (query === undefined ? undefined : single(queryValues(query, name), `query parameter ${name}`))
    }
  }
}

function single(values: readonly string[] | { readonly invalid: string }, what: string): Found {
  if (!isList(values)) return values
  if (values.length === 0) return undefined
  if (values.some((v) => v !== values[0])) return { invalid: `${what} carries different values` }
  return credential(values[0]!, what)
}

/** The token, or why it is not one: empty, or bytes outside the b64token grammar. */
function credential(token: string, what: string): Found {
  if (token === '') return { invalid: `${what} has an empty token` }
  return isB64Token(token) ? token : { invalid: `${what}: the token has characters outside RFC 6750 b64token` }
}

function isList(v: readonly string[] | { readonly invalid: string }): v is readonly string[] {
  return Array.isArray(v)
}

/** RFC 6265 §4.2.1 `name=value; name2=value2`; a value may be DQUOTE-wrapped. */
function cookieValues(header: string, name: string): string[] {
  const out: string[] = []
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    // RFC 6265 §5.2: only SP/HTAB around names and values (trim() would also eat U+00A0).
    if (eq < 0 || trimOws(part.slice(0, eq)) !== name) continue
    let v = trimOws(part.slice(eq + 1))
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1)
    out.push(v)
  }
  return out
}

/** Every value of `name` in an application/x-www-form-urlencoded query, decoded. */
function queryValues(query: string, name: string): string[] | { readonly invalid: string } {
  const out: string[] = []
  for (const part of query.split('&')) {
    const eq = part.indexOf('=')
    const key = eq < 0 ? part : part.slice(0, eq)
    if (key !== name) continue
    try {
      out.push(decodeURIComponent((eq < 0 ? '' : part.slice(eq + 1)).replace(/\+/g, ' ')))
    } catch {
      return { invalid: `query parameter ${name} is not valid percent-encoding` }
    }
  }
  return out
}

/** The query without `names` (RFC 6750 §2.3: the token must not travel on); undefined if nothing is left. */
export function withoutQueryParams(query: string, names: ReadonlySet<string>): string | undefined {
  const kept = query.split('&').filter((part) => {
    const eq = part.indexOf('=')
    return !names.has(eq < 0 ? part : part.slice(0, eq))
  })
  return kept.length === 0 ? undefined : kept.join('&')
}

/** The Cookie header without the cookies `names`; undefined if nothing is left. */
export function withoutCookies(header: string, names: ReadonlySet<string>): string | undefined {
  const kept = header.split(';').map(trimOws).filter((part) => {
    const eq = part.indexOf('=')
    return part !== '' && !names.has(trimOws(eq < 0 ? part : part.slice(0, eq)))
  })
  return kept.length === 0 ? undefined : kept.join('; ')
}
