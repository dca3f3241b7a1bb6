/**
 * Security events at a bounded rate, and liveness from the event loop, on the real sidecar.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'

test('a flood of bad tokens logs at most 10 auth.denied lines per reason and route per interval, then one summary', async () => {
  const issuer = await startTestIssuer()
  const upstream = await startUpstream()
  const sc = await startSidecar(sidecarYaml({ upstream: upstream.url, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    const expired = await issuer.sign({ sub: 'a', iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })
    for (let i = 0; i < 60; i++) {
      const r = await request(`${sc.proxyUrl}/api/x`, { headers: { authorization: `Bearer ${expired}` } })
      await r.body.dump()
    }
    const missing = await request(`${sc.proxyUrl}/api/x`)
    await missing.body.dump()
    const denied = sc.logs().filter((l) => l.event === 'auth.denied')
    assert.equal(denied.filter((l) => l.reason === 'expired').length, 10, 'the budget per interval')
    assert.equal(denied.filter((l) => l.reason === 'missing_token').length, 1, 'another reason has its own budget')
    const line = denied[0]!
    assert.deepEqual(Object.keys(line).filter((k) => ['route', 'reason', 'issuer', 'status', 'detail'].includes(k)).sort(), ['detail', 'issuer', 'reason', 'route', 'status'])
    assert.equal(line.issuer, 'corp')
    assert.ok(!sc.logText().includes(expired.split('.')[2]!), 'never the token')
  } finally {
    await sc.close()
    await Promise.all([issuer.close(), upstream.close()])
  }
  const summary = sc.logs().filter((l) => l.event === 'log.suppressed')
  assert.deepEqual(summary.map((l) => [l.key, l.suppressed]), [['auth.denied:expired:default', 50]])
})

test('/healthz fails while the event loop has been blocked beyond admin.maxEventLoopDelay', async () => {
  const issuer = await startTestIssuer()
  const upstream = await startUpstream()
  const sc = await startSidecar(sidecarYaml({ upstream: upstream.url, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }).replace('admin:\n  listen: 127.0.0.1:0', 'admin:\n  listen: 127.0.0.1:0\n  maxEventLoopDelay: 100ms'))
  try {
    const ok = await request(`${sc.adminUrl}/healthz`)
    assert.equal(ok.statusCode, 200)
    await ok.body.dump()
    // The sidecar shares this process: block its event loop for real.
    const until = Date.now() + 400
    while (Date.now() < until) { /* busy */ }
    await new Promise((r) => setTimeout(r, 50))
    const res = await request(`${sc.adminUrl}/healthz`)
    assert.equal(res.statusCode, 503)
    const body = (await res.body.json()) as { status: string; eventLoopDelayMs: number }
    assert.equal(body.status, 'unhealthy')
    assert.ok(body.eventLoopDelayMs >= 300, JSON.stringify(body))
  } finally {
    await sc.close()
    await Promise.all([issuer.close(), upstream.close()])
  }
})
