/**
 * The upstream connection pool (src/proxy/upstream.ts), against raw loopback servers that
 * control every byte: issue #9 §7 (a body the app never reads, smuggled in as a request of
 * its own on a reused connection) and §8 (an unsolicited interim 100 Continue answered 502).
 */
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { channel } from 'node:diagnostics_channel'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { createServer as createTlsServer } from 'node:tls'
import type { TlsOptions } from 'node:tls'
import { Pool } from 'undici'
import type { Dispatcher } from 'undici'
import type * as undici from 'undici'
import { MAX_INTERIM_BYTES, carriesBody, createUpstreamDispatcher, dropUnsolicitedContinue, interimLength } from '../../src/proxy/upstream.ts'
import { waitFor } from '../../src/wait-for.ts'

interface RawRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
}

interface RawUpstream {
  readonly url: string
  /** Connections accepted so far. */
  connections(): number
  readonly requests: RawRequest[]
  close(): Promise<void>
}

/** What the upstream writes for a request: a string per write, with a pause between writes. */
type Script = (req: RawRequest) => readonly (string | Buffer)[]

const ok = (req: RawRequest): string[] => {
  const body = `ok ${req.method} ${req.path}`
  return [`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`]
}

/**
 * A keep-alive HTTP/1.1 server written against the socket, the way legacy apps are (Python's
 * http.server with protocol_version HTTP/1.1): it parses a request head, waits until the
 * body has arrived (an app busy with its work), answers, and then parses whatever follows in
 * its buffer as the next request. `drains: false` never reads a body, so the body's bytes
 * are what follows. It honours `Connection: close` (RFC 9112 §9.6: nothing after that request
 * is processed). Every write of the script goes out as its own TCP segment.
 */
async function startRawUpstream(t: TestContext, { drains, script = ok, tls }: { drains: boolean; script?: Script; tls?: TlsOptions }): Promise<RawUpstream> {
  let connections = 0
  const requests: RawRequest[] = []
  const sockets = new Set<Socket>()
  const onConnection = (socket: Socket): void => {
    connections++
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let busy = false
    let done = false
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      void pump()
    })
    async function pump(): Promise<void> {
      if (busy || done) return
      busy = true
      try {
        for (;;) {
          const end = buf.indexOf('\r\n\r\n')
          if (end === -1) return
          const [line = '', ...fields] = buf.subarray(0, end).toString('latin1').split('\r\n')
          const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(line)
          if (m === null) {
            done = true
            socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
            return
          }
          const headers: Record<string, string> = {}
          for (const f of fields) {
            const colon = f.indexOf(':')
            headers[f.slice(0, colon).toLowerCase()] = f.slice(colon + 1).trim()
          }
          const bodyStart = end + 4
          let bodyEnd = bodyStart + Number(headers['content-length'] ?? 0)
          if (headers['transfer-encoding'] === 'chunked') {
            const last = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2)
            if (last === -1) return
            bodyEnd = last + 7
          }
          if (buf.length < bodyEnd) return
          buf = buf.subarray(drains ? bodyEnd : bodyStart)
          const req: RawRequest = { method: m[1]!, path: m[2]!, headers }
          requests.push(req)
          for (const [i, chunk] of script(req).entries()) {
            if (i > 0) await delay(15)
            socket.write(chunk)
          }
          if (/\bclose\b/i.test(headers.connection ?? '')) {
            done = true
            socket.end()
            return
          }
        }
      } finally {
        busy = false
      }
    }
  }
  const server = tls === undefined ? createServer(onConnection) : createTlsServer(tls, onConnection)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const upstream: RawUpstream = {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    requests,
    async close() {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close')
    },
  }
  t.after(() => upstream.close())
  return upstream
}

/**
 * One connection at a time, so that counting connections counts reuse: with more, undici's
 * Pool opens a second connection for back-to-back requests (a client is reusable only after
 * a setImmediate, client-h1.js onMessageComplete and GHSA-35p6-xmwp-9g52's idle check).
 */
function dispatcherFor(t: TestContext, upstream: RawUpstream, drainsBodies: boolean): Dispatcher {
  const d = createUpstreamDispatcher({ url: upstream.url, drainsBodies, connections: 1 })
  t.after(() => d.destroy())
  return d
}

async function fetchText(d: Dispatcher, opts: Partial<Dispatcher.RequestOptions> = {}): Promise<{ status: number; body: string }> {
  const res = await d.request({ path: '/', method: 'GET', ...opts })
  return { status: res.statusCode, body: await res.body.text() }
}

/** A body that is itself a complete request, with identity headers and no token. */
const SMUGGLED = 'GET /admin/delete-all HTTP/1.1\r\nHost: app\r\nX-Auth-Subject: admin\r\nX-Auth-Roles: admin\r\n\r\n'
const paths = (u: RawUpstream): string[] => u.requests.map((r) => `${r.method} ${r.path}`)

describe('issue #9 §7: a connection that carried a body is not reused', () => {
  it('drainsBodies false: a body the upstream never reads is never executed as a request, and the next request opens a new connection', async (t) => {
    const upstream = await startRawUpstream(t, { drains: false })
    const d = dispatcherFor(t, upstream, false)
    const post = await fetchText(d, { method: 'POST', path: '/upload', body: SMUGGLED, headers: { 'content-type': 'text/plain' } })
    assert.deepEqual(post, { status: 200, body: 'ok POST /upload' })
    assert.equal(upstream.requests[0]!.headers.connection, 'close')
    assert.deepEqual(await fetchText(d, { path: '/next' }), { status: 200, body: 'ok GET /next' })
    assert.equal(upstream.connections(), 2)
    // The server stopped reading the first connection at Connection: close; give a parse of
    // the leftover bytes every chance to show up.
    await delay(50)
    assert.deepEqual(paths(upstream), ['POST /upload', 'GET /next'])
  })

  it('the bug it pins: reusing the connection (drainsBodies true against an upstream that does not drain) executes the smuggled request', async (t) => {
    const upstream = await startRawUpstream(t, { drains: false })
    const d = dispatcherFor(t, upstream, true)
    assert.equal((await fetchText(d, { method: 'POST', path: '/upload', body: SMUGGLED })).status, 200)
    await waitFor(() => upstream.requests.length === 2, { what: 'the smuggled request reached the app', timeoutMs: 1_000, intervalMs: 5 })
    assert.deepEqual(paths(upstream), ['POST /upload', 'GET /admin/delete-all'])
    assert.equal(upstream.requests[1]!.headers['x-auth-subject'], 'admin')
  })

  it('drainsBodies true keeps reusing the connection after a body (an upstream that reads its bodies)', async (t) => {
    const upstream = await startRawUpstream(t, { drains: true })
    const d = dispatcherFor(t, upstream, true)
    assert.equal((await fetchText(d, { method: 'POST', path: '/upload', body: SMUGGLED })).status, 200)
    assert.equal((await fetchText(d, { method: 'PUT', path: '/upload', body: Buffer.from('data') })).status, 200)
    assert.equal((await fetchText(d, { path: '/next' })).status, 200)
    assert.equal(upstream.requests[0]!.headers.connection, 'keep-alive')
    assert.deepEqual(paths(upstream), ['POST /upload', 'PUT /upload', 'GET /next'])
    assert.equal(upstream.connections(), 1)
  })

  it('drainsBodies false against the same draining upstream: one connection per request with a body', async (t) => {
    const upstream = await startRawUpstream(t, { drains: true })
    const d = dispatcherFor(t, upstream, false)
    assert.equal((await fetchText(d, { method: 'POST', path: '/upload', body: SMUGGLED })).status, 200)
    assert.equal((await fetchText(d, { method: 'PUT', path: '/upload', body: Buffer.from('data') })).status, 200)
    assert.equal((await fetchText(d, { path: '/next' })).status, 200)
    assert.equal(upstream.connections(), 3)
  })

  it('a streamed body without Content-Length (chunked) closes its connection too', async (t) => {
    const upstream = await startRawUpstream(t, { drains: false })
    const d = dispatcherFor(t, upstream, false)
    const post = await fetchText(d, { method: 'POST', path: '/stream', body: Readable.from([Buffer.from(SMUGGLED)]) })
    assert.equal(post.status, 200)
    assert.equal(upstream.requests[0]!.headers['transfer-encoding'], 'chunked')
    assert.equal((await fetchText(d, { path: '/next' })).status, 200)
    assert.equal(upstream.connections(), 2)
    await delay(50)
    assert.deepEqual(paths(upstream), ['POST /stream', 'GET /next'])
  })

  it('a streamed body with Content-Length: the same', async (t) => {
    const upstream = await startRawUpstream(t, { drains: false })
    const d = dispatcherFor(t, upstream, false)
    const body = Readable.from([Buffer.from(SMUGGLED)])
    assert.equal((await fetchText(d, { method: 'POST', path: '/stream', body, headers: { 'content-length': String(SMUGGLED.length) } })).status, 200)
    assert.equal((await fetchText(d, { path: '/next' })).status, 200)
    assert.equal(upstream.connections(), 2)
    assert.deepEqual(paths(upstream), ['POST /stream', 'GET /next'])
  })

  it('requests without a body keep reusing one connection (GET, DELETE, an empty POST, a stream with Content-Length: 0)', async (t) => {
    const upstream = await startRawUpstream(t, { drains: false })
    const d = dispatcherFor(t, upstream, false)
    for (let i = 0; i < 5; i++) assert.deepEqual(await fetchText(d, { path: `/get/${i}` }), { status: 200, body: `ok GET /get/${i}` })
    assert.equal((await fetchText(d, { method: 'DELETE', path: '/item' })).status, 200)
    assert.equal((await fetchText(d, { method: 'POST', path: '/empty', body: '' })).status, 200)
    assert.equal((await fetchText(d, { method: 'POST', path: '/empty-stream', body: Readable.from([]), headers: { 'content-length': '0' } })).status, 200)
    assert.equal(upstream.connections(), 1)
    assert.ok(upstream.requests.every((r) => r.headers.connection === 'keep-alive'))
  })
})

describe('carriesBody', () => {
  it('counts the requests that put body bytes on the wire', () => {
    const stream = (): Readable => Readable.from([])
    assert.equal(carriesBody(undefined, {}), false)
    assert.equal(carriesBody(null, {}), false)
    assert.equal(carriesBody('', {}), false)
    assert.equal(carriesBody(Buffer.alloc(0), {}), false)
    assert.equal(carriesBody(new Uint8Array(0), {}), false)
    assert.equal(carriesBody('x', {}), true)
    assert.equal(carriesBody(Buffer.from('x'), {}), true)
    assert.equal(carriesBody(stream(), {}), true)
    assert.equal(carriesBody(stream(), null), true)
    assert.equal(carriesBody(stream(), { 'content-length': '5' }), true)
    assert.equal(carriesBody(stream(), { 'content-length': '0' }), false)
    assert.equal(carriesBody(stream(), { 'content-length': 0 } as unknown as Record<string, string>), false)
    // Headers we do not look into: the stream counts.
    assert.equal(carriesBody(stream(), ['content-length', '0']), true)
    assert.equal(carriesBody(stream(), new Map([['content-length', '0']])), true)
  })
})

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'
const final = (body: string): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`

describe('issue #9 §8: an unsolicited 100 Continue from the upstream is dropped', () => {
  const cases: readonly { name: string; writes: readonly string[]; body?: string }[] = [
    { name: '100 and the final response in one segment', writes: [CONTINUE + final('done')] },
    { name: '100 and the final response in separate segments', writes: [CONTINUE, final('done')] },
    { name: '100 split across segments', writes: ['HTTP/1', '.1 10', '0 Continue\r', '\n\r', '\n' + final('done')] },
    { name: 'several 100s in a row', writes: [CONTINUE + CONTINUE, 'HTTP/1.1 100 Continue\r\n', '\r\n' + CONTINUE + final('done')] },
    { name: '100 with header fields', writes: ['HTTP/1.1 100 Continue\r\nX-Trace: abc\r\nServer: legacy/1.0\r\n\r\n', final('done')] },
    { name: 'HTTP/1.0 100', writes: ['HTTP/1.0 100 Continue\r\n\r\n' + final('done')] },
    { name: '100 without a reason phrase', writes: ['HTTP/1.1 100\r\n\r\n' + final('done')] },
    { name: '103 Early Hints, then 100, then the final response', writes: ['HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' + CONTINUE, final('done')] },
    { name: '100, then 102 Processing, then the final response', writes: [CONTINUE + 'HTTP/1.1 102 Processing\r\n\r\n', final('done')] },
    { name: '102 and 103 alone (undici skips these by itself)', writes: ['HTTP/1.1 102 Processing\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\n\r\n' + final('done')] },
    { name: 'a body that contains the 100 text arrives byte-exact', writes: [CONTINUE + final(CONTINUE + 'tail')], body: CONTINUE + 'tail' },
    { name: 'a body that starts with the 100 text, in a segment of its own', writes: [`HTTP/1.1 200 OK\r\nContent-Length: ${CONTINUE.length * 2}\r\n\r\n`, CONTINUE, CONTINUE], body: CONTINUE + CONTINUE },
    {
      name: 'a chunked body whose chunks hold the 100 text',
      writes: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', `${CONTINUE.length.toString(16)}\r\n${CONTINUE}\r\n`, `${CONTINUE.length.toString(16)}\r\n${CONTINUE}\r\n0\r\n\r\n`],
      body: CONTINUE + CONTINUE,
    },
  ]
  for (const c of cases) {
    it(c.name, async (t) => {
      let n = 0
      const upstream = await startRawUpstream(t, { drains: true, script: (req) => (n++ === 0 ? c.writes : ok(req)) })
      const d = dispatcherFor(t, upstream, false)
      assert.deepEqual(await fetchText(d, { path: '/first' }), { status: 200, body: c.body ?? 'done' })
      // The connection is still in step: the next request is answered on it.
      assert.deepEqual(await fetchText(d, { path: '/second' }), { status: 200, body: 'ok GET /second' })
      assert.equal(upstream.connections(), 1)
    })
  }

  it('100 then a 1 MiB body read slowly (undici pauses its parser and unshifts what it has not parsed): byte-exact', async (t) => {
    const big = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < big.length; i += CONTINUE.length) big.write(CONTINUE, i, 'latin1')
    let n = 0
    const upstream = await startRawUpstream(t, {
      drains: true,
      script: (req) => (n++ === 0 ? [Buffer.from(CONTINUE + `HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`), big] : ok(req)),
    })
    const d = dispatcherFor(t, upstream, false)
    const res = await d.request({ path: '/big', method: 'GET', highWaterMark: 1024 })
    assert.equal(res.statusCode, 200)
    const parts: Buffer[] = []
    for await (const part of res.body) {
      parts.push(part as Buffer)
      if (parts.length % 64 === 0) await delay(1)
    }
    assert.ok(Buffer.concat(parts).equals(big))
    assert.deepEqual(await fetchText(d, { path: '/second' }), { status: 200, body: 'ok GET /second' })
    assert.equal(upstream.connections(), 1)
  })

  it('an https upstream: the same filter on a TLS socket (and its certificate is verified)', async (t) => {
    if (spawnSync('openssl', ['version']).error !== undefined) {
      t.skip('openssl CLI not on PATH: cannot generate a test certificate')
      return
    }
    const dir = await mkdtemp(join(tmpdir(), 'upstream-tls-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
      '-days', '1', '-subj', '/CN=upstream', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'pipe' })
    const [key, cert] = await Promise.all([readFile(join(dir, 'key.pem')), readFile(join(dir, 'cert.pem'))])
    let n = 0
    const upstream = await startRawUpstream(t, { drains: true, tls: { key, cert }, script: (req) => (n++ === 0 ? ['HTTP/1.1 10', '0 Continue\r\n\r\n', final('done')] : ok(req)) })
    const d = createUpstreamDispatcher({ url: upstream.url, drainsBodies: false, connections: 1, tls: { ca: cert } })
    t.after(() => d.destroy())
    assert.deepEqual(await fetchText(d, { path: '/first' }), { status: 200, body: 'done' })
    assert.deepEqual(await fetchText(d, { path: '/second' }), { status: 200, body: 'ok GET /second' })
    assert.equal(upstream.connections(), 1)
    const untrusting = createUpstreamDispatcher({ url: upstream.url, drainsBodies: false })
    t.after(() => untrusting.destroy())
    await assert.rejects(fetchText(untrusting), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
  })

  it('the bug it pins: a plain undici Pool fails on the same 100 (socket destroyed: "bad response")', async (t) => {
    const upstream = await startRawUpstream(t, { drains: true, script: () => [CONTINUE + final('done')] })
    const pool = new Pool(upstream.url)
    t.after(() => pool.destroy())
    await assert.rejects(fetchText(pool), { code: 'UND_ERR_SOCKET', message: 'bad response' })
  })

  it('a 100 the filter cannot vouch for goes to llhttp unchanged and still fails (bare LF line ends)', async (t) => {
    const upstream = await startRawUpstream(t, { drains: true, script: () => ['HTTP/1.1 100 Continue\n\n' + final('done')] })
    const d = dispatcherFor(t, upstream, false)
    await assert.rejects(fetchText(d))
  })

  it(`a 1xx header section longer than ${MAX_INTERIM_BYTES} bytes is not buffered further and fails`, async (t) => {
    const big = 'HTTP/1.1 100 Continue\r\n' + `X-Pad: ${'a'.repeat(MAX_INTERIM_BYTES)}\r\n`
    const upstream = await startRawUpstream(t, { drains: true, script: () => [big, '\r\n' + final('done')] })
    const d = dispatcherFor(t, upstream, false)
    await assert.rejects(fetchText(d))
  })

  it('a stream of 100s that never ends is cut by the headers timeout', async (t) => {
    const upstream = await startRawUpstream(t, { drains: true, script: () => Array.from({ length: 40 }, () => CONTINUE) })
    const d = dispatcherFor(t, upstream, false)
    await assert.rejects(fetchText(d, { headersTimeout: 200 }), { code: 'UND_ERR_HEADERS_TIMEOUT' })
  })
})

describe('interimLength', () => {
  it('measures a complete 1xx, refuses what is not one, asks for more on a prefix', () => {
    const len = (s: string): number => interimLength(Buffer.from(s, 'latin1'))
    assert.equal(len(CONTINUE + 'HTTP/1.1 200 OK\r\n'), CONTINUE.length)
    assert.equal(len('HTTP/1.1 100\r\n\r\n'), 16)
    assert.equal(len('HTTP/1.0 100 Continue\r\nA: b\r\n\r\n'), 31)
    assert.equal(len('HTTP/1.1 103 Early Hints\r\n\r\n'), 28)
    for (let i = 0; i < CONTINUE.length; i++) assert.equal(len(CONTINUE.slice(0, i)), -1, `prefix ${i}`)
    assert.equal(len('HTTP/1.1 200 OK\r\n\r\n'), 0)
    assert.equal(len('HTTP/1.1 101 Switching Protocols\r\n\r\n'), 0)
    assert.equal(len('HTTP/1.1 1000 Continue\r\n\r\n'), 0)
    assert.equal(len('HTTP/2.0 100 Continue\r\n\r\n'), 0)
    assert.equal(len('HTTP/1.2 100 Continue\r\n\r\n'), 0)
    assert.equal(len('http/1.1 100 Continue\r\n\r\n'), 0)
    assert.equal(len(' HTTP/1.1 100 Continue\r\n\r\n'), 0)
    assert.equal(len('HTTP/1.1 100 Continue\n\n'), 0)
    assert.equal(len('HTTP/1.1 100 Continue\r\nA: b\n\r\n\r\n'), 0)
    assert.equal(len('HTTP/1.1 100 Cont\rinue\r\n\r\n'), 0)
    assert.equal(len('garbage'), 0)
    assert.equal(len('HTTP/1.1 100 Continue\r\n' + 'A'.repeat(MAX_INTERIM_BYTES)), 0)
  })
})

describe('dropUnsolicitedContinue (the socket filter, driven through a PassThrough)', () => {
  const sendHeaders = channel('undici:client:sendHeaders')
  /** What undici would read from `chunks` after one request was written. */
  function through(chunks: readonly Buffer[], armed = true): Buffer {
    const socket = new PassThrough()
    dropUnsolicitedContinue(socket)
    if (armed) sendHeaders.publish({ socket })
    const out: Buffer[] = []
    for (const c of chunks) {
      socket.write(c)
      for (let b = socket.read() as Buffer | null; b !== null; b = socket.read() as Buffer | null) out.push(b)
    }
    return Buffer.concat(out)
  }

  const early = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'
  const wire = Buffer.from(early + CONTINUE + 'HTTP/1.0 100 Continue\r\nX: y\r\n\r\n' + final(CONTINUE + early), 'latin1')
  const expected = Buffer.from(early + final(CONTINUE + early), 'latin1')

  it('removes exactly the 100s at every split of the bytes into two and three segments', () => {
    for (let i = 0; i <= wire.length; i++) {
      assert.deepEqual(through([wire.subarray(0, i), wire.subarray(i)]), expected, `split at ${i}`)
      for (let j = i; j <= wire.length; j += 7) {
        assert.deepEqual(through([wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)]), expected, `split at ${i}, ${j}`)
      }
    }
  })

  it('byte by byte', () => {
    assert.deepEqual(through([...wire].map((b) => Buffer.from([b]))), expected)
  })

  it('leaves the bytes alone until a request is written on the socket', () => {
    assert.deepEqual(through([wire], false), wire)
  })

  it('looks at the next response again only after the next request', () => {
    const socket = new PassThrough()
    dropUnsolicitedContinue(socket)
    sendHeaders.publish({ socket })
    socket.write(CONTINUE + final('a'))
    assert.equal((socket.read() as Buffer).toString(), final('a'))
    socket.write(CONTINUE)
    assert.equal((socket.read() as Buffer).toString(), CONTINUE, 'no request written: not ours to drop')
    sendHeaders.publish({ socket })
    socket.write(CONTINUE + final('b'))
    assert.equal((socket.read() as Buffer).toString(), final('b'))
  })
})

describe('createUpstreamDispatcher', () => {
  it('is an undici instance for the undici that reply-from loads (its isUndiciInstance check)', async (t) => {
    const fromReplyFrom = createRequire(createRequire(import.meta.url).resolve('@fastify/reply-from'))('undici') as typeof undici
    for (const drainsBodies of [false, true]) {
      const d = createUpstreamDispatcher({ url: 'http://127.0.0.1:1/base', drainsBodies })
      t.after(() => d.destroy())
      assert.ok(d instanceof fromReplyFrom.Dispatcher)
      assert.ok(d instanceof fromReplyFrom.Pool)
      assert.ok(!(d instanceof fromReplyFrom.BalancedPool))
    }
  })

  it('refuses an upstream URL that reply-from would not send through it (unix+http:), or no URL', () => {
    assert.throws(() => createUpstreamDispatcher({ url: 'unix+http://%2Ftmp%2Fapp.sock/', drainsBodies: false }), /must be http: or https:/)
    assert.throws(() => createUpstreamDispatcher({ url: 'not a url', drainsBodies: false }), { code: 'ERR_INVALID_URL' })
  })

  it('close() waits for the request in flight, then refuses new ones', async (t) => {
    const upstream = await startRawUpstream(t, { drains: true, script: (req) => ['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n', `${req.path.slice(1, 5)}`] })
    const d = createUpstreamDispatcher({ url: upstream.url, drainsBodies: false })
    const inFlight = fetchText(d, { path: '/slow' })
    await waitFor(() => upstream.requests.length === 1, { what: 'the request reached the upstream', timeoutMs: 1_000, intervalMs: 5 })
    const closing = d.close()
    await assert.rejects(fetchText(d), { code: 'UND_ERR_CLOSED' })
    await closing
    assert.deepEqual(await inFlight, { status: 200, body: 'slow' })
  })
})
