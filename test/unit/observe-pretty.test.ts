/**
 * `log.format: pretty` (src/observe/pretty.ts): pino's own JSON lines, redaction included,
 * as one readable line each; client text cannot drive the terminal.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createAccessLogger, createLogger, resolveLogFormat } from '../../src/observe/log.ts'
import { prettyDestination, prettyLine } from '../../src/observe/pretty.ts'

/** A logger writing readable lines into a string. */
function capture(color = false): { log: ReturnType<typeof createLogger>; lines: () => string[] } {
  let text = ''
  const inner = { write: (s: string) => { text += s }, onDrop: () => undefined }
  const log = createLogger({ level: 'info' }, prettyDestination(inner, { color }))
  return { log, lines: () => text.split('\n').filter((l) => l !== '') }
}

const TIME = /^\d\d:\d\d:\d\d\.\d{3} /

test('one line per event: local time, level, event, message, then the other fields as key=value', () => {
  const { log, lines } = capture()
  log.info({ event: 'server.started', proxy: 'http://127.0.0.1:8080', issuers: ['corp'] }, 'jwt-sidecar started')
  log.warn({ event: 'jwks.refresh_failed', issuer: 'corp', error: 'fetch failed: ECONNREFUSED', failures: 2 }, 'key refresh failed')
  const [a, b] = lines()
  assert.match(a!, TIME)
  assert.equal(a!.replace(TIME, ''), 'INFO  server.started  jwt-sidecar started  proxy=http://127.0.0.1:8080 issuers=["corp"]')
  assert.equal(b!.replace(TIME, ''), 'WARN  jwks.refresh_failed  key refresh failed  issuer=corp error="fetch failed: ECONNREFUSED" failures=2')
  assert.equal(lines().length, 2)
})

test('the access line reads as a sentence: method, path, status, outcome, reason, duration', () => {
  const { log, lines } = capture()
  const access = createAccessLogger(log)
  access.write({ reqId: 'c0ffee-1', method: 'GET', path: '/orders/42', route: 'default', outcome: 'allowed', reason: 'none', issuer: 'corp', status: 200, durationMs: 1.25, clientIp: '127.0.0.1' })
  access.write({ reqId: 'c0ffee-2', method: 'POST', path: '/orders', route: 'default', outcome: 'denied', reason: 'expired', issuer: undefined, status: 401, durationMs: 0.3, clientIp: undefined })
  assert.deepEqual(lines().map((l) => l.replace(TIME, '')), [
    'INFO  http.access  GET /orders/42 200 allowed 1.25ms  reqId=c0ffee-1 route=default issuer=corp clientIp=127.0.0.1',
    'INFO  http.access  POST /orders 401 denied expired 0.3ms  reqId=c0ffee-2 route=default',
  ])
})

test('the same redaction as JSON: no token, cookie or Set-Cookie value reaches the terminal', () => {
  const { log, lines } = capture()
  const secret = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl'
  log.info({ event: 'x', authorization: `Bearer ${secret}`, headers: { authorization: secret, cookie: `session=${secret}`, 'set-cookie': secret }, token: secret }, 'm')
  log.error({ event: 'y', req: { id: 'r1', method: 'GET', url: `/a?access_token=${secret}`, headers: { authorization: secret } } }, 'fastify error')
  const text = lines().join('\n')
  assert.doesNotMatch(text, /eyJ|c2lnbmF0dXJl/)
  assert.match(text, /authorization=\[redacted\]/)
  assert.match(text, /req=\{"id":"r1","method":"GET","path":"\/a"\}/)
})

test('client text cannot move the cursor, recolour or reorder the line: C0, C1, separators and bidi controls are escaped', () => {
  const { log, lines } = capture()
  const access = createAccessLogger(log)
  access.write({ reqId: 'r', method: 'GET', path: '/a\u001b[2J\u009b31m\u2028\u202eb\u2066 c"d', route: 'default', outcome: 'denied', reason: 'no_route', issuer: undefined, status: 403, durationMs: 1, clientIp: '::1' })
  const [line] = lines()
  assert.equal(lines().length, 1)
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(line!, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/)
  assert.ok(line!.includes('"/a\\u001b[2J\\u009b31m\\u2028\\u202eb\\u2066 c\\"d"'), line)
})

test('colour only for the level, and only when asked', () => {
  const plain = capture(false)
  plain.log.error({ event: 'auth.error' }, 'boom')
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(plain.lines()[0]!, /\u001b/)
  const coloured = capture(true)
  coloured.log.error({ event: 'auth.error' }, 'boom')
  // eslint-disable-next-line no-control-regex
  assert.match(coloured.lines()[0]!, /^\S+ \u001b\[31mERROR\u001b\[39m auth\.error {2}boom$/)
})

test('an error shows its type and message; a line that is not JSON is shown escaped', () => {
  const { log, lines } = capture()
  log.error({ event: 'auth.error', err: new TypeError('bad thing') }, 'verification failed internally')
  assert.match(lines()[0]!, /err="TypeError: bad thing"$/)
  assert.equal(prettyLine('not json \u001b[31m', { color: false }), 'not json \\u001b[31m')
  assert.equal(prettyLine('[1,2]', { color: false }), '[1,2]')
})

test('log.format: the config wins; else pretty on a terminal, JSON elsewhere', () => {
  assert.equal(resolveLogFormat(undefined, true), 'pretty')
  assert.equal(resolveLogFormat(undefined, false), 'json')
  assert.equal(resolveLogFormat('json', true), 'json')
  assert.equal(resolveLogFormat('pretty', false), 'pretty')
})
