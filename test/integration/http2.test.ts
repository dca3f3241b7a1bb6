/**
 * `tls.http2` (issue #13 §1): ALPN h2 and http/1.1 on the TLS listener, over real TLS on
 * loopback with certificates made by openssl at test time. HTTP/2 requests (node:http2's
 * client, and hand-written frames for what that client refuses to send) must meet the same
 * header handling as HTTP/1.1: the app receives HTTP/1.1 with the verified identity, never a
 * spoofed identity header, an `_` alias or a pseudo-header; `:authority` is the Host of the
 * DPoP htu; a `host` that disagrees with it, or a repeated Authorization, is refused.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:http2'
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { waitFor } from '../../src/wait-for.ts'
import { makeCa } from '../helpers/certs.ts'
import type { TestCert } from '../helpers/certs.ts'
import { dpopClient, dpopProof } from '../helpers/dpop.ts'
import { rawH2Request } from '../helpers/h2-frames.ts'
import { startHttpServer, startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer, TestServer } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

/** What the app received: the HTTP version, every field as sent, the body's size and hash. */
interface Seen { readonly httpVersion: string; readonly method: string; readonly url: string; readonly rawHeaders: readonly string[]; readonly headers: IncomingMessage['headers']; readonly bodyBytes: number; readonly bodySha256: string }

interface H2Response { readonly status: number; readonly headers: Record<string, unknown>; readonly body: string }

const work = mkdtempSync(join(tmpdir(), 'jwt-sidecar-h2-'))

/** One request on an open session; `body` chunks are written one by one, with no Content-Length unless given. */
function h2(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: readonly Buffer[]): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let head: Record<string, unknown> = {}
    req.on('response', (h) => {
      head = h
    })
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks).toString('utf8') }))
    req.on('error', reject)
    if (body !== undefined) {
      for (const c of body) req.write(c)
      req.end()
    }
  })
}

function open(url: string, ca: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(url, { ca })
    session.once('connect', () => resolve(session))
    session.once('error', reject)
  })
}

function closeSession(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => session.close(() => resolve()))
}

/** An HTTP/1.1 request over TLS on the same port (ALPN http/1.1). */
function https11(url: string, ca: string, headers: Record<string, string>): Promise<{ status: number; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    // An HTTP/1.1-only client: it offers http/1.1 alone.
    const options = { ca, agent: false, headers, ALPNProtocols: ['http/1.1'] }
    const req = httpsRequest(url, options, (res) => {
      const alpn = (res.socket as TLSSocket).alpnProtocol
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, alpn }))
    })
    req.on('error', reject)
    req.end()
  })
}

function fieldNames(raw: readonly string[]): string[] {
  return raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
}

void describe('tls.http2: ALPN h2 and http/1.1 with the same header handling', () => {
  let idp: TestIssuer
  let app: TestServer
  let seen: Seen[] = []
  let ca: ReturnType<typeof makeCa>
  let a: TestCert
  let b: TestCert
  let dir: string
  let s: TestSidecar
  let port: number
  let token: string

  /** The tls section, the DPoP-enabled issuer, a cookie token source, and forwardToken off. */
  const yaml = (extra = ''): string => sidecarYaml({
    upstream: app.url,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri }],
    identity: '  headers:\n    X-Auth-Subject: sub\n  strip: ["X-Auth-*"]\n  forwardToken: false',
    extra: `tls:\n  certFile: ${join(dir, 'tls.crt')}\n  keyFile: ${join(dir, 'tls.key')}\n  http2: true\n${extra}`,
  })
    .replace('    refresh:\n', '    dpop:\n      mode: allowed\n      proofMaxAge: 60s\n    refresh:\n')
    .replace('    - header: Authorization\n      prefix: "Bearer "\n', '    - header: Authorization\n      prefix: "Bearer "\n    - cookie: at\n')

  before(async () => {
    idp = await startTestIssuer()
    app = await startHttpServer((req, res) => {
      const hash = createHash('sha256')
      let bytes = 0
      req.on('data', (c: Buffer) => {
        bytes += c.length
        hash.update(c)
      })
      req.on('end', () => {
        seen.push({ httpVersion: req.httpVersion, method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, bodyBytes: bytes, bodySha256: hash.digest('hex') })
        // HTTP/1.1 can repeat Content-Type; HTTP/2 cannot carry it (a single-value field in Node).
        if (req.url === '/api/two-types') res.setHeader('content-type', ['text/plain', 'text/html']).setHeader('set-cookie', 'app=1')
        res.end('ok')
      })
    })
    ca = makeCa()
    a = ca.issue('server-a', 'server')
    b = ca.issue('server-b', 'server')
    dir = mkdtempSync(join(work, 'tls-'))
    writeFileSync(join(dir, 'tls.crt'), readFileSync(a.crt))
    writeFileSync(join(dir, 'tls.key'), readFileSync(a.key))
    token = await idp.sign({ sub: 'alice' }, { expiresIn: 600 })
    s = await startSidecar(yaml())
    port = Number(new URL(s.proxyUrl).port)
  })
  after(async () => {
    await s.close()
    await idp.close()
    await app.close()
    rmSync(work, { recursive: true, force: true })
  })

  const base = (): OutgoingHttpHeaders => ({ ':method': 'GET', ':path': '/api/x' })

  void it('admits an h2 request; the app gets it as HTTP/1.1 with the verified identity, no pseudo-header, no spoofed header or alias', async () => {
    const session = await open(s.proxyUrl, ca.pem)
    try {
      assert.equal(session.alpnProtocol, 'h2')
      // RFC 9113 §6.5.2: a bounded number of concurrent streams, not Node's 2^32-1.
      assert.equal(session.remoteSettings.maxConcurrentStreams, 100)
      seen = []
      const r = await h2(session, {
        ...base(), authorization: `Bearer ${token}`,
        'x-auth-subject': 'mallory', 'x_auth_subject': 'mallory', 'x-auth-role': 'admin', 'x_auth-role': 'admin', 'x-http-method-override': 'DELETE', 'x-app': 'kept',
      })
      assert.equal(r.status, 200, r.body)
      assert.equal(seen.length, 1)
      const got = seen[0]!
      assert.equal(got.httpVersion, '1.1')
      assert.equal(got.method, 'GET')
      assert.equal(got.url, '/api/x')
      const names = fieldNames(got.rawHeaders)
      assert.deepEqual(names.filter((n) => n.startsWith(':')), [], 'no pseudo-header reaches the app')
      assert.deepEqual(names.filter((n) => n === 'x-auth-subject'), ['x-auth-subject'], 'one x-auth-subject: ours')
      assert.equal(got.headers['x-auth-subject'], 'alice')
      for (const n of ['x_auth_subject', 'x-auth-role', 'x_auth-role', 'x-http-method-override', 'authorization']) assert.ok(!names.includes(n), `${n} is not forwarded`)
      assert.equal(got.headers['x-app'], 'kept')
      // Host names the app; the authority the client used is X-Forwarded-Host.
      assert.equal(got.headers.host, new URL(app.url).host)
      assert.equal(got.headers['x-forwarded-host'], `127.0.0.1:${port}`)
      assert.equal(got.headers['x-forwarded-proto'], 'https')
      const dropped = s.logs().find((l) => l.event === 'request.header_dropped' && Array.isArray(l.names) && l.names.includes('x_auth_subject'))
      assert.ok(dropped !== undefined, 'the strip is reported as over HTTP/1.1')
    } finally {
      await closeSession(session)
    }
  })

  void it('strips spoofed identity headers on an auth: none route too', async () => {
    const session = await open(s.proxyUrl, ca.pem)
    try {
      seen = []
      const r = await h2(session, { ':method': 'GET', ':path': '/healthz', 'x-auth-subject': 'mallory', 'x_auth_subject': 'mallory' })
      assert.equal(r.status, 200)
      const names = fieldNames(seen[0]!.rawHeaders)
      assert.ok(!names.includes('x-auth-subject') && !names.includes('x_auth_subject'))
    } finally {
      await closeSession(session)
    }
  })

  void it('streams a request body with and without Content-Length', async () => {
    const session = await open(s.proxyUrl, ca.pem)
    try {
      const chunks = [Buffer.alloc(70_000, 1), Buffer.alloc(30_000, 2), Buffer.from('end')]
      const whole = Buffer.concat(chunks)
      const sha = createHash('sha256').update(whole).digest('hex')
      for (const headers of [{}, { 'content-length': String(whole.length) }, { 'content-type': 'application/octet-stream' }]) {
        seen = []
        const r = await h2(session, { ':method': 'POST', ':path': '/api/upload', authorization: `Bearer ${token}`, ...headers }, chunks)
        assert.equal(r.status, 200, JSON.stringify(headers))
        assert.deepEqual([seen[0]!.bodyBytes, seen[0]!.bodySha256], [whole.length, sha], JSON.stringify(headers))
      }
    } finally {
      await closeSession(session)
    }
  })

  void it('reads a cookie token from Cookie fields that h2 sends separately (RFC 9113 §8.2.3), and removes only it', async () => {
    const session = await open(s.proxyUrl, ca.pem)
    try {
      seen = []
      const r = await h2(session, { ...base(), cookie: ['theme=dark', `at=${token}`, 'lang=en'] })
      assert.equal(r.status, 200, r.body)
      assert.equal(seen[0]!.headers['x-auth-subject'], 'alice')
      // One Cookie field upstream (HTTP/1.1 allows no other), without the token.
      assert.equal(fieldNames(seen[0]!.rawHeaders).filter((n) => n === 'cookie').length, 1)
      assert.equal(seen[0]!.headers.cookie, 'theme=dark; lang=en')
      // Two different tokens in two Cookie fields: ambiguous, refused.
      const other = await idp.sign({ sub: 'bob' }, { expiresIn: 600 })
      const two = await h2(session, { ...base(), cookie: [`at=${token}`, `at=${other}`] })
      assert.equal(two.status, 400)
    } finally {
      await closeSession(session)
    }
  })

  void it('DPoP: the htu is https://:authority/path; a proof for another authority or a second DPoP field is refused', async () => {
    const client = await dpopClient()
    const bound = await idp.sign({ sub: 'alice', cnf: { jkt: client.jkt } }, { expiresIn: 600 })
    const session = await open(s.proxyUrl, ca.pem)
    try {
      const url = `https://127.0.0.1:${port}/api/x`
      const ok = await h2(session, { ...base(), authorization: `DPoP ${bound}`, dpop: await dpopProof(client, bound, url) })
      assert.equal(ok.status, 200, ok.body)
      // The client names another authority (a name for the same address): the proof must be for it.
      const named = `localhost:${port}`
      const viaName = await h2(session, { ...base(), ':authority': named, authorization: `DPoP ${bound}`, dpop: await dpopProof(client, bound, `https://${named}/api/x`) })
      assert.equal(viaName.status, 200, viaName.body)
      const wrongHost = await h2(session, { ...base(), ':authority': named, authorization: `DPoP ${bound}`, dpop: await dpopProof(client, bound, url) })
      assert.equal(wrongHost.status, 401)
      assert.equal((JSON.parse(wrongHost.body) as { reason: string }).reason, 'invalid_dpop_proof')
      const twice = await h2(session, { ...base(), authorization: `DPoP ${bound}`, dpop: [await dpopProof(client, bound, url), await dpopProof(client, bound, url)] })
      assert.equal(twice.status, 401)
      assert.equal((JSON.parse(twice.body) as { reason: string }).reason, 'invalid_dpop_proof')
    } finally {
      await closeSession(session)
    }
  })

  void it('refuses a host field that differs from :authority (RFC 9113 §8.3.1), so it cannot steer the htu check', async () => {
    // node:http2's client sends `host` instead of :authority, never both: hand-written frames.
    const client = await dpopClient()
    const bound = await idp.sign({ sub: 'alice', cnf: { jkt: client.jkt } }, { expiresIn: 600 })
    const authority = `127.0.0.1:${port}`
    const request = (host: string, proofFor: string): Promise<{ status: number | 'other' | undefined; reset: number | undefined }> =>
      dpopProof(client, bound, `https://${proofFor}/api/x`).then((proof) => rawH2Request(port, [
        [':method', 'GET'], [':scheme', 'https'], [':path', '/api/x'], [':authority', authority], ['host', host], ['authorization', `DPoP ${bound}`], ['dpop', proof],
      ]))
    seen = []
    assert.deepEqual(await request('evil.example', 'evil.example'), { status: 400, reset: undefined })
    assert.deepEqual(await request('evil.example', authority), { status: 400, reset: undefined })
    assert.equal(seen.length, 0)
    assert.ok(s.logs().some((l) => l.event === 'auth.denied' && l.reason === 'invalid_request' && String(l.detail).includes(':authority')))
    // The same authority in both places (case aside) is one authority.
    assert.deepEqual(await request(authority.toUpperCase(), authority), { status: 200, reset: undefined })
    assert.equal(seen.length, 1)
  })

  void it('hand-written frames: nghttp2 refuses what HTTP/2 forbids; a repeated Authorization or host is still seen', async () => {
    const authority = `127.0.0.1:${port}`
    const request = (...more: Array<[string, string]>): Array<[string, string]> => [[':method', 'GET'], [':scheme', 'https'], [':path', '/api/x'], [':authority', authority], ...more]
    seen = []
    // The frames are right: a plain request gets through.
    const ok = await rawH2Request(port, request(['authorization', `Bearer ${token}`]))
    assert.deepEqual(ok, { status: 200, reset: undefined })
    assert.equal(seen.length, 1)
    // RFC 9113 §8.2.1 upper case, §8.2.2 connection-specific fields, §8.3 pseudo-headers: malformed, the stream is reset (PROTOCOL_ERROR).
    const malformed: Array<Array<[string, string]>> = [
      request(['authorization', `Bearer ${token}`], ['X-Auth-Subject', 'mallory']),
      request(['authorization', `Bearer ${token}`], ['connection', 'x-auth-subject']),
      request(['authorization', `Bearer ${token}`], ['transfer-encoding', 'chunked']),
      request(['authorization', `Bearer ${token}`], ['te', 'gzip']),
      request(['authorization', `Bearer ${token}`], ['upgrade', 'websocket']),
      request(['authorization', `Bearer ${token}`], [':x-auth-subject', 'mallory']),
      [[':method', 'GET'], [':scheme', 'https'], ['authorization', `Bearer ${token}`], [':path', '/api/x'], [':authority', authority]],
      request(['authorization', `Bearer ${token}`], [':path', '/admin']),
    ]
    for (const fields of malformed) {
      const r = await rawH2Request(port, fields)
      assert.equal(r.status, undefined, JSON.stringify(fields.slice(4)))
      assert.equal(r.reset, 1, JSON.stringify(fields.slice(4)))
    }
    // Node keeps the first of a repeated Authorization; rawHeaders shows both, and the request is refused.
    const twice = await rawH2Request(port, request(['authorization', `Bearer ${token}`], ['authorization', 'Bearer other']))
    assert.deepEqual(twice, { status: 400, reset: undefined })
    // nghttp2 itself resets a stream with two host fields.
    const hosts = await rawH2Request(port, request(['authorization', `Bearer ${token}`], ['host', authority], ['host', 'evil.example']))
    assert.deepEqual(hosts, { status: undefined, reset: 1 })
    // No :authority: host is the authority (§8.3.1); neither: refused.
    const hostOnly = await rawH2Request(port, [[':method', 'GET'], [':scheme', 'https'], [':path', '/api/x'], ['host', authority], ['authorization', `Bearer ${token}`]])
    assert.deepEqual(hostOnly, { status: 200, reset: undefined })
    const none = await rawH2Request(port, [[':method', 'GET'], [':scheme', 'https'], [':path', '/api/x'], ['authorization', `Bearer ${token}`]])
    // nghttp2 resets it first (request/authority.ts would refuse it with 400 too).
    assert.deepEqual(none, { status: undefined, reset: 1 })
    // te: trailers is the one TE HTTP/2 allows; it is hop-by-hop and not forwarded.
    const trailers = await rawH2Request(port, request(['authorization', `Bearer ${token}`], ['te', 'trailers']))
    assert.deepEqual(trailers, { status: 200, reset: undefined })
    assert.equal(seen.length, 3, 'only the three good requests reached the app')
    assert.ok(seen.every((r) => !fieldNames(r.rawHeaders).some((n) => n === 'te' || n.startsWith(':'))))
  })

  void it('answers 502, with none of the app\'s headers, a response HTTP/2 cannot carry', async () => {
    const session = await open(s.proxyUrl, ca.pem)
    try {
      const r = await h2(session, { ':method': 'GET', ':path': '/api/two-types', authorization: `Bearer ${token}` })
      assert.equal(r.status, 502)
      assert.equal(r.headers['set-cookie'], undefined)
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8')
      assert.equal((JSON.parse(r.body) as { reason: string }).reason, 'upstream_unavailable')
    } finally {
      await closeSession(session)
    }
  })

  void it('serves an HTTP/1.1 client on the same port with the same strip', async () => {
    seen = []
    const r = await https11(`${s.proxyUrl}/api/x`, ca.pem, { authorization: `Bearer ${token}`, 'x-auth-subject': 'mallory', 'x_auth_subject': 'mallory' })
    assert.deepEqual(r, { status: 200, alpn: 'http/1.1' })
    assert.equal(seen[0]!.headers['x-auth-subject'], 'alice')
    assert.ok(!fieldNames(seen[0]!.rawHeaders).includes('x_auth_subject'))
  })

  void it('reloads the certificate: a new h2 session sees the new one, an open session keeps working', async () => {
    const before = await open(s.proxyUrl, ca.pem)
    try {
      assert.equal((before.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256.replaceAll(':', '').toLowerCase(), a.hex)
      // cert-manager's order: the key, then the certificate, each replaced atomically.
      writeFileSync(join(dir, 'tls.key.new'), readFileSync(b.key))
      renameSync(join(dir, 'tls.key.new'), join(dir, 'tls.key'))
      writeFileSync(join(dir, 'tls.crt.new'), readFileSync(b.crt))
      renameSync(join(dir, 'tls.crt.new'), join(dir, 'tls.crt'))
      await waitFor(() => s.logs().some((l) => l.event === 'tls.reloaded' && l.initial === false), { what: 'tls.reloaded', timeoutMs: 15_000 })
      const fresh = await open(s.proxyUrl, ca.pem)
      try {
        assert.equal(fresh.alpnProtocol, 'h2')
        assert.equal((fresh.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256.replaceAll(':', '').toLowerCase(), b.hex)
        assert.equal((await h2(fresh, { ...base(), authorization: `Bearer ${token}` })).status, 200)
      } finally {
        await closeSession(fresh)
      }
      assert.equal((await h2(before, { ...base(), authorization: `Bearer ${token}` })).status, 200, 'the open session is not dropped')
    } finally {
      await closeSession(before)
    }
  })
})

void describe('tls.http2: requests.timeout and shutdown', () => {
  let idp: TestIssuer
  let app: TestServer
  let ca: ReturnType<typeof makeCa>
  let cert: TestCert
  let token: string
  let hanging = 0
  before(async () => {
    idp = await startTestIssuer()
    // /api/hang never answers: a request in flight at the shutdown timeout.
    app = await startHttpServer((req, res) => {
      req.resume()
      if (req.url === '/api/hang') hanging++
      else req.on('end', () => res.end('ok'))
    })
    ca = makeCa()
    cert = ca.issue('server', 'server')
    token = await idp.sign({ sub: 'alice' }, { expiresIn: 600 })
  })
  after(async () => {
    await idp.close()
    await app.close()
  })
  const start = (): Promise<TestSidecar> => startSidecar(sidecarYaml({
    upstream: app.url,
    upstreamTimeout: '30s',
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri }],
    extra: `tls:\n  certFile: ${cert.crt}\n  keyFile: ${cert.key}\n  http2: true\nrequests:\n  timeout: 1s\nshutdown:\n  delay: 0s\n  timeout: 1500ms\n`,
  }))

  void it('answers 408 when a body does not arrive within requests.timeout, over h2 and over HTTP/1.1 on the same port, and counts both', async () => {
    const s = await start()
    try {
      const session = await open(s.proxyUrl, ca.pem)
      const started = Date.now()
      const r = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/api/x', authorization: `Bearer ${token}` }, { endStream: false })
        req.write('a little, and never the rest')
        req.on('response', (h) => resolve(Number(h[':status'])))
        req.on('error', reject)
      })
      assert.equal(r, 408)
      assert.ok(Date.now() - started >= 900, 'not before the deadline')
      // The session is still good for a whole request.
      assert.equal((await h2(session, { ':method': 'GET', ':path': '/api/x', authorization: `Bearer ${token}` })).status, 200)
      session.destroy()
      // Http2SecureServer gives its HTTP/1.1 connections fixed timeouts (300 s) unless told otherwise.
      const head = await new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(s.proxyUrl).port), ca: ca.pem, ALPNProtocols: ['http/1.1'] }, () => {
          socket.write(`POST /api/x HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\ncontent-length: 100\r\n\r\nabc`)
        })
        let text = ''
        socket.on('data', (c: Buffer) => {
          text += c.toString('latin1')
        })
        socket.on('close', () => resolve(text))
        socket.on('error', reject)
      })
      assert.match(head, /^HTTP\/1\.1 408 /)
      const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text()
      assert.match(metrics, /^jwt_sidecar_requests_total\{route="_unmatched",outcome="denied",reason="request_timeout"\} 2$/m)
      assert.equal(s.logs().filter((l) => l.event === 'request.timeout').length, 2)
    } finally {
      await s.close()
    }
  })

  void it('shutdown: an idle h2 session gets GOAWAY and does not hold the drain', async () => {
    const s = await start()
    const session = await open(s.proxyUrl, ca.pem)
    try {
      assert.equal((await h2(session, { ':method': 'GET', ':path': '/api/x', authorization: `Bearer ${token}` })).status, 200)
      const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()))
      const t0 = Date.now()
      await s.app.shutdown()
      await goaway
      assert.ok(Date.now() - t0 < 1200, `shutdown took ${Date.now() - t0} ms with an idle h2 session open`)
      assert.ok(s.logs().some((l) => l.event === 'shutdown.completed' && l.drained === true))
    } finally {
      session.destroy()
      await s.close()
    }
  })

  void it('shutdown: an h2 request still in flight at shutdown.timeout has its connection cut', async () => {
    const s = await start()
    const session = await open(s.proxyUrl, ca.pem)
    session.on('error', () => {})
    try {
      const hung = new Promise<string>((resolve) => {
        const req = session.request({ ':method': 'GET', ':path': '/api/hang', authorization: `Bearer ${token}` })
        req.on('response', () => resolve('response'))
        req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
        req.on('close', () => resolve('closed'))
      })
      await waitFor(() => hanging > 0, { what: 'the request at the app', timeoutMs: 5000 })
      const t0 = Date.now()
      await s.app.shutdown()
      const elapsed = Date.now() - t0
      assert.ok(elapsed >= 1400 && elapsed < 5000, `shutdown took ${elapsed} ms`)
      assert.ok(s.logs().some((l) => l.event === 'shutdown.timeout'))
      assert.ok(s.logs().some((l) => l.event === 'shutdown.completed' && l.drained === false))
      assert.notEqual(await hung, 'response')
    } finally {
      session.destroy()
      await s.close()
    }
  })
})

void describe('tls.http2: a certificate-bound token over h2 (RFC 8705)', () => {
  void it('reads the client certificate of the h2 connection: the bound certificate is admitted, another is refused', async () => {
    const idp = await startTestIssuer()
    const app = await startHttpServer((req, res) => {
      req.resume()
      req.on('end', () => res.end('ok'))
    })
    const ca = makeCa()
    const server = ca.issue('server', 'server')
    const alice = ca.issue('alice')
    const mallory = ca.issue('mallory')
    const s = await startSidecar(sidecarYaml({
      upstream: app.url,
      issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri }],
      extra: `tls:\n  certFile: ${server.crt}\n  keyFile: ${server.key}\n  clientCaFile: ${ca.crt}\n  http2: true\n`,
    }))
    try {
      const token = await idp.sign({ sub: 'alice', cnf: { 'x5t#S256': alice.x5t } }, { expiresIn: 600 })
      const call = async (who: TestCert): Promise<H2Response> => {
        const session = connect(s.proxyUrl, { ca: ca.pem, cert: readFileSync(who.crt), key: readFileSync(who.key) })
        try {
          return await h2(session, { ':method': 'GET', ':path': '/api/x', authorization: `Bearer ${token}` })
        } finally {
          session.close()
        }
      }
      assert.equal((await call(alice)).status, 200)
      const other = await call(mallory)
      assert.equal(other.status, 401)
      assert.equal((JSON.parse(other.body) as { reason: string }).reason, 'certificate_mismatch')
    } finally {
      await s.close()
      await idp.close()
      await app.close()
    }
  })
})
