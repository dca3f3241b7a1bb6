/**
 * The exposition of our own registry after a known scenario, pinned byte for byte against
 * test/golden/metrics.prom (names, help, types, labels, counts). What depends on time or on
 * the machine is normalised first: duration buckets and sums, timestamps, staleness, and the
 * Node.js version label. Regenerate after an intended change with UPDATE_GOLDEN=1.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'

const GOLDEN = fileURLToPath(new URL('../golden/metrics.prom', import.meta.url))

/** Keep what the scenario decides; drop what the clock or the machine decides. */
function normalise(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^jwt_sidecar_(request|verification|jwks_refresh)_duration_seconds_(bucket|sum)\{/.test(l))
    .filter((l) => !/^jwt_sidecar_token_(age|time_to_expiry)_seconds_sum\{/.test(l))
    .map((l) => l.replace(/^(jwt_sidecar_jwks_(last_success_timestamp|staleness)_seconds\{[^}]*\}) .*$/, '$1 <time>'))
    .map((l) => l.replace(/^jwt_sidecar_build_info\{version="[^"]*",node="[^"]*"\} 1$/, 'jwt_sidecar_build_info{version="<version>",node="<node>"} 1'))
    .join('\n')
}

test('the exposition of a known scenario matches test/golden/metrics.prom', async () => {
  const issuer = await startTestIssuer({ issuer: 'https://idp.golden.example', kids: ['k1'] })
  const upstream = await startUpstream()
  const sc = await startSidecar(sidecarYaml({ upstream: upstream.url, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    const now = Math.floor(Date.now() / 1000)
    // Ages of 2–3 s and lifetimes just under 300 s land in one bucket each, whatever the timing.
    const good = await issuer.sign({ sub: 'alice', iat: now - 2, exp: now + 298 })
    const expired = await issuer.sign({ sub: 'bob', iat: now - 7200, exp: now - 3600 })
    const scenario: Array<[string, Record<string, string>, number]> = [
      ['/api/a', { authorization: `Bearer ${good}` }, 200],
      ['/api/b', { authorization: `Bearer ${good}` }, 200],
      ['/api/c', { authorization: `Bearer ${expired}` }, 401],
      ['/api/d', {}, 401],
      ['/healthz', {}, 200],
      ['/public/x', {}, 200],
      ['/nowhere', {}, 403],
      ['/api/e', { authorization: `Bearer ${await issuer.sign({}, { kid: 'nope' })}` }, 401],
    ]
    for (const [path, headers, status] of scenario) {
      const r = await request(`${sc.proxyUrl}${path}`, { headers })
      await r.body.dump()
      assert.equal(r.statusCode, status, path)
    }
    const actual = normalise(await sc.app.metrics.registry.metrics())
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, actual)
    assert.equal(actual, readFileSync(GOLDEN, 'utf8'), 'set UPDATE_GOLDEN=1 to regenerate after an intended change, and review the diff')
  } finally {
    await sc.close()
    await Promise.all([issuer.close(), upstream.close()])
  }
})
