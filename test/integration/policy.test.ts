/**
 * Route requirements, claim rules, token sources and identity options over real HTTP.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'
import { startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

let corp: TestIssuer
let partner: TestIssuer
let upstream: TestUpstream
let sidecar: TestSidecar
const now = (): number => Math.floor(Date.now() / 1000)

before(async () => {
  corp = await startTestIssuer({ alg: 'RS256', kids: ['k1'] })
  partner = await startTestIssuer({ alg: 'ES256', kids: ['e1'] })
  upstream = await startUpstream()
  sidecar = await startSidecar(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: ${upstream.url} }
issuers:
  - name: corp
    issuer: ${corp.issuer}
    jwksUri: ${corp.jwksUri}
    audiences: [test-api]
    requiredClaims: [exp, sub]
    maxLifetime: 1h
  - name: partner
    issuer: ${partner.issuer}
    jwksUri: ${partner.jwksUri}
    audiences: [test-api]
    algorithms: [ES256]
    typ: at+jwt
tokens:
  from:
    - header: Authorization
      prefix: "Bearer "
    - cookie: session_jwt
identity:
  headers: { X-Auth-Subject: sub, X-Auth-Roles: realm_access.roles, X-Auth-Bio: bio }
  strip: ["X-Auth-*"]
  forwardToken: false
  arrays: json
  maxValueBytes: 256B
  claimsHeader: X-Auth-Claims
routes:
  - name: orders
    path: /orders/**
    issuers: [corp]
    require:
      scopes: [orders:read]
      claims: { realm_access.roles: [clerk, admin] }
  - name: default
    path: /**
    auth: required
log: { level: debug, access: false }
`)
})
after(async () => {
  await sidecar?.close()
  await Promise.all([corp?.close(), partner?.close(), upstream?.close()])
})

async function call(path: string, headers: Record<string, string>) {
  const res = await request(`${sidecar.proxyUrl}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` })

describe('route requirements: 403 with the route scopes in the challenge, upstream untouched', () => {
  const ok = { sub: 'alice', scope: 'orders:read', realm_access: { roles: ['clerk'] } }
  const cases: Array<[string, () => Promise<Record<string, string>>, number, string]> = [
    ['all requirements met', async () => bearer(await corp.sign(ok)), 200, 'none'],
    ['scope missing', async () => bearer(await corp.sign({ ...ok, scope: 'orders:write' })), 403, 'insufficient_scope'],
    ['scp array grants it', async () => bearer(await corp.sign({ ...ok, scope: undefined, scp: ['orders:read'] })), 200, 'none'],
    ['role not allowed', async () => bearer(await corp.sign({ ...ok, realm_access: { roles: ['guest'] } })), 403, 'claim_mismatch'],
    ['issuer not accepted by the route', async () => bearer(await partner.sign({ ...ok }, { header: { typ: 'at+jwt' } })), 403, 'issuer_not_allowed'],
  ]
  for (const [name, make, status, reason] of cases) {
    test(`${name} → ${status} ${reason}`, async () => {
      const seen = upstream.requests()
      const r = await call('/orders/1', await make())
      assert.equal(r.status, status)
      if (status === 200) {
        assert.equal(upstream.requests(), seen + 1)
        return
      }
      assert.equal(upstream.requests(), seen)
      assert.deepEqual(r.body, { error: 'insufficient_scope', reason })
      assert.equal(r.headers['www-authenticate'], `Bearer realm="jwt-sidecar", error="insufficient_scope", error_description="${reason}", scope="orders:read"`)
    })
  }
})

describe('claim rules per issuer', () => {
  const cases: Array<[string, () => Promise<string>, string]> = [
    ['sub missing (requiredClaims)', () => corp.sign({ sub: undefined }), 'missing_claim'],
    ['lifetime over maxLifetime 1h', () => corp.sign({ sub: 'a', iat: now(), exp: now() + 7200 }), 'lifetime_exceeded'],
    ['iat in the future', () => corp.sign({ sub: 'a', iat: now() + 600, exp: now() + 900 }), 'issued_in_future'],
    ['typ missing where at+jwt is required', () => partner.sign({ sub: 'a' }, { header: { typ: 'JWT' } }), 'bad_type'],
  ]
  for (const [name, make, reason] of cases) {
    test(`${name} → 401 ${reason}`, async () => {
      const seen = upstream.requests()
      const r = await call('/x', bearer(await make()))
      assert.equal(r.status, 401)
      assert.equal(r.body.reason, reason)
      assert.equal(upstream.requests(), seen)
    })
  }
  test('typ application/at+JWT is accepted for at+jwt (RFC 8725 §3.11)', async () => {
    assert.equal((await call('/x', bearer(await partner.sign({ sub: 'a' }, { header: { typ: 'application/at+JWT' } })))).status, 200)
  })
})

describe('token sources and identity options', () => {
  test('a cookie token is verified, and with forwardToken: false the cookie (only it) is removed', async () => {
    const token = await corp.sign({ sub: 'carol' })
    const r = await call('/x', { cookie: `theme=dark; session_jwt=${token}; lang=en` })
    assert.equal(r.status, 200)
    const seen = upstream.last()!.headers
    assert.equal(seen.cookie, 'theme=dark; lang=en')
    assert.equal(seen['x-auth-subject'], 'carol')
  })

  test('with forwardToken: false the Authorization header is removed', async () => {
    const r = await call('/x', bearer(await corp.sign({ sub: 'dave' })))
    assert.equal(r.status, 200)
    assert.equal(upstream.last()!.headers.authorization, undefined)
  })

  test('arrays as JSON, nested claim paths, the claims header, and an over-long value dropped (and logged)', async () => {
    const claims = { sub: 'erin', realm_access: { roles: ['clerk', 'admin'] }, bio: 'x'.repeat(300) }
    const token = await corp.sign(claims)
    const r = await call('/x', bearer(token))
    assert.equal(r.status, 200)
    const seen = upstream.last()!.headers
    assert.equal(seen['x-auth-roles'], '["clerk","admin"]')
    assert.equal(seen['x-auth-bio'], undefined, 'over identity.maxValueBytes: not sent, never truncated')
    assert.equal(seen['x-auth-claims'], undefined, 'the whole payload is over 256 B too')
    const dropped = sidecar.logs().filter((l) => l.event === 'identity.dropped').map((l) => l.header)
    assert.ok(dropped.includes('x-auth-bio') && dropped.includes('x-auth-claims'), JSON.stringify(dropped))
    assert.ok(!sidecar.logText().includes('x'.repeat(300)), 'the value is never logged')
    const small = await corp.sign({ sub: 'f' })
    await call('/x', bearer(small))
    const header = upstream.last()!.headers['x-auth-claims']
    assert.equal(typeof header, 'string')
    assert.deepEqual(JSON.parse(Buffer.from(String(header), 'base64url').toString()), JSON.parse(Buffer.from(small.split('.')[1]!, 'base64url').toString()))
  })

  test('a spoofed claims header is stripped like any identity header', async () => {
    const forged = Buffer.from(JSON.stringify({ sub: 'admin' })).toString('base64url')
    await call('/x', { ...bearer(await corp.sign({ sub: 'g', bio: 'x'.repeat(300) })), 'x-auth-claims': forged })
    assert.equal(upstream.last()!.headers['x-auth-claims'], undefined)
  })
})

describe('issue #9: the request-reading options', () => {
  /** A sidecar of its own for `extra` settings (identity and requests sections, routes). */
  async function withSidecar(extra: string, fn: (sc: TestSidecar) => Promise<void>): Promise<void> {
    const sc = await startSidecar(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: ${upstream.url} }
issuers:
  - { name: corp, issuer: ${JSON.stringify(corp.issuer)}, jwksUri: ${JSON.stringify(corp.jwksUri)}, audiences: [test-api] }
${extra}`)
    try {
      await fn(sc)
    } finally {
      await sc.close()
    }
  }
  const routes = `routes:
  - { name: orders-read, path: /orders/**, methods: [GET], require: { scopes: ["orders:read"] } }
  - { name: orders-delete, path: /orders/**, methods: [DELETE], require: { scopes: ["orders:delete"] } }
  - { name: default, path: /**, auth: required }`

  test('underscoreHeaders: reject → 400 invalid_request for any name with "_", counted as rejected, upstream untouched', async () => {
    await withSidecar(`identity: { headers: { X-Auth-Subject: sub }, underscoreHeaders: reject }\n${routes}`, async (sc) => {
      const seen = upstream.requests()
      const token = await corp.sign({ sub: 'alice', scope: 'orders:read' })
      const res = await request(`${sc.proxyUrl}/orders/1`, { headers: { authorization: `Bearer ${token}`, x_trace_id: '1' } })
      assert.equal(res.statusCode, 400)
      assert.deepEqual(await res.body.json(), { error: 'invalid_request', reason: 'invalid_request' })
      assert.equal(upstream.requests(), seen)
      const metrics = await (await request(`${sc.adminUrl}/metrics`)).body.text()
      assert.match(metrics, /jwt_sidecar_inbound_header_names_total\{kind="underscore",action="rejected"\} 1/)
      assert.ok(sc.logs().some((l) => l.event === 'request.header_rejected' && JSON.stringify(l.names) === '["x_trace_id"]'))
      const ok = await request(`${sc.proxyUrl}/orders/1`, { headers: { authorization: `Bearer ${token}`, 'x-trace-id': '1' } })
      assert.equal(ok.statusCode, 200)
      await ok.body.dump()
    })
  })

  test('underscoreHeaders: allow → other "_" names pass, aliases of protected names still do not', async () => {
    await withSidecar(`identity: { headers: { X-Auth-Subject: sub }, underscoreHeaders: allow }\n${routes}`, async (sc) => {
      const token = await corp.sign({ sub: 'alice', scope: 'orders:read' })
      const res = await request(`${sc.proxyUrl}/orders/1`, { headers: { authorization: `Bearer ${token}`, x_trace_id: '1', x_auth_subject: 'evil' } })
      assert.equal(res.statusCode, 200)
      await res.body.dump()
      assert.equal(upstream.last()!.headers.x_trace_id, '1')
      assert.equal(upstream.last()!.headers.x_auth_subject, undefined)
      assert.equal(upstream.last()!.headers['x-auth-subject'], 'alice')
    })
  })

  test('methodOverride: strip (default) → a POST with X-HTTP-Method-Override: DELETE is a POST, the header never arrives', async () => {
    await withSidecar(routes, async (sc) => {
      const token = await corp.sign({ sub: 'alice', scope: 'orders:read' })
      const res = await request(`${sc.proxyUrl}/orders/1`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-http-method-override': 'DELETE' } })
      assert.equal(res.statusCode, 200, 'POST falls to the catch-all (check-config warns about that shape)')
      await res.body.dump()
      assert.equal(upstream.last()!.headers['x-http-method-override'], undefined)
    })
  })

  test('methodOverride: honor → the POST is matched as the DELETE the app will run; disagreeing overrides are 400', async () => {
    await withSidecar(`requests: { methodOverride: honor }\n${routes}`, async (sc) => {
      const reader = await corp.sign({ sub: 'alice', scope: 'orders:read' })
      const denied = await request(`${sc.proxyUrl}/orders/1`, { method: 'POST', headers: { authorization: `Bearer ${reader}`, 'x-http-method-override': 'delete' } })
      assert.equal(denied.statusCode, 403)
      assert.deepEqual(await denied.body.json(), { error: 'insufficient_scope', reason: 'insufficient_scope' })
      const deleter = await corp.sign({ sub: 'bob', scope: 'orders:delete' })
      const ok = await request(`${sc.proxyUrl}/orders/1`, { method: 'POST', headers: { authorization: `Bearer ${deleter}`, 'x-http-method-override': 'DELETE' } })
      assert.equal(ok.statusCode, 200)
      await ok.body.dump()
      assert.equal(upstream.last()!.headers['x-http-method-override'], 'DELETE', 'forwarded: the app acts on it')
      const ambiguous = await request(`${sc.proxyUrl}/orders/1`, { method: 'POST', headers: { authorization: `Bearer ${deleter}`, 'x-http-method-override': 'DELETE', 'x-http-method': 'GET' } })
      assert.equal(ambiguous.statusCode, 400)
      await ambiguous.body.dump()
    })
  })

  test('auth: deny → 403 route_denied without reading a token; the start-up log carries check-config\'s warning for the trap', async () => {
    await withSidecar(`routes:
  - { name: orders-read, path: /orders/**, methods: [GET], require: { scopes: ["orders:read"] } }
  - { name: default, path: /**, auth: required }`, async (sc) => {
      const warning = sc.logs().find((l) => l.event === 'config.warning')
      assert.ok(warning !== undefined, 'config.warning logged at start')
      assert.equal(warning.level, 'warn')
      assert.equal(warning.path, 'routes[0]')
      assert.match(String(warning.msg), /route orders-read requires scopes orders:read only for GET; HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE on \/orders\/\*\* fall through to routes\[1\] \(default\)/)
    })
    await withSidecar(`routes:
  - { name: orders-read, path: /orders/**, methods: [GET], require: { scopes: ["orders:read"] } }
  - { name: orders-closed, path: /orders/**, auth: deny }
  - { name: default, path: /**, auth: required }`, async (sc) => {
      assert.equal(sc.logs().some((l) => l.event === 'config.warning'), false)
      const seen = upstream.requests()
      const res = await request(`${sc.proxyUrl}/orders/1`, { method: 'PUT' })
      assert.equal(res.statusCode, 403)
      assert.deepEqual(await res.body.json(), { error: 'access_denied', reason: 'route_denied' })
      assert.equal(upstream.requests(), seen)
    })
  })
})
