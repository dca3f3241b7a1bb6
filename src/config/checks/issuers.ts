/**
 * Semantic checks of `issuers`: unique names and `iss` values (a `{tenantid}` template's
 * included), a usable key source, and refresh settings that cannot hammer the identity provider or let keys expire.
 */
import { refusesPlainHttp } from '../../http/transport.ts'
import { TENANT_PLACEHOLDER, issValues } from '../tenants.ts'
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
  const seenIss = new Map<string, number>()
  const snapshotFiles = new Map<string, number>()
  list(data, 'issuers').forEach((item, i) => {
    const name = text(item, 'name')
    if (name !== undefined) {
      const first = names.get(name)
      if (first !== undefined) add(['issuers', i, 'name'], `duplicate issuer name "${name}" (also issuers[${first}].name)`)
      else names.set(name, i)
    }
    const iss = text(item, 'issuer')
    if (iss !== undefined) {
      const tenants = checkTenants(item, i, iss, add)
      // A template stands for one iss per tenant: each must be unique across all issuers.
      for (const { iss: value } of issValues({ issuer: iss, tenants })) {
        const first = seenIss.get(value)
        if (first !== undefined) {
          add(['issuers', i, 'issuer'], `issuer "${value}" is also issuers[${first}].issuer; tokens with this iss would be ambiguous`)
        } else {
          seenIss.set(value, i)
        }
      }
    }
    checkKeySources(item, i, iss, add)
    if (ms(item, 'maxLifetime') === 0) add(['issuers', i, 'maxLifetime'], 'must be greater than 0s')
    checkFetch(field(item, 'fetch'), i, add)
    checkRefresh(field(item, 'refresh'), i, add)
    checkSnapshot(item, i, snapshotFiles, add)
  })
  return names
}

/**
 * A snapshot holds remote keys (issue #13 §3), so it needs a remote source; and one file per
 * issuer: two issuers writing one file would each load the other's keys (then ignore them).
 */
function checkSnapshot(item: unknown, i: number, seen: Map<string, number>, add: AddIssue): void {
  const file = text(field(item, 'snapshot'), 'file')
  if (file === undefined) return
  if (field(item, 'jwksUri') === undefined && field(item, 'discovery') !== true && field(item, 'discoveryUrl') === undefined) {
    add(['issuers', i, 'snapshot'], 'needs remote keys (jwksUri, discovery or discoveryUrl): static key files need no snapshot')
  }
  const first = seen.get(file)
  if (first !== undefined) add(['issuers', i, 'snapshot', 'file'], `is also issuers[${first}].snapshot.file; each issuer needs its own file`)
  else seen.set(file, i)
}

/**
 * Microsoft Entra ID's multi-tenant endpoints (`common`, `organizations`) publish
 * `issuer: https://login.microsoftonline.com/{tenantid}/v2.0`: each token's iss carries its
 * own tenant. A `{tenantid}` issuer stands for the listed tenants only; without `tenants` no
 * token could ever match it, so that is an error, as is any other `{placeholder}`.
 *
 * @returns the tenants when the issuer is a valid template.
 */
function checkTenants(item: unknown, i: number, iss: string, add: AddIssue): string[] | undefined {
  const placeholders = iss.match(/\{[^{}]*\}/g) ?? []
  const tenants = list(item, 'tenants').filter((t): t is string => typeof t === 'string')
  const unknown = placeholders.filter((p) => p !== TENANT_PLACEHOLDER)
  if (unknown.length > 0) {
    add(['issuers', i, 'issuer'], `${unknown.join(', ')} is not a placeholder jwt-sidecar knows; the only one is {tenantid} (with tenants: [...])`)
    return undefined
  }
  if (placeholders.length > 1) {
    add(['issuers', i, 'issuer'], '{tenantid} may appear only once')
    return undefined
  }
  const template = placeholders.length === 1
  if (template && field(item, 'tenants') === undefined) {
    add(['issuers', i, 'issuer'], 'holds {tenantid}: list the accepted tenant ids in tenants: [...], or no token can match it')
    return undefined
  }
  if (!template && field(item, 'tenants') !== undefined) {
    add(['issuers', i, 'tenants'], 'needs an issuer with the {tenantid} placeholder, like https://login.microsoftonline.com/{tenantid}/v2.0')
    return undefined
  }
  return template ? tenants : undefined
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
  const discoveryUrl = text(item, 'discoveryUrl')
  // discoveryUrl says where the discovery document is, and so turns discovery on by itself.
  const discovery = field(item, 'discovery') === true || discoveryUrl !== undefined
  const staticKeys = list(item, 'keys')
  if (jwksUri !== undefined && discovery) {
    add(['issuers', i, discoveryUrl === undefined ? 'discovery' : 'discoveryUrl'], 'cannot be combined with jwksUri: choose one remote key source')
  } else if (jwksUri === undefined && !discovery && staticKeys.length === 0) {
    add(['issuers', i], 'expected a key source: jwksUri, discovery: true, or keys (static files)')
  }
  if (discoveryUrl !== undefined) {
    const url = parseUrl(discoveryUrl)
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      add(['issuers', i, 'discoveryUrl'], 'expected an http:// or https:// URL')
    } else if (url.hash !== '') {
      add(['issuers', i, 'discoveryUrl'], 'must not have a #fragment')
    } else if (refusesPlainHttp(url, field(item, 'allowInsecureHttp') === true)) {
      // The document names the key set: the same rule as jwksUri (RFC 8725 §3.10).
      add(['issuers', i, 'discoveryUrl'], 'https is required unless the host is loopback (127.0.0.0/8, ::1, localhost); set allowInsecureHttp: true to override')
    }
  } else if (discovery && iss?.includes(TENANT_PLACEHOLDER) === true) {
    add(['issuers', i, 'discoveryUrl'], 'with discovery: true and a {tenantid} issuer, expected the discovery document\'s URL (e.g. https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration)')
  }
  if (discovery && discoveryUrl === undefined && iss !== undefined) {
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
