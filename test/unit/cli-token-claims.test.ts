/**
 * The payload `jwt-sidecar token` signs (src/cli/token-claims.ts): --claim paths split as the
 * sidecar splits claim paths, values JSON when they parse, nothing reaching Object.prototype.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildPayload, claimValue, ClaimError, setClaim } from '../../src/cli/token-claims.ts'
import { claimAt } from '../../src/verify/claims.ts'

test('claimValue: JSON when it parses, else the text', () => {
  assert.deepEqual(claimValue('["admin"]'), ['admin'])
  assert.equal(claimValue('42'), 42)
  assert.equal(claimValue('true'), true)
  assert.equal(claimValue('null'), null)
  assert.equal(claimValue('"quoted"'), 'quoted')
  assert.equal(claimValue('acme'), 'acme')
  assert.equal(claimValue('a=b'), 'a=b')
  assert.equal(claimValue(''), '')
})

test('setClaim: nested paths, read back by the verifier\'s own path reader', () => {
  const p: Record<string, unknown> = {}
  setClaim(p, 'realm_access.roles=["admin","user"]')
  setClaim(p, 'realm_access.extra=x=y')
  setClaim(p, 'resource_access.orders.roles=["read"]')
  assert.deepEqual(p, { realm_access: { roles: ['admin', 'user'], extra: 'x=y' }, resource_access: { orders: { roles: ['read'] } } })
  assert.deepEqual(claimAt(p, 'resource_access.orders.roles'.split('.')), ['read'])
})

test('setClaim refuses what it cannot set, and never touches Object.prototype', () => {
  for (const bad of ['novalue', '=1', 'a..b=1', '.a=1', 'a.=1', '__proto__.polluted=1', 'a.constructor=1']) {
    assert.throws(() => setClaim({}, bad), ClaimError, bad)
  }
  assert.throws(() => setClaim({ a: 1 }, 'a.b=2'), /a is already set to a value that is not an object/)
  assert.throws(() => setClaim({ a: [1] }, 'a.b=2'), ClaimError)
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
})

test('buildPayload: registered claims first, one audience as a string, --claim last and overriding', () => {
  const base = { iss: 'https://idp', aud: ['api'], audienceClaim: 'aud', tid: undefined, now: 1000, ttl: 600, sub: 'alice', scope: 'a b', claims: [] }
  const p = buildPayload(base)
  assert.deepEqual(p, { iss: 'https://idp', sub: 'alice', aud: 'api', iat: 1000, exp: 1600, scope: 'a b' })
  assert.deepEqual(Object.keys(p), ['iss', 'sub', 'aud', 'iat', 'exp', 'scope'])
  assert.deepEqual(buildPayload({ ...base, aud: ['a', 'b'], sub: undefined, scope: undefined }), { iss: 'https://idp', aud: ['a', 'b'], iat: 1000, exp: 1600 })
  assert.equal(buildPayload({ ...base, claims: ['exp=1', 'scope=["x"]'] }).exp, 1)
  assert.deepEqual(buildPayload({ ...base, claims: ['scope=["x"]'] }).scope, ['x'])
})

test('buildPayload: the audience goes in the issuer\'s audienceClaim; a tenant becomes tid', () => {
  const cognito = buildPayload({ iss: 'https://cognito', aud: ['client'], audienceClaim: 'client_id', tid: undefined, now: 1000, ttl: 600, sub: undefined, scope: undefined, claims: [] })
  assert.deepEqual(cognito, { iss: 'https://cognito', client_id: 'client', iat: 1000, exp: 1600 })
  const entra = buildPayload({ iss: 'https://login.microsoftonline.com/t1/v2.0', aud: ['api'], audienceClaim: 'aud', tid: 't1', now: 1000, ttl: 600, sub: undefined, scope: undefined, claims: [] })
  assert.equal(entra.tid, 't1')
})
