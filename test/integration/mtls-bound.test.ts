/**
 * Issue #13 §2: certificate-bound access tokens (RFC 8705 §3) through the real sidecar.
 * Certificates come from a CA made by openssl at test time; the thumbprints the tokens are
 * bound to are openssl's. Three ways the client certificate reaches the sidecar:
 * - its own TLS listener with `tls.clientCaFile` (the handshake);
 * - a real nginx terminating mTLS in front of it and passing `$ssl_client_escaped_cert`
 *   (`clientCertificateHeader`, format pem), trusted from nginx's address only;
 * - Envoy's x-forwarded-client-cert shape (format xfcc) from a trusted address.
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { waitFor } from '../../src/wait-for.ts'
import { canConnect, freePort, stopChild } from '../helpers/apps.ts'
import { makeCa } from '../helpers/certs.ts'
import type { TestCert } from '../helpers/certs.ts'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const NGINX = '/usr/sbin/nginx'

const ca = makeCa('mtls-ca')
const server = ca.issue('sidecar', 'server')
const alice = ca.issue('alice')
const bob = ca.issue('bob')

interface Answer { status: number; reason: string | undefined; challenge: string | undefined }

/** One request; over TLS with `client`'s certificate when the URL is https. */
function call(url: string, headers: Record<string, string>, o: { client?: TestCert; localAddress?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const tls = url.startsWith('https:')
    const options = {
      agent: false,
      headers,
      ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
      ...(tls ? { ca: ca.pem, ...(o.client === undefined ? {} : { cert: readFileSync(o.client.crt), key: readFileSync(o.client.key) }) } : {}),
    }
    const req = (tls ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d })
      res.on('end', () => {
        const challenge = res.headers['www-authenticate']
        resolve({ status: res.statusCode ?? 0, reason: body.startsWith('{') ? (JSON.parse(body) as { reason?: string }).reason : undefined, challenge })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

const IDENTITY = `  headers:
    X-Auth-Subject: sub
  bindingHeader: X-Auth-Binding
  strip: ["X-Auth-*"]
  forwardToken: false`

/** An issuer, an echo upstream and a sidecar in front of it with `extra` config, closed after the test. */
async function stack(t: TestContext, extra: string | undefined, identity: string | undefined = IDENTITY): Promise<{ idp: TestIssuer; up: TestUpstream; sc: TestSidecar }> {
  const idp = await startTestIssuer({ alg: 'RS256' })
  t.after(() => idp.close())
  const up = await startUpstream()
  t.after(() => up.close())
  const sc = await startSidecar(sidecarYaml({
    upstream: up.url,
    issuers: [{ name: 'corp', issuer: idp.issuer, jwksUri: idp.jwksUri }],
    ...(identity === undefined ? {} : { identity }),
    ...(extra === undefined ? {} : { extra }),
  }))
  t.after(() => sc.close())
  return { idp, up, sc }
}

test('TLS listener with client certificates: a token bound to alice\'s certificate passes with it only; the app learns the binding', async (t) => {
  const { idp, up, sc } = await stack(t, `tls:\n  certFile: ${server.crt}\n  keyFile: ${server.key}\n  clientCaFile: ${ca.crt}\n`)
  const url = `${sc.proxyUrl.replace('http:', 'https:')}/api/orders`
  const bound = await idp.sign({ sub: 'alice', cnf: { 'x5t#S256': alice.x5t } })

  const ok = await call(url, { authorization: `Bearer ${bound}`, 'x-auth-binding': 'x5t#S256=forged' }, { client: alice })
  assert.equal(ok.status, 200)
  assert.equal(up.last()!.headers['x-auth-binding'], `x5t#S256=${alice.x5t}`, 'the verified binding, not the client\'s')
  assert.equal(up.last()!.headers['x-auth-subject'], 'alice')

  // The stolen token with another certificate of the same CA: RFC 8705 §3, 401 invalid_token.
  const stolen = await call(url, { authorization: `Bearer ${bound}` }, { client: bob })
  assert.deepEqual([stolen.status, stolen.reason], [401, 'certificate_mismatch'])
  assert.match(stolen.challenge ?? '', /^Bearer realm="jwt-sidecar", error="invalid_token", error_description="certificate_mismatch"/)
  const denied = sc.logs().find((l) => l.event === 'auth.denied' && l.reason === 'certificate_mismatch')
  assert.ok(denied !== undefined, 'a security event names the reason')
  assert.match(String(denied.detail), /thumbprint is not cnf x5t#S256/)

  // An unbound token over the same mTLS listener: no binding to prove, none forwarded (a forged one stripped).
  const plain = await call(url, { authorization: `Bearer ${await idp.sign({ sub: 'bob' })}`, 'x-auth-binding': 'x5t#S256=forged' }, { client: bob })
  assert.equal(plain.status, 200)
  assert.equal(up.last()!.headers['x-auth-binding'], undefined)

  // A DPoP-bound token presented as Bearer is still token_bound; a cnf member the sidecar cannot prove refuses the token.
  assert.equal((await call(url, { authorization: `Bearer ${await idp.sign({ sub: 'a', cnf: { jkt: 'x'.repeat(43) } })}` }, { client: alice })).reason, 'token_bound')
  assert.equal((await call(url, { authorization: `Bearer ${await idp.sign({ sub: 'a', cnf: { 'x5t#S256': alice.x5t, jwk: { kty: 'EC' } } })}` }, { client: alice })).reason, 'token_bound')

  // A resumed TLS session (no certificate sent again) still carries the client certificate.
  const agent = new HttpsAgent({ keepAlive: false, maxCachedSessions: 4, ca: ca.pem, cert: readFileSync(alice.crt), key: readFileSync(alice.key) })
  t.after(() => agent.destroy())
  const resumed: Array<[number, boolean]> = []
  for (let i = 0; i < 2; i++) {
    resumed.push(await new Promise<[number, boolean]>((resolve, reject) => {
      httpsRequest(url, { agent, headers: { authorization: `Bearer ${bound}` } }, (res) => {
        const reused = (res.socket as TLSSocket).isSessionReused()
        res.resume().on('end', () => resolve([res.statusCode ?? 0, reused]))
      }).on('error', reject).end()
    }))
  }
  assert.deepEqual(resumed, [[200, false], [200, true]])

  const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text()
  assert.match(metrics, /jwt_sidecar_requests_total\{[^}]*reason="certificate_mismatch"[^}]*\} 1/)
})

test('behind a real nginx that terminates mTLS: the certificate header counts from nginx\'s address only, and never reaches the app', async (t) => {
  assert.ok(existsSync(NGINX), `${NGINX} is missing: install it with apt-get install -y nginx-light (.ci/run does)`)
  // nginx connects to the sidecar from 127.0.0.2 (proxy_bind); the test's own direct requests come from 127.0.0.1.
  const { idp, up, sc } = await stack(t, 'clientCertificateHeader:\n  name: X-Client-Cert\n  format: pem\n  trustedPeers: [127.0.0.2/32]\n')
  const ingress = await startNginxIngress(sc.proxyUrl)
  t.after(() => ingress.close())
  const bound = await idp.sign({ sub: 'alice', cnf: { 'x5t#S256': alice.x5t } })

  const ok = await call(`${ingress.url}/api/orders`, { authorization: `Bearer ${bound}` }, { client: alice })
  assert.equal(ok.status, 200)
  const seen = up.last()!.headers
  assert.equal(seen['x-auth-binding'], `x5t#S256=${alice.x5t}`)
  assert.equal(seen['x-client-cert'], undefined, 'the sidecar consumes the certificate header')

  const stolen = await call(`${ingress.url}/api/orders`, { authorization: `Bearer ${bound}` }, { client: bob })
  assert.deepEqual([stolen.status, stolen.reason], [401, 'certificate_mismatch'])

  // Straight to the sidecar, around the ingress, naming alice's (public) certificate: not trusted.
  const forged = await call(`${sc.proxyUrl}/api/orders`, { authorization: `Bearer ${bound}`, 'x-client-cert': encodeURIComponent(alice.pem) })
  assert.deepEqual([forged.status, forged.reason], [401, 'certificate_required'])
  assert.ok(sc.logs().some((l) => l.reason === 'certificate_required' && /not in clientCertificateHeader.trustedPeers/.test(String(l.detail))))
  // nor is its `_` spelling, which an app folding names would read as the header.
  const alias = await call(`${sc.proxyUrl}/api/orders`, { authorization: `Bearer ${await idp.sign({ sub: 'bob' })}`, 'x_client_cert': 'x' })
  assert.equal(alias.status, 200)
  assert.equal(up.last()!.headers.x_client_cert, undefined)
})

test('Envoy\'s x-forwarded-client-cert (Hash=) from a trusted address; two hops\' elements are ambiguous and refused', async (t) => {
  const { idp, up, sc } = await stack(t, 'clientCertificateHeader:\n  name: x-forwarded-client-cert\n  format: xfcc\n  trustedPeers: [127.0.0.2]\n')
  const url = `${sc.proxyUrl}/api/orders`
  const bound = await idp.sign({ sub: 'alice', cnf: { 'x5t#S256': alice.x5t } })
  const xfcc = (c: TestCert): string => `By=spiffe://cluster.local/ns/shop/sa/api;Hash=${c.hex};Subject="CN=${c === alice ? 'alice' : 'bob'}";URI=spiffe://cluster.local/ns/web/sa/web`
  const from = { localAddress: '127.0.0.2' }

  assert.equal((await call(url, { authorization: `Bearer ${bound}`, 'x-forwarded-client-cert': xfcc(alice) }, from)).status, 200)
  assert.equal(up.last()!.headers['x-forwarded-client-cert'], undefined)
  assert.equal((await call(url, { authorization: `Bearer ${bound}`, 'x-forwarded-client-cert': xfcc(bob) }, from)).reason, 'certificate_mismatch')
  assert.equal((await call(url, { authorization: `Bearer ${bound}`, 'x-forwarded-client-cert': `${xfcc(bob)},${xfcc(alice)}` }, from)).reason, 'certificate_required')
  assert.equal((await call(url, { authorization: `Bearer ${bound}` }, from)).reason, 'certificate_required')
  assert.equal((await call(url, { authorization: `Bearer ${bound}`, 'x-forwarded-client-cert': xfcc(alice) })).reason, 'certificate_required', 'from 127.0.0.1: not a trusted peer')
})

test('without any client-certificate source, a certificate-bound token can never be proven: token_bound', async (t) => {
  const { idp, sc } = await stack(t, undefined, undefined)
  const r = await call(`${sc.proxyUrl}/api/orders`, { authorization: `Bearer ${await idp.sign({ sub: 'alice', cnf: { 'x5t#S256': alice.x5t } })}`, 'x-forwarded-client-cert': `Hash=${alice.hex}` })
  assert.deepEqual([r.status, r.reason], [401, 'token_bound'])
  assert.ok(sc.logs().some((l) => l.reason === 'token_bound' && /no client certificate source is configured/.test(String(l.detail))))
})

test('config/examples/mtls-bound.yaml: check-config accepts it (the built CLI), and it runs as documented', async (t) => {
  const cli = join(root, 'dist', 'src', 'cli.js')
  assert.ok(existsSync(cli), 'run `npm run build` first: the CLI tests run dist/')
  // cert-manager's Secret layout.
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-mtls-example-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'tls.crt'), server.pem)
  writeFileSync(join(dir, 'tls.key'), readFileSync(server.key))
  writeFileSync(join(dir, 'ca.crt'), ca.pem)
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'check-config', '--config', 'config/examples/mtls-bound.yaml'], { cwd: root, env: { PATH: process.env.PATH ?? '', TLS_DIR: dir } })
  assert.match(stdout, /^config\/examples\/mtls-bound\.yaml: OK: 1 issuer\(s\) \(corp\), 2 route\(s\)/)

  const idp = await startTestIssuer({ alg: 'RS256' })
  t.after(() => idp.close())
  const up = await startUpstream()
  t.after(() => up.close())
  const yaml = readFileSync(join(root, 'config/examples/mtls-bound.yaml'), 'utf8').replace('0.0.0.0:', '127.0.0.1:')
  const sc = await startSidecar(yaml, { env: { TLS_DIR: dir, IDP_URL: idp.issuer, UPSTREAM_URL: up.url, PORT: '0', ADMIN_PORT: '0' } })
  t.after(() => sc.close())
  const url = `${sc.proxyUrl.replace('http:', 'https:')}/orders`
  const bound = await idp.sign({ sub: 'alice', aud: 'orders-api', cnf: { 'x5t#S256': alice.x5t } })
  assert.equal((await call(url, { authorization: `Bearer ${bound}` }, { client: alice })).status, 200)
  assert.equal(up.last()!.headers['x-auth-binding'], `x5t#S256=${alice.x5t}`)
  assert.equal((await call(url, { authorization: `Bearer ${bound}` }, { client: bob })).reason, 'certificate_mismatch')
})

/** nginx terminating TLS with required client certificates, passing the certificate on. */
async function startNginxIngress(sidecarUrl: string): Promise<{ url: string; close(): Promise<void> }> {
  const prefix = mkdtempSync(join(tmpdir(), 'jwt-sidecar-ingress-'))
  const port = await freePort()
  const conf = join(prefix, 'nginx.conf')
  writeFileSync(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 64; }
http {
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  access_log off;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${server.crt};
    ssl_certificate_key ${server.key};
    ssl_client_certificate ${ca.crt};
    ssl_verify_client on;
    location / {
      proxy_pass ${sidecarUrl.replace('0.0.0.0', '127.0.0.1')};
      proxy_bind 127.0.0.2;
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
    }
  }
}
`)
  const child = spawn(NGINX, ['-p', prefix, '-c', conf, '-e', join(prefix, 'startup.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr}`)
    return canConnect(port)
  }, { what: () => `nginx to listen on ${port}: ${stderr}`, timeoutMs: 10_000 })
  return {
    url: `https://127.0.0.1:${port}`,
    close: async () => {
      await stopChild(child)
      rmSync(prefix, { recursive: true, force: true })
    },
  }
}
