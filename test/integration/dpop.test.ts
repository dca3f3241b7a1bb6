/**
 * Issue #13 §2: RFC 9449 DPoP through the real sidecar over HTTP. The client key and the
 * proofs are made at test time with jose; the issuer binds each access token to the client
 * key's RFC 7638 thumbprint (cnf.jkt). Every way a proof can be wrong is refused with the
 * RFC 9449 §7.1 challenge, and a bound token sent as plain Bearer is refused whatever the mode.
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { request } from 'undici'
import { dpopClient as clientKey, dpopProof as proof } from '../helpers/dpop.ts'
import type { ProofParts } from '../helpers/dpop.ts'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import { parseConfig } from '../../src/config/load.ts'

/** A loopback issuer (RS256) and upstream, closed after the test. */
async function loopback(t: TestContext): Promise<{ idp: TestIssuer; up: TestUpstream }> {
  const idp = await startTestIssuer({ alg: 'RS256' })
  t.after(() => idp.close())
  const up = await startUpstream()
  t.after(() => up.close())
  return { idp, up }
}

/** sidecarYaml with the one issuer `corp` of `idp`, whose `dpop` section is `dpop` (YAML lines under it). */
function dpopYaml(idp: TestIssuer, up: TestUpstream, dpop: string, identity?: string): string {
  return sidecarYaml({ upstream: up.url, issuers: [{ name: 'corp', issuer: idp.issuer, jwksUri: idp.jwksUri }], ...(identity === undefined ? {} : { identity }) })
    .replace('    refresh:\n', `    dpop:\n${dpop.split('\n').map((l) => `      ${l}\n`).join('')}    refresh:\n`)
}

test('DPoP over HTTP: a bound token with a good proof is admitted; every RFC 9449 §4.3 check refuses its own way', async (t) => {
  const { idp, up } = await loopback(t)
  const identity = '  headers:\n    X-Auth-Subject: sub\n  bindingHeader: X-Auth-Binding\n  strip: ["X-Auth-*"]\n  forwardToken: true'
  const sc = await startSidecar(dpopYaml(idp, up, 'mode: allowed\nproofMaxAge: 60s', identity))
  t.after(() => sc.close())
  const url = `${sc.proxyUrl}/api/x`
  const client = await clientKey()
  const token = await idp.sign({ sub: 'alice', cnf: { jkt: client.jkt } })

  async function call(headers: Record<string, string>, method = 'GET', target = url): Promise<{ status: number; reason: unknown; challenge: string | undefined }> {
    const res = await request(target, { method, headers })
    const text = await res.body.text()
    const challenge = res.headers['www-authenticate']
    return { status: res.statusCode, reason: text.startsWith('{') ? (JSON.parse(text) as { reason?: unknown }).reason : undefined, challenge: typeof challenge === 'string' ? challenge : undefined }
  }
  const dpop = async (o: ProofParts = {}, tok = token, key = client, extra: Record<string, string> = {}) => call({ ...extra, authorization: `DPoP ${tok}`, dpop: await proof(key, tok, url, o) })

  // Happy path; the proof and the DPoP-scheme credential never reach the app (forwardToken is on in this config: the Authorization header is the token's own).
  const ok = await dpop({}, token, client, { 'x-auth-binding': 'jkt=forged' })
  assert.equal(ok.status, 200)
  const seen = up.last()!
  assert.equal(seen.headers.dpop, undefined)
  assert.equal(seen.headers['x-auth-subject'], 'alice')
  // identity.bindingHeader: the key the request was proven with, never the proof; a client's own value is stripped.
  assert.equal(seen.headers['x-auth-binding'], `jkt=${client.jkt}`)
  await call({ authorization: `Bearer ${await idp.sign({ sub: 'bob' })}`, 'x-auth-binding': 'jkt=forged' })
  assert.equal(up.last()!.headers['x-auth-binding'], undefined, 'an unbound token has no binding')

  // A bound token as plain Bearer: token_bound, with or without a proof alongside.
  const asBearer = await call({ authorization: `Bearer ${token}` })
  assert.deepEqual([asBearer.status, asBearer.reason], [401, 'token_bound'])
  assert.match(asBearer.challenge ?? '', /^Bearer .*error="invalid_token"/)
  assert.deepEqual((await call({ authorization: `Bearer ${token}`, dpop: await proof(client, token, url) })).reason, 'token_bound')

  const cases: Array<[string, () => Promise<{ status: number; reason: unknown; challenge: string | undefined }>, string]> = [
    ['missing proof', () => call({ authorization: `DPoP ${token}` }), 'invalid_dpop_proof'],
    ['wrong htm', () => dpop({ htm: 'POST' }), 'invalid_dpop_proof'],
    ['wrong htu (path)', () => dpop({ htu: `${sc.proxyUrl}/api/y` }), 'invalid_dpop_proof'],
    ['wrong htu (host)', () => dpop({ htu: url.replace('127.0.0.1', 'localhost') }), 'invalid_dpop_proof'],
    ['stale iat', () => dpop({ iat: Math.floor(Date.now() / 1000) - 120 }), 'invalid_dpop_proof'],
    ['future iat', () => dpop({ iat: Math.floor(Date.now() / 1000) + 120 }), 'invalid_dpop_proof'],
    ['wrong ath', () => dpop({ ath: createHash('sha256').update('another token').digest('base64url') }), 'invalid_dpop_proof'],
    ['wrong typ', () => dpop({ typ: 'JWT' }), 'invalid_dpop_proof'],
  ]
  for (const [name, run, reason] of cases) {
    const r = await run()
    assert.deepEqual([r.status, r.reason], [401, reason], name)
    assert.match(r.challenge ?? '', /^DPoP realm="jwt-sidecar", error="invalid_dpop_proof", error_description="invalid_dpop_proof", algs="[^"]*ES256/, name)
  }

  // Key mismatch: a valid proof by another key than the token's cnf.jkt.
  const other = await clientKey()
  const mismatch = await call({ authorization: `DPoP ${token}`, dpop: await proof(other, token, url) })
  assert.deepEqual([mismatch.status, mismatch.reason], [401, 'token_bound'])
  // A proof whose header jwk carries the private key is refused before anything else.
  const priv = await dpop({ jwk: { ...client.jwk, d: 'AAAA' } })
  assert.equal(priv.reason, 'invalid_dpop_proof')

  // Replay: the same proof twice; the second is refused.
  const once = await proof(client, token, url)
  assert.equal((await call({ authorization: `DPoP ${token}`, dpop: once })).status, 200)
  const again = await call({ authorization: `DPoP ${token}`, dpop: once })
  assert.deepEqual([again.status, again.reason], [401, 'dpop_replay'])
  assert.match(again.challenge ?? '', /error="invalid_dpop_proof", error_description="dpop_replay"/)

  // An unbound token: plain Bearer admitted (mode allowed); with the DPoP scheme it is refused.
  const plain = await idp.sign({ sub: 'bob' })
  assert.equal((await call({ authorization: `Bearer ${plain}` })).status, 200)
  assert.equal((await call({ authorization: `DPoP ${plain}`, dpop: await proof(client, plain, url) })).reason, 'dpop_not_allowed')

  // The refusals are counted by reason, and logged without the token or the proof.
  const metrics = await (await request(`${sc.adminUrl}/metrics`)).body.text()
  assert.match(metrics, /jwt_sidecar_requests_total\{[^}]*reason="dpop_replay"[^}]*\} 1/)
  assert.match(metrics, /jwt_sidecar_requests_total\{[^}]*reason="token_bound"[^}]*\} 3/)
  assert.ok(!sc.logText().includes(token.split('.')[2]!))
  assert.ok(!sc.logText().includes(once.split('.')[2]!))
})

test('DPoP: mode required refuses plain bearer tokens; mode off refuses the DPoP scheme and bound tokens alike', async (t) => {
  const { idp, up } = await loopback(t)
  const client = await clientKey()
  const bound = await idp.sign({ sub: 'alice', cnf: { jkt: client.jkt } })
  const plain = await idp.sign({ sub: 'bob' })
  for (const [mode, expect] of [
    ['required', { plainBearer: 'dpop_required', boundDpop: 200, boundBearer: 'token_bound' }],
    ['off', { plainBearer: 200, boundDpop: 'invalid_request_or_missing', boundBearer: 'token_bound' }],
  ] as const) {
    const sc = await startSidecar(dpopYaml(idp, up, `mode: ${mode}`))
    try {
      const url = `${sc.proxyUrl}/api/x`
      const call = async (headers: Record<string, string>): Promise<unknown> => {
        const res = await request(url, { headers })
        const body = await res.body.text()
        return res.statusCode === 200 ? 200 : (JSON.parse(body) as { reason?: unknown }).reason
      }
      assert.equal(await call({ authorization: `Bearer ${plain}` }), expect.plainBearer, `${mode}: plain bearer`)
      assert.equal(await call({ authorization: `Bearer ${bound}` }), expect.boundBearer, `${mode}: bound bearer`)
      const viaDpop = await call({ authorization: `DPoP ${bound}`, dpop: await proof(client, bound, url) })
      // With every issuer off the DPoP scheme is not read at all: no token was found.
      assert.equal(viaDpop, expect.boundDpop === 200 ? 200 : 'missing_token', `${mode}: bound via DPoP`)
    } finally {
      await sc.close()
    }
  }
})

test('DPoP: a request without a token is challenged with every scheme its route accepts (RFC 9449 §7.1, RFC 6750 §3, RFC 9110 §11.6.1)', async (t) => {
  const corp = await startTestIssuer({ alg: 'RS256' })
  t.after(() => corp.close())
  const legacy = await startTestIssuer({ alg: 'RS256' })
  t.after(() => legacy.close())
  const up = await startUpstream()
  t.after(() => up.close())
  const routes = [
    '  - name: legacy', '    path: /legacy/**', '    auth: required', '    issuers: [legacy]',
    '  - name: corp', '    path: /corp/**', '    auth: required', '    issuers: [corp]',
    '  - name: default', '    path: /api/**', '    auth: required',
  ].join('\n')
  const withModes = (corpMode: string, legacyMode: string): string => {
    const yaml = sidecarYaml({ upstream: up.url, routes, issuers: [{ name: 'corp', issuer: corp.issuer, jwksUri: corp.jwksUri }, { name: 'legacy', issuer: legacy.issuer, jwksUri: legacy.jwksUri }] })
    const [head, second, ...rest] = yaml.split('    refresh:\n')
    return [head, `    dpop:\n      mode: ${corpMode}\n    refresh:\n${second}`, `    dpop:\n      mode: ${legacyMode}\n    refresh:\n${rest.join('    refresh:\n')}`].join('')
  }
  const algs = 'algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"'
  const both = `Bearer realm="jwt-sidecar", DPoP realm="jwt-sidecar", ${algs}`
  const dpopOnly = `DPoP realm="jwt-sidecar", ${algs}`
  const bearerOnly = 'Bearer realm="jwt-sidecar"'
  for (const [corpMode, legacyMode, expected] of [
    // corp accepts DPoP: its route and the any-issuer route get both challenges; legacy's only Bearer.
    ['allowed', 'off', { corp: both, legacy: bearerOnly, default: both }],
    // corp requires DPoP: its route only DPoP; the any-issuer route, where legacy takes Bearer, both.
    ['required', 'off', { corp: dpopOnly, legacy: bearerOnly, default: both }],
    ['required', 'required', { corp: dpopOnly, legacy: dpopOnly, default: dpopOnly }],
    ['off', 'off', { corp: bearerOnly, legacy: bearerOnly, default: bearerOnly }],
  ] as const) {
    const sc = await startSidecar(withModes(corpMode, legacyMode))
    try {
      for (const [route, challenge] of Object.entries(expected)) {
        const res = await request(`${sc.proxyUrl}/${route === 'default' ? 'api' : route}/x`)
        const body = (await res.body.json()) as { reason?: unknown }
        const what = `corp ${corpMode}, legacy ${legacyMode}: route ${route}`
        assert.deepEqual([res.statusCode, body.reason], [401, 'missing_token'], what)
        // One field, the challenges comma-separated; no error attribute without a token.
        assert.equal(res.headers['www-authenticate'], challenge, what)
      }
      // A wrong proof still gets the DPoP error challenge alone, and a present but bad Bearer token the Bearer one.
      const bad = await request(`${sc.proxyUrl}/api/x`, { headers: { authorization: 'Bearer x.y.z' } })
      await bad.body.text()
      assert.match(String(bad.headers['www-authenticate']), /^Bearer realm="jwt-sidecar", error="invalid_token"/)
    } finally {
      await sc.close()
    }
  }
})

test('DPoP with forwardToken: false and a tokens.from without Authorization: the DPoP-scheme Authorization is still a token source, so it never reaches the app', async (t) => {
  const { idp, up } = await loopback(t)
  const identity = '  headers:\n    X-Auth-Subject: sub\n  strip: ["X-Auth-*"]\n  forwardToken: false\n  underscoreHeaders: allow'
  const yaml = dpopYaml(idp, up, 'mode: allowed', identity)
    .replace('    - header: Authorization\n      prefix: "Bearer "\n', '    - header: X-Api-Token\n')
  const sc = await startSidecar(yaml)
  t.after(() => sc.close())
  const url = `${sc.proxyUrl}/api/x`
  const client = await clientKey()
  const token = await idp.sign({ sub: 'alice', cnf: { jkt: client.jkt } })
  const res = await request(url, { headers: { authorization: `DPoP ${token}`, dpop: await proof(client, token, url) } })
  await res.body.dump()
  assert.equal(res.statusCode, 200)
  const seen = up.last()!.headers
  assert.equal(seen['x-auth-subject'], 'alice')
  assert.equal(seen.authorization, undefined, 'forwardToken: false, and Authorization carried the token')
  assert.equal(seen.dpop, undefined)
  // A plain-bearer token in the configured header is removed as before.
  const plain = await request(url, { headers: { 'x-api-token': await idp.sign({ sub: 'bob' }) } })
  await plain.body.dump()
  assert.equal(plain.statusCode, 200)
  assert.equal(up.last()!.headers['x-api-token'], undefined)
})

test('DPoP: the replay cache outlives a config reload (a proof seen before is refused after); its size is a restart-only setting', async (t) => {
  const { idp, up } = await loopback(t)
  const yaml = (entries: number): string => dpopYaml(idp, up, 'mode: allowed')
    .replace('  clockSkew: 30s\n', `  clockSkew: 30s\n  dpopReplayCache:\n    maxEntries: ${entries}\n`)
  const sc = await startSidecar(yaml(1000))
  t.after(() => sc.close())
  const url = `${sc.proxyUrl}/api/x`
  const client = await clientKey()
  const token = await idp.sign({ sub: 'alice', cnf: { jkt: client.jkt } })
  const headers = { authorization: `DPoP ${token}`, dpop: await proof(client, token, url) }
  const send = async (): Promise<number> => {
    const res = await request(url, { headers })
    await res.body.text()
    return res.statusCode
  }
  assert.equal(await send(), 200)
  const result = sc.app.reload(parseConfig(yaml(5000), 'test.yaml', {}))
  assert.deepEqual(result.restartRequired, ['tokens.dpopReplayCache'])
  assert.equal(await send(), 401, 'the same proof after the reload is a replay')
  const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text()
  assert.match(metrics, /^jwt_sidecar_dpop_replay_refusals_total\{cause="replay"\} 1$/m)
  assert.match(metrics, /^jwt_sidecar_dpop_replay_cache_entries 1$/m)
})

test('config/examples/dpop.yaml: check-config accepts it (the built CLI), and it runs as documented: a DPoP-bound token admitted, a plain Bearer one refused', async (t) => {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const cli = join(root, 'dist', 'src', 'cli.js')
  assert.ok(existsSync(cli), 'run `npm run build` first: the CLI tests run dist/')
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'check-config', '--config', 'config/examples/dpop.yaml'], { cwd: root, env: { PATH: process.env.PATH ?? '' } })
  assert.match(stdout, /^config\/examples\/dpop\.yaml: OK: 1 issuer\(s\) \(corp\), 2 route\(s\)/)

  const idp = await startTestIssuer({ alg: 'RS256' })
  t.after(() => idp.close())
  const up = await startUpstream()
  t.after(() => up.close())
  // The documented run, on loopback ports chosen by the OS.
  const yaml = readFileSync(join(root, 'config/examples/dpop.yaml'), 'utf8').replace('0.0.0.0:8080', '127.0.0.1:0').replace('127.0.0.1:9901', '127.0.0.1:0')
  const sc = await startSidecar(yaml, { env: { IDP_URL: idp.issuer, UPSTREAM_URL: up.url } })
  t.after(() => sc.close())
  const url = `${sc.proxyUrl}/orders`
  const client = await clientKey()
  const bound = await idp.sign({ sub: 'alice', aud: 'orders-api', cnf: { jkt: client.jkt } })
  const ok = await request(url, { headers: { authorization: `DPoP ${bound}`, dpop: await proof(client, bound, url) } })
  await ok.body.text()
  assert.equal(ok.statusCode, 200)
  assert.equal(up.last()!.headers.authorization, undefined)
  assert.equal(up.last()!.headers.dpop, undefined)
  const plain = await request(url, { headers: { authorization: `Bearer ${await idp.sign({ sub: 'bob', aud: 'orders-api' })}` } })
  assert.equal(((await plain.body.json()) as { reason?: unknown }).reason, 'dpop_required')
})
