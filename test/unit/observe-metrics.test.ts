/**
 * The key-lifecycle metrics as an operator scrapes them: events in, exposition out. Gauges
 * that describe state are read from the key store at scrape time.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMetrics } from '../../src/observe/metrics.ts'
import type { IssuerKeyStatus, KeyEvent } from '../../src/keys/types.ts'

const NOW = 1_800_000_000_000

function status(o: Partial<IssuerKeyStatus>): IssuerKeyStatus {
  return { issuer: 'corp', ready: true, state: 'fresh', keys: 2, lastSuccess: undefined, nextRefresh: undefined, lastError: undefined, jwksUri: undefined, keyList: [], ...o }
}

const key = { issuer: 'corp', kid: 'k1', kty: 'RSA', alg: 'RS256', thumbprint: 'tp', source: 'jwks' } as const

test('key events and key-store state become the documented series, with closed label sets only', async () => {
  let states: IssuerKeyStatus[] = [
    status({ issuer: 'corp', state: 'stale', keys: 2, lastSuccess: NOW - 90_000 }),
    status({ issuer: 'files', state: 'static', keys: 1, lastSuccess: NOW - 5_000 }),
    status({ issuer: 'down', state: 'loading', ready: false, keys: 0 }),
  ]
  const m = createMetrics({ keyStatus: () => states, now: () => NOW })
  const events: KeyEvent[] = [
    { event: 'jwks.refreshed', issuer: 'corp', trigger: 'startup', result: 'updated', durationMs: 40, keys: 2, nextRefreshMs: 60_000 },
    { event: 'jwks.refreshed', issuer: 'corp', trigger: 'schedule', result: 'not_modified', durationMs: 8, keys: 2, nextRefreshMs: 60_000 },
    { event: 'jwks.refresh_failed', issuer: 'corp', trigger: 'schedule', durationMs: 1000, error: 'timeout: x', failures: 1, retryInMs: 1000 },
    { event: 'jwks.key_added', ...key },
    { event: 'jwks.key_removed', ...key },
    { event: 'jwks.key_changed', ...key, previousThumbprint: 'old' },
    { event: 'jwks.keyset_replaced', issuer: 'corp', added: 1, removed: 1 },
    { event: 'jwks.key_rejected', issuer: 'corp', kid: 'mac', why: 'symmetric', source: 'jwks' },
    { event: 'jwks.unknown_kid', issuer: 'corp', action: 'refreshed' },
    { event: 'jwks.unknown_kid', issuer: 'corp', action: 'cooldown' },
    { event: 'jwks.unknown_kid', issuer: 'corp', action: 'cooldown' },
    { event: 'jwks.stale', issuer: 'corp', lastSuccess: NOW - 90_000, error: 'timeout: x' },
  ]
  for (const e of events) m.keyEvent(e)
  const text = await m.registry.metrics()
  const expect = [
    'jwt_sidecar_jwks_refresh_total{issuer="corp",trigger="startup",result="updated"} 1',
    'jwt_sidecar_jwks_refresh_total{issuer="corp",trigger="schedule",result="not_modified"} 1',
    'jwt_sidecar_jwks_refresh_total{issuer="corp",trigger="schedule",result="error"} 1',
    'jwt_sidecar_jwks_refresh_duration_seconds_count{issuer="corp"} 3',
    'jwt_sidecar_jwks_refresh_duration_seconds_sum{issuer="corp"} 1.048',
    'jwt_sidecar_jwks_key_changes_total{issuer="corp",change="added"} 1',
    'jwt_sidecar_jwks_key_changes_total{issuer="corp",change="removed"} 1',
    'jwt_sidecar_jwks_key_changes_total{issuer="corp",change="changed"} 1',
    'jwt_sidecar_jwks_key_changes_total{issuer="corp",change="replaced"} 1',
    'jwt_sidecar_jwks_key_rejections_total{issuer="corp"} 1',
    'jwt_sidecar_unknown_kid_total{issuer="corp",action="refreshed"} 1',
    'jwt_sidecar_unknown_kid_total{issuer="corp",action="cooldown"} 2',
    'jwt_sidecar_jwks_keys{issuer="corp"} 2',
    'jwt_sidecar_jwks_keys{issuer="down"} 0',
    'jwt_sidecar_jwks_state{issuer="corp",state="stale"} 1',
    'jwt_sidecar_jwks_state{issuer="corp",state="fresh"} 0',
    'jwt_sidecar_jwks_state{issuer="files",state="static"} 1',
    'jwt_sidecar_jwks_state{issuer="down",state="loading"} 1',
    `jwt_sidecar_jwks_last_success_timestamp_seconds{issuer="corp"} ${(NOW - 90_000) / 1000}`,
    'jwt_sidecar_jwks_staleness_seconds{issuer="corp"} 90',
    'jwt_sidecar_jwks_staleness_seconds{issuer="files"} 5',
  ]
  const lines = new Set(text.split('\n'))
  for (const line of expect) assert.ok(lines.has(line), `missing: ${line}`)
  // Before its first success an issuer has no timestamp or staleness series (not a fake 0).
  assert.ok(!text.includes('jwt_sidecar_jwks_staleness_seconds{issuer="down"}'))
  assert.ok(!text.includes('jwt_sidecar_jwks_last_success_timestamp_seconds{issuer="down"}'))
  // Never a kid, a thumbprint or an error text as a label value.
  assert.ok(!/kid="|thumbprint|timeout: x|mac/.test(text))

  // State gauges follow the store at the next scrape.
  states = [status({ issuer: 'corp', state: 'fresh', keys: 3, lastSuccess: NOW })]
  const after = await m.registry.metrics()
  assert.match(after, /^jwt_sidecar_jwks_state\{issuer="corp",state="fresh"\} 1$/m)
  assert.match(after, /^jwt_sidecar_jwks_keys\{issuer="corp"\} 3$/m)
  assert.match(after, /^jwt_sidecar_jwks_staleness_seconds\{issuer="corp"\} 0$/m)
  assert.ok(!after.includes('issuer="files"') && !after.includes('issuer="down"'), 'no series for issuers the store no longer has')
})
