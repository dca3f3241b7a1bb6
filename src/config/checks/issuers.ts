/**
 * Semantic checks of `issuers`: unique names and `iss` values, a usable key source, and
 * refresh settings that cannot hammer the identity provider or let keys expire.
 */
import { refusesPlainHttp } from '../../http/transport.ts'
import type { AddIssue } from './guards.ts'
import { bytes, field, isRecord, list, ms, parseUrl, text } from './guards.ts'
import { headerNameProblem } from './header-names.ts'

const MIN_REFRESH_INTERVAL_MS = 1000

/**
 * Checks every issuer.
 *
 * @returns each issuer name with the index of its first issuer, for the routes' check.
 * @example
 * const issuerNames = checkIssuers(data, add) // Map { 'corp' => 0 }
 */
export function checkIssuers(data: unknown, add: AddIssue): ReadonlyMap<string, number> {
  const names = new Map<string, number>()
  const issValues = new Map<string, number>()
  list(data, 'issuers').forEach((item, i) => {
    const name = text(item, 'name')
    if (name !== undefined) {
      const first = names.get(name)
      if (first !== undefined) add(['issuers', i, 'name'], `duplicate issuer name "${name}" (also issuers[${first}].name)`)
      else names.set(name, i)
    }
    const iss = text(item, 'issuer')
    if (iss !== undefined) {
      const first = issValues.get(iss)
      if (first !== undefined) {
        add(['issuers', i, 'issuer'], `issuer "${iss}" is also issuers[${first}].issuer; tokens with this iss would be ambiguous`)
      } else {
        issValues.set(iss, i)
      }
    }
    checkKeySources(item, i, iss, add)
    if (ms(item, 'maxLifetime') === 0) add(['issuers', i, 'maxLifetime'], 'must be greater than 0s')
    checkFetch(field(item, 'fetch'), i, add)
    checkRefresh(field(item, 'refresh'), i, add)
  })
  return names
}

/** Remote keys (jwksUri or discovery), static files, or both; never none. */
function checkKeySources(item: unknown, i: number, iss: string | undefined, add: AddIssue): void {
  const jwksUri = text(item, 'jwksUri')
  if (jwksUri !== undefined) {
    const url = parseUrl(jwksUri)
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      add(['issuers', i, 'jwksUri'], 'expected an http:// or https:// URL')
    } else if (url.hash !== '') {
      add(['issuers', i, 'jwksUri'], 'must not have a #fragment')
    } else if (refusesPlainHttp(url, field(item, 'allowInsecureHttp') === true)) {
      // The key set decides which tokens are accepted: fetched over plain http, anyone on
      // the path could substitute their own keys (RFC 8725 §3.10 wants TLS for key retrieval).
      add(
        ['issuers', i, 'jwksUri'],
        'https is required unless the host is loopback (127.0.0.0/8, ::1, localhost); set allowInsecureHttp: true to override',
      )
    }
  }
  const discovery = field(item, 'discovery') === true
  const staticKeys = list(item, 'keys')
  if (jwksUri !== undefined && discovery) {
    add(['issuers', i, 'discovery'], 'cannot be combined with jwksUri: choose one remote key source')
  } else if (jwksUri === undefined && !discovery && staticKeys.length === 0) {
    add(['issuers', i], 'expected a key source: jwksUri, discovery: true, or keys (static files)')
  }
  if (discovery && iss !== undefined) {
    // OIDC Discovery 1.0 §4: the document lives at {issuer}/.well-known/openid-configuration.
    const url = parseUrl(iss)
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      add(['issuers', i, 'issuer'], 'with discovery: true, expected an http:// or https:// issuer URL')
    } else if (refusesPlainHttp(url, field(item, 'allowInsecureHttp') === true)) {
      add(['issuers', i, 'issuer'], 'with discovery: true, https is required unless the host is loopback; set allowInsecureHttp: true to override')
    }
  }
}

function checkFetch(fetch: unknown, i: number, add: AddIssue): void {
  if (ms(fetch, 'timeout') === 0) add(['issuers', i, 'fetch', 'timeout'], 'must be greater than 0s')
  if (bytes(fetch, 'maxBytes') === 0) add(['issuers', i, 'fetch', 'maxBytes'], 'must be greater than 0B')
  const extra = field(fetch, 'headers')
  if (isRecord(extra)) {
    for (const h of Object.keys(extra)) {
      const problem = headerNameProblem(h)
      if (problem !== undefined) add(['issuers', i, 'fetch', 'headers', h], problem)
    }
  }
}

function checkRefresh(refresh: unknown, i: number, add: AddIssue): void {
  const interval = ms(refresh, 'interval')
  const minInterval = ms(refresh, 'minInterval')
  const maxInterval = ms(refresh, 'maxInterval')
  const maxStale = ms(refresh, 'maxStale')
  for (const [key, value] of [['interval', interval], ['minInterval', minInterval]] as const) {
    if (value !== undefined && value < MIN_REFRESH_INTERVAL_MS) {
      add(['issuers', i, 'refresh', key], 'must be at least 1s; refreshing faster would hammer the identity provider')
    }
  }
  if (minInterval !== undefined && maxInterval !== undefined && minInterval > maxInterval) {
    add(['issuers', i, 'refresh', 'minInterval'], 'must not be greater than maxInterval')
  } else if (interval !== undefined && minInterval !== undefined && maxInterval !== undefined && (interval < minInterval || interval > maxInterval)) {
    add(['issuers', i, 'refresh', 'interval'], 'must lie between minInterval and maxInterval')
  }
  if (maxStale !== undefined && maxInterval !== undefined && maxStale < maxInterval) {
    add(['issuers', i, 'refresh', 'maxStale'], 'must be at least maxInterval, or keys would expire between two scheduled refreshes')
  }
}
