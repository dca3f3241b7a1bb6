/**
 * `reconfigure()` keeps an issuer's runtime (and its keys: no refetch) exactly when the
 * settings that decide its key set are unchanged, compared structurally (store.ts
 * `sameKeySource`): the order keys are written in is not a change, a value is.
 */
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createKeyStore } from '../../src/keys/store.ts'
import type { IssuerConfig } from '../../src/config/types.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer } from '../helpers/issuer.ts'

function cfg(idp: TestIssuer, over: { headers?: Readonly<Record<string, string>>; audiences?: readonly string[]; jwksUri?: string } = {}): IssuerConfig {
  return {
    name: 'corp',
    issuer: idp.issuer,
    jwksUri: over.jwksUri ?? idp.jwksUri,
    tenants: undefined,
    discovery: false,
    discoveryUrl: undefined,
    audienceClaim: 'aud',
    keys: [],
    audiences: over.audiences ?? ['api'],
    algorithms: ['ES256'],
    requiredClaims: ['exp'],
    maxLifetime: undefined,
    typ: undefined,
    allowInsecureHttp: false,
    kidless: { maxCandidates: 1 }, dpop: { mode: 'off', proofMaxAge: 60_000 },
    fetch: { timeout: 2_000, maxBytes: 64 * 1024, headers: over.headers ?? { 'x-a': '1', 'x-b': '2' }, bearerTokenFile: undefined, caFile: undefined },
    refresh: {
      interval: 60_000, minInterval: 10_000, maxInterval: 300_000, unknownKidCooldown: 30_000,
      unknownKidWait: 250, maxStale: 3_600_000, discoveryInterval: 150_000,
    },
  }
}

async function loadedStore(t: TestContext) {
  const idp = await startTestIssuer({ alg: 'ES256', kids: ['k1'] })
  t.after(() => idp.close())
  const store = createKeyStore([cfg(idp)])
  t.after(() => store.stop())
  store.start()
  await store.settled()
  assert.equal(idp.fetchCount(), 1)
  return { idp, store }
}

describe('reconfigure', () => {
  it('keeps the runtime when only the verifier settings change, or the same headers are written in another order', async (t) => {
    const { idp, store } = await loadedStore(t)
    assert.deepEqual(store.reconfigure([cfg(idp, { audiences: ['api', 'other'] })]), { kept: ['corp'], replaced: [], added: [] })
    assert.deepEqual(store.reconfigure([cfg(idp, { headers: { 'x-b': '2', 'x-a': '1' } })]), { kept: ['corp'], replaced: [], added: [] })
    await store.settled()
    assert.equal(idp.fetchCount(), 1, 'no refetch')
  })

  it('replaces the runtime when a header value or the JWKS URL changes', async (t) => {
    const { idp, store } = await loadedStore(t)
    assert.deepEqual(store.reconfigure([cfg(idp, { headers: { 'x-a': '1', 'x-b': '3' } })]), { kept: [], replaced: ['corp'], added: [] })
    await store.settled()
    assert.equal(idp.fetchCount(), 2, 'the new runtime fetched')
    assert.deepEqual(store.reconfigure([cfg(idp, { headers: { 'x-a': '1', 'x-b': '3' }, jwksUri: `${idp.jwksUri}?v=2` })]).replaced, ['corp'])
  })
})
