/**
 * HTTP semantics the proxy must keep (issue #9 §8), over raw loopback sockets so every byte on
 * the wire is the test's own: `Expect: 100-continue`, `Connection: close` and HTTP/1.0 clients,
 * hop-by-hop headers in responses, and a request that arrives too slowly.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startHttpServer, startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestServer, TestUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

let issuer: TestIssuer
let upstream: TestUpstream
/** Answers with `Connection: keep-alive` and `Keep-Alive: timeout=99` of its own. */
let chatty: TestServer
let sidecar: TestSidecar
let chattySidecar: TestSidecar

before(async () => {
  issuer = await startTestIssuer()
  upstream = await startUpstream()
  chatty = await startHttpServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive', 'keep-alive': 'timeout=99', 'x-private': 'p', 'x-kept': 'k', 'x-listed': 'l' })
      res.end('ok')
    })
  })
  const issuers = [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }]
  sidecar = await startSidecar(sidecarYaml({ upstream: upstream.url, issuers, extra: 'requests:\n  timeout: 1s\n' }))
  chattySidecar = await startSidecar(sidecarYaml({ upstream: chatty.url, issuers }))
})

after(async () => {
  await Promise.all([sidecar?.close(), chattySidecar?.close()])
  await Promise.all([issuer?.close(), upstream?.close(), chatty?.close()])
})

/**
 * Writes `parts` (each after `gapMs`, the first at once) on one socket and collects everything
 * until the server closes or `waitMs` passes. `onData` may write more (the body after a 100).
 */
function exchange(url: string, parts: readonly string[], opts: { gapMs?: number; waitMs?: number; onData?: (text: string, write: (s: string) => void) => void } = {}): Promise<{ text: string; closedByServer: boolean }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    let text = ''
    let closedByServer = false
    const sock = connect(Number(port), hostname, () => {
      parts.forEach((p, i) => setTimeout(() => { if (!sock.destroyed) sock.write(p) }, i * (opts.gapMs ?? 0)))
    })
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => {
      text += d
      opts.onData?.(text, (s) => sock.write(s))
    })
    sock.on('end', () => { closedByServer = true })
    sock.on('close', () => resolve({ text, closedByServer }))
    sock.on('error', () => { /* a reset after the answer: close follows */ })
    setTimeout(() => sock.destroy(), opts.waitMs ?? 2_000)
  })
}

const statusLines = (text: string): string[] => text.split('\r\n').filter((l) => /^HTTP\/1\.[01] \d{3}/.test(l))

test('Expect: 100-continue on an admitted upload: 100 after admission, the body goes through, 200', async () => {
  const token = await issuer.sign({ sub: 'alice' })
  const body = 'x'.repeat(2 * 1024 * 1024)
  let sent = false
  const seen = upstream.requests()
  const r = await exchange(sidecar.proxyUrl, [`PUT /api/upload HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`], {
    // curl's behaviour: the body only after the interim response.
    onData: (text, write) => {
      if (!sent && text.includes('100 Continue\r\n\r\n')) {
        sent = true
        write(body)
      }
    },
    waitMs: 5_000,
  })
  assert.deepEqual(statusLines(r.text), ['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK'], r.text.slice(0, 400))
  assert.equal(upstream.requests(), seen + 1)
  assert.equal(upstream.last()!.bodyBytes, body.length)
  assert.equal(upstream.last()!.headers.expect, undefined, 'Expect is answered here, never forwarded')
})

test('Expect: 100-continue on a refused upload: 401 without 100 Continue, and the connection closes', async () => {
  const seen = upstream.requests()
  const r = await exchange(sidecar.proxyUrl, ['PUT /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n'])
  assert.deepEqual(statusLines(r.text), ['HTTP/1.1 401 Unauthorized'], r.text)
  assert.match(r.text, /\r\nconnection: close\r\n/i, 'the unsent body cannot be told apart from a next request: close')
  assert.ok(r.closedByServer)
  assert.equal(upstream.requests(), seen)
})

test("a client's Connection: close is honoured although the upstream says keep-alive; hop-by-hop response headers are not forwarded", async () => {
  const token = await issuer.sign({ sub: 'alice' })
  const r = await exchange(chattySidecar.proxyUrl, [`GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`])
  assert.deepEqual(statusLines(r.text), ['HTTP/1.1 200 OK'])
  const head = r.text.slice(0, r.text.indexOf('\r\n\r\n')).toLowerCase()
  assert.match(head, /\r\nconnection: close(\r\n|$)/)
  assert.doesNotMatch(head, /keep-alive/)
  assert.match(head, /\r\nx-kept: k/)
  assert.ok(r.closedByServer, 'the sidecar closed the connection as asked')
})

test('an HTTP/1.0 client without keep-alive gets Connection: close and a closed connection', async () => {
  const token = await issuer.sign({ sub: 'alice' })
  const r = await exchange(chattySidecar.proxyUrl, [`GET /api/x HTTP/1.0\r\nHost: a\r\nAuthorization: Bearer ${token}\r\n\r\n`])
  const head = r.text.slice(0, r.text.indexOf('\r\n\r\n')).toLowerCase()
  assert.match(head, /^http\/1\.1 200 ok/)
  assert.doesNotMatch(head, /keep-alive/)
  assert.ok(r.closedByServer)
})

test('headers the upstream lists in its Connection header are not forwarded either (RFC 9110 §7.6.1)', async () => {
  const listing = await startHttpServer((req, res) => {
    req.resume()
    res.writeHead(200, { connection: 'keep-alive, X-Listed', 'x-listed': 'secret-hop', 'x-kept': 'k' })
    res.end('ok')
  })
  const sc = await startSidecar(sidecarYaml({ upstream: listing.url, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    const token = await issuer.sign({ sub: 'alice' })
    const r = await exchange(sc.proxyUrl, [`GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`])
    const head = r.text.slice(0, r.text.indexOf('\r\n\r\n')).toLowerCase()
    assert.match(head, /x-kept: k/)
    assert.doesNotMatch(head, /x-listed/)
  } finally {
    await sc.close()
    await listing.close()
  }
})

test('a body trickled slower than requests.timeout gets 408 request_timeout, counted and logged; the connection closes', async () => {
  const token = await issuer.sign({ sub: 'alice' })
  const started = Date.now()
  // 2 bytes of 50, then one byte every 400 ms: never done within requests.timeout (1 s).
  const r = await exchange(sidecar.proxyUrl, [`POST /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nContent-Length: 50\r\n\r\nab`, 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], { gapMs: 400, waitMs: 6_000 })
  const elapsed = Date.now() - started
  assert.deepEqual(statusLines(r.text), ['HTTP/1.1 408 Request Timeout'], r.text)
  assert.match(r.text, /\{"error":"request_timeout","reason":"request_timeout"\}\n$/)
  assert.ok(r.closedByServer)
  assert.ok(elapsed < 5_000, `cut after ${elapsed} ms, not when the client gave up`)
  const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text()
  assert.match(metrics, /jwt_sidecar_requests_total\{route="_unmatched",outcome="denied",reason="request_timeout"\} 1/)
  assert.ok(sidecar.logs().some((l) => l.event === 'request.timeout'))
})

test('headers trickled slower than requests.timeout get 408 too', async () => {
  const r = await exchange(sidecar.proxyUrl, ['GET /api/x HTTP/1.1\r\n', 'Host: a\r\n', 'X-A: 1\r\n', 'X-B: 2\r\n', 'X-C: 3\r\n', 'X-D: 4\r\n'], { gapMs: 400, waitMs: 6_000 })
  assert.deepEqual(statusLines(r.text), ['HTTP/1.1 408 Request Timeout'], r.text)
})

test('an upstream that sends an interim 100 Continue before its answer: the client gets the 200, not 502', async () => {
  // Written by hand: Node's http server sends 100 only when asked; some servers do unasked.
  const raw = createServer((sock) => {
    sock.once('data', () => {
      sock.write('HTTP/1.1 100 Continue\r\n\r\n')
      setTimeout(() => sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'), 20)
    })
  })
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
  const port = (raw.address() as AddressInfo).port
  const sc = await startSidecar(sidecarYaml({ upstream: `http://127.0.0.1:${port}`, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    const token = await issuer.sign({ sub: 'alice' })
    const r = await exchange(sc.proxyUrl, [`POST /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`])
    assert.deepEqual(statusLines(r.text), ['HTTP/1.1 200 OK'], r.text)
    assert.ok(r.text.endsWith('\r\n\r\nok'), r.text)
  } finally {
    await sc.close()
    await new Promise<void>((r) => raw.close(() => r()))
  }
})
