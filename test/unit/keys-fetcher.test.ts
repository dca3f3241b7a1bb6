import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer as createHttpsServer } from 'node:https'
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, buildConnector } from 'undici'
import { JwksFetchError } from '../../src/keys/errors.ts'
import type { FetchErrorCode } from '../../src/keys/errors.ts'
import { createJsonFetcher, MAX_REDIRECTS } from '../../src/keys/fetcher.ts'
import type { FetchOutcome, JsonFetcherOptions } from '../../src/keys/fetcher.ts'
import { MAX_JSON_DEPTH } from '../../src/keys/json-bounds.ts'
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

function isFetchError(code: FetchErrorCode, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof JwksFetchError, `expected JwksFetchError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (message !== undefined) assert.match(err.message, message)
    assert.ok(err.message.length <= 200, `message too long: ${err.message.length}`)
    return true
  }
}

function assertOk(outcome: FetchOutcome): asserts outcome is Extract<FetchOutcome, { status: 'ok' }> {
  assert.equal(outcome.status, 'ok')
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'jwt-sidecar-fetcher-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A real undici Agent whose connector counts connection attempts and sends them all to `port` on loopback. */
function countingAgent(port = 9): { agent: Agent; attempts: () => number } {
  const connect = buildConnector({})
  let attempts = 0
  const agent = new Agent({
    connect: (options, callback) => {
      attempts++
      connect({ ...options, hostname: '127.0.0.1', port: String(port) }, callback)
    },
  })
  return { agent, attempts: () => attempts }
}

void describe('createJsonFetcher', () => {
  void it('GETs with Accept and User-Agent and returns the parsed JSON', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256', kids: ['a', 'b'] })
    t.after(() => idp.close())
    const outcome = await createJsonFetcher(OPTS)(idp.jwksUri)
    assertOk(outcome)
    assert.deepEqual(outcome.body, idp.jwks())
    assert.deepEqual(outcome.validators, { etag: undefined, lastModified: undefined })
    assert.equal(outcome.maxAgeMs, undefined)
    const req = idp.lastRequest()!
    assert.equal(req.method, 'GET')
    assert.equal(req.headers['accept'], 'application/json')
    assert.equal(req.headers['user-agent'], 'jwt-sidecar/test')
    assert.equal(req.headers['authorization'], undefined)
    assert.equal(req.headers['if-none-match'], undefined)
  })

  void it('fails with code status on a non-200 response', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setStatus(503)
    await assert.rejects(createJsonFetcher(OPTS)(idp.jwksUri), (err) => {
      isFetchError('status', /HTTP 503/)(err)
      assert.equal((err as JwksFetchError).status, 503)
      return true
    })
    idp.setStatus(204)
    await assert.rejects(createJsonFetcher(OPTS)(idp.jwksUri), isFetchError('status', /HTTP 204/))
  })

  void it('follows a same-origin 3xx to its target, and does not treat 300 as a redirect', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    // The helper's 3xx points at <same origin>/elsewhere/jwks, which answers 404.
    idp.setStatus(302)
    await assert.rejects(createJsonFetcher(OPTS)(idp.jwksUri), (err) => {
      isFetchError('status', /HTTP 404/)(err)
      assert.equal((err as JwksFetchError).status, 404, 'the Location target was requested')
      return true
    })
    assert.equal(idp.fetchCount(), 1)
    idp.setStatus(300)
    await assert.rejects(createJsonFetcher(OPTS)(idp.jwksUri), isFetchError('status', /HTTP 300/))
  })

  void it('refuses a body whose Content-Length exceeds maxBytes', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setBody(JSON.stringify({ keys: [], pad: 'x'.repeat(2_000) }))
    await assert.rejects(createJsonFetcher({ ...OPTS, maxBytes: 1_000 })(idp.jwksUri), isFetchError('too_large', /exceeds 1000 bytes/))
  })

  void it('aborts a streamed body as soon as it exceeds maxBytes', async (t) => {
    // No Content-Length: the server streams forever; only the running count can stop it.
    let sent = 0
    let clientGone!: Promise<unknown>
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      clientGone = once(res, 'close')
      const chunk = Buffer.alloc(1_024, 0x20)
      const pump = (): void => {
        while (!res.destroyed && sent < 50 * 1024 * 1024) {
          sent += chunk.length
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
      }
      res.write('{"keys": [')
      pump()
    })
    t.after(() => srv.close())
    await assert.rejects(createJsonFetcher({ ...OPTS, maxBytes: 16 * 1024 })(`${srv.url}/jwks`), isFetchError('too_large'))
    await clientGone // the fetcher dropped the connection instead of draining it
    assert.ok(sent < 10 * 1024 * 1024, `server pushed ${sent} bytes before the abort`)
  })

  void it('fails with invalid_json on a body that is not JSON, without echoing the body', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setBody(`<html>${'secret-looking-page '.repeat(500)}</html>`)
    await assert.rejects(createJsonFetcher(OPTS)(idp.jwksUri), isFetchError('invalid_json', /not JSON/))
    idp.setBody('')
    await assert.rejects(createJsonFetcher(OPTS)(idp.jwksUri), isFetchError('invalid_json', /empty body/))
  })

  void it('times out when the server is slower than the timeout', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setDelay(2_000)
    const t0 = Date.now()
    await assert.rejects(createJsonFetcher({ ...OPTS, timeout: 100 })(idp.jwksUri), isFetchError('timeout', /100 ms/))
    assert.ok(Date.now() - t0 < 1_000)
  })

  void it('times out a body that drips slower than the timeout (the timeout is total)', async (t) => {
    const timers = new Set<NodeJS.Timeout>()
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"keys":')
      const tick = setInterval(() => res.write(' '), 20)
      timers.add(tick)
      res.on('close', () => clearInterval(tick))
    })
    t.after(async () => {
      for (const tick of timers) clearInterval(tick)
      await srv.close()
    })
    const t0 = Date.now()
    await assert.rejects(createJsonFetcher({ ...OPTS, timeout: 150 })(`${srv.url}/jwks`), isFetchError('timeout'))
    assert.ok(Date.now() - t0 < 1_000)
  })

  void it('times out a chain of slow redirects (one timeout bounds every hop)', async (t) => {
    const pending = new Set<NodeJS.Timeout>()
    const srv = await startHttpServer((req, res) => {
      const hop = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('hop') ?? '0')
      const timer = setTimeout(() => {
        pending.delete(timer)
        res.writeHead(302, { location: `/jwks?hop=${hop + 1}`, 'content-length': '0' }).end()
      }, 80)
      pending.add(timer)
    })
    t.after(async () => {
      for (const timer of pending) clearTimeout(timer)
      await srv.close()
    })
    // Each hop (80 ms) is within the timeout; the chain (4 × 80 ms) is not.
    await assert.rejects(createJsonFetcher({ ...OPTS, timeout: 200 })(`${srv.url}/jwks`), isFetchError('timeout'))
  })

  void it('fails with code network when nothing listens', async () => {
    const srv = await startHttpServer(() => {})
    const url = `${srv.url}/jwks`
    await srv.close()
    await assert.rejects(createJsonFetcher(OPTS)(url), isFetchError('network'))
  })

  void it('fails with code network when the caller aborts', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setDelay(2_000)
    const ctl = new AbortController()
    const p = createJsonFetcher(OPTS)(idp.jwksUri, { signal: ctl.signal })
    setTimeout(() => ctl.abort(), 20)
    await assert.rejects(p, isFetchError('network', /aborted/))
  })
})

void describe('createJsonFetcher: caching headers and conditional requests', () => {
  void it('passes Cache-Control max-age and the validators through', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setHeaders({ 'cache-control': 'public, max-age=120', etag: 'W/"abc"', 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' })
    const outcome = await createJsonFetcher(OPTS)(idp.jwksUri)
    assertOk(outcome)
    assert.equal(outcome.maxAgeMs, 120_000)
    assert.deepEqual(outcome.validators, { etag: 'W/"abc"', lastModified: 'Wed, 21 Oct 2015 07:28:00 GMT' })
  })

  void it('drops a malformed ETag instead of echoing it later', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setHeaders({ etag: 'unquoted' })
    const outcome = await createJsonFetcher(OPTS)(idp.jwksUri)
    assertOk(outcome)
    assert.equal(outcome.validators.etag, undefined)
  })

  void it('round-trips If-None-Match / If-Modified-Since; a 304 is not_modified with its own max-age', async (t) => {
    const lastModified = 'Wed, 21 Oct 2015 07:28:00 GMT'
    const seen: IncomingHttpHeaders[] = []
    const srv = await startHttpServer((req, res) => {
      seen.push(req.headers)
      // RFC 9110 §13.1.3: If-Modified-Since only counts when there is no If-None-Match.
      const fresh = req.headers['if-none-match'] !== undefined
        ? req.headers['if-none-match'] === '"v1"'
        : req.headers['if-modified-since'] === lastModified
      if (fresh) {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=30' }).end()
        return
      }
      const body = JSON.stringify({ keys: [] })
      res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"', 'last-modified': lastModified, 'cache-control': 'max-age=600' })
      res.end(body)
    })
    t.after(() => srv.close())
    const fetchJson = createJsonFetcher(OPTS)
    const url = `${srv.url}/jwks`

    const first = await fetchJson(url)
    assertOk(first)
    assert.equal(first.maxAgeMs, 600_000)
    assert.deepEqual(first.validators, { etag: '"v1"', lastModified })
    assert.equal(seen[0]!['if-none-match'], undefined)

    const second = await fetchJson(url, { validators: first.validators })
    assert.deepEqual(second, { status: 'not_modified', maxAgeMs: 30_000 })
    assert.equal(seen[1]!['if-none-match'], '"v1"')
    assert.equal(seen[1]!['if-modified-since'], lastModified)

    const byDate = await fetchJson(url, { validators: { etag: undefined, lastModified } })
    assert.deepEqual(byDate, { status: 'not_modified', maxAgeMs: 30_000 })
    assert.equal(seen[2]!['if-none-match'], undefined)
    assert.equal(seen[2]!['if-modified-since'], lastModified)

    const changed = await fetchJson(url, { validators: { etag: '"v0"', lastModified: undefined } })
    assert.equal(changed.status, 'ok')
  })

  void it('refuses a 304 to an unconditional request', async (t) => {
    const srv = await startHttpServer((_req, res) => res.writeHead(304).end())
    t.after(() => srv.close())
    await assert.rejects(createJsonFetcher(OPTS)(`${srv.url}/jwks`), isFetchError('status', /304 to an unconditional request/))
  })
})

void describe('createJsonFetcher: redirects (RFC 8725 §3.10: keys only from where the operator said)', () => {
  void it('follows a same-origin redirect (relative Location, 301/303/307/308)', async (t) => {
    const paths: string[] = []
    const srv = await startHttpServer((req, res) => {
      paths.push(req.url ?? '')
      const next: Record<string, [number, string]> = {
        '/a': [301, '/b'],
        '/b': [303, 'c'],
        '/c': [307, '/d'],
      }
      const hop = next[req.url ?? '']
      if (hop !== undefined) {
        res.writeHead(hop[0], { location: hop[1], 'content-length': '0' }).end()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=5' }).end('{"keys":[]}')
    })
    t.after(() => srv.close())
    const outcome = await createJsonFetcher(OPTS)(`${srv.url}/a`)
    assertOk(outcome)
    assert.deepEqual(outcome.body, { keys: [] })
    assert.equal(outcome.maxAgeMs, 5_000, 'the final response decides the lifetime')
    assert.deepEqual(paths, ['/a', '/b', '/c', '/d'])

    paths.length = 0
    srv.server.removeAllListeners('request')
    srv.server.on('request', (req, res) => {
      paths.push(req.url ?? '')
      if (req.url === '/old') res.writeHead(308, { location: `${srv.url}/new`, 'content-length': '0' }).end()
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[1]}')
    })
    const absolute = await createJsonFetcher(OPTS)(`${srv.url}/old`)
    assertOk(absolute)
    assert.deepEqual(paths, ['/old', '/new'])
  })

  void it('refuses a cross-origin redirect without contacting the other origin', async (t) => {
    const other = await startHttpServer((_req, res) => res.writeHead(200).end('{"keys":[]}'))
    t.after(() => other.close())
    let otherHits = 0
    other.server.prependListener('request', () => otherHits++)
    const srv = await startHttpServer((_req, res) => res.writeHead(302, { location: `${other.url}/jwks`, 'content-length': '0' }).end())
    t.after(() => srv.close())

    await assert.rejects(createJsonFetcher(OPTS)(`${srv.url}/jwks`), (err) => {
      isFetchError('redirect', /another origin/)(err)
      assert.ok((err as Error).message.includes(other.url), `names the target origin: ${(err as Error).message}`)
      assert.equal((err as JwksFetchError).status, 302)
      return true
    })
    assert.equal(otherHits, 0)
  })

  void it(`caps a redirect loop at ${MAX_REDIRECTS} hops`, async (t) => {
    let hits = 0
    const srv = await startHttpServer((_req, res) => {
      hits++
      res.writeHead(307, { location: '/loop', 'content-length': '0' }).end()
    })
    t.after(() => srv.close())
    await assert.rejects(createJsonFetcher(OPTS)(`${srv.url}/loop`), isFetchError('redirect', /more than 3 redirects/))
    assert.equal(hits, 1 + MAX_REDIRECTS)
  })

  void it('refuses a redirect without a Location', async (t) => {
    const srv = await startHttpServer((_req, res) => res.writeHead(302, { 'content-length': '0' }).end())
    t.after(() => srv.close())
    await assert.rejects(createJsonFetcher(OPTS)(`${srv.url}/jwks`), isFetchError('redirect', /without a Location/))
  })
})

void describe('createJsonFetcher: transport security', () => {
  void it('refuses plain http to a non-loopback host before connecting', async (t) => {
    const { agent, attempts } = countingAgent()
    t.after(() => agent.close())
    const t0 = Date.now()
    await assert.rejects(
      createJsonFetcher(OPTS, { dispatcher: agent })('http://example.invalid/jwks'),
      isFetchError('insecure', /example\.invalid/),
    )
    assert.ok(Date.now() - t0 < 100, 'failed fast, no DNS or connect')
    assert.equal(attempts(), 0)
  })

  void it('allows plain http to a non-loopback host with allowInsecureHttp', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    const { agent, attempts } = countingAgent(Number(new URL(idp.url).port))
    t.after(() => agent.close())
    // The connector routes the connection to the loopback issuer; the request names another host.
    const outcome = await createJsonFetcher({ ...OPTS, allowInsecureHttp: true }, { dispatcher: agent })('http://jwks.example.invalid/jwks')
    assertOk(outcome)
    assert.equal(attempts(), 1)
    assert.equal(idp.lastRequest()!.headers['host'], 'jwks.example.invalid')
  })

  void it('fails with config on a URL it cannot or will not fetch', async () => {
    const fetchJson = createJsonFetcher(OPTS)
    await assert.rejects(fetchJson('not a url'), isFetchError('config', /not an absolute URL/))
    await assert.rejects(fetchJson('ftp://127.0.0.1/jwks'), isFetchError('config', /unsupported URL scheme/))
    await assert.rejects(fetchJson('http://user:hunter2@127.0.0.1/jwks'), (err) => {
      isFetchError('config', /credentials/)(err)
      assert.ok(!(err as Error).message.includes('hunter2'))
      return true
    })
  })

  void it('trusts caFile instead of the system roots', async (t) => {
    assert.ok(spawnSync('openssl', ['version']).error === undefined, 'the openssl CLI is not on PATH (it generates the test CA): install Debian\'s openssl package')
    const dir = await tempDir(t)
    const openssl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
    }
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
      '-days', '1', '-subj', '/CN=jwt-sidecar test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign')
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr',
      '-subj', '/CN=127.0.0.1')
    await writeFile(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n')
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
      '-out', 'server.pem', '-extfile', 'server.ext')

    const server = createHttpsServer(
      { key: await readFile(join(dir, 'server.key')), cert: await readFile(join(dir, 'server.pem')) },
      (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":["over tls"]}'),
    )
    server.keepAliveTimeout = 1_000
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.after(() => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }))
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`

    // System roots do not know our CA.
    await assert.rejects(createJsonFetcher(OPTS)(url), isFetchError('network'))

    // A caFile that is not there yet is a config error on every fetch, until it appears.
    const caFile = join(dir, 'mounted', 'ca.pem')
    const fetchJson = createJsonFetcher({ ...OPTS, caFile })
    await assert.rejects(fetchJson(url), isFetchError('config', /caFile .*ca\.pem: ENOENT/))
    await assert.rejects(fetchJson(url), isFetchError('config', /ENOENT/))
    await mkdir(join(dir, 'mounted'))
    await copyFile(join(dir, 'ca.pem'), caFile)
    const outcome = await fetchJson(url)
    assertOk(outcome)
    assert.deepEqual(outcome.body, { keys: ['over tls'] })

    // A file that holds no certificate is refused outright (Node would silently ignore it).
    const junk = join(dir, 'junk.pem')
    await writeFile(junk, 'not a certificate\n')
    await assert.rejects(createJsonFetcher({ ...OPTS, caFile: junk })(url), isFetchError('config', /no PEM certificate/))
  })

  void it('cannot combine caFile with an injected dispatcher', () => {
    const { agent } = countingAgent()
    assert.throws(() => createJsonFetcher({ ...OPTS, caFile: '/ca.pem' }, { dispatcher: agent }), TypeError)
    void agent.close()
  })
})

void describe('createJsonFetcher: request headers and the bearer token', () => {
  void it('sends extra headers but never lets them replace Accept, User-Agent, Host or the validators', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    const headers = { 'X-Api-Key': 'k-123', Accept: 'text/html', 'User-Agent': 'evil', Host: 'evil.example', 'If-None-Match': '"forged"' }
    const outcome = await createJsonFetcher({ ...OPTS, headers })(idp.jwksUri)
    assertOk(outcome)
    const seen = idp.lastRequest()!.headers
    assert.equal(seen['x-api-key'], 'k-123')
    assert.equal(seen['accept'], 'application/json')
    assert.equal(seen['user-agent'], 'jwt-sidecar/test')
    assert.equal(seen['host'], new URL(idp.url).host)
    assert.equal(seen['if-none-match'], undefined)
  })

  void it('refuses an extra header with CR/LF without quoting its value', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    const fetchJson = createJsonFetcher({ ...OPTS, headers: { 'x-api-key': 'secret-value\r\nx-injected: 1' } })
    await assert.rejects(fetchJson(idp.jwksUri), (err) => {
      isFetchError('config', /x-api-key/)(err)
      assert.ok(!(err as Error).message.includes('secret-value'))
      return true
    })
    assert.equal(idp.fetchCount(), 0)
  })

  void it('re-reads bearerTokenFile on every fetch, and the token wins over an authorization header', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    const dir = await tempDir(t)
    const tokenFile = join(dir, 'token')
    await writeFile(tokenFile, 'eyJ.first-token.sig\n')
    const fetchJson = createJsonFetcher({ ...OPTS, bearerTokenFile: tokenFile, headers: { Authorization: 'Basic Zm9vOmJhcg==' } })

    await fetchJson(idp.jwksUri)
    assert.equal(idp.lastRequest()!.headers['authorization'], 'Bearer eyJ.first-token.sig')
    await writeFile(tokenFile, '  eyJ.rotated-token.sig  ') // kubelet rotated the projected token
    await fetchJson(idp.jwksUri)
    assert.equal(idp.lastRequest()!.headers['authorization'], 'Bearer eyJ.rotated-token.sig')
  })

  void it('fails with config when bearerTokenFile is missing, empty or not a token, never quoting the content', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    const dir = await tempDir(t)
    const tokenFile = join(dir, 'token')
    const fetchJson = createJsonFetcher({ ...OPTS, bearerTokenFile: tokenFile })
    const noSecret = (pattern: RegExp) => (err: unknown): boolean => {
      isFetchError('config', pattern)(err)
      const text = `${(err as Error).message} ${String((err as Error).cause)} ${JSON.stringify(err)}`
      assert.ok(!text.includes('s3cr3t'), `token content leaked: ${text}`)
      return true
    }

    await assert.rejects(fetchJson(idp.jwksUri), noSecret(/bearerTokenFile .*token: ENOENT/))
    await writeFile(tokenFile, ' \n')
    await assert.rejects(fetchJson(idp.jwksUri), noSecret(/is empty/))
    await writeFile(tokenFile, 's3cr3t-token\r\nX-Injected: yes')
    await assert.rejects(fetchJson(idp.jwksUri), noSecret(/not hold one RFC 6750 bearer token/))
    assert.equal(idp.fetchCount(), 0, 'nothing was sent')

    // A network failure after a good read does not carry the token either.
    await writeFile(tokenFile, 's3cr3t-token')
    const srv = await startHttpServer((req) => req.socket.destroy())
    t.after(() => srv.close())
    await assert.rejects(fetchJson(`${srv.url}/jwks`), (err) => {
      isFetchError('network')(err)
      assert.ok(!`${(err as Error).message} ${String((err as Error).cause)}`.includes('s3cr3t'))
      return true
    })
  })
})

void describe('createJsonFetcher: nesting depth (issue #9 §8)', () => {
  /** A server whose /jwks answers 200 with `body()` (read per request). */
  async function serving(t: TestContext, body: () => string): Promise<string> {
    const srv = await startHttpServer((_req, res) => {
      const text = body()
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
    })
    t.after(() => srv.close())
    return `${srv.url}/jwks`
  }
  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`

  void it('refuses a 400,000-deep body with too_deep before JSON.parse, within the default 1 MiB maxBytes', async (t) => {
    const deep = `{"keys":${nested(400_000)}}`
    assert.ok(Buffer.byteLength(deep) < 1024 * 1024, 'the byte cap alone would let it through')
    const url = await serving(t, () => deep)
    await assert.rejects(createJsonFetcher({ ...OPTS, maxBytes: 1024 * 1024 })(url), (err) => {
      isFetchError('too_deep', new RegExp(`^response nests deeper than ${MAX_JSON_DEPTH} levels \\(at character ${8 + MAX_JSON_DEPTH - 1}\\): not a key document$`))(err)
      // invalid_json carries JSON.parse's SyntaxError as its cause; this refusal never parsed.
      assert.equal((err as JwksFetchError).cause, undefined)
      return true
    })
  })

  void it(`accepts a body exactly ${MAX_JSON_DEPTH} deep and refuses ${MAX_JSON_DEPTH + 1}; brackets inside strings do not count`, async (t) => {
    let body = ''
    const url = await serving(t, () => body)
    const fetchJson = createJsonFetcher(OPTS)

    body = `{"keys":${nested(MAX_JSON_DEPTH - 1)}}`
    const ok = await fetchJson(url)
    assertOk(ok)
    assert.deepEqual(ok.body, JSON.parse(body))

    body = `{"keys":${nested(MAX_JSON_DEPTH)}}`
    await assert.rejects(fetchJson(url), isFetchError('too_deep'))

    // A JWKS whose strings are full of brackets and escaped quotes is an ordinary depth-3 document.
    const doc = { keys: [{ kty: 'EC', kid: `"${'['.repeat(500)}\\"${'{'.repeat(500)}`, x5c: ['[[[[', '\\'] }] }
    body = JSON.stringify(doc)
    const strings = await fetchJson(url)
    assertOk(strings)
    assert.deepEqual(strings.body, doc)
  })
})
