/**
 * Issue #12 items 1–3, each over real HTTP against documents shaped like the provider's own:
 * - AWS Cognito access tokens: the app client in `client_id`, no `aud` (`audienceClaim`);
 * - Microsoft Entra ID multi-tenant: the `organizations` discovery document whose issuer is
 *   the `{tenantid}` template, keys without `alg` carrying `x5t` and a per-key `issuer`, tokens
 *   whose `iss` names their tenant and whose `tid` must agree (`tenants`, `discoveryUrl`);
 * - Azure AD B2C: a discovery document under a policy path, not at `<issuer>/.well-known`
 *   (`discoveryUrl`), whose `issuer` must still equal the configured one.
 * Keys are generated at test time; the sidecar is the real app (createApp) on loopback.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ServerResponse } from 'node:http'
import { startHttpServer, startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestServer, TestUpstream } from '../helpers/issuer.ts'
import { startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'
import { parseConfig } from '../../src/config/load.ts'
import { createKeyStore } from '../../src/keys/store.ts'
import { explainRequest } from '../../src/cli/explain.ts'

const cli = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url))

/** `jwt-sidecar verify` as a real process, with `yaml` as its config file. */
async function verifyCli(yaml: string, token: string): Promise<{ code: number; stdout: string }> {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-providers-'))
  try {
    writeFileSync(join(dir, 'sidecar.yaml'), yaml)
    return await new Promise((resolve, reject) => {
      execFile(process.execPath, [cli, 'verify', '--config', join(dir, 'sidecar.yaml'), '--path', '/api/x', token], { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 }, (err, stdout) => {
        if (err !== null && typeof err.code !== 'number') return reject(new Error(`verify did not run: ${err.message}`))
        resolve({ code: err === null ? 0 : (err.code as number), stdout })
      })
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

let idp: TestIssuer
let upstream: TestUpstream
let provider: TestServer
/** Set per describe: what the fake provider's well-known paths answer. */
const documents = new Map<string, unknown>()

const json = (res: ServerResponse, body: unknown): void => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

before(async () => {
  // RS256 keys as Entra and Cognito publish them; the JWKS below is this issuer's, reshaped.
  idp = await startTestIssuer({ alg: 'RS256', kids: ['k1'] })
  upstream = await startUpstream()
  provider = await startHttpServer((req, res) => {
    const doc = documents.get(req.url ?? '')
    if (doc === undefined) res.writeHead(404).end()
    else json(res, doc)
  })
})
after(async () => {
  await provider?.close()
  await upstream?.close()
  await idp?.close()
})

async function call(s: TestSidecar, token: string, path = '/api/x'): Promise<{ status: number; body: string }> {
  const r = await fetch(`${s.proxyUrl}${path}`, { headers: { authorization: `Bearer ${token}` } })
  return { status: r.status, body: await r.text() }
}
const reasonOf = (body: string): unknown => (JSON.parse(body) as { reason?: unknown }).reason

const routes = `
routes:
  - { name: default, path: /api/** }
`

describe('AWS Cognito access tokens: audienceClaim: client_id', () => {
  let sidecar: TestSidecar
  let yaml: string
  const clientId = '1example23456789'
  before(async () => {
    // Cognito's JWKS: kid, alg, kty, e, n, use (https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json).
    documents.set('/us-east-1_example/.well-known/jwks.json', { keys: idp.keys().map((k) => ({ alg: 'RS256', e: k.jwk.e, kid: k.kid, kty: 'RSA', n: k.jwk.n, use: 'sig' })) })
    yaml = `
upstream: { url: "${upstream.url}" }
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
issuers:
  - name: cognito
    issuer: ${JSON.stringify(idp.issuer)}
    jwksUri: "${provider.url}/us-east-1_example/.well-known/jwks.json"
    audiences: [${clientId}]
    audienceClaim: client_id
    requiredClaims: [exp, sub]
${routes}
`
    sidecar = await startSidecar(yaml)
  })
  after(() => sidecar?.close())

  // The claim set of a Cognito access token: no aud; token_use access; the app client in client_id.
  const access = (over: Record<string, unknown> = {}) => idp.sign({
    aud: undefined, sub: 'aaaaaaaa-bbbb-cccc-dddd-example', token_use: 'access', scope: 'aws.cognito.signin.user.admin',
    auth_time: Math.floor(Date.now() / 1000), jti: randomUUID(), client_id: clientId, username: 'alice', ...over,
  })

  test('an access token with the app client in client_id and no aud is admitted', async () => {
    const r = await call(sidecar, await access())
    assert.equal(r.status, 200, r.body)
  })

  test('another app client, a token with only aud, and a client_id of the wrong type are bad_audience', async () => {
    for (const [what, token] of [
      ['another client', await access({ client_id: 'someone-else' })],
      // A Cognito ID token: aud is the client, client_id absent. audienceClaim reads client_id only.
      ['aud only', await access({ client_id: undefined, aud: clientId, token_use: 'id' })],
      ['client_id as a number', await access({ client_id: 12345 })],
    ] as const) {
      const r = await call(sidecar, token)
      assert.equal(r.status, 401, what)
      assert.equal(reasonOf(r.body), 'bad_audience', what)
    }
  })

  test('jwt-sidecar verify shows the claim it compared', async () => {
    const config = parseConfig(yaml, 'test.yaml', {})
    const keys = createKeyStore(config.issuers)
    keys.start()
    try {
      await keys.settled()
      const ok = await explainRequest(config, keys, { token: await access(), source: 'raw token (test)', path: '/api/x', method: 'GET' })
      assert.equal(ok.forwarded, true)
      assert.match(ok.steps.find((s) => s.step === 'aud')?.detail ?? '', new RegExp(`^client_id "${clientId}" must contain one of \\["${clientId}"\\] \\(audienceClaim\\)$`))
      const bad = await explainRequest(config, keys, { token: await access({ client_id: 'x' }), source: 'raw token (test)', path: '/api/x', method: 'GET' })
      assert.equal(bad.reason, 'bad_audience')
      assert.match(bad.steps.at(-1)?.detail ?? '', /^client_id "x" must contain one of .* → 401 bad_audience$/)
    } finally {
      await keys.stop()
    }
  })
})

describe('Microsoft Entra ID multi-tenant: a {tenantid} issuer, tenants and discoveryUrl', () => {
  let sidecar: TestSidecar
  let yaml: string
  const [t1, t2, t3] = [randomUUID(), randomUUID(), randomUUID()]
  let template: string
  const iss = (tenant: string): string => template.replace('{tenantid}', tenant)

  before(async () => {
    template = `${provider.url}/{tenantid}/v2.0`
    // https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration says
    // issuer "https://login.microsoftonline.com/{tenantid}/v2.0", literally.
    documents.set('/organizations/v2.0/.well-known/openid-configuration', {
      token_endpoint: `${provider.url}/organizations/oauth2/v2.0/token`,
      jwks_uri: `${provider.url}/organizations/discovery/v2.0/keys`,
      issuer: template,
      id_token_signing_alg_values_supported: ['RS256'],
      tenant_region_scope: null,
    })
    // Entra's keys: kty, use, kid, x5t, n, e, x5c and a per-key issuer template; no alg.
    documents.set('/organizations/discovery/v2.0/keys', {
      keys: idp.keys().map((k) => ({ kty: 'RSA', use: 'sig', kid: k.kid, x5t: k.kid, n: k.jwk.n, e: k.jwk.e, issuer: template })),
    })
    yaml = `
upstream: { url: "${upstream.url}" }
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
issuers:
  - name: entra
    issuer: "${template}"
    tenants: ["${t1}", "${t2}"]
    discovery: true
    discoveryUrl: "${provider.url}/organizations/v2.0/.well-known/openid-configuration"
    audiences: [api://orders]
${routes}
`
    sidecar = await startSidecar(yaml)
  })
  after(() => sidecar?.close())

  const token = (tenant: string, tid: unknown = tenant) => idp.sign({ iss: iss(tenant), tid, aud: 'api://orders', ver: '2.0', oid: randomUUID() })

  test('a token from each listed tenant is admitted, with one key set', async () => {
    assert.equal((await call(sidecar, await token(t1))).status, 200)
    assert.equal((await call(sidecar, await token(t2))).status, 200)
    assert.equal(sidecar.app.keys.status().length, 1)
  })

  test('a tenant not listed is unknown_issuer; a tid that disagrees with iss is unknown_issuer too', async () => {
    const other = await call(sidecar, await token(t3))
    assert.equal(other.status, 401)
    assert.equal(reasonOf(other.body), 'unknown_issuer')
    const mixed = await call(sidecar, await token(t1, t2))
    assert.equal(mixed.status, 401)
    assert.equal(reasonOf(mixed.body), 'unknown_issuer')
    // No tid at all (JSON drops an undefined member).
    const none = await call(sidecar, await idp.sign({ iss: iss(t1), tid: undefined, aud: 'api://orders' }))
    assert.equal(reasonOf(none.body), 'unknown_issuer')
    // The literal template is not an iss any token may carry.
    const literal = await call(sidecar, await idp.sign({ iss: template, tid: '{tenantid}', aud: 'api://orders' }))
    assert.equal(reasonOf(literal.body), 'unknown_issuer')
  })

  test('metrics label by the configured issuer name, never by tenant', async () => {
    const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text()
    assert.match(text, /issuer="entra"/)
    for (const t of [t1, t2, t3]) assert.ok(!text.includes(t), `tenant ${t} in /metrics`)
  })

  test('jwt-sidecar verify names the tenant rule', async () => {
    const config = parseConfig(yaml, 'test.yaml', {})
    const keys = createKeyStore(config.issuers)
    keys.start()
    try {
      await keys.settled()
      const e = await explainRequest(config, keys, { token: await token(t1, t2), source: 'raw token (test)', path: '/api/x', method: 'GET' })
      assert.equal(e.reason, 'unknown_issuer')
      assert.match(e.steps.find((s) => s.step === 'issuer')?.detail ?? '', /→ entra$/)
      assert.match(e.steps.at(-1)?.detail ?? '', new RegExp(`^tid "${t2}" must equal the tenant in iss, "${t1}" → 401 unknown_issuer$`))
    } finally {
      await keys.stop()
    }
  })

  test('jwt-sidecar verify (the CLI) waits for the keys of a {tenantid} issuer and admits its token', async () => {
    const r = await verifyCli(yaml, await token(t2))
    assert.equal(r.code, 0, r.stdout)
    assert.match(r.stdout, new RegExp(`^✔ tid +tid "${t2}" must equal the tenant in iss, "${t2}"$`, 'm'))
    assert.match(r.stdout, /\noutcome: forwarded\n$/)
  })
})

describe('Azure AD B2C: discoveryUrl under a policy path', () => {
  const tenantId = randomUUID()
  let issuer: string
  before(() => {
    issuer = `${provider.url}/${tenantId}/v2.0/`
    documents.set('/contoso.onmicrosoft.com/b2c_1_signupsignin/v2.0/.well-known/openid-configuration', {
      issuer,
      jwks_uri: `${provider.url}/contoso.onmicrosoft.com/b2c_1_signupsignin/discovery/v2.0/keys`,
      response_types_supported: ['code', 'code id_token', 'code token', 'code id_token token', 'id_token', 'id_token token', 'token', 'token id_token'],
    })
    documents.set('/contoso.onmicrosoft.com/b2c_1_signupsignin/discovery/v2.0/keys', {
      keys: idp.keys().map((k) => ({ kid: k.kid, nbf: 1493763266, use: 'sig', kty: 'RSA', e: k.jwk.e, n: k.jwk.n })),
    })
    // The well-known location under the issuer answers 404, as B2C's does for a bare tenant id.
  })
  const yaml = (configuredIssuer: string) => `
upstream: { url: "${upstream.url}" }
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
issuers:
  - name: b2c
    issuer: "${configuredIssuer}"
    discovery: true
    discoveryUrl: "${provider.url}/contoso.onmicrosoft.com/b2c_1_signupsignin/v2.0/.well-known/openid-configuration"
    audiences: [b2c-app]
${routes}
`

  test('the document at discoveryUrl names the keys; a token from the policy is admitted', async (t) => {
    const s = await startSidecar(yaml(issuer))
    t.after(() => s.close())
    const r = await call(s, await idp.sign({ iss: issuer, aud: 'b2c-app', tfp: 'B2C_1_signupsignin', ver: '1.0' }))
    assert.equal(r.status, 200, r.body)
  })

  test('a document whose issuer differs from the configured one is refused: no keys, 503', async (t) => {
    // The configured issuer lacks the trailing slash the document has (OIDC Discovery §4.3: exact).
    const s = await startSidecar(yaml(issuer.slice(0, -1)), { waitReady: false })
    t.after(() => s.close())
    await s.app.keys.settled()
    assert.equal(s.app.keys.ready(), false)
    const status = s.app.keys.status()[0]
    assert.match(status?.lastError ?? '', /does not equal the configured issuer/)
    const r = await call(s, await idp.sign({ iss: issuer.slice(0, -1), aud: 'b2c-app' }))
    assert.equal(r.status, 503)
    assert.equal(reasonOf(r.body), 'keys_unavailable')
  })
})
