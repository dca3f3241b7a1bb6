import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createJwksFetcher, JwksFetchError } from '../../src/keys/fetcher.ts'
import type { JwksFetchErrorCode } from '../../src/keys/fetcher.ts'
import { startHttpServer, startTestIssuer } from '../helpers/issuer.ts'

const OPTS = { timeout: 1_000, maxBytes: 64 * 1024, userAgent: 'jwt-sidecar/test' }

function isFetchError(code: JwksFetchErrorCode, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof JwksFetchError, `expected JwksFetchError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (message !== undefined) assert.match(err.message, message)
    assert.ok(err.message.length <= 160, `message too long: ${err.message.length}`)
    return true
  }
}

void describe('createJwksFetcher', () => {
  void it('GETs the JWKS with Accept and User-Agent and returns the parsed JSON', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256', kids: ['a', 'b'] })
    t.after(() => idp.close())
    const doc = await createJwksFetcher(OPTS)(idp.jwksUri)
    assert.deepEqual(doc, idp.jwks())
    const req = idp.lastRequest()!
    assert.equal(req.method, 'GET')
    assert.equal(req.headers['accept'], 'application/json')
    assert.equal(req.headers['user-agent'], 'jwt-sidecar/test')
  })

  void it('fails with code status on a non-200 response', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setStatus(503)
    await assert.rejects(createJwksFetcher(OPTS)(idp.jwksUri), (err) => {
      isFetchError('status', /HTTP 503/)(err)
      assert.equal((err as JwksFetchError).status, 503)
      return true
    })
    idp.setStatus(204)
    await assert.rejects(createJwksFetcher(OPTS)(idp.jwksUri), isFetchError('status', /HTTP 204/))
  })

  void it('does not follow redirects', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setStatus(302)
    await assert.rejects(createJwksFetcher(OPTS)(idp.jwksUri), isFetchError('status', /redirects are not followed/))
    assert.equal(idp.fetchCount(), 1)
    assert.equal(idp.lastRequest()!.url, '/jwks', 'the Location target was never requested')
  })

  void it('refuses a body whose Content-Length exceeds maxBytes', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setBody(JSON.stringify({ keys: [], pad: 'x'.repeat(2_000) }))
    await assert.rejects(createJwksFetcher({ ...OPTS, maxBytes: 1_000 })(idp.jwksUri), isFetchError('too_large', /exceeds 1000 bytes/))
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
    await assert.rejects(createJwksFetcher({ ...OPTS, maxBytes: 16 * 1024 })(`${srv.url}/jwks`), isFetchError('too_large'))
    await clientGone // the fetcher dropped the connection instead of draining it
    assert.ok(sent < 10 * 1024 * 1024, `server pushed ${sent} bytes before the abort`)
  })

  void it('fails with invalid_json on a body that is not JSON, without echoing the body', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setBody(`<html>${'secret-looking-page '.repeat(500)}</html>`)
    await assert.rejects(createJwksFetcher(OPTS)(idp.jwksUri), isFetchError('invalid_json', /not JSON/))
    idp.setBody('')
    await assert.rejects(createJwksFetcher(OPTS)(idp.jwksUri), isFetchError('invalid_json', /empty body/))
  })

  void it('times out when the server is slower than the timeout', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setDelay(2_000)
    const t0 = Date.now()
    await assert.rejects(createJwksFetcher({ ...OPTS, timeout: 100 })(idp.jwksUri), isFetchError('timeout', /100 ms/))
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
    await assert.rejects(createJwksFetcher({ ...OPTS, timeout: 150 })(`${srv.url}/jwks`), isFetchError('timeout'))
    assert.ok(Date.now() - t0 < 1_000)
  })

  void it('fails with code network when nothing listens', async () => {
    const srv = await startHttpServer(() => {})
    const url = `${srv.url}/jwks`
    await srv.close()
    await assert.rejects(createJwksFetcher(OPTS)(url), isFetchError('network'))
  })

  void it('fails with code network when the caller aborts', async (t) => {
    const idp = await startTestIssuer({ alg: 'ES256' })
    t.after(() => idp.close())
    idp.setDelay(2_000)
    const ctl = new AbortController()
    const p = createJwksFetcher(OPTS)(idp.jwksUri, ctl.signal)
    setTimeout(() => ctl.abort(), 20)
    await assert.rejects(p, isFetchError('network', /aborted/))
  })
})
