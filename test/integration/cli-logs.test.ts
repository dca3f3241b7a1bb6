/**
 * The sidecar's log and request ids on the real process (issue #14 §5): the access line's
 * duration and client address; X-Request-Id accepted when valid or generated, on the access
 * line and the request's other lines, forwarded upstream and returned, denials and upstream
 * failures included; `log.format` JSON on a pipe, readable lines on a terminal or when set.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { waitFor } from '../../src/wait-for.ts'
import { startCliRun } from '../helpers/cli-process.ts'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')
const GENERATED = /^[0-9a-f]{12}-[0-9a-z]+$/

let issuer: TestIssuer
let upstream: TestUpstream
before(async () => {
  issuer = await startTestIssuer()
  upstream = await startUpstream()
})
after(async () => {
  await upstream?.close()
  await issuer?.close()
})

function configFile(extraLog = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-logs-'))
  const file = join(dir, 'sidecar.yaml')
  writeFileSync(file, `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: ${upstream.url} }
shutdown: { delay: 0s, timeout: 2s }
issuers:
  - name: corp
    issuer: ${issuer.issuer}
    jwksUri: ${issuer.jwksUri}
    audiences: [test-api]
routes:
  - { name: default, path: /**, auth: required }
log: { level: info, access: true${extraLog} }
`)
  return file
}

interface Sidecar {
  readonly child: ChildProcessWithoutNullStreams
  readonly proxyUrl: string
  readonly out: () => string
  stop(): Promise<void>
}

/** `jwt-sidecar run`, stdout a pipe; resolves once `started` finds the proxy URL in what it wrote. */
async function run(config: string, started: (out: string) => string | undefined): Promise<Sidecar> {
  const p = await startCliRun(config, started)
  return {
    child: p.child,
    proxyUrl: p.started,
    out: p.out,
    async stop() {
      if (p.child.exitCode !== null) return
      p.child.kill('SIGTERM')
      await p.exited()
    },
  }
}

const jsonLines = (text: string): Array<Record<string, unknown>> => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)

describe('JSON logs (stdout is a pipe): access lines and request ids', () => {
  let sc: Sidecar
  let token: string
  before(async () => {
    sc = await run(configFile(), (out) => {
      const s = jsonLines(out).find((l) => l.event === 'server.started')
      return s === undefined ? undefined : String(s.proxy)
    })
    token = await issuer.sign({ sub: 'alice', aud: 'test-api' })
    // The keys load in the background: wait until a good token gets through.
    await waitFor(async () => (await get('/ready', { authorization: `Bearer ${token}` })).status === 200, { what: 'keys loaded', timeoutMs: 10_000 })
  })
  after(() => sc?.stop())

  async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; id: string | undefined }> {
    const r = await request(`${sc.proxyUrl}${path}`, { headers })
    await r.body.dump()
    const id = r.headers['x-request-id']
    return { status: r.statusCode, id: typeof id === 'string' ? id : undefined }
  }

  /** The access line of the request with this id, once written (they are batched for up to a second). */
  const accessOf = (id: string): Promise<Record<string, unknown>> =>
    waitFor(() => jsonLines(sc.out()).find((l) => l.event === 'http.access' && l.reqId === id), { what: () => `the access line of ${id}:\n${sc.out()}`, timeoutMs: 5000 })

  test("a client's valid X-Request-Id: returned, forwarded, on the access line with the duration and the client address", async () => {
    const r = await get('/orders/1', { authorization: `Bearer ${token}`, 'x-request-id': 'client-id.42' })
    assert.deepEqual(r, { status: 200, id: 'client-id.42' })
    assert.equal(upstream.last()?.headers['x-request-id'], 'client-id.42')
    const line = await accessOf('client-id.42')
    assert.deepEqual([line.path, line.status, line.outcome, line.clientIp], ['/orders/1', 200, 'allowed', '127.0.0.1'])
    assert.equal(typeof line.durationMs, 'number')
    assert.ok((line.durationMs as number) >= 0 && (line.durationMs as number) < 10_000, String(line.durationMs))
  })

  test('no X-Request-Id: one is generated, unique per request, and the app sees the same one', async () => {
    const a = await get('/orders/2', { authorization: `Bearer ${token}` })
    const seenA = upstream.last()?.headers['x-request-id']
    const b = await get('/orders/3', { authorization: `Bearer ${token}` })
    assert.match(a.id!, GENERATED)
    assert.match(b.id!, GENERATED)
    assert.notEqual(a.id, b.id)
    assert.equal(seenA, a.id)
    assert.equal(a.id!.split('-')[0], b.id!.split('-')[0], 'one prefix per process')
    await accessOf(a.id!)
  })

  test('an X-Request-Id that is not a short token is replaced, and never logged', async () => {
    for (const bad of ['has space', 'x'.repeat(129), '"quoted"', 'a/b']) {
      const r = await get('/orders/4', { authorization: `Bearer ${token}`, 'x-request-id': bad })
      assert.match(r.id!, GENERATED, bad)
      assert.equal(upstream.last()?.headers['x-request-id'], r.id)
      await accessOf(r.id!)
      assert.ok(!sc.out().includes(bad), `${bad} was logged`)
    }
    // Two headers (Node joins them with ", "), and bytes beyond ASCII (sent raw: HTTP clients
    // refuse to; a control byte never gets this far, Node's parser answers 400 itself).
    for (const head of ['x-request-id: one\r\nx-request-id: two', 'x-request-id: caf\u00e9']) {
      const answer = await raw(sc.proxyUrl, `GET /orders/5 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n${head}\r\nconnection: close\r\n\r\n`)
      const id = /^x-request-id: (.*)\r$/mi.exec(answer)?.[1]
      assert.match(id ?? `<none> ${JSON.stringify(answer)}`, GENERATED)
    }
  })

  test('a denial carries the id too: on the 401, on auth.denied and on its access line', async () => {
    const r = await get('/orders/6', { 'x-request-id': 'deny-me' })
    assert.deepEqual(r, { status: 401, id: 'deny-me' })
    const line = await accessOf('deny-me')
    assert.deepEqual([line.status, line.reason], [401, 'missing_token'])
    const denied = jsonLines(sc.out()).find((l) => l.event === 'auth.denied' && l.reqId === 'deny-me')
    assert.ok(denied !== undefined, sc.out())
  })

  test('an upstream failure carries the id: on the 502, on upstream.error and on its access line', async () => {
    await upstream.close()
    const r = await get('/orders/7', { authorization: `Bearer ${token}`, 'x-request-id': 'upstream-down' })
    assert.deepEqual(r, { status: 502, id: 'upstream-down' })
    const line = await accessOf('upstream-down')
    assert.deepEqual([line.status, line.reason], [502, 'upstream_unavailable'])
    assert.ok(jsonLines(sc.out()).some((l) => l.event === 'upstream.error' && l.reqId === 'upstream-down'), sc.out())
    upstream = await startUpstream()
  })

  test('no token, cookie or claim set in the log', async () => {
    await get('/orders/8', { authorization: `Bearer ${token}`, cookie: 'session=s3cr3t' })
    await waitFor(() => jsonLines(sc.out()).filter((l) => l.event === 'http.access').length >= 10, { what: 'access lines', timeoutMs: 5000 })
    assert.ok(!sc.out().includes(token.split('.')[2]!))
    assert.doesNotMatch(sc.out(), /s3cr3t|"sub":"alice"/)
  })
})

/** One request written by hand: what the sidecar answers, headers as text. */
function raw(proxyUrl: string, text: string): Promise<string> {
  const { hostname, port } = new URL(proxyUrl)
  return new Promise((resolve, reject) => {
    // write, not end: a half-closed connection has its request aborted (Node http: no half-open).
    const socket = connect(Number(port), hostname, () => socket.write(text))
    let answer = ''
    socket.on('data', (d: Buffer) => { answer += d.toString('latin1') })
    socket.on('end', () => resolve(answer))
    socket.on('error', reject)
  })
}

describe('log.format', () => {
  test('pretty, set in the config on a pipe: readable lines without colour, the access line as a sentence, no token', async () => {
    const sc = await run(configFile(', format: pretty'), (out) => /server\.started {2}jwt-sidecar started {2}proxy=(\S+)/.exec(out)?.[1])
    try {
      const token = await issuer.sign({ sub: 'alice', aud: 'test-api' })
      await waitFor(async () => {
        const r = await request(`${sc.proxyUrl}/p`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'pretty-1' } })
        await r.body.dump()
        return r.statusCode === 200
      }, { what: 'a 200', timeoutMs: 10_000 })
      // Unbatched: the line is there as soon as the answer is.
      const r = await request(`${sc.proxyUrl}/p`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'pretty-2' } })
      await r.body.dump()
      const line = await waitFor(() => sc.out().split('\n').find((l) => l.includes('http.access') && l.includes('reqId=pretty-2')), { what: () => `the access line:\n${sc.out()}`, timeoutMs: 1000 })
      assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}http\.access {2}GET \/p 200 allowed [\d.]+ms {2}reqId=pretty-2 route=default issuer=corp clientIp=127\.0\.0\.1$/)
      assert.doesNotMatch(sc.out(), /^\{/m, 'no JSON line')
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(sc.out(), /\u001b/, 'no colour on a pipe')
      assert.ok(!sc.out().includes(token.split('.')[2]!))
    } finally {
      await sc.stop()
    }
  })

  test('unset, on a terminal (util-linux script): readable lines, coloured; NO_COLOR turns the colour off', { timeout: 60_000 }, async () => {
    const which = spawnSync('script', ['--version'], { encoding: 'utf8' })
    assert.ok(which.error === undefined && /util-linux/.test(which.stdout), `this test needs util-linux's script(1) for a pseudo-terminal: ${which.error?.message ?? which.stdout}`)
    const config = configFile()
    for (const env of [{}, { NO_COLOR: '1' }]) {
      const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`
      const child = spawn('script', ['--quiet', '--return', '--command', `exec ${q(process.execPath)} ${q(cli)} run --config ${q(config)}`, '/dev/null'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } })
      let terminal = ''
      child.stdout.on('data', (d: Buffer) => { terminal += d.toString() })
      const exited = new Promise((resolve) => child.on('exit', resolve))
      try {
        await waitFor(() => {
          if (child.exitCode !== null) throw new Error(`exited:\n${terminal}`)
          return terminal.includes('jwt-sidecar started')
        }, { what: () => `the readable start line:\n${terminal}`, timeoutMs: 15_000 })
        const started = terminal.split('\n').find((l) => l.includes('server.started'))!
        assert.doesNotMatch(terminal, /\{"level"/, 'no JSON on a terminal')
        if ('NO_COLOR' in env) assert.match(started, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}server\.started {2}jwt-sidecar started {2}proxy=/)
        // eslint-disable-next-line no-control-regex
        else assert.match(started, /^\d\d:\d\d:\d\d\.\d{3} \u001b\[32mINFO \u001b\[39m server\.started {2}jwt-sidecar started {2}proxy=/)
        // ETX: the terminal's Ctrl-C.
        child.stdin.write('\x03')
        await exited
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL')
      }
    }
  })
})
