import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { createLogger } from '../../src/observe/log.ts'

function capture() {
  let text = ''
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { text += chunk.toString(); cb() } })
  return { log: createLogger({ level: 'info' }, sink), text: () => text }
}

test('a logged request keeps method and path only: no headers, no query string', () => {
  const { log, text } = capture()
  log.error({ req: { id: 'req-1', method: 'GET', url: '/api/x?access_token=secret-in-query', headers: { authorization: 'Bearer secret-token', cookie: 'sid=secret-cookie' } } }, 'boom')
  const line = JSON.parse(text()) as { req: Record<string, unknown> }
  assert.deepEqual(line.req, { id: 'req-1', method: 'GET', path: '/api/x' })
  assert.ok(!text().includes('secret'))
})

test('authorization, cookie and set-cookie are redacted wherever they are logged', () => {
  const { log, text } = capture()
  log.info({ headers: { authorization: 'Bearer secret-token', cookie: 'sid=secret', 'set-cookie': 'sid=secret' }, authorization: 'Bearer secret-token' }, 'x')
  assert.ok(!text().includes('secret'), text())
  assert.match(text(), /\[redacted\]/)
})
