/**
 * Semantic checks of the sections about the sidecar's own sockets: `listen` with `admin`,
 * `upstream`, and `requests`. (`shutdown` and `log` need none beyond the schema.)
 */
import { isIP } from 'node:net'
import type { AddIssue } from './guards.ts'
import { address, field, isRecord, list, ms, parseUrl, text } from './guards.ts'
import { headerNameProblem } from './header-names.ts'

/** `listen` and `admin`: the admin port must not collide with the proxy port. */
export function checkListen(data: unknown, add: AddIssue): void {
  const main = address(data, 'listen')
  const admin = address(field(data, 'admin'), 'listen')
  if (main !== undefined && admin !== undefined && main.port !== 0 && main.port === admin.port) {
    const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::'
    if (main.host === admin.host || wildcard(main.host) || wildcard(admin.host)) {
      add(['admin', 'listen'], `port ${admin.port} is already used by listen`)
    }
  }
}

/** `upstream`: where verified requests go. A query or fragment would be glued onto every path. */
export function checkUpstream(data: unknown, add: AddIssue): void {
  const upstream = field(data, 'upstream')
  const upstreamUrl = text(upstream, 'url')
  if (upstreamUrl !== undefined) {
    const url = parseUrl(upstreamUrl)
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      add(['upstream', 'url'], 'expected an http:// or https:// URL')
    } else if (url.search !== '' || url.hash !== '' || /[?#]/.test(upstreamUrl)) {
      add(['upstream', 'url'], 'must not have a query or fragment: request paths and queries are appended to it')
    }
  }
  if (ms(upstream, 'timeout') === 0) add(['upstream', 'timeout'], 'must be greater than 0s')
}

/** `requests`: like every timeout in the file, a positive one. */
export function checkRequests(data: unknown, add: AddIssue): void {
  if (ms(field(data, 'requests'), 'timeout') === 0) add(['requests', 'timeout'], 'must be greater than 0s')
}

/**
 * `clientCertificateHeader`: one source of client certificates (RFC 8705), and a header the
 * sidecar can own. With the TLS listener checking client certificates itself, a header would
 * be a second, weaker source for the same fact: refused rather than ranked.
 */
export function checkClientCertificateHeader(data: unknown, tokenHeaders: readonly string[], add: AddIssue): void {
  const cch = field(data, 'clientCertificateHeader')
  if (cch === undefined) return
  if (text(field(data, 'tls'), 'clientCaFile') !== undefined) {
    add(['clientCertificateHeader'], 'cannot be used with tls.clientCaFile: client certificates come either from the TLS handshake or from a trusted ingress, not both')
  }
  const name = text(cch, 'name')
  if (name !== undefined) {
    const problem = headerNameProblem(name)
    const lower = name.toLowerCase()
    if (problem !== undefined) add(['clientCertificateHeader', 'name'], `"${name}" ${problem}`)
    else if (tokenHeaders.some((h) => h.toLowerCase() === lower) || lower === 'dpop') add(['clientCertificateHeader', 'name'], `"${name}" is where a token or DPoP proof is read`)
    else if (identityHeaderNames(data).includes(lower)) add(['clientCertificateHeader', 'name'], `"${name}" is an identity header the sidecar sets`)
  }
  list(cch, 'trustedPeers').forEach((peer, i) => {
    if (typeof peer !== 'string' || peer === '') return
    if (peerProblem(peer)) add(['clientCertificateHeader', 'trustedPeers', i], `"${peer}" is not an IP address or CIDR range (like 10.0.0.0/8, 10.1.2.3 or fd00::/8)`)
    else if (/^(0\.0\.0\.0|::)\/0$/.test(peer)) add(['clientCertificateHeader', 'trustedPeers', i], `"${peer}" trusts every address: any client could name its own certificate`)
  })
}

function peerProblem(peer: string): boolean {
  const [address = '', prefix, extra] = peer.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return true
  if (prefix === undefined) return false
  if (!/^\d{1,3}$/.test(prefix)) return true
  return Number(prefix) > (family === 4 ? 32 : 128)
}

function identityHeaderNames(data: unknown): string[] {
  const identity = field(data, 'identity')
  const headers = field(identity, 'headers')
  const names = isRecord(headers) ? Object.keys(headers).map((h) => h.toLowerCase()) : []
  for (const key of ['claimsHeader', 'bindingHeader']) {
    const n = text(identity, key)
    if (n !== undefined) names.push(n.toLowerCase())
  }
  return names
}
