/**
 * Smoke test of the real-OP harness (test/helpers/oidc.ts) on its own, no sidecar: discovery,
 * client_credentials JWT access tokens for RS256 and ES256, rotation, withdrawal, an outage.
 * The tests share one OP and run in order.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import type { JWTVerifyResult } from 'jose'
import { startTestOp } from '../helpers/oidc.ts'
import type { TestOp } from '../helpers/oidc.ts'

let op: TestOp
const extra: TestOp[] = []

before(async () => {
  op = await startTestOp({ algs: ['RS256', 'ES256'] })
})
after(async () => {
  await Promise.all([op?.close(), ...extra.map((o) => o.close())])
})

/** Verify against the OP's JWKS as a relying party would. A fresh key set each time, so jose's
 * 30 s refetch cooldown never hides a rotation. */
function verify(token: string): Promise<JWTVerifyResult> {
  return jwtVerify(token, createRemoteJWKSet(new URL(op.jwksUri)), { issuer: op.issuer, audience: op.audience, typ: 'at+jwt' })
}

async function publishedKids(): Promise<string[]> {
  const res = await fetch(op.jwksUri)
  assert.equal(res.status, 200)
  const { keys } = (await res.json()) as { keys: Array<{ kid?: string }> }
  return keys.map((k) => k.kid ?? '')
}

test('discovery advertises the issuer and jwks_uri', async () => {
  assert.match(op.issuer, /^http:\/\/127\.0\.0\.1:\d+$/)
  const res = await fetch(`${op.issuer}/.well-known/openid-configuration`)
  assert.equal(res.status, 200)
  const doc = (await res.json()) as Record<string, unknown>
  assert.equal(doc['issuer'], op.issuer)
  assert.equal(doc['jwks_uri'], op.jwksUri)
  assert.equal(op.jwksUri, `${op.issuer}/jwks`)
  assert.deepEqual(new Set(op.kids()), new Set(await publishedKids()))
  assert.equal(op.kids().length, 2)
})

for (const alg of ['RS256', 'ES256'] as const) {
  test(`a client_credentials ${alg} token verifies against the published JWKS`, async () => {
    const token = await op.token(alg, 'api:read api:write')
    const { protectedHeader, payload } = await verify(token)
    assert.equal(protectedHeader.alg, alg)
    assert.equal(protectedHeader.typ, 'at+jwt')
    assert.ok(protectedHeader.kid !== undefined && op.kids().includes(protectedHeader.kid))
    assert.equal(payload.iss, op.issuer)
    assert.equal(payload.aud, 'urn:jwt-sidecar:test')
    assert.equal(typeof payload['client_id'], 'string')
    assert.equal(payload['scope'], 'api:read api:write')
    assert.equal(typeof payload.exp, 'number')
    assert.equal(typeof payload.iat, 'number')
    assert.ok(payload.exp! > payload.iat!)
  })
}

test('the default token is RS256 with scope api:read', async () => {
  const { protectedHeader, payload } = await verify(await op.token())
  assert.equal(protectedHeader.alg, 'RS256')
  assert.equal(payload['scope'], 'api:read')
})

test('rotate publishes a new key that signs new tokens; the old key stays published', async () => {
  const old = (await verify(await op.token('RS256'))).protectedHeader.kid!
  const kid = await op.rotate('RS256')
  assert.notEqual(kid, old)
  assert.ok(op.kids().includes(kid))
  assert.ok(op.kids().includes(old))
  assert.deepEqual(new Set(await publishedKids()), new Set(op.kids()))

  const { protectedHeader } = await verify(await op.token('RS256'))
  assert.equal(protectedHeader.kid, kid)
  // The other alg is unaffected.
  const es = await verify(await op.token('ES256'))
  assert.notEqual(es.protectedHeader.kid, kid)

  await op.withdraw(old)
  assert.ok(!op.kids().includes(old))
  assert.ok(!(await publishedKids()).includes(old))
  assert.ok((await publishedKids()).includes(kid))
  assert.equal((await verify(await op.token('RS256'))).protectedHeader.kid, kid)
})

test('stop refuses connections; resume serves the same keys on the same port', async () => {
  const kids = op.kids()
  const before = op.jwksFetches()
  await op.stop()
  await assert.rejects(fetch(op.jwksUri), (err: unknown) => {
    assert.ok(err instanceof TypeError)
    assert.equal((err.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED')
    return true
  })
  await op.resume()
  assert.deepEqual(await publishedKids(), [...kids])
  assert.equal(op.jwksFetches(), before + 1)
  await verify(await op.token('ES256'))
  assert.ok(op.jwksFetches() > before + 1)
})

test('JWKS cache headers: none by default, max-age when asked', async () => {
  const res = await fetch(op.jwksUri)
  assert.equal(res.headers.get('cache-control'), null)
  assert.match(res.headers.get('content-type') ?? '', /^application\/jwk-set\+json/)

  const cached = await startTestOp({ algs: ['ES256'], cacheMaxAgeSeconds: 60 })
  extra.push(cached)
  const res2 = await fetch(cached.jwksUri)
  assert.equal(res2.headers.get('cache-control'), 'max-age=60')
  assert.equal(cached.jwksFetches(), 1)
  await assert.rejects(cached.token('RS256'), /no published RS256 key/)
  // An ES256-only OP issues tokens too (the client's default id_token alg, RS256, has no key there).
  const token = await cached.token()
  const { protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(cached.jwksUri)), { issuer: cached.issuer, audience: cached.audience })
  assert.equal(protectedHeader.alg, 'ES256')
  assert.equal(cached.jwksFetches(), 2)
})
