/**
 * The request decision (src/request/decide.ts) as a unit: a real config, a real key store
 * over a loopback JWKS, tokens signed at test time; no fastify. The proxy's behaviour is
 * covered end to end elsewhere; this pins the decision's own contract: which answer, which
 * fixed (allocation-free) decisions, what the trace records, and that it fails closed.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/load.ts'
import type { SidecarConfig } from '../../src/config/types.ts'
import { createKeyStore } from '../../src/keys/store.ts'
import type { KeyStore } from '../../src/keys/types.ts'
import { NO_ROUTE, afterVerify, badRequest, begin, decide, readTarget } from '../../src/request/decide.ts'
import type { Decision, Next, RequestIn } from '../../src/request/decide.ts'
import { createPipeline } from '../../src/request/pipeline.ts'
import type { Pipeline } from '../../src/request/pipeline.ts'
import type { RequestTraceEvent } from '../../src/request/trace.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer } from '../helpers/issuer.ts'

let idp: TestIssuer
let config: SidecarConfig
let keys: KeyStore
let p: Pipeline

const yaml = (issuer: string, jwksUri: string, methodOverride = 'strip'): string => `
listen: 127.0.0.1:0
upstream: { url: "http://127.0.0.1:1" }
issuers:
  - name: corp
    issuer: ${JSON.stringify(issuer)}
    jwksUri: ${JSON.stringify(jwksUri)}
    allowInsecureHttp: true
    audiences: [api]
    algorithms: [RS256]
tokens:
  from:
    - header: Authorization
      prefix: "Bearer "
    - cookie: session
requests:
  methodOverride: ${methodOverride}
routes:
  - { name: health, path: /healthz, auth: none }
  - { name: internal, path: /internal/**, auth: deny }
  - { name: optional, path: /maybe/**, auth: optional }
  - { name: admin, path: /admin/**, require: { scopes: [admin] } }
  - { name: partner, path: /partner/**, issuers: [corp], require: { claims: { tenant: [partner] } } }
  - { name: reports, path: /reports, methods: [DELETE], require: { scopes: [reports:delete] } }
  - { name: default, path: /api/** }
`

before(async () => {
  idp = await startTestIssuer()
  config = parseConfig(yaml(idp.issuer, idp.jwksUri), 'decide.yaml', {})
  keys = createKeyStore(config.issuers)
  keys.start()
  await keys.settled()
  assert.ok(keys.issuer('corp')?.ready() === true, 'the test issuer\'s keys never loaded')
  p = createPipeline(config, keys)
})
after(async () => {
  await keys?.stop()
  await idp?.close()
})

function req(url: string, headers: Record<string, string> = {}, method = 'GET'): RequestIn {
  const target = readTarget(url)
  assert.ok(target.ok, `${url} must parse`)
  return { method, target, headers, rawHeaders: Object.entries(headers).flat() }
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

function denied(d: Next | Decision): Decision & { kind: 'deny' } {
  assert.ok(d.kind === 'deny', JSON.stringify(d))
  return d
}

test('begin: no route, auth none, auth deny, a missing and an optional token, each its fixed answer', () => {
  assert.equal(begin(p, req('/nowhere')), NO_ROUTE)
  // Default deny: a request no rule matches is refused (403), never forwarded.
  assert.equal(NO_ROUTE.kind === 'deny' && NO_ROUTE.answer.status, 403)

  const health = begin(p, req('/healthz'))
  assert.deepEqual(health, { kind: 'admit', route: 'health', outcome: 'anonymous', issuer: undefined, claims: undefined })
  // Built once per route: the common answers allocate nothing per request.
  assert.equal(begin(p, req('/healthz')), health)

  const closed = denied(begin(p, req('/internal/x', bearer('a.b.c'))))
  assert.equal(closed.reason, 'route_denied')
  assert.equal(closed.answer.status, 403)

  const missing = denied(begin(p, req('/api/x')))
  assert.equal(missing.reason, 'missing_token')
  assert.equal(missing.answer.status, 401)
  // RFC 6750 §3.1: no error attribute when the request carried no token at all.
  assert.equal(missing.answer.headers['www-authenticate'], 'Bearer realm="jwt-sidecar"')
  assert.equal(begin(p, req('/api/y')), missing)

  assert.deepEqual(begin(p, req('/maybe/x')), { kind: 'admit', route: 'optional', outcome: 'anonymous', issuer: undefined, claims: undefined })
})

test('begin: a token found is handed to verification with its route; two different tokens are invalid_request', () => {
  const next = begin(p, req('/api/x', bearer('h.p.s')))
  assert.equal(next.kind, 'verify')
  assert.equal(next.kind === 'verify' && next.token, 'h.p.s')
  assert.equal(next.kind === 'verify' && next.route.name, 'default')

  const both = denied(begin(p, req('/api/x', { ...bearer('h.p.s'), cookie: 'session=x.y.z' })))
  assert.equal(both.reason, 'invalid_request')
  assert.equal(both.answer.status, 400)
  assert.equal(both.route, 'default')
  assert.match(both.detail ?? '', /different tokens/)
})

test('readTarget and badRequest: a fragment or an encoded slash is refused before any route is matched', () => {
  const events: RequestTraceEvent[] = []
  const t = readTarget('/admin#x', (e) => events.push(e))
  assert.equal(t.ok, false)
  assert.deepEqual(events.map((e) => e.step), ['path'])
  const d = denied(badRequest(t.ok ? '' : t.why))
  assert.deepEqual([d.route, d.reason, d.answer.status], ['_unmatched', 'invalid_request', 400])
  assert.equal(readTarget('/a%2Fb').ok, false)
  const n = readTarget('/public/../admin/x?q=1')
  assert.deepEqual(n, { ok: true, rawPath: '/public/../admin/x', path: '/admin/x', query: 'q=1' })
})

test('afterVerify: a refused token keeps its reason and issuer; the route\'s requirements answer 403 with the route\'s scopes', async () => {
  const bearer = { token: 't', scheme: 'bearer', request: req('/') } as const
  const route = (name: string) => ({ route: config.routes.find((r) => r.name === name)!, ...bearer })
  const refused = denied(afterVerify(p, route('default'), { ok: false, reason: 'expired', issuer: 'corp', detail: 'exp check failed' }))
  assert.deepEqual([refused.reason, refused.issuer, refused.detail, refused.answer.status], ['expired', 'corp', 'exp check failed', 401])

  const reader = await p.verifier.verify(await idp.sign({ sub: 'alice', aud: 'api', scope: 'read' }))
  assert.ok(!(reader instanceof Promise) && reader.ok)
  const admitted = afterVerify(p, route('default'), reader)
  assert.equal(admitted.kind, 'admit')
  assert.deepEqual(admitted.kind === 'admit' && [admitted.route, admitted.outcome, admitted.issuer, admitted.claims?.sub], ['default', 'allowed', 'corp', 'alice'])

  const scope = denied(afterVerify(p, route('admin'), reader))
  assert.equal(scope.reason, 'insufficient_scope')
  assert.equal(scope.answer.status, 403)
  assert.match(scope.answer.headers['www-authenticate'] ?? '', /error="insufficient_scope".*scope="admin"/)

  const claim = denied(afterVerify(p, route('partner'), reader))
  assert.equal(claim.reason, 'claim_mismatch')
})

test('decide: the full path for a good token, its trace in request-path order, and the same decision without a trace', async () => {
  const token = await idp.sign({ sub: 'alice', aud: 'api', scope: 'admin' })
  const events: RequestTraceEvent[] = []
  const request = { method: 'GET', url: '/admin/./x?y=1', headers: bearer(token), rawHeaders: ['Authorization', `Bearer ${token}`] }
  const d = await decide(p, request, (e) => events.push(e))
  assert.equal(d.kind, 'admit')
  const steps = events.map((e) => (e.step === 'claim' ? `claim:${e.rule.name}` : e.step))
  assert.deepEqual(steps.slice(0, 8), ['path', 'route', 'source', 'token', 'issuer', 'algorithm', 'key', 'signature'])
  assert.ok(steps.includes('claim:exp') && steps.includes('claim:aud'), steps.join(' '))
  assert.equal(steps.at(-1), 'authorization')
  const route = events.find((e) => e.step === 'route')
  assert.equal(route?.step === 'route' && route.path, '/admin/x')
  const key = events.find((e) => e.step === 'key')
  assert.equal(key?.step === 'key' && key.refetched, false)

  // The trace observes; it never changes the answer (the token cache answers the second time).
  const again = await decide(p, request)
  assert.deepEqual(again, d)
  const cached: RequestTraceEvent[] = []
  await decide(p, request, (e) => cached.push(e))
  assert.ok(cached.some((e) => e.step === 'cache'), 'a verified token is answered from the cache, and the trace says so')
})

test('decide: each stop is the last traced step, with the reason the proxy would answer', async () => {
  const trace = async (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ d: Decision; steps: string[] }> => {
    const events: RequestTraceEvent[] = []
    const d = await decide(p, { method, url, headers, rawHeaders: Object.entries(headers).flat() }, (e) => events.push(e))
    return { d, steps: events.map((e) => e.step) }
  }
  const cases: [string, Awaited<ReturnType<typeof trace>>, string, string][] = [
    ['fragment', await trace('/api#x'), 'invalid_request', 'path'],
    ['no route', await trace('/nowhere'), 'no_route', 'route'],
    ['deny route', await trace('/internal/a'), 'route_denied', 'route'],
    ['no token', await trace('/api/a'), 'missing_token', 'source'],
    ['garbage', await trace('/api/a', bearer('not-a-jwt')), 'malformed', 'token'],
    ['foreign iss', await trace('/api/a', bearer(await idp.sign({ iss: 'https://elsewhere.example', aud: 'api' }))), 'unknown_issuer', 'issuer'],
    ['wrong aud', await trace('/api/a', bearer(await idp.sign({ aud: 'other' }))), 'bad_audience', 'claim'],
    ['expired', await trace('/api/a', bearer(await idp.sign({ aud: 'api', exp: Math.floor(Date.now() / 1000) - 3600 }))), 'expired', 'claim'],
    ['scope', await trace('/admin/a', bearer(await idp.sign({ aud: 'api', scope: 'read' }))), 'insufficient_scope', 'authorization'],
  ]
  for (const [name, { d, steps }, reason, last] of cases) {
    assert.equal(d.kind === 'deny' && d.reason, reason, `${name}: ${JSON.stringify(d)}`)
    assert.equal(steps.at(-1), last, `${name}: ${steps.join(' ')}`)
  }
})

test('decide: an unknown kid waits for one refetch and says so in the trace', async () => {
  const before = idp.fetchCount()
  const token = await idp.sign({ aud: 'api' }, { kid: 'not-published' })
  const events: RequestTraceEvent[] = []
  const d = await decide(p, { method: 'GET', url: '/api/x', headers: bearer(token), rawHeaders: [] }, (e) => events.push(e))
  assert.equal(d.kind === 'deny' && d.reason, 'unknown_kid')
  const key = events.find((e) => e.step === 'key')
  assert.ok(key?.step === 'key' && key.refetched && !key.result.ok, JSON.stringify(key))
  assert.equal(idp.fetchCount() - before, 1)
})

test('decide: an internal error fails closed as internal_error on the route being decided', async () => {
  const throwing: KeyStore = {
    ...keys,
    issuer: (name) => {
      const real = keys.issuer(name)
      return real === undefined ? undefined : { ...real, getKey: () => { throw new Error('boom') } }
    },
  }
  const broken = createPipeline(config, throwing)
  const token = await idp.sign({ aud: 'api' })
  const d = denied(await decide(broken, { method: 'GET', url: '/api/x', headers: bearer(token), rawHeaders: [] }))
  assert.deepEqual([d.reason, d.route, d.answer.status], ['internal_error', 'default', 500])
})

test('methodOverride honor: a POST is matched as the method it names; disagreeing overrides are invalid_request', () => {
  const honoring = createPipeline(parseConfig(yaml(idp.issuer, idp.jwksUri, 'honor'), 'decide.yaml', {}), keys)
  const events: RequestTraceEvent[] = []
  const next = begin(honoring, req('/reports', { 'x-http-method-override': 'delete', ...bearer('h.p.s') }, 'POST'), (e) => events.push(e))
  assert.equal(next.kind === 'verify' && next.route.name, 'reports')
  assert.deepEqual(events[0], { step: 'method', method: 'POST', effective: 'DELETE' })

  const both = denied(begin(honoring, req('/reports', { 'x-http-method-override': 'DELETE', 'x-method-override': 'PUT' }, 'POST')))
  assert.equal(both.reason, 'invalid_request')
  // Under the default (strip) the override headers mean nothing for matching.
  assert.equal(begin(p, req('/reports', { 'x-http-method-override': 'DELETE' }, 'POST')), NO_ROUTE)
})
