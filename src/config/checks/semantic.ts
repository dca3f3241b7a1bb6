/**
 * The checks JSON Schema cannot express (uniqueness, URLs, route patterns, headers the
 * sidecar cannot own, ...), one function per config section. They run on whatever the
 * schema let through, so one run reports schema and semantic problems together.
 */
import type { FoundIssue } from '../issues.ts'
import type { AddIssue } from './guards.ts'
import { checkIdentity } from './identity.ts'
import { checkIssuers } from './issuers.ts'
import { checkRoutes } from './routes.ts'
import { checkClientCertificateHeader, checkListen, checkRequests, checkUpstream } from './server.ts'
import { checkTokens } from './tokens.ts'

/**
 * Every semantic problem of `data`, section by section. The order is part of the output:
 * issues on the same line keep it, and of two issues at one path only the first is kept.
 *
 * @example
 * semanticIssues({ upstream: { url: 'ftp://x' } }) // [{ path: ['upstream', 'url'], message: 'expected an http:// or https:// URL' }]
 */
export function semanticIssues(data: unknown): FoundIssue[] {
  const out: FoundIssue[] = []
  const add: AddIssue = (path, message) => {
    out.push({ path, message })
  }
  checkListen(data, add)
  checkUpstream(data, add)
  checkRequests(data, add)
  const issuerNames = checkIssuers(data, add)
  const tokenHeaders = checkTokens(data, add)
  checkIdentity(data, tokenHeaders, add)
  checkClientCertificateHeader(data, tokenHeaders, add)
  checkRoutes(data, issuerNames, add)
  return out
}
