/**
 * Issue #12 item 4: tokens without kid while the issuer publishes several keys, through the
 * real sidecar over HTTP. The JWKS is shaped like a provider that signs without kid during a
 * rotation overlap: two RSA keys without kid (the second without alg and use either) and an EC
 * key that fits no RS256 token. With `kidless.maxCandidates: 2` a token signed by either RSA key
 * is admitted; a flood of forged tokens costs at most 2 signature checks each, counted twice:
 * by node:crypto's own `verify` (wrapped for the test) and by the
 * jwt_sidecar_kidless_signature_checks histogram. A third RSA key makes every kid-less token
 * unknown_kid without a single check. `jwt-sidecar verify`'s explanation shows the candidates.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { syncBuiltinESMExports } from 'node:module'
import { request } from 'undici'
import { explainRequest } from '../../src/cli/explain.ts'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

const FORGED = 200
const MAX = 2

async function call(sc: TestSidecar, token: string): Promise<{ status: number; reason: unknown }> {
  const res = await request(`${sc.proxyUrl}/api/x`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, reason: text.startsWith('{') ? (JSON.parse(text) as { reason?: unknown }).reason : undefined }
}

/** The histogram's series for one result: bucket counts by `le`, `_sum` and `_count`. */
async function checks(sc: TestSidecar, result: string): Promise<Record<string, number>> {
  const text = await (await request(`${sc.adminUrl}/metrics`)).body.text()
  const out: Record<string, number> = {}
  const re = new RegExp(`^jwt_sidecar_kidless_signature_checks_(bucket|sum|count)\\{(?:le="([^"]+)",)?issuer="corp",result="${result}"\\} (\\d+)$`, 'gm')
  for (const m of text.matchAll(re)) out[m[1] === 'bucket' ? `le${m[2]!}` : m[1]!] = Number(m[3])
  return out
}

test('kidless.maxCandidates 2 over HTTP: a rotation overlap of two keys without kid, a flood of forged tokens bounded at 2 checks each, a third key refused unchecked', async (t) => {
  const idp = await startTestIssuer({ alg: 'RS256', kids: [] })
  t.after(() => idp.close())
  await idp.addKey('old', 'RS256', { jwk: { kid: undefined } })
  await idp.addKey('new', 'RS256', { jwk: { kid: undefined, alg: undefined, use: undefined } })
  await idp.addKey('ec', 'ES256', { jwk: { kid: undefined } })
  await idp.addKey('rogue', 'RS256', { publish: false })
  const up = await startUpstream()
  t.after(() => up.close())
  const yaml = sidecarYaml({ upstream: up.url, issuers: [{ name: 'corp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256', 'ES256'] }] })
    .replace('    refresh:\n', `    kidless:\n      maxCandidates: ${MAX}\n    refresh:\n`)
  const sc = await startSidecar(yaml)
  t.after(() => sc.close())

  // Every signature check node:crypto makes in this process (the sidecar runs in it).
  let verifyCalls = 0
  const original = crypto.verify
  crypto.verify = ((...args: Parameters<typeof crypto.verify>) => {
    verifyCalls++
    return (original as (...a: unknown[]) => unknown)(...args)
  }) as typeof crypto.verify
  syncBuiltinESMExports()
  t.after(() => {
    crypto.verify = original
    syncBuiltinESMExports()
  })

  const sign = (key: string, claims: Record<string, unknown> = {}) => idp.sign({ sub: 'alice', ...claims }, { kid: null, key })
  assert.deepEqual(await call(sc, await sign('old')), { status: 200, reason: undefined })
  assert.deepEqual(await call(sc, await sign('new')), { status: 200, reason: undefined })
  assert.deepEqual(await call(sc, await sign('ec')), { status: 200, reason: undefined }, 'ES256: the one EC key is the only candidate')
  assert.equal(verifyCalls, 1 + 2 + 1, 'old is first in document order, new second; the EC key is never tried for RS256')
  assert.deepEqual(await checks(sc, 'verified'), { le0: 0, le1: 2, le2: 3, le3: 3, le4: 3, le5: 3, 'le+Inf': 3, sum: 4, count: 3 })

  // The flood: forged tokens without kid, each one distinct (the cache holds only verified tokens anyway).
  verifyCalls = 0
  const forged = await Promise.all(Array.from({ length: FORGED }, (_, i) => sign('rogue', { jti: `f${i}` })))
  for (let i = 0; i < FORGED; i += 25) {
    const answers = await Promise.all(forged.slice(i, i + 25).map((tk) => call(sc, tk)))
    for (const a of answers) assert.deepEqual(a, { status: 401, reason: 'bad_signature' })
  }
  assert.equal(verifyCalls, FORGED * MAX, `exactly ${MAX} signature checks per forged token`)
  const bad = await checks(sc, 'bad_signature')
  assert.equal(bad.count, FORGED)
  assert.equal(bad.sum, FORGED * MAX)
  assert.equal(bad[`le${MAX}`], FORGED, `every forged token within ${MAX} checks`)
  assert.equal(bad[`le${MAX - 1}`], 0)

  // `jwt-sidecar verify` explains the same decision: the candidates, then each check.
  const explain = (token: string) => explainRequest(sc.app.config(), sc.app.keys, { token, source: 'raw token (test)', path: '/api/x', method: 'GET' })
  const good = await explain(await sign('new'))
  assert.equal(good.forwarded, true)
  assert.match(good.steps.find((s) => s.step === 'key')!.detail, /^no kid: 2 keys fit RS256 \(kidless\.maxCandidates 2\), tried in key-index order/)
  const sigs = good.steps.filter((s) => s.step === 'signature')
  assert.deepEqual(sigs.map((s) => s.ok), [undefined, true])
  assert.match(sigs[0]!.detail, /does not verify with candidate 1 of 2 .*; trying the next$/)
  assert.match(sigs[1]!.detail, /verifies with candidate 2 of 2 .*; 2 signature checks$/)
  const refused = await explain(forged[0]!)
  assert.equal(refused.reason, 'bad_signature')
  assert.match(refused.steps.at(-1)!.detail, /none of the 2 candidates verifies; 2 signature checks → 401 bad_signature$/)

  // A third RSA key (published with a kid, like a provider starting to name its keys): three fit, the bound is 2.
  await idp.addKey('third', 'RS256')
  assert.equal((await call(sc, await idp.sign({}, { kid: 'third' }))).status, 200, 'the unknown kid brings the new set')
  verifyCalls = 0
  for (const tk of forged.slice(0, 20)) assert.deepEqual(await call(sc, tk), { status: 401, reason: 'unknown_kid' })
  assert.deepEqual(await call(sc, await sign('old')), { status: 401, reason: 'unknown_kid' }, 'a genuine one too: which key signed is never guessed')
  assert.equal(verifyCalls, 0, 'no signature check at all')
  assert.deepEqual(await checks(sc, 'unknown_kid'), { le0: 21, le1: 21, le2: 21, le3: 21, le4: 21, le5: 21, 'le+Inf': 21, sum: 0, count: 21 })
  const ambiguous = await explain(await sign('old'))
  assert.match(ambiguous.steps.at(-1)!.detail, /no kid in the header, and 3 keys of corp fit RS256, more than kidless\.maxCandidates \(2\): none is tried; .* → 401 unknown_kid$/)
})
