/**
 * Issue #9 against real apps: express 4 and 5, koa, Python's http.server, Flask under wsgiref
 * and nginx (test/helpers/apps.ts), each behind its own real sidecar. Every app has an admin
 * handler that must never run without the admin scope, and reports the identity it read, so
 * each class is checked where it matters: in the app.
 *
 * - §1 header names the app folds together (`X_Auth_Subject` is `X-Auth-Subject` to WSGI);
 * - §2 registered claims of the wrong JSON type;
 * - §3 credential bytes outside the b64token grammar;
 * - §4 a method walking around a method-scoped route (`auth: deny` closes it);
 * - §6 request targets the app reads differently (case, trailing slash, fragments, dot
 *   segments, `;`, method overrides): the differential helper sends every variant both to the
 *   sidecar's own decision and, as the sidecar would forward it, to each app;
 * - §7 a request smuggled in a body the app never reads (http.server keep-alive).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/load.ts'
import { createKeyStore } from '../../src/keys/store.ts'
import { parseTarget } from '../../src/policy/normalize.ts'
import { effectiveMethod } from '../../src/request/decide.ts'
import { createPipeline } from '../../src/request/pipeline.ts'
import type { Pipeline } from '../../src/request/pipeline.ts'
import { APP_KINDS, startApp } from '../helpers/apps.ts'
import type { AppKind, RealApp } from '../helpers/apps.ts'
import { findBypasses, requestVariants, sendRaw } from '../helpers/differential.ts'
import type { SidecarView, Variant } from '../helpers/differential.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer } from '../helpers/issuer.ts'
import { startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'
import { waitFor } from '../../src/wait-for.ts'

let issuer: TestIssuer

function yaml(upstream: string, extra = ''): string {
  return `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: ${upstream}, timeout: 5s${extra} }
issuers:
  - { name: corp, issuer: ${JSON.stringify(issuer.issuer)}, jwksUri: ${JSON.stringify(issuer.jwksUri)}, audiences: [test-api] }
identity:
  headers: { X-Auth-Subject: sub, X-Auth-Scopes: scope }
  strip: ["X-Auth-*"]
routes:
  - { name: public, path: /public/**, auth: none }
  - { name: admin, path: /admin/**, require: { scopes: [admin] } }
  - { name: orders-read, path: /orders/**, methods: [GET, HEAD], require: { scopes: ["orders:read"] } }
  - { name: orders-closed, path: /orders/**, auth: deny }
  - { name: default, path: /**, auth: required }
log: { level: warn, access: false }
`
}

/** The sidecar's own view of a variant: its header policy, target parser and route matcher. */
function viewOf(p: Pipeline, v: Variant): SidecarView {
  // Node lower-cases names; the policy works on that object in place, as in the proxy.
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(v.headers)) headers[name.toLowerCase()] = value
  const strip = p.headers.stripInbound(headers)
  if (strip?.rejected !== undefined) return { rejected: true, why: 'header refused' }
  const t = parseTarget(v.target)
  if (!t.ok) return { rejected: true, why: t.why }
  const method = effectiveMethod(p, v.method, headers)
  if (typeof method !== 'string') return { rejected: true, why: method.invalid }
  const route = p.routes.match(method, t.path)
  if (route === undefined) return { rejected: true, why: 'no_route' }
  return {
    rejected: false,
    protected: route.auth === 'deny' || route.require.scopes.includes('admin'),
    route: route.name,
    forwarded: { method: v.method, target: t.query === undefined ? t.path : `${t.path}?${t.query}`, headers },
  }
}

const admins = (app: RealApp) => app.handled().filter((h) => h.handler === 'admin')

before(async () => {
  issuer = await startTestIssuer()
})
after(async () => {
  await issuer?.close()
})

for (const kind of APP_KINDS) {
  describe(`behind the sidecar: ${kind}`, () => {
    let app: RealApp
    let sidecar: TestSidecar
    let pipeline: Pipeline
    let readToken: string

    before(async () => {
      app = await startApp(kind)
      sidecar = await startSidecar(yaml(app.url))
      // The sidecar's own pipeline for the same config; its key store is never started (no key is needed to match routes).
      const config = parseConfig(yaml(app.url), 'differential.yaml', {})
      pipeline = createPipeline(config, createKeyStore(config.issuers))
      readToken = await issuer.sign({ sub: 'alice', scope: 'read orders:read' })
    })
    after(async () => {
      await sidecar?.close()
      await app?.close()
    })

    test('control: the admin handler is real, and a token with the admin scope reaches it as itself', async () => {
      const r = await sendRaw(sidecar.proxyUrl, { method: 'GET', target: '/admin/x', headers: {} }, { authorization: `Bearer ${await issuer.sign({ sub: 'root', scope: 'admin' })}` })
      assert.equal(r.status, 200, r.raw)
      assert.equal(r.handler, 'admin')
      assert.equal(r.body?.subject, 'root')
    })

    test('§6 differential: no variant the sidecar leaves unprotected reaches the admin handler', async () => {
      const findings = await findBypasses([app], requestVariants(), (v) => viewOf(pipeline, v))
      assert.deepEqual(findings, [])
    })

    test('§6 end to end: every variant with a token without the admin scope, through the sidecar, never runs the admin handler', async () => {
      const before = admins(app).length
      const statuses = new Set<number>()
      for (const v of requestVariants()) {
        const r = await sendRaw(sidecar.proxyUrl, v, { authorization: `Bearer ${readToken}` })
        statuses.add(r.status)
        assert.notEqual(r.handler, 'admin', `${v.method} ${v.target} ${JSON.stringify(v.headers)}`)
      }
      assert.equal(admins(app).length, before)
      // The variants exercise refusals (400 target, 403 scope or no route) and admissions (200).
      for (const s of [200, 400, 403]) assert.ok(statuses.has(s), `no ${s} among ${[...statuses].join(', ')}`)
    })

    test('§1 every spelling of an identity header reaches the app only as the verified value', async () => {
      const spoofs = { X_Auth_Subject: 'evil', 'x-auth_subject': 'evil', 'X-AUTH_SUBJECT': 'evil', X_Auth_Scopes: 'admin', 'x_auth-scopes': 'admin' }
      const r = await sendRaw(sidecar.proxyUrl, { method: 'GET', target: '/x', headers: spoofs }, { authorization: `Bearer ${readToken}` })
      assert.equal(r.status, 200, r.raw)
      assert.equal(r.body?.subject, 'alice')
      assert.equal(r.body?.scopes === null || r.body?.scopes === '' ? undefined : r.body?.scopes, 'read orders:read')
      assert.ok(!r.raw.includes('evil'), r.raw)
      const open = await sendRaw(sidecar.proxyUrl, { method: 'GET', target: '/public/x', headers: spoofs })
      assert.equal(open.status, 200, open.raw)
      assert.ok(open.body?.subject === null || open.body?.subject === '', `auth: none route: the app read subject ${String(open.body?.subject)}`)
      assert.ok(!open.raw.includes('evil') && !open.raw.includes('"admin"'), open.raw)
    })

    test('§2 a token whose sub is an object never reaches the app', async () => {
      const seen = app.handled().length
      const r = await sendRaw(sidecar.proxyUrl, { method: 'GET', target: '/x', headers: {} }, { authorization: `Bearer ${await issuer.sign({ sub: { id: 'admin' } })}` })
      assert.equal(r.status, 401)
      assert.match(r.raw, /"reason":"bad_claim_type"/)
      assert.equal(app.handled().length, seen)
    })

    test('§3 a token followed by 0xA0 is 400 and never reaches the app', async () => {
      const seen = app.handled().length
      const r = await sendRaw(sidecar.proxyUrl, { method: 'GET', target: '/x', headers: {} }, { authorization: `Bearer ${readToken}\u00a0` })
      assert.equal(r.status, 400, r.raw)
      assert.equal(app.handled().length, seen)
    })

    test('§4 a POST to a GET-scoped path meets auth: deny, not the catch-all', async () => {
      const seen = app.handled().length
      const write = await sendRaw(sidecar.proxyUrl, { method: 'POST', target: '/orders/1', headers: {} }, { authorization: `Bearer ${readToken}` })
      assert.equal(write.status, 403, write.raw)
      assert.match(write.raw, /"reason":"route_denied"/)
      assert.equal(app.handled().length, seen)
      const read = await sendRaw(sidecar.proxyUrl, { method: 'GET', target: '/orders/1', headers: {} }, { authorization: `Bearer ${readToken}` })
      assert.equal(read.status, 200, read.raw)
    })

    test('§7 a request smuggled in an unread body never runs, whatever the app does with bodies', async () => {
      const before = admins(app).length
      await smuggle(sidecar)
      // Give the app the time to parse the leftover bytes, if it had them.
      await new Promise((r) => setTimeout(r, 300))
      assert.deepEqual(admins(app).slice(before), [])
    })
  })
}

/** A complete request to the admin handler, with a forged identity and no token. */
const HIDDEN = 'GET /admin/delete-all HTTP/1.1\r\nHost: app\r\nX-Auth-Subject: admin\r\nX-Auth-Scopes: admin\r\nContent-Length: 0\r\n\r\n'

/** POST to the auth: none route whose body is HIDDEN: an app that does not read it may parse it as the next request. */
async function smuggle(sidecar: TestSidecar): Promise<void> {
  const r = await sendRaw(sidecar.proxyUrl, { method: 'POST', target: '/public/upload', headers: { 'Content-Type': 'text/plain' } }, {}, HIDDEN)
  assert.equal(r.status, 200, r.raw)
}

describe('§7 the smuggling precondition is real: python http.server with upstream.drainsBodies: true', () => {
  let app: RealApp
  let unsafe: TestSidecar
  let safe: TestSidecar

  before(async () => {
    app = await startApp('python-http-server' satisfies AppKind)
    unsafe = await startSidecar(yaml(app.url, ', drainsBodies: true'))
    safe = await startSidecar(yaml(app.url))
  })
  after(async () => {
    await Promise.all([unsafe?.close(), safe?.close()])
    await app?.close()
  })

  test('drainsBodies: true (a false promise for this app): the hidden request runs as admin, without a token', async () => {
    await smuggle(unsafe)
    await waitFor(() => admins(app).length > 0, { what: 'the hidden request to reach the admin handler', timeoutMs: 3_000 })
    assert.deepEqual(admins(app).map((h) => [h.path, h.subject]), [['/admin/delete-all', 'admin']])
  })

  test('the default (drainsBodies: false): the connection is closed after the response; the hidden request never runs', async () => {
    const before = admins(app).length
    for (let i = 0; i < 5; i++) await smuggle(safe)
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(admins(app).length, before)
  })
})
