/**
 * Finds the bearer token in the configured places. Ambiguity is an error, never a guess:
 * the same header sent twice is `invalid_request` (RFC 6750 §3.1), because a proxy and the
 * app behind it could each pick a different one.
 */
import type { TokenSource } from '../config/types.ts'

export type ExtractResult =
  | { readonly kind: 'token'; readonly token: string; readonly source: TokenSource }
  | { readonly kind: 'none' }
  | { readonly kind: 'invalid'; readonly detail: string }

export interface TokenExtractor {
  /** `rawHeaders` is Node's flat [name, value, ...] list, used to see repeated headers. */
  extract(headers: Readonly<Record<string, string | string[] | undefined>>, rawHeaders: readonly string[]): ExtractResult
}

const NONE: ExtractResult = { kind: 'none' }

/**
 * @example
 * const ex = createTokenExtractor([{ header: 'Authorization', prefix: 'Bearer ' }])
 * ex.extract(req.headers, req.rawHeaders) // { kind: 'token', token: 'eyJ…', source }
 */
export function createTokenExtractor(sources: readonly TokenSource[]): TokenExtractor {
  const compiled = sources.map((source) => ({
    source,
    name: source.header.toLowerCase(),
    // RFC 7235 §2.1: the auth-scheme is case-insensitive.
    prefix: source.prefix.toLowerCase(),
  }))

  function occurrences(rawHeaders: readonly string[], name: string): number {
    let n = 0
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const h = rawHeaders[i]!
      if (h.length === name.length && h.toLowerCase() === name) n++
    }
    return n
  }

  return {
    extract(headers, rawHeaders) {
      let found: ExtractResult = NONE
      for (const c of compiled) {
        const value = headers[c.name]
        if (value === undefined) continue
        // Node keeps only the first Authorization header and joins others with ", ":
        // count the raw occurrences so a repeated header is never silently resolved.
        if (Array.isArray(value) || occurrences(rawHeaders, c.name) > 1) {
          return { kind: 'invalid', detail: `header ${c.source.header} is repeated` }
        }
        if (value.length < c.prefix.length || value.slice(0, c.prefix.length).toLowerCase() !== c.prefix) continue
        const token = value.slice(c.prefix.length).trim()
        if (token.length === 0) return { kind: 'invalid', detail: `header ${c.source.header} has an empty token` }
        if (found.kind === 'token' && found.token !== token) {
          return { kind: 'invalid', detail: 'different tokens in different places' }
        }
        if (found.kind !== 'token') found = { kind: 'token', token, source: c.source }
      }
      return found
    },
  }
}
