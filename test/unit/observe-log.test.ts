import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { ACCESS_BATCH_BYTES, createAccessLogger, createLogger, stdoutDestination } from '../../src/observe/log.ts'

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

test('the access line is byte for byte what pino writes for the same fields (time aside), client text escaped', () => {
  const { log, text } = capture()
  const access = createAccessLogger(log)
  const entries = [
    { reqId: 'req-1', method: 'GET', path: '/api/orders', route: 'all', outcome: 'allowed', reason: 'none', issuer: 'corp', status: 200, durationMs: 1.234, clientIp: '127.0.0.1' },
    // No issuer (iss not matched), no client address (the socket was gone): left out, as pino leaves out undefined.
    { reqId: 'req-2', method: 'POST', path: '/"quoted"\\back\u0001\u2028é\ud800', route: 'r', outcome: 'denied', reason: 'malformed', issuer: undefined, status: 401, durationMs: 12, clientIp: undefined },
    { reqId: 'c1f0a9-3', method: 'GET', path: '/', route: 'r', outcome: 'denied', reason: 'expired', issuer: 'corp', status: 401, durationMs: 0.057, clientIp: '::ffff:10.0.0.7' },
  ]
  for (const e of entries) {
    access.write(e)
    log.info({ event: 'http.access', ...e }, 'request')
  }
  const lines = text().trimEnd().split('\n').map((l) => l.replace(/"time":"[^"]+"/, '"time":"T"'))
  assert.equal(lines.length, 6)
  assert.equal(lines[0], lines[1])
  assert.equal(lines[2], lines[3])
  assert.equal(lines[4], lines[5])
  assert.match(lines[0]!, /"status":200,"durationMs":1\.234,"clientIp":"127\.0\.0\.1","msg":"request"\}$/)
  assert.equal((JSON.parse(lines[2]!) as { path: string }).path, entries[1]!.path)
})

test('the access line follows the logger level: nothing below info, back at once after a change', () => {
  const { log, text } = capture()
  const access = createAccessLogger(log)
  const e = { reqId: 'req-1', method: 'GET', path: '/', route: 'all', outcome: 'allowed', reason: 'none', issuer: 'corp', status: 200, durationMs: 0.5, clientIp: '127.0.0.1' }
  log.level = 'warn'
  access.write(e)
  assert.equal(text(), '')
  log.level = 'info'
  access.write(e)
  assert.equal(text().split('\n').length, 2)
})

test('stdout destinations: a regular file is written synchronously, whole lines, access lines in batches until flushed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-log-'))
  try {
    const fd = openSync(join(dir, 'out.log'), 'w')
    const size = (): number => fstatSync(fd).size
    const now = stdoutDestination({}, fd)
    const batched = stdoutDestination({ batch: true }, fd)
    assert.equal((now as unknown as { sync: boolean }).sync, true)
    now.write('{"event":"jwks.key_added"}\n')
    assert.equal(size(), 27, 'an event line is written as soon as it is logged')
    const line = `${JSON.stringify({ event: 'http.access', path: '/x'.repeat(100) })}\n`
    const perBatch = Math.ceil(ACCESS_BATCH_BYTES / line.length)
    for (let i = 0; i < perBatch - 1; i++) batched.write(line)
    assert.equal(size(), 27, 'access lines wait for a batch')
    batched.write(line)
    assert.ok(size() > 27 && size() - 27 <= 4096, `one batch of at most 4096 bytes written (${size() - 27})`)
    batched.write(line)
    ;(batched as unknown as { flushSync(): void }).flushSync()
    assert.equal(size(), 27 + (perBatch + 1) * line.length, 'flushSync writes what is left')
    assert.ok(readFileSync(join(dir, 'out.log'), 'utf8').split('\n').slice(0, -1).every((l) => JSON.parse(l) !== undefined), 'whole lines only')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('stdout destinations: a pipe is written asynchronously (it can block until its reader catches up)', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/observe/log.ts').then((m) => process.stdout.write(String(m.stdoutDestination().sync) + ' ' + String(m.stdoutDestination({ batch: true }).sync)))"], { cwd: process.cwd(), encoding: 'utf8' })
  assert.equal(r.stdout.trim().split('\n').pop(), 'false false', r.stderr)
})
