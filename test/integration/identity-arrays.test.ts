/**
 * identity.arrays: space and a header's own array form, over real HTTP (issue #12 §7): one
 * config forwards an Okta/Entra-style `scp` array space-joined, like a `scope` string, and
 * `groups` comma-joined; an array the space form cannot carry is not sent, and is logged.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'
import { startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

let okta: TestIssuer
let upstream: TestUpstream
let sidecar: TestSidecar

before(async () => {
  okta = await startTestIssuer({ alg: 'RS256', kids: ['k1'] })
  upstream = await startUpstream()
  sidecar = await startSidecar(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: ${upstream.url} }
issuers:
  - { name: okta, issuer: ${JSON.stringify(okta.issuer)}, jwksUri: ${JSON.stringify(okta.jwksUri)}, audiences: [test-api] }
identity:
  headers:
    X-Auth-Subject: sub
    X-Auth-Groups: groups
    X-Auth-Scopes: { claim: scp, arrays: space }
    X-Auth-Scope: { claim: scope, arrays: space }
routes:
  - { name: orders, path: /orders/**, require: { scopes: ["orders:read"] } }
  - { name: default, path: /**, auth: required }
log: { level: info, access: false }
`)
})
after(async () => {
  await sidecar?.close()
  await Promise.all([okta?.close(), upstream?.close()])
})

async function call(claims: Record<string, unknown>, spoof: Record<string, string> = {}): Promise<Record<string, string | string[] | undefined>> {
  const token = await okta.sign(claims)
  const res = await request(`${sidecar.proxyUrl}/orders/1`, { headers: { authorization: `Bearer ${token}`, ...spoof } })
  assert.equal(res.statusCode, 200, await res.body.text())
  return upstream.last()!.headers
}

test('scp: [a, b] arrives space-joined, as a scope string does; groups stay comma-joined', async () => {
  const seen = await call({ sub: 'alice', scp: ['orders:read', 'orders:write'], groups: ['Everyone', 'ops'] })
  assert.equal(seen['x-auth-scopes'], 'orders:read orders:write')
  assert.equal(seen['x-auth-groups'], 'Everyone,ops')
  const s = await call({ sub: 'bob', scope: 'orders:read orders:write' })
  assert.equal(s['x-auth-scope'], 'orders:read orders:write', 'a string is forwarded unchanged')
  assert.equal(s['x-auth-scopes'], undefined)
})

test('an scp element that is not a scope token: the header is not sent (a forged copy neither), the rest is, and identity.dropped says why', async () => {
  const seen = await call({ sub: 'carol', scp: ['orders:read', 'admin write'], groups: ['ops'] }, { 'x-auth-scopes': 'admin' })
  assert.equal(seen['x-auth-scopes'], undefined)
  assert.equal(seen['x-auth-subject'], 'carol')
  assert.equal(seen['x-auth-groups'], 'ops')
  const line = sidecar.logs().find((l) => l.event === 'identity.dropped' && l.header === 'x-auth-scopes')
  assert.equal(line?.cause, 'not_joinable', JSON.stringify(line))
  assert.ok(!sidecar.logText().includes('admin write'), 'the value is never logged')
})
