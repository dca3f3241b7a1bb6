/**
 * The whole request path over real HTTP: a loopback JWKS issuer with keys generated now, a
 * loopback echo upstream, and the real sidecar between them. Every rejection asserts the
 * status, the RFC 6750 challenge, the JSON body, and that the upstream saw nothing.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { request } from 'undici'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

let issuer: TestIssuer
let ecIssuer: TestIssuer
let upstream: TestUpstream
let sidecar: TestSidecar

before(async () => {
  issuer = await startTestIssuer({ alg: 'RS256', kids: ['k1'] })
  ecIssuer = await startTestIssuer({ alg: 'ES256', kids: ['e1'] })
  upstream = await startUpstream()
  sidecar = await startSidecar(sidecarYaml({
    upstream: upstream.url,
    issuers: [
      { name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri, audiences: ['test-api', 'other-api'] },
      { name: 'partner', issuer: ecIssuer.issuer, jwksUri: ecIssuer.jwksUri, algorithms: ['ES256'] },
    ],
  }))
})

after(async () => {
  await sidecar?.close()
  await Promise.all([issuer?.close(), ecIssuer?.close(), upstream?.close()])
})

/** node:http sends the path verbatim (undici and fetch resolve dot segments before sending). */
function get(path: string, headers: Record<string, string> | string[] = {}) {
  const { hostname, port } = new URL(sidecar.proxyUrl)
  return new Promise<{ status: number; headers: IncomingHttpHeaders; text: string; json: () => Record<string, unknown> }>((resolve, reject) => {
    // With raw header arrays Node adds no Host header; HTTP/1.1 requires one (RFC 9112 §3.2).
    const all = Array.isArray(headers) ? ['host', `${hostname}:${port}`, ...headers] : headers
    const req = httpRequest({ host: hostname, port, path, method: 'GET', headers: all }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> }))
    })
    req.on('error', reject)
    req.end()
  })
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` })

describe('admitted requests', () => {
  test('a valid token is forwarded with verified identity headers and X-Forwarded-*', async () => {
    const token = await issuer.sign({ sub: 'alice', scope: 'orders:read orders:write' })
    const before = upstream.requests()
    const r = await get('/api/orders/42?x=1', bearer(token))
    assert.equal(r.status, 200)
    assert.equal(upstream.requests(), before + 1)
    const seen = upstream.last()!
    assert.equal(seen.url, '/api/orders/42?x=1')
    assert.equal(seen.headers['x-auth-subject'], 'alice')
    assert.equal(seen.headers['x-auth-issuer'], issuer.issuer)
    assert.equal(seen.headers['x-auth-scopes'], 'orders:read orders:write')
    assert.equal(seen.headers.authorization, `Bearer ${token}`, 'forwardToken: true keeps the token')
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(seen.headers['x-forwarded-proto'], 'http')
    assert.equal(seen.headers['x-forwarded-host'], new URL(sidecar.proxyUrl).host)
  })

  test('the second issuer verifies with its own keys (ES256)', async () => {
    const token = await ecIssuer.sign({ sub: 'bob' })
    const r = await get('/api/x', bearer(token))
    assert.equal(r.status, 200)
    assert.equal(upstream.last()!.headers['x-auth-subject'], 'bob')
  })

  test('aud may be an array; one configured audience is enough', async () => {
    const token = await issuer.sign({ sub: 'carol', aud: ['unrelated', 'other-api'] })
    assert.equal((await get('/api/x', bearer(token))).status, 200)
  })

  test('clock skew: expired 10s ago is still accepted with 30s skew', async () => {
    const now = Math.floor(Date.now() / 1000)
    const token = await issuer.sign({ sub: 'dave', iat: now - 100, exp: now - 10 })
    assert.equal((await get('/api/x', bearer(token))).status, 200)
  })
})

describe('spoofed identity headers are stripped before anything else', () => {
  test('on an authenticated route the verified value replaces the spoofed one', async () => {
    const token = await issuer.sign({ sub: 'alice' })
    const r = await get('/api/x', { ...bearer(token), 'X-Auth-Subject': 'admin', 'x-auth-role': 'root' })
    assert.equal(r.status, 200)
    const seen = upstream.last()!.headers
    assert.equal(seen['x-auth-subject'], 'alice')
    assert.equal(seen['x-auth-role'], undefined)
  })

  test('on an auth: none route nothing spoofed reaches the upstream', async () => {
    const r = await get('/healthz', { 'X-Auth-Subject': 'admin', 'X-AUTH-SCOPES': 'everything' })
    assert.equal(r.status, 200)
    const seen = upstream.last()!
    assert.equal(seen.url, '/healthz')
    assert.equal(seen.headers['x-auth-subject'], undefined)
    assert.equal(seen.headers['x-auth-scopes'], undefined)
  })

  test('hop-by-hop headers and headers named in Connection never reach the upstream (RFC 9110 §7.6.1)', async () => {
    const token = await issuer.sign({ sub: 'alice' })
    const r = await get('/api/x', {
      ...bearer(token),
      connection: 'keep-alive, x-private-hop',
      'x-private-hop': 'secret',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      'proxy-authorization': 'Basic c2VjcmV0',
    })
    assert.equal(r.status, 200)
    const seen = upstream.last()!.headers
    for (const h of ['x-private-hop', 'keep-alive', 'te', 'proxy-authorization']) assert.equal(seen[h], undefined, h)
  })

  test('X-Forwarded-*: append keeps the client chain; replace keeps only the sidecar view and drops Forwarded/X-Real-IP', async () => {
    const token = await issuer.sign({ sub: 'alice' })
    const claimed = { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example', forwarded: 'for=203.0.113.7', 'x-real-ip': '203.0.113.7' }
    const r = await get('/api/x', { ...bearer(token), ...claimed })
    assert.equal(r.status, 200)
    const appended = upstream.last()!.headers
    assert.equal(appended['x-forwarded-for'], '203.0.113.7, 127.0.0.1')
    assert.equal(appended['x-forwarded-proto'], 'https')
    assert.equal(appended['x-forwarded-host'], 'shop.example')
    const sc = await startSidecar(sidecarYaml({ upstream: upstream.url, xForwarded: 'replace', issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
    try {
      const res = await request(`${sc.proxyUrl}/api/x`, { headers: { ...bearer(token), ...claimed } })
      assert.equal(res.statusCode, 200)
      await res.body.dump()
      const replaced = upstream.last()!.headers
      assert.equal(replaced['x-forwarded-for'], '127.0.0.1')
      assert.equal(replaced['x-forwarded-proto'], 'http')
      assert.equal(replaced['x-forwarded-host'], new URL(sc.proxyUrl).host)
      assert.equal(replaced.forwarded, undefined)
      assert.equal(replaced['x-real-ip'], undefined)
    } finally {
      await sc.close()
    }
  })

  test('naming an identity header in Connection cannot remove the verified value', async () => {
    const token = await issuer.sign({ sub: 'alice' })
    const r = await get('/api/x', { ...bearer(token), connection: 'keep-alive, X-Auth-Subject' })
    assert.equal(r.status, 200)
    assert.equal(upstream.last()!.headers['x-auth-subject'], 'alice')
  })

  test('a claim with CR/LF cannot inject a header', async () => {
    const token = await issuer.sign({ sub: 'eve\r\nX-Admin: true' })
    const r = await get('/api/x', bearer(token))
    assert.equal(r.status, 200)
    const seen = upstream.last()!.headers
    assert.equal(seen['x-admin'], undefined)
    assert.equal(seen['x-auth-subject'], "UTF-8''eve%0D%0AX-Admin%3A%20true")
  })

  test('auth: optional forwards an anonymous request without identity headers', async () => {
    const r = await get('/public/page', { 'X-Auth-Subject': 'admin' })
    assert.equal(r.status, 200)
    assert.equal(upstream.last()!.headers['x-auth-subject'], undefined)
  })

  test('auth: optional still rejects an invalid token', async () => {
    const token = await issuer.sign({ sub: 'x', exp: Math.floor(Date.now() / 1000) - 3600 })
    assert.equal((await get('/public/page', bearer(token))).status, 401)
  })
})

describe('every rejection reason over real HTTP; the upstream is never contacted', () => {
  const now = (): number => Math.floor(Date.now() / 1000)
  const cases: Array<{ reason: string; status: number; make: () => Promise<Record<string, string> | string[]>; path?: string }> = [
    { reason: 'missing_token', status: 401, make: async () => ({}) },
    { reason: 'malformed', status: 401, make: async () => bearer('not-a-jwt') },
    { reason: 'malformed', status: 401, make: async () => bearer('a.b.c.d.e') },
    { reason: 'unknown_issuer', status: 401, make: async () => bearer(await issuer.sign({ iss: 'https://evil.example' })) },
    { reason: 'alg_not_allowed', status: 401, make: async () => bearer(await ecIssuer.sign({ iss: issuer.issuer })) },
    { reason: 'unknown_kid', status: 401, make: async () => bearer(await issuer.sign({}, { kid: 'never-published' })) },
    {
      reason: 'bad_signature', status: 401, make: async () => {
        const [h, , s] = (await issuer.sign({ sub: 'alice' })).split('.')
        const forged = Buffer.from(JSON.stringify({ iss: issuer.issuer, aud: 'test-api', sub: 'admin', exp: now() + 600 })).toString('base64url')
        return bearer(`${h}.${forged}.${s}`)
      },
    },
    { reason: 'expired', status: 401, make: async () => bearer(await issuer.sign({ iat: now() - 7200, exp: now() - 3600 })) },
    { reason: 'not_yet_valid', status: 401, make: async () => bearer(await issuer.sign({ nbf: now() + 3600 })) },
    { reason: 'bad_audience', status: 401, make: async () => bearer(await issuer.sign({ aud: 'someone-else' })) },
    { reason: 'missing_claim', status: 401, make: async () => bearer(await issuer.sign({ exp: undefined })) },
    {
      reason: 'invalid_request', status: 400, make: async () => {
        const t = await issuer.sign({})
        return ['authorization', `Bearer ${t}`, 'authorization', `Bearer ${t}x`]
      },
    },
    { reason: 'invalid_request', status: 400, path: '/api/..%2fhealthz', make: async () => ({}) },
    { reason: 'no_route', status: 403, path: '/not-configured', make: async () => bearer(await issuer.sign({})) },
  ]
  for (const c of cases) {
    test(`${c.reason} (${c.status})${c.path === undefined ? '' : ` on ${c.path}`}`, async () => {
      const headers = await c.make()
      const seen = upstream.requests()
      const r = await get(c.path ?? '/api/orders', headers)
      assert.equal(r.status, c.status)
      assert.equal(upstream.requests(), seen, 'the upstream must not be contacted')
      assert.deepEqual(r.json(), { error: c.status === 401 ? 'invalid_token' : c.status === 400 ? 'invalid_request' : 'access_denied', reason: c.reason })
      assert.equal(r.headers['cache-control'], 'no-store')
      const challenge = r.headers['www-authenticate']
      if (c.reason === 'missing_token') {
        // RFC 6750 §3.1: no error attribute when the request carried no token.
        assert.equal(challenge, 'Bearer realm="jwt-sidecar"')
      } else if (c.status === 401 || c.status === 400) {
        const error = c.status === 401 ? 'invalid_token' : 'invalid_request'
        assert.equal(challenge, `Bearer realm="jwt-sidecar", error="${error}", error_description="${c.reason}"`)
      } else {
        assert.equal(challenge, undefined)
      }
      const token = Array.isArray(headers) ? headers[1] : headers.authorization
      if (token !== undefined) assert.ok(!r.text.includes(token.slice(7, 40)), 'the token is never echoed')
    })
  }
})

test('keys_unavailable: 503 with Retry-After while the issuer cannot be reached; readiness fails; other issuers unaffected', async () => {
  const down = await startTestIssuer({ kids: ['d1'] })
  down.setStatus(500)
  const sc = await startSidecar(sidecarYaml({
    upstream: upstream.url,
    issuers: [
      { name: 'down', issuer: down.issuer, jwksUri: down.jwksUri },
      { name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri },
    ],
  }), { waitReady: false })
  try {
    const seen = upstream.requests()
    const res = await request(`${sc.proxyUrl}/api/x`, { headers: bearer(await down.sign({})) })
    assert.equal(res.statusCode, 503)
    assert.equal(res.headers['retry-after'], '5')
    assert.deepEqual(await res.body.json(), { error: 'temporarily_unavailable', reason: 'keys_unavailable' })
    assert.equal(upstream.requests(), seen)
    const ready = await request(`${sc.adminUrl}/readyz`)
    assert.equal(ready.statusCode, 503)
    assert.deepEqual(await ready.body.json(), { status: 'not_ready', issuers: ['down'] })
    // The healthy issuer keeps working while the other is down.
    await sc.app.keys.issuer('corp')!.settled()
    const ok = await request(`${sc.proxyUrl}/api/x`, { headers: bearer(await issuer.sign({})) })
    assert.equal(ok.statusCode, 200)
    await ok.body.dump()
  } finally {
    await sc.close()
    await down.close()
  }
})

describe('admin port', () => {
  test('/healthz and /readyz', async () => {
    const h = await request(`${sidecar.adminUrl}/healthz`)
    assert.equal(h.statusCode, 200)
    await h.body.dump()
    const r = await request(`${sidecar.adminUrl}/readyz?verbose`)
    assert.equal(r.statusCode, 200)
    const body = (await r.body.json()) as { status: string; issuers: Array<{ issuer: string; ready: boolean }> }
    assert.equal(body.status, 'ready')
    assert.deepEqual(body.issuers.map((i) => [i.issuer, i.ready]), [['corp', true], ['partner', true]])
  })

  test('/metrics counts requests by route, outcome and reason, JWKS fetches and verification time', async () => {
    const token = await issuer.sign({ exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200 })
    const res0 = await get('/api/x', bearer(token))
    assert.equal(res0.status, 401)
    const m = await request(`${sidecar.adminUrl}/metrics`)
    const text = await m.body.text()
    assert.match(text, /^jwt_sidecar_requests_total\{route="default",outcome="denied",reason="expired"\} [1-9]\d*$/m)
    assert.match(text, /^jwt_sidecar_requests_total\{route="default",outcome="allowed",reason="none"\} [1-9]\d*$/m)
    assert.match(text, /^jwt_sidecar_requests_total\{route="health",outcome="anonymous",reason="none"\} [1-9]\d*$/m)
    assert.match(text, /^jwt_sidecar_jwks_refresh_total\{issuer="corp",trigger="startup",result="updated"\} 1$/m)
    assert.match(text, /^jwt_sidecar_jwks_state\{issuer="corp",state="fresh"\} 1$/m)
    assert.match(text, /^jwt_sidecar_jwks_keys\{issuer="corp"\} 1$/m)
    assert.match(text, /^jwt_sidecar_verification_duration_seconds_count\{issuer="corp"\} [1-9]\d*$/m)
    assert.match(text, /^jwt_sidecar_process_cpu_seconds_total /m, 'process metrics are exposed too')
    // Labels only from closed sets: no path, subject or kid ever becomes a label value.
    assert.ok(!/\/api\/|alice|kid="/.test(text))
  })

  test('the admin port is never proxied, and the proxy port does not serve /metrics', async () => {
    const seen = upstream.requests()
    const r = await get('/metrics')
    assert.equal(r.status, 403)
    assert.equal(upstream.requests(), seen)
  })
})

describe('logs', () => {
  test('one access line per request with route, outcome, reason and status; never a token or claims', async () => {
    const token = await issuer.sign({ sub: 'secret-subject-value', email: 'alice@example.com' })
    const r = await get('/api/orders?access_token=query-secret', bearer(token))
    assert.equal(r.status, 200)
    await new Promise((resolve) => setImmediate(resolve))
    const lines = sidecar.logs().filter((l) => l.event === 'http.access' && l.path === '/api/orders')
    assert.ok(lines.length >= 1)
    const line = lines.at(-1)!
    assert.equal(line.route, 'default')
    assert.equal(line.outcome, 'allowed')
    assert.equal(line.reason, 'none')
    assert.equal(line.status, 200)
    assert.equal(line.issuer, 'corp')
    const all = sidecar.logText()
    assert.ok(!all.includes(token.split('.')[1]!), 'no token payload in logs')
    assert.ok(!all.includes(token.split('.')[2]!), 'no signature in logs')
    assert.ok(!all.includes('secret-subject-value') && !all.includes('alice@example.com'), 'no claim values in logs')
    assert.ok(!all.includes('query-secret'), 'no query string in logs')
  })
})
