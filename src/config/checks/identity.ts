/**
 * Semantic checks of `identity`: the headers the sidecar sets must be names it can own
 * outright, and what it strips must not include the token it is about to read.
 */
import { isToken } from '../../http/grammar.ts'
import { foldHeaderName, headerNameMatcher } from '../../http/header-names.ts'
import type { AddIssue } from './guards.ts'
import { field, isRecord, list, text } from './guards.ts'
import { headerNameProblem } from './header-names.ts'

/**
 * Checks `identity` against the token sources' header names (from `checkTokens`).
 *
 * @example
 * checkIdentity(data, checkTokens(data, add), add)
 */
export function checkIdentity(data: unknown, tokenHeaders: readonly string[], add: AddIssue): void {
  const identity = field(data, 'identity')
  const headers = field(identity, 'headers')
  if (isRecord(headers)) {
    const seen = new Map<string, string>()
    for (const name of Object.keys(headers)) {
      const problem = headerNameProblem(name)
      if (problem !== undefined) {
        add(['identity', 'headers', name], `"${name}" ${problem}`)
        continue
      }
      const lower = name.toLowerCase()
      const first = seen.get(lower)
      if (first !== undefined) {
        add(['identity', 'headers', name], `"${name}" is the same header as "${first}" (header names are case-insensitive)`)
        continue
      }
      seen.set(lower, name)
      const token = tokenHeaders.find((h) => h.toLowerCase() === lower)
      if (token !== undefined) add(['identity', 'headers', name], `"${name}" is a token source in tokens.from and would overwrite the token`)
    }
  }
  // The whole-claims header and the binding header: single names the sidecar owns.
  const own: string[] = []
  for (const key of ['claimsHeader', 'bindingHeader'] as const) {
    const name = text(identity, key)
    if (name === undefined) continue
    const problem = headerNameProblem(name)
    const lower = name.toLowerCase()
    if (problem !== undefined) add(['identity', key], `"${name}" ${problem}`)
    else if (isRecord(headers) && Object.keys(headers).some((h) => h.toLowerCase() === lower)) {
      add(['identity', key], `"${name}" is also in identity.headers`)
    } else if (tokenHeaders.some((h) => h.toLowerCase() === lower)) {
      add(['identity', key], `"${name}" is a token source in tokens.from and would overwrite the token`)
    } else if (own.includes(lower)) {
      add(['identity', key], `"${name}" is also identity.claimsHeader`)
    } else if (lower === 'dpop') {
      add(['identity', key], `"${name}" is the DPoP proof header (RFC 9449), which is never forwarded`)
    }
    own.push(lower)
  }
  const certHeader = text(field(data, 'clientCertificateHeader'), 'name')?.toLowerCase()
  list(identity, 'strip').forEach((pattern, i) => {
    if (typeof pattern !== 'string' || pattern === '') return
    if (!isToken(pattern)) {
      add(['identity', 'strip', i], `"${pattern}" is not a header name or a pattern with * (RFC 9110 §5.6.2)`)
      return
    }
    // Stripping happens before the token is extracted, so this would discard every token.
    const covers = headerNameMatcher([], [pattern])
    const victim = tokenHeaders.find((h) => covers(foldHeaderName(h)))
    if (victim !== undefined) add(['identity', 'strip', i], `"${pattern}" would remove the token header ${victim} before it is read`)
    else if (certHeader !== undefined && covers(foldHeaderName(certHeader))) {
      add(['identity', 'strip', i], `"${pattern}" would remove clientCertificateHeader ${certHeader} before it is read`)
    }
  })
}
