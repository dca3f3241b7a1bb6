/**
 * The HTTP forward (src/proxy/forward.ts), which replaced reply-from's for issue #10: what it
 * must keep from reply-from and http-proxy (path prefix, Host, Location, repeated headers) and
 * what it must get right on its own (back-pressure, a client that leaves, an upstream that
 * dies mid-body, no silent retries), against real node:http upstreams and raw client sockets.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startHttpServer, startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer, TestServer } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'
import { responseHeaders } from '../../src/proxy/forward.ts'

let issuer: TestIssuer
let token: string
/** Each test installs its own behaviour here; the upstream server is shared. */
let behave: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end()
let app: TestServer
let sidecar: TestSidecar
/** The same upstream behind a path prefix: `upstream.url: <app>/base`. */
let prefixed: TestSidecar

before(async () => {
  issuer = await startTestIssuer()
  token = await issuer.sign({ sub: 'alice' })
  app = await startHttpServer((req, res) => behave(req, res))
  const issuers = [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }]
  sidecar = await startSidecar(sidecarYaml({ upstream: app.url, issuers, upstreamTimeout: '30s' }))
  prefixed = await startSidecar(sidecarYaml({ upstream: `${app.url}/base`, issuers }))
})

after(async () => {
  await Promise.all([sidecar?.close(), prefixed?.close()])
  await Promise.all([issuer?.close(), app?.close()])
})

/** One raw request on its own connection; resolves with everything the sidecar sent. */
function rawRequest(url: string, request: string, opts: { readonly pauseMs?: number } = {}): Promise<{ text: string; bytes: number; closedByServer: boolean; hash: string; ms: number }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let closedByServer = false
    const t0 = Date.now()
    const sock = connect(Number(port), hostname, () => sock.write(request, 'latin1'))
    if (opts.pauseMs !== undefined) {
      // A slow reader: the sidecar's writes back up and it must wait for 'drain'.
      sock.pause()
      setTimeout(() => sock.resume(), opts.pauseMs)
    }
    sock.on('data', (d: Buffer) => chunks.push(d))
    sock.on('end', () => { closedByServer = true })
    sock.on('error', () => { /* a reset: close follows */ })
    sock.on('close', () => {
      const all = Buffer.concat(chunks)
      const bodyAt = all.indexOf('\r\n\r\n') + 4
      resolve({ text: all.toString('latin1'), bytes: all.length, closedByServer, hash: createHash('sha256').update(all.subarray(bodyAt)).digest('hex'), ms: Date.now() - t0 })
    })
    setTimeout(() => sock.destroy(), 10_000)
  })
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: client.example\r\nAuthorization: Bearer ${token}\r\n${extra}Connection: close\r\n\r\n`
const head = (text: string): string => text.slice(0, text.indexOf('\r\n\r\n'))

test('an upstream URL with a path: the request goes under it, Host names the upstream, a Location under it loses the prefix', async () => {
  let seen: { url?: string | undefined; host?: string | undefined } = {}
  behave = (req, res) => {
    seen = { url: req.url, host: req.headers.host }
    res.writeHead(302, { location: '/base/next?x=1', 'x-absolute': 'y' })
    res.end()
  }
  const r = await rawRequest(prefixed.proxyUrl, get('/api/orders?page=2'))
  assert.deepEqual(seen, { url: '/base/api/orders?page=2', host: new URL(app.url).host })
  assert.match(head(r.text), /^HTTP\/1\.1 302 /)
  assert.match(head(r.text), /\r\nlocation: \/next\?x=1(\r\n|$)/)

  // An absolute Location is the app's business: passed on as it is.
  behave = (_req, res) => {
    res.writeHead(302, { location: 'https://elsewhere.example/base/x' })
    res.end()
  }
  const abs = await rawRequest(prefixed.proxyUrl, get('/api/orders'))
  assert.match(head(abs.text), /\r\nlocation: https:\/\/elsewhere\.example\/base\/x(\r\n|$)/)
})

test('the upstream gets the path the route matched, character for character (no re-encoding)', async () => {
  let seen = ''
  behave = (req, res) => {
    seen = req.url ?? ''
    res.end()
  }
  // Characters Node's parser accepts in a request target and the WHATWG URL parser would
  // percent-encode (reply-from sent `new URL(path).pathname`: `/api/a%22b%7Bc%7D`, a path no
  // route was matched against).
  const r = await rawRequest(sidecar.proxyUrl, get('/api/a"b{c}?q={x}'))
  assert.match(r.text, /^HTTP\/1\.1 200 /)
  assert.equal(seen, '/api/a"b{c}?q={x}')
})

test('repeated response headers stay separate (Set-Cookie), names are lower case, the upstream\'s Date is not doubled', async () => {
  behave = (_req, res) => {
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/'])
    res.setHeader('X-Mixed-Case', 'v')
    res.setHeader('Date', 'Tue, 01 Dec 2026 00:00:00 GMT')
    res.end('ok')
  }
  const r = await rawRequest(sidecar.proxyUrl, get('/api/x'))
  const h = head(r.text)
  assert.deepEqual(h.split('\r\n').filter((l) => l.startsWith('set-cookie:')), ['set-cookie: a=1; Path=/', 'set-cookie: b=2; Path=/'])
  assert.match(h, /\r\nx-mixed-case: v(\r\n|$)/)
  assert.deepEqual(h.split('\r\n').filter((l) => /^date:/i.test(l)), ['date: Tue, 01 Dec 2026 00:00:00 GMT'])
})

test('a GET the upstream answers 503 is sent once and the 503 passed on (no silent retry)', async () => {
  let calls = 0
  behave = (_req, res) => {
    calls++
    res.writeHead(503, { 'retry-after': '0' })
    res.end('busy')
  }
  const r = await rawRequest(sidecar.proxyUrl, get('/api/x'))
  assert.match(head(r.text), /^HTTP\/1\.1 503 /)
  await new Promise((res) => setTimeout(res, 300))
  assert.equal(calls, 1)
})

test('a large body to a slow reader arrives whole (back-pressure: the upstream read waits for drain)', async () => {
  const body = Buffer.alloc(16 * 1024 * 1024)
  for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i)
  behave = (_req, res) => {
    res.writeHead(200, { 'content-length': String(body.length) })
    res.end(body)
  }
  const r = await rawRequest(sidecar.proxyUrl, get('/api/big'), { pauseMs: 300 })
  assert.match(head(r.text), /^HTTP\/1\.1 200 /)
  assert.equal(r.hash, createHash('sha256').update(body).digest('hex'))
})

test('a client that leaves mid-body aborts the upstream request (it does not run until upstream.timeout)', async () => {
  let upstreamClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  behave = (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: 1\n\n')
    const tick = setInterval(() => res.write('data: more\n\n'), 50)
    req.socket.on('close', () => {
      clearInterval(tick)
      upstreamClosed()
    })
  }
  const { hostname, port } = new URL(sidecar.proxyUrl)
  const sock = connect(Number(port), hostname, () => sock.write(get('/api/stream').replace('Connection: close\r\n', '')))
  await new Promise<void>((resolve) => sock.once('data', () => resolve()))
  const t0 = Date.now()
  sock.destroy()
  // upstream.timeout is 30 s here: only the abort can end it this soon.
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('upstream connection still open 3 s after the client left')), 3_000))])
  assert.ok(Date.now() - t0 < 3_000)
})

test('a client that leaves before the answer: the upstream request is aborted once its answer starts', async () => {
  let upstreamClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  behave = (req, res) => {
    let tick: NodeJS.Timeout | undefined
    const answer = setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      tick = setInterval(() => res.write('data: more\n\n'), 50)
    }, 300)
    req.socket.on('close', () => {
      clearTimeout(answer)
      clearInterval(tick)
      upstreamClosed()
    })
  }
  const { hostname, port } = new URL(sidecar.proxyUrl)
  const sock = connect(Number(port), hostname, () => {
    sock.write(get('/api/stream').replace('Connection: close\r\n', ''))
    setTimeout(() => sock.destroy(), 50)
  })
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('upstream connection still open 3 s after the client left')), 3_000))])
})

test('an upstream that dies mid-body: the client connection is cut, never a short body presented as whole', async () => {
  behave = (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' })
    res.write('x'.repeat(10))
    setTimeout(() => res.socket?.destroy(), 50)
  }
  const r = await rawRequest(sidecar.proxyUrl, get('/api/x').replace('Connection: close\r\n', ''))
  assert.match(head(r.text), /^HTTP\/1\.1 200 /)
  assert.match(head(r.text), /\r\ncontent-length: 1000(\r\n|$)/)
  // The connection ended at once although it was keep-alive and 990 bytes are missing (an
  // ended response would leave the client waiting for them until its own timeout).
  assert.equal(r.bytes - (r.text.indexOf('\r\n\r\n') + 4), 10)
  assert.ok(r.ms < 3_000, `connection open ${r.ms} ms`)
  // Counted as an upstream failure and logged; nothing is left in flight.
  const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text()
  assert.match(metrics, /^jwt_sidecar_upstream_errors_total\{kind="reset"\} [1-9]/m)
  assert.match(metrics, /^jwt_sidecar_inflight_requests 0$/m)
  assert.ok(sidecar.logs().some((l) => l.event === 'upstream.error' && l.truncated === true))
})

test('an upstream that answers before reading the upload: the client gets connection: close', async () => {
  behave = (_req, res) => {
    res.writeHead(413, { 'content-type': 'text/plain' })
    res.end('too large')
  }
  const upload = `POST /api/upload HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nContent-Length: 10000000\r\n\r\n${'y'.repeat(1000)}`
  const r = await rawRequest(sidecar.proxyUrl, upload)
  assert.match(head(r.text), /^HTTP\/1\.1 413 /)
  assert.match(head(r.text), /\r\nconnection: close(\r\n|$)/i)
  assert.ok(r.closedByServer)
})

test('responseHeaders: hop-by-hop and Connection-listed names dropped (several Connection lines), __proto__ dropped', () => {
  const raw = ['Connection', 'keep-alive, X-One', 'X-One', '1', 'connection', 'x-two', 'X-Two', '2', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', '__proto__', 'p', 'X-Kept', 'k', 'X-Kept', 'k2'].map((s) => Buffer.from(s, 'latin1'))
  const out = responseHeaders(raw, '')
  assert.deepEqual({ ...out }, { 'x-kept': ['k', 'k2'] })
  assert.equal(Object.getPrototypeOf(out), Object.prototype)
})
