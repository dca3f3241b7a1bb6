/**
 * The Outcome and Log columns of docs/reference/reasons.md are REASONS' `outcome` and `log`
 * (src/verify/reasons.ts); this checks the real sidecar logs and counts by them: a client's
 * mistake at info and `denied`, the sidecar's or the upstream's own failure at warn and `error`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { request } from 'undici'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'
import { REASONS } from '../../src/verify/reasons.ts'
import type { Reason } from '../../src/verify/reasons.ts'

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function get(sc: TestSidecar, token: string): Promise<number> {
  const r = await request(`${sc.proxyUrl}/api/x`, { headers: { authorization: `Bearer ${token}` } })
  await r.body.dump()
  return r.statusCode
}

/** The reason's log line (`event`) and access line, checked against REASONS. */
function assertLoggedAsDocumented(sc: TestSidecar, reason: Reason, event: string): void {
  const { status, outcome, log } = REASONS[reason]
  const lines = sc.logs()
  const line = lines.find((l) => l.event === event)
  assert.ok(line !== undefined, `${reason}: no ${event} line in\n${sc.logText()}`)
  assert.equal(line.level, log, `${reason}: the ${event} line's level`)
  const access = lines.find((l) => l.event === 'http.access' && l.reason === reason)
  assert.ok(access !== undefined, `${reason}: no access line`)
  assert.deepEqual([access.status, access.outcome], [status, outcome], `${reason}: the access line`)
}

test('a client mistake (expired) is logged at info and counted as denied, as REASONS says', async () => {
  const issuer = await startTestIssuer()
  const upstream = await startUpstream()
  const sc = await startSidecar(sidecarYaml({ upstream: upstream.url, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    const now = Math.floor(Date.now() / 1000)
    assert.equal(await get(sc, await issuer.sign({ sub: 'a', iat: now - 7200, exp: now - 3600 })), 401)
    assertLoggedAsDocumented(sc, 'expired', 'auth.denied')
    assert.equal(REASONS.expired.log, 'info', 'the premise: a client mistake is info')
  } finally {
    await sc.close()
    await Promise.all([issuer.close(), upstream.close()])
  }
})

test('no keys (keys_unavailable) is logged at warn and counted as an error, as REASONS says', async () => {
  const issuer = await startTestIssuer()
  const upstream = await startUpstream()
  const jwksUri = `http://127.0.0.1:${await closedPort()}/jwks`
  const sc = await startSidecar(sidecarYaml({ upstream: upstream.url, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri }] }), { waitReady: false })
  try {
    await sc.app.keys.settled()
    assert.equal(await get(sc, await issuer.sign({ sub: 'a' })), 503)
    assertLoggedAsDocumented(sc, 'keys_unavailable', 'auth.denied')
    assert.equal(REASONS.keys_unavailable.log, 'warn', "the premise: the sidecar's own failure is warn")
  } finally {
    await sc.close()
    await Promise.all([issuer.close(), upstream.close()])
  }
})

test('an unreachable upstream (upstream_unavailable) is logged at warn and counted as an error, as REASONS says', async () => {
  const issuer = await startTestIssuer()
  const sc = await startSidecar(sidecarYaml({ upstream: `http://127.0.0.1:${await closedPort()}`, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    assert.equal(await get(sc, await issuer.sign({ sub: 'a' })), 502)
    assertLoggedAsDocumented(sc, 'upstream_unavailable', 'upstream.error')
  } finally {
    await sc.close()
    await issuer.close()
  }
})
