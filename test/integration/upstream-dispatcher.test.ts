/**
 * createUpstreamDispatcher under the stack it is built for: fastify + @fastify/http-proxy →
 * @fastify/reply-from → undici, against raw upstreams that behave like legacy apps. Each
 * test runs the same exchange through reply-from's default dispatcher too, so it documents
 * the bug (issue #9 §7 and §8) as well as the fix.
 */
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { fastify } from 'fastify'
import fastifyHttpProxy from '@fastify/http-proxy'
import { request } from 'undici'
import type { Dispatcher } from 'undici'
import { createUpstreamDispatcher } from '../../src/proxy/upstream.ts'
import { waitFor } from '../../src/wait-for.ts'

interface Seen {
  readonly line: string
  readonly headers: string
}

/**
 * A keep-alive upstream on a raw socket, like Python's http.server with HTTP/1.1: it answers
 * a request once its body has arrived, without reading the body, then parses what follows in
 * its buffer as the next request; `Connection: close` ends the connection (RFC 9112 §9.6).
 * `answer` is written as given, one TCP segment per string.
 */
async function startLegacyApp(t: TestContext, answer: readonly string[]): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = []
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let busy = false
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      void pump()
    })
    async function pump(): Promise<void> {
      if (busy) return
      busy = true
      try {
        for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
          const head = buf.subarray(0, end).toString('latin1')
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
          if (buf.length < end + 4 + length) return
          buf = buf.subarray(end + 4) // the body stays in the buffer: this app never reads it
          const [line = '', ...fields] = head.split('\r\n')
          seen.push({ line, headers: fields.join('\n').toLowerCase() })
          for (const [i, chunk] of answer.entries()) {
            if (i > 0) await delay(15)
            socket.write(chunk)
          }
          if (/\nconnection: *close/i.test(`\n${fields.join('\n')}`)) {
            socket.end()
            return
          }
        }
      } finally {
        busy = false
      }
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    server.close()
    await once(server, 'close')
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

/** The proxy as server.ts registers it, reduced to what the dispatcher touches. */
async function startProxy(t: TestContext, upstream: string, undici?: Dispatcher): Promise<string> {
  const app = fastify()
  await app.register(fastifyHttpProxy, { upstream, replyOptions: {}, ...(undici === undefined ? {} : { undici }) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(async () => {
    await app.close()
    await undici?.destroy()
  })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

const SMUGGLED = 'GET /admin/delete-all HTTP/1.1\r\nHost: app\r\nX-Auth-Subject: admin\r\n\r\n'

describe('issue #9 §8: an upstream that sends an unsolicited 100 Continue before its response', () => {
  const answer = ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello']

  it('before: reply-from\'s default dispatcher fails the request (undici destroys the socket on a 100: UND_ERR_SOCKET)', async (t) => {
    const app = await startLegacyApp(t, answer)
    const proxy = await startProxy(t, app.url)
    const res = await request(`${proxy}/page`)
    // reply-from's default onError answers UND_ERR_SOCKET with 500; the sidecar's onError
    // (server.ts, classifyUpstreamError → upstream_unavailable) answers it with 502.
    assert.equal(res.statusCode, 500)
    assert.equal(((await res.body.json()) as { code?: string }).code, 'UND_ERR_SOCKET')
  })

  it('with createUpstreamDispatcher: the final response is forwarded', async (t) => {
    const app = await startLegacyApp(t, answer)
    const proxy = await startProxy(t, app.url, createUpstreamDispatcher({ url: app.url, drainsBodies: false }))
    for (const path of ['/page', '/again']) {
      const res = await request(`${proxy}${path}`)
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), 'hello')
    }
    assert.deepEqual(app.seen.map((s) => s.line), ['GET /page HTTP/1.1', 'GET /again HTTP/1.1'])
  })
})

describe('issue #9 §7: a POST whose body is a request, to an upstream that never reads bodies', () => {
  const answer = ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']
  const post = async (proxy: string): Promise<void> => {
    const res = await request(`${proxy}/upload`, { method: 'POST', body: SMUGGLED, headers: { 'content-type': 'text/plain' } })
    assert.equal(res.statusCode, 200)
    await res.body.dump()
  }

  it('before: with reply-from\'s default dispatcher the app executes the smuggled request, identity headers and all', async (t) => {
    const app = await startLegacyApp(t, answer)
    await post(await startProxy(t, app.url))
    await waitFor(() => app.seen.length >= 2, { what: () => `two requests at the app, seen ${JSON.stringify(app.seen.map((s) => s.line))}`, timeoutMs: 1_000, intervalMs: 5 })
    assert.deepEqual(app.seen.map((s) => s.line), ['POST /upload HTTP/1.1', 'GET /admin/delete-all HTTP/1.1'])
    assert.match(app.seen[1]!.headers, /x-auth-subject: admin/)
  })

  it('with createUpstreamDispatcher (drainsBodies: false): the request goes with Connection: close and the body is never parsed', async (t) => {
    const app = await startLegacyApp(t, answer)
    const proxy = await startProxy(t, app.url, createUpstreamDispatcher({ url: app.url, drainsBodies: false }))
    await post(proxy)
    const res = await request(`${proxy}/next`)
    assert.equal(res.statusCode, 200)
    await res.body.dump()
    await delay(50)
    assert.deepEqual(app.seen.map((s) => s.line), ['POST /upload HTTP/1.1', 'GET /next HTTP/1.1'])
    assert.match(app.seen[0]!.headers, /\nconnection: close/)
  })
})
