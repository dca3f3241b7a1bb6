/**
 * Semantic checks of `tokens`: where tokens are read from (each place once), and limits
 * that would otherwise accept every expired token or no token at all.
 */
import { isToken } from '../../http/grammar.ts'
import type { AddIssue } from './guards.ts'
import { bytes, field, list, ms, text } from './guards.ts'
import { INVALID_HEADER_NAME } from './header-names.ts'

const MAX_CLOCK_SKEW_MS = 5 * 60_000

/**
 * Checks `tokens`.
 *
 * @returns the header names tokens are read from, as written, for the identity check.
 * @example
 * const tokenHeaders = checkTokens(data, add) // ['Authorization']
 */
export function checkTokens(data: unknown, add: AddIssue): readonly string[] {
  const tokens = field(data, 'tokens')
  const tokenHeaders: string[] = []
  const sources = new Map<string, number>()
  list(tokens, 'from').forEach((item, i) => {
    const kinds = (['header', 'cookie', 'query'] as const).filter((k) => field(item, k) !== undefined)
    if (kinds.length !== 1) {
      add(['tokens', 'from', i], `expected exactly one of header, cookie or query (found ${kinds.length === 0 ? 'none' : kinds.join(' and ')})`)
      return
    }
    if (kinds[0] !== 'header' && field(item, 'prefix') !== undefined) {
      add(['tokens', 'from', i, 'prefix'], 'only a header source has a prefix')
      return
    }
    let key: string
    const header = text(item, 'header')
    if (header !== undefined) {
      // Only the name's syntax is checked: reading a token from e.g. Proxy-Authorization is legitimate.
      if (!isToken(header)) {
        add(['tokens', 'from', i, 'header'], `"${header}" ${INVALID_HEADER_NAME}`)
        return
      }
      tokenHeaders.push(header)
      // RFC 7235 §2.1: the scheme is case-insensitive, and so is the header name.
      key = `header\n${header.toLowerCase()}\n${(text(item, 'prefix') ?? '').toLowerCase()}`
    } else {
      const kind = kinds[0]!
      key = `${kind}\n${text(item, kind) ?? ''}`
    }
    const first = sources.get(key)
    if (first !== undefined) add(['tokens', 'from', i], `duplicate of tokens.from[${first}]`)
    else sources.set(key, i)
  })
  const skew = ms(tokens, 'clockSkew')
  if (skew !== undefined && skew > MAX_CLOCK_SKEW_MS) {
    add(['tokens', 'clockSkew'], 'must be at most 5m; a larger skew keeps expired tokens valid and is almost certainly a mistake')
  }
  if (bytes(tokens, 'maxBytes') === 0) add(['tokens', 'maxBytes'], 'must be greater than 0B')
  if (bytes(field(tokens, 'cache'), 'maxBytes') === 0) add(['tokens', 'cache', 'maxBytes'], 'must be greater than 0B (to turn the cache off, set tokens.cache.enabled: false)')
  return tokenHeaders
}
