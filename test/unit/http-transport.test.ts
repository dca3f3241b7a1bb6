/**
 * "https unless loopback" (issue #9 §5): the config loader, the fetcher and discovery once had
 * three copies that disagreed on `::1`; now all ask src/http/transport.ts, and this table is
 * run against the module and against each caller.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isLoopbackHost, refusesPlainHttp } from '../../src/http/transport.ts'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { JwksFetchError } from '../../src/keys/errors.ts'
import { createJsonFetcher } from '../../src/keys/fetcher.ts'

/** [URL, is loopback] */
const TABLE: [string, boolean][] = [
  ['http://localhost/', true], ['http://LOCALHOST/', true], ['http://127.0.0.1/', true], ['http://127.255.0.9/', true],
  ['http://127.1/', true], ['http://[::1]/', true], ['http://[0:0:0:0:0:0:0:1]/', true],
  ['http://128.0.0.1/', false], ['http://0.0.0.0/', false], ['http://localhost.evil.example/', false],
  ['http://127.0.0.1.nip.io/', false], ['http://[::]/', false], ['http://10.0.0.1/', false], ['http://example.com/', false],
  ['http://[::ffff:127.0.0.1]/', false],
]

test('isLoopbackHost and refusesPlainHttp', () => {
  for (const [url, loopback] of TABLE) {
    const u = new URL(url)
    assert.equal(isLoopbackHost(u.hostname), loopback, url)
    assert.equal(refusesPlainHttp(u, false), !loopback, url)
    assert.equal(refusesPlainHttp(u, true), false, url)
    assert.equal(refusesPlainHttp(new URL(url.replace('http:', 'https:')), false), false, url)
  }
  assert.equal(isLoopbackHost('::1'), true)
})

test('the config loader applies the same rule to jwksUri', () => {
  for (const [url, loopback] of TABLE) {
    const yaml = `upstream: {url: "http://127.0.0.1:3000"}\nissuers: [{name: a, issuer: x, audiences: [y], jwksUri: "${url}jwks"}]\nroutes: [{name: d, path: /**}]\n`
    let refused = false
    try {
      parseConfig(yaml, 't.yaml', {})
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      assert.match(err.message, /https is required unless the host is loopback/, url)
      refused = true
    }
    assert.equal(refused, !loopback, url)
  }
})

test('the fetcher applies the same rule before connecting', async () => {
  const fetchJson = createJsonFetcher({ timeout: 200, maxBytes: 1024, userAgent: 't', headers: {}, bearerTokenFile: undefined, caFile: undefined, allowInsecureHttp: false })
  for (const [url, loopback] of TABLE) {
    // Port 9 (discard) on loopback: refused at connect, never at the URL check.
    const target = `${url.replace(/\/$/, '')}:9/jwks`
    const err = await fetchJson(target).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof JwksFetchError, url)
    assert.equal(err.code === 'insecure', !loopback, `${url}: ${err.code}`)
  }
})
