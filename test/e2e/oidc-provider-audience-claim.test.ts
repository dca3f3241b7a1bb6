/**
 * Issue #12 item 1 against a real OpenID Provider (npm's oidc-provider): its JWT access tokens
 * name their client in `client_id`, as Cognito's do. With `audienceClaim: client_id` the
 * sidecar admits the client it lists and refuses another (bad_audience), discovery and all.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startUpstream } from '../helpers/issuer.ts'
import type { TestUpstream } from '../helpers/issuer.ts'
import { startTestOp } from '../helpers/oidc.ts'
import type { TestOp } from '../helpers/oidc.ts'
import { startSidecar } from '../helpers/sidecar.ts'

let op: TestOp
let upstream: TestUpstream

before(async () => {
  op = await startTestOp({ algs: ['RS256'] })
  upstream = await startUpstream()
})
after(async () => {
  await upstream?.close()
  await op?.close()
})

const yaml = (clientIds: readonly string[]): string => `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: "${upstream.url}" }
issuers:
  - name: op
    issuer: "${op.issuer}"
    discovery: true
    audiences: ${JSON.stringify(clientIds)}
    audienceClaim: client_id
    typ: at+jwt
routes:
  - { name: default, path: /** }
`

test('oidc-provider access tokens: admitted by client_id when it is listed, bad_audience when it is not', async (t) => {
  const token = await op.token('RS256', 'api:read')
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
  const clientId = claims.client_id
  assert.equal(typeof clientId, 'string', 'oidc-provider puts the client in client_id')
  assert.notEqual(claims.aud, clientId, 'and its aud is the resource, not the client: only audienceClaim makes this pass')

  const listed = await startSidecar(yaml([clientId as string]))
  t.after(() => listed.close())
  const ok = await fetch(`${listed.proxyUrl}/x`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(ok.status, 200, await ok.clone().text())

  const other = await startSidecar(yaml(['another-client']))
  t.after(() => other.close())
  const refused = await fetch(`${other.proxyUrl}/x`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(refused.status, 401)
  assert.equal(((await refused.json()) as { reason: string }).reason, 'bad_audience')
})
