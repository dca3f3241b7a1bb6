/**
 * What the proxy does with bytes: streamed bodies, websockets, and upstream failures.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'
import { sidecarYaml, startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

let issuer: TestIssuer
let upstream: TestUpstream
let sidecar: TestSidecar

before(async () => {
  issuer = await startTestIssuer()
  upstream = await startUpstream()
  sidecar = await startSidecar(sidecarYaml({ upstream: upstream.url, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
})
after(async () => {
  await sidecar?.close()
  await Promise.all([issuer?.close(), upstream?.close()])
})

test('a 1 MiB POST body is streamed through intact', async () => {
  const token = await issuer.sign({ sub: 'alice' })
  const body = randomBytes(1024 * 1024)
  // 16 chunks of 64 KiB with no Content-Length: the proxy must stream (chunked), not buffer.
  const chunks = Array.from({ length: 16 }, (_, i) => body.subarray(i * 65536, (i + 1) * 65536))
  const res = await request(`${sidecar.proxyUrl}/api/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: Readable.from(chunks),
  })
  assert.equal(res.statusCode, 200)
  const echoed = (await res.body.json()) as { bodyBytes: number; bodySha256: string; headers: Record<string, string> }
  assert.equal(echoed.bodyBytes, body.length)
  assert.equal(echoed.bodySha256, createHash('sha256').update(body).digest('hex'))
})

test('a rejected POST never reaches the upstream, whatever its body', async () => {
  const seen = upstream.requests()
  const res = await request(`${sidecar.proxyUrl}/api/upload`, { method: 'POST', body: randomBytes(256 * 1024) })
  assert.equal(res.statusCode, 401)
  await res.body.dump()
  assert.equal(upstream.requests(), seen)
})

test('websockets: a valid token upgrades and carries identity headers; without a token the upgrade is refused', async () => {
  const wsServer = createServer()
  const wss = new WebSocketServer({ server: wsServer })
  let upgrades = 0
  wss.on('connection', (socket, req) => {
    upgrades++
    socket.send(JSON.stringify({
      subject: req.headers['x-auth-subject'] ?? null, spoofed: req.headers['x-auth-role'] ?? null, hop: req.headers['x-private-hop'] ?? null,
      underscored: Object.keys(req.headers).filter((h) => h.includes('_')),
    }))
    socket.on('message', (data: Buffer) => socket.send(`echo:${data.toString()}`))
  })
  await new Promise<void>((r) => wsServer.listen(0, '127.0.0.1', r))
  const wsUpstream = `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}`
  const sc = await startSidecar(sidecarYaml({ upstream: wsUpstream, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    const wsUrl = sc.proxyUrl.replace('http:', 'ws:') + '/api/socket'
    const token = await issuer.sign({ sub: 'alice' })
    const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}`, 'x-auth-role': 'admin' } })
    const messages: string[] = []
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (d: Buffer) => {
        messages.push(d.toString())
        if (messages.length === 1) ws.send('ping')
        if (messages.length === 2) resolve()
      })
      ws.on('error', reject)
    })
    ws.close()
    assert.deepEqual(JSON.parse(messages[0]!), { subject: 'alice', spoofed: null, hop: null, underscored: [] })
    assert.equal(messages[1], 'echo:ping')

    const refused = new WebSocket(wsUrl)
    const status = await new Promise<number>((resolve, reject) => {
      refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      refused.on('open', () => reject(new Error('upgrade without a token must be refused')))
      refused.on('error', () => resolve(-1))
    })
    assert.equal(status, 401)
    assert.equal(upgrades, 1, 'the refused upgrade never reached the upstream')

    // A header named in Connection is hop-by-hop on the websocket path too (RFC 9110 §7.6.1).
    // Written by hand: the ws client sets Connection itself and would overwrite ours.
    const { port } = new URL(sc.proxyUrl)
    const first = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(port), '127.0.0.1', () => {
        sock.write([
          'GET /api/socket HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade, X-Private-Hop',
          'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
          // Issue #9 §1: the `_` spellings of identity headers are stripped on the upgrade too.
          `Authorization: Bearer ${token}`, 'X-Private-Hop: secret', 'X_Auth_Role: admin', 'X-Auth_Subject: evil', '', '',
        ].join('\r\n'))
      })
      let buf = Buffer.alloc(0)
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d])
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const frame = buf.subarray(end + 4)
        // One unmasked text frame from the server: 0x81, a 7-bit length, the payload.
        if (frame.length >= 2 && frame.length >= 2 + (frame[1]! & 0x7f)) {
          resolve(frame.subarray(2, 2 + (frame[1]! & 0x7f)).toString())
          sock.destroy()
        }
      })
      sock.on('error', reject)
    })
    assert.deepEqual(JSON.parse(first), { subject: 'alice', spoofed: null, hop: null, underscored: [] })

    // Issue #9 §6: a fragment in the upgrade's target is refused before any route is matched.
    // By hand: the ws client refuses a URL with a fragment.
    const fragmentHead = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(port), '127.0.0.1', () => {
        sock.write([
          'GET /api/socket#x HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
          'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, `Authorization: Bearer ${token}`, '', '',
        ].join('\r\n'))
      })
      let text = ''
      sock.setEncoding('latin1')
      sock.on('data', (d: string) => {
        text += d
        if (text.includes('\r\n\r\n')) {
          resolve(text.slice(0, text.indexOf('\r\n')))
          sock.destroy()
        }
      })
      sock.on('error', reject)
    })
    assert.equal(fragmentHead, 'HTTP/1.1 400 Bad Request')
    assert.equal(upgrades, 2, 'the refused upgrade never reached the upstream')
  } finally {
    await sc.close()
    wss.close()
    wsServer.closeAllConnections()
    await new Promise<void>((r) => wsServer.close(() => r()))
  }
})

test('upstream down: 502 JSON, logged and counted', async () => {
  const dead = createServer()
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r))
  const port = (dead.address() as AddressInfo).port
  await new Promise<void>((r) => dead.close(() => r()))
  const sc = await startSidecar(sidecarYaml({ upstream: `http://127.0.0.1:${port}`, issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    const res = await request(`${sc.proxyUrl}/api/x`, { headers: { authorization: `Bearer ${await issuer.sign({})}` } })
    assert.equal(res.statusCode, 502)
    assert.deepEqual(await res.body.json(), { error: 'bad_gateway', reason: 'upstream_unavailable' })
    const metrics = await (await request(`${sc.adminUrl}/metrics`)).body.text()
    assert.match(metrics, /^jwt_sidecar_upstream_errors_total\{kind="connect"\} 1$/m)
    assert.match(metrics, /^jwt_sidecar_requests_total\{route="default",outcome="error",reason="upstream_unavailable"\} 1$/m)
    assert.ok(sc.logs().some((l) => l.event === 'upstream.error' && l.kind === 'connect'))
  } finally {
    await sc.close()
  }
})

test('upstream timeout: 504 JSON, counted as kind=timeout', async () => {
  const slow = createServer(() => { /* never answers */ })
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`
  const sc = await startSidecar(sidecarYaml({ upstream: url, upstreamTimeout: '300ms', issuers: [{ name: 'corp', issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }))
  try {
    const res = await request(`${sc.proxyUrl}/api/x`, { headers: { authorization: `Bearer ${await issuer.sign({})}` } })
    assert.equal(res.statusCode, 504)
    assert.deepEqual(await res.body.json(), { error: 'gateway_timeout', reason: 'upstream_timeout' })
    const metrics = await (await request(`${sc.adminUrl}/metrics`)).body.text()
    assert.match(metrics, /^jwt_sidecar_upstream_errors_total\{kind="timeout"\} 1$/m)
  } finally {
    await sc.close()
    slow.closeAllConnections()
    await new Promise<void>((r) => slow.close(() => r()))
  }
})
