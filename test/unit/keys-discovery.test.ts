import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { DiscoveryError, discoverJwksUri, discoveryUrl } from '../../src/keys/discovery.ts'
import { JwksFetchError } from '../../src/keys/errors.ts'
import { createJsonFetcher } from '../../src/keys/fetcher.ts'
import type { JsonFetcherOptions } from '../../src/keys/fetcher.ts'
import { startHttpServer, startTestIssuer } from '../helpers/issuer.ts'

const OPTS: JsonFetcherOptions = {
  timeout: 1_000,
  maxBytes: 64 * 1024,
  userAgent: 'jwt-sidecar/test',
  headers: {},
  bearerTokenFile: undefined,
  caFile: undefined,
  allowInsecureHttp: false,
}
const fetchJson = createJsonFetcher(OPTS)
const SECURE = { allowInsecureHttp: false }

/** A provider whose discovery document is built from its base URL; records the paths asked for. */
async function provider(
  t: TestContext,
  doc: (base: string) => unknown,
  headers: Readonly<Record<string, string>> = {},
): Promise<{ url: string; paths: string[] }> {
  const paths: string[] = []
  const srv = await startHttpServer((req, res) => {
    paths.push(req.url ?? '')
    res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(doc(srv.url)))
  })
  t.after(() => srv.close())
  return { url: srv.url, paths }
}

function isDiscoveryError(message: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof DiscoveryError, `expected DiscoveryError, got ${String(err)}`)
    assert.equal(err.code, 'discovery')
    assert.match(err.message, message)
    return true
  }
}

void describe('discoverJwksUri', () => {
  void it("finds the test issuer's jwks_uri", async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    const found = await discoverJwksUri(idp.issuer, fetchJson, SECURE)
    assert.deepEqual(found, { jwksUri: idp.jwksUri, maxAgeMs: undefined })
  })

  void it('passes the document cache lifetime through', async (t) => {
    const idp = await provider(t, (base) => ({ issuer: base, jwks_uri: `${base}/certs` }), { 'cache-control': 'max-age=900' })
    const found = await discoverJwksUri(idp.url, fetchJson, SECURE)
    assert.deepEqual(found, { jwksUri: `${idp.url}/certs`, maxAgeMs: 900_000 })
  })

  void it('refuses a document whose issuer differs from the configured one (OIDC Discovery §4.3)', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256', issuer: 'https://evil.example' })
    t.after(() => idp.close())
    await assert.rejects(
      discoverJwksUri(idp.url, fetchJson, SECURE),
      isDiscoveryError(new RegExp(`^discovery document issuer "https://evil\\.example" does not equal the configured issuer "${idp.url}"$`)),
    )
  })

  void it('removes one trailing slash to build the URL, but compares the issuer exactly', async (t) => {
    assert.equal(discoveryUrl('https://idp.example/'), 'https://idp.example/.well-known/openid-configuration')
    assert.equal(discoveryUrl('https://idp.example/realms/a'), 'https://idp.example/realms/a/.well-known/openid-configuration')

    // A configured "https://idp/" is not the "https://idp" the document names.
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    await assert.rejects(discoverJwksUri(`${idp.url}/`, fetchJson, SECURE), isDiscoveryError(/does not equal the configured issuer/))

    // An issuer with a path and a trailing slash, named the same way by its document.
    const realm = await provider(t, (base) => ({ issuer: `${base}/realms/a/`, jwks_uri: `${base}/realms/a/certs` }))
    const found = await discoverJwksUri(`${realm.url}/realms/a/`, fetchJson, SECURE)
    assert.equal(found.jwksUri, `${realm.url}/realms/a/certs`)
    assert.deepEqual(realm.paths, ['/realms/a/.well-known/openid-configuration'])
  })

  void it('refuses a missing, relative, non-http or insecure jwks_uri', async (t) => {
    const cases: [unknown, RegExp][] = [
      [undefined, /has no jwks_uri/],
      ['', /has no jwks_uri/],
      [42, /has no jwks_uri/],
      ['/certs', /"\/certs" is not an absolute URL/],
      ['ftp://idp.example/certs', /is not an http\(s\) URL/],
      ['http://idp.example/certs', /plain http: to a non-loopback host/],
      ['https://user:pw@idp.example/certs', /carries credentials/],
    ]
    for (const [jwksUri, message] of cases) {
      const idp = await provider(t, (base) => ({ issuer: base, jwks_uri: jwksUri }))
      await assert.rejects(discoverJwksUri(idp.url, fetchJson, SECURE), isDiscoveryError(message), String(jwksUri))
    }
  })

  void it('accepts an http jwks_uri on a non-loopback host only with allowInsecureHttp', async (t) => {
    const idp = await provider(t, (base) => ({ issuer: base, jwks_uri: 'http://idp.example/certs' }))
    const found = await discoverJwksUri(idp.url, fetchJson, { allowInsecureHttp: true })
    assert.equal(found.jwksUri, 'http://idp.example/certs')
  })

  void it('refuses a document that is not an object or has no issuer', async (t) => {
    const list = await provider(t, () => [{ issuer: 'x' }])
    await assert.rejects(discoverJwksUri(list.url, fetchJson, SECURE), isDiscoveryError(/not a JSON object/))
    const anonymous = await provider(t, (base) => ({ jwks_uri: `${base}/certs` }))
    await assert.rejects(discoverJwksUri(anonymous.url, fetchJson, SECURE), isDiscoveryError(/has no issuer string/))
  })

  void it('clips and escapes a hostile issuer in the message', async (t) => {
    const idp = await provider(t, () => ({ issuer: `https://evil\n${'x'.repeat(5_000)}` }))
    await assert.rejects(discoverJwksUri(idp.url, fetchJson, SECURE), (err) => {
      isDiscoveryError(/evil\\n/)(err)
      assert.ok((err as Error).message.length < 300)
      return true
    })
  })

  void it('lets fetch failures through as JwksFetchError', async (t) => {
    const srv = await startHttpServer((_req, res) => res.writeHead(500).end())
    t.after(() => srv.close())
    await assert.rejects(discoverJwksUri(srv.url, fetchJson, SECURE), (err) => {
      assert.ok(err instanceof JwksFetchError)
      assert.equal(err.code, 'status')
      assert.equal(err.status, 500)
      return true
    })
    await assert.rejects(discoverJwksUri('http://idp.example.invalid', fetchJson, SECURE), (err) => {
      assert.ok(err instanceof JwksFetchError)
      assert.equal(err.code, 'insecure')
      return true
    })
    const ctl = new AbortController()
    ctl.abort()
    await assert.rejects(discoverJwksUri(srv.url, fetchJson, { allowInsecureHttp: false, signal: ctl.signal }), (err) => {
      assert.ok(err instanceof JwksFetchError)
      assert.equal(err.code, 'network')
      return true
    })
  })
})
