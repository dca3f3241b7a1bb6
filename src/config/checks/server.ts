/**
 * Semantic checks of the sections about the sidecar's own sockets: `listen` with `admin`,
 * `upstream`, and `requests`. (`shutdown` and `log` need none beyond the schema.)
 */
import type { AddIssue } from './guards.ts'
import { address, field, ms, parseUrl, text } from './guards.ts'

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
