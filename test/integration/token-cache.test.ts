/**
 * The verified-token cache through the real sidecar (issue #10 §2): a real JWKS server, real
 * keys, real requests. Each test first shows the token is answered from the cache (a hit in
 * jwt_sidecar_token_cache_lookups_total), then changes one thing the cached verification
 * depended on and shows the token is refused exactly as it would be without a cache.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { waitFor } from '../../src/wait-for.ts'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { SidecarOptions, TestSidecar } from '../helpers/sidecar.ts'

async function call(sc: TestSidecar, token: string, path = '/api/x'): Promise<{ status: number; reason: unknown }> {
  const res = await request(`${sc.proxyUrl}${path}`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, reason: text.startsWith('{') ? (JSON.parse(text) as { reason?: unknown }).reason : undefined }
}

/** The cache's counters as the admin port exposes them. */
async function cacheMetrics(sc: TestSidecar): Promise<Record<string, number>> {
  const text = await (await request(`${sc.adminUrl}/metrics`)).body.text()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^jwt_sidecar_token_cache_(lookups|evictions)_total\{(?:result|reason)="([a-z_]+)"\} (\d+)$/gm)) out[`${m[1]}.${m[2]}`] = Number(m[3])
  for (const m of text.matchAll(/^jwt_sidecar_token_cache_(entries|bytes) (\d+)$/gm)) out[m[1]!] = Number(m[2])
  return out
}

/** Runs `body` against a sidecar started from `text`, and closes it whatever happens. */
async function withSidecar(text: string, body: (sc: TestSidecar) => Promise<void>, opts: SidecarOptions = {}): Promise<void> {
  const sc = await startSidecar(text, opts)
  try {
    await body(sc)
  } finally {
    await sc.close()
  }
}

/** Sends the token twice and asserts the second answer came from the cache. */
async function cached(sc: TestSidecar, token: string, path = '/api/x'): Promise<void> {
  const before = await cacheMetrics(sc)
  assert.equal((await call(sc, token, path)).status, 200)
  assert.equal((await call(sc, token, path)).status, 200)
  const after = await cacheMetrics(sc)
  assert.equal(after['lookups.hit']! - before['lookups.hit']!, 1, 'the second request is a cache hit')
}

const ROUTES = `  - name: admin
    path: /admin/**
    auth: required
    require: { scopes: [admin] }
  - name: default
    path: /api/**
    auth: required`

describe('verified-token cache', () => {
  let issuer: TestIssuer
  let upstream: TestUpstream

  test.before(async () => {
    issuer = await startTestIssuer({ kids: ['k1'] })
    upstream = await startUpstream()
  })
  test.after(async () => {
    await Promise.all([issuer.close(), upstream.close()])
  })

  function yaml(o: { audiences?: string[]; extra?: string } = {}): string {
    return sidecarYaml({
      upstream: upstream.url,
      issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri, ...(o.audiences === undefined ? {} : { audiences: o.audiences }) }],
      routes: ROUTES,
      ...(o.extra === undefined ? {} : { extra: o.extra }),
    })
  }

  test('a hit forwards the same verified identity; failures are never stored', async () => {
    await withSidecar(yaml(), async (sc) => {
      const token = await issuer.sign({ sub: 'alice' })
      await cached(sc, token)
      assert.equal(upstream.last()?.headers['x-auth-subject'], 'alice')
      const m = await cacheMetrics(sc)
      assert.equal(m.entries, 1)
      assert.ok(m.bytes! > token.length, `bytes ${m.bytes} counts at least the token`)
      const bad = await issuer.sign({ sub: 'bob' }, { kid: 'nope' })
      for (let i = 0; i < 3; i++) assert.equal((await call(sc, bad)).reason, 'unknown_kid')
      const expired = await issuer.sign({ sub: 'carol', iat: 1, exp: 2 })
      for (let i = 0; i < 3; i++) assert.equal((await call(sc, expired)).reason, 'expired')
      assert.equal((await cacheMetrics(sc)).entries, 1, 'refused tokens are not cached')
    })
  })

  test('a cached signature with another payload (or header) misses and fails verification', async () => {
    await withSidecar(yaml(), async (sc) => {
      const token = await issuer.sign({ sub: 'alice' })
      await cached(sc, token)
      const [h, p, s] = token.split('.') as [string, string, string]
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${s}`
      assert.deepEqual(await call(sc, forged), { status: 401, reason: 'bad_signature' })
      const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>
      const reheaded = `${Buffer.from(JSON.stringify({ ...header, typ: 'at+jwt' })).toString('base64url')}.${p}.${s}`
      assert.deepEqual(await call(sc, reheaded), { status: 401, reason: 'bad_signature' })
      assert.equal(upstream.last()?.headers['x-auth-subject'], 'alice', 'mallory never reached the upstream')
    })
  })

  test('exp is checked on every hit: a cached token stops at exp + clockSkew, and the entry is dropped', async () => {
    let offsetMs = 0
    await withSidecar(yaml(), async (sc) => {
      const token = await issuer.sign({ sub: 'alice' }, { expiresIn: 5 })
      await cached(sc, token)
      // clockSkew is 30s in sidecarYaml: still good 20 s after exp, refused 40 s after.
      offsetMs = 25_000
      assert.equal((await call(sc, token)).status, 200)
      offsetMs = 40_000
      assert.deepEqual(await call(sc, token), { status: 401, reason: 'expired' })
      const m = await cacheMetrics(sc)
      assert.equal(m['evictions.expired'], 1)
      assert.equal(m.entries, 0)
    }, { now: () => Date.now() + offsetMs })
  })

  test('route policy runs on the cached claims of every request', async () => {
    await withSidecar(yaml(), async (sc) => {
      const reader = await issuer.sign({ sub: 'alice', scope: 'read' })
      await cached(sc, reader)
      assert.deepEqual(await call(sc, reader, '/admin/x'), { status: 403, reason: 'insufficient_scope' })
      const admin = await issuer.sign({ sub: 'root', scope: 'admin' })
      await cached(sc, admin, '/admin/x')
    })
  })

  test('a key withdrawn from the JWKS stops its cached tokens at the refresh that removes it', async () => {
    const rotating = await startTestIssuer({ kids: ['old'] })
    try {
      await withSidecar(sidecarYaml({ upstream: upstream.url, issuers: [{ name: 'corp', issuer: rotating.issuer, jwksUri: rotating.jwksUri }] }), async (sc) => {
        const token = await rotating.sign({ sub: 'alice' })
        await cached(sc, token)
        await rotating.addKey('new')
        rotating.removeKey('old')
        // A token under the new kid triggers the unknown-kid refresh that swaps the key set.
        assert.equal((await call(sc, await rotating.sign({ sub: 'bob' }, { kid: 'new' }))).status, 200)
        assert.deepEqual(await call(sc, token), { status: 401, reason: 'unknown_kid' })
        const m = await cacheMetrics(sc)
        assert.equal(m['evictions.keys_changed'], 1)
      })
    } finally {
      await rotating.close()
    }
  })

  test('keys expired past maxStale stop cached tokens (503 keys_unavailable)', async () => {
    const flaky = await startTestIssuer({ kids: ['k1'] })
    const text = sidecarYaml({ upstream: upstream.url, issuers: [{ name: 'corp', issuer: flaky.issuer, jwksUri: flaky.jwksUri }] })
      .replace('      unknownKidCooldown: 30s', '      interval: 1s\n      minInterval: 1s\n      maxInterval: 1s\n      maxStale: 2s\n      unknownKidCooldown: 30s')
    assert.match(text, /maxStale: 2s/)
    try {
      await withSidecar(text, async (sc) => {
        const token = await flaky.sign({ sub: 'alice' })
        await cached(sc, token)
        flaky.setStatus(500)
        await waitFor(async () => (await call(sc, token)).reason === 'keys_unavailable', { what: 'keys_unavailable for the cached token', timeoutMs: 10_000 })
        assert.ok((await cacheMetrics(sc))['evictions.keys_changed']! >= 1)
        flaky.setStatus(200)
        await waitFor(async () => (await call(sc, token)).status === 200, { what: 'the token passes again once the keys are back', timeoutMs: 10_000 })
      })
    } finally {
      await flaky.close()
    }
  })

  test('a reload with other rules for the issuer starts from an empty cache: the new audience applies at once', async () => {
    await withSidecar(yaml(), async (sc) => {
      const token = await issuer.sign({ sub: 'alice' })
      await cached(sc, token)
      const result = sc.app.reload(parseConfig(yaml({ audiences: ['other-api'] }), 'test.yaml', {}))
      assert.deepEqual(result.restartRequired, [])
      assert.deepEqual(await call(sc, token), { status: 401, reason: 'bad_audience' })
      assert.equal((await cacheMetrics(sc)).entries, 0)
    })
  })

  test('tokens.cache.enabled: false verifies every request in full', async () => {
    await withSidecar(yaml({ extra: '' }).replace('  clockSkew: 30s', '  clockSkew: 30s\n  cache:\n    enabled: false'), async (sc) => {
      const token = await issuer.sign({ sub: 'alice' })
      for (let i = 0; i < 3; i++) assert.equal((await call(sc, token)).status, 200)
      const m = await cacheMetrics(sc)
      assert.equal(m['lookups.hit'], 0)
      assert.equal(m.entries, 0)
    })
  })

  test('the cache stays within maxEntries, evicting the least recently used', async () => {
    await withSidecar(yaml().replace('  clockSkew: 30s', '  clockSkew: 30s\n  cache:\n    maxEntries: 2'), async (sc) => {
      const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => issuer.sign({ sub })))
      await cached(sc, a!)
      await cached(sc, b!)
      assert.equal((await call(sc, a!)).status, 200) // a is now the most recently used
      await cached(sc, c!) // evicts b
      const before = await cacheMetrics(sc)
      assert.equal(before.entries, 2)
      assert.equal(before['evictions.capacity'], 1)
      await call(sc, a!)
      await call(sc, b!)
      const after = await cacheMetrics(sc)
      assert.equal(after['lookups.hit']! - before['lookups.hit']!, 1, 'a was kept')
      assert.equal(after['lookups.miss']! - before['lookups.miss']!, 1, 'b was evicted')
    })
  })
})
