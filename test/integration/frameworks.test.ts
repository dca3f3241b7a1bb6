/**
 * The real-app zoo of issue #9 on its own, no sidecar: each app of test/helpers/apps.ts starts,
 * routes `/admin` to its admin handler and the rest to its echo handler, and reads requests the
 * way its framework really does. What each one does with case, trailing slashes, fragments, dot
 * segments, encodings, odd methods, method overrides, `_` in header names and unread bodies is
 * pinned below as measured (express 4.22 and 5.3, koa 3.3 with @koa/router 15.7, Python 3.11's
 * http.server, Flask 2.2 under wsgiref, nginx 1.22: Debian 12): the sidecar must be safe in
 * front of each of them, so a change in any of these facts is news for the sidecar's matcher.
 *
 * Also tests the differential helper (test/helpers/differential.ts): a wrong sidecar view is
 * caught, a strict one is not.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { APP_KINDS, startApp } from '../helpers/apps.ts'
import type { AppKind, Handled, RealApp } from '../helpers/apps.ts'
import { findBypasses, requestVariants, sendRaw } from '../helpers/differential.ts'
import type { RawReply, SidecarView, Variant } from '../helpers/differential.ts'
import { waitFor } from '../../src/wait-for.ts'

const apps = new Map<AppKind, RealApp>()
const app = (kind: AppKind): RealApp => {
  const a = apps.get(kind)
  if (a === undefined) throw new Error(`${kind} did not start`)
  return a
}

before(async () => {
  // All at once; one that fails to start (a missing nginx or python3-flask) fails every test
  // with its install hint, after the others were recorded for closing.
  const started = await Promise.allSettled(APP_KINDS.map((k) => startApp(k)))
  for (const s of started) if (s.status === 'fulfilled') apps.set(s.value.kind, s.value)
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed !== undefined) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason))
})
after(async () => {
  await Promise.all([...apps.values()].map((a) => a.close()))
})

const get = (target: string, headers: Record<string, string> = {}): Variant => ({ method: 'GET', target, headers })

/** Which handler ran, or the status when none did. */
const served = (r: RawReply): 'admin' | 'echo' | number => r.handler ?? r.status

/** The app's handled() entries from `from` on, once there are `count` of them (python's stdout lags its socket a little). */
async function handledSince(a: RealApp, from: number, count: number): Promise<Handled[]> {
  await waitFor(() => a.handled().length >= from + count, { what: () => `${count} handled request(s), have ${JSON.stringify(a.handled().slice(from))}`, timeoutMs: 2_000, intervalMs: 10 })
  return a.handled().slice(from)
}

/** One row per request, one column per app in APP_KINDS order. */
type Row<T> = readonly [key: string, express4: T, express5: T, koa: T, pythonHttpServer: T, flaskWsgiref: T, nginx: T]
const column = <T>(rows: ReadonlyArray<Row<T>>, kind: AppKind): Record<string, T> =>
  Object.fromEntries(rows.map((row) => [row[0], row[APP_KINDS.indexOf(kind) + 1] as T]))

const A = 'admin'
const E = 'echo'

describe('every app starts and answers the way the helper promises', () => {
  for (const kind of APP_KINDS) {
    test(`${kind}: /admin runs the admin handler, /public/x the echo handler, each reads the identity headers and handled() lists both`, async () => {
      const a = app(kind)
      assert.match(a.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const from = a.handled().length
      const admin = await sendRaw(a.url, get('/admin', { 'X-Auth-Subject': 'alice', 'X-Auth-Scopes': 'admin read' }))
      assert.equal(admin.status, 200, admin.raw)
      assert.equal(admin.body?.handler, 'admin')
      assert.equal(admin.body?.method, 'GET')
      assert.equal(admin.body?.path, '/admin')
      assert.equal(admin.body?.subject, 'alice')
      assert.equal(admin.body?.scopes, 'admin read')
      // nginx answers with a `return` string: no header dump.
      if (kind !== 'nginx') assert.equal((admin.body?.headers as Record<string, string> | undefined)?.['x-auth-subject'], 'alice')
      const echo = await sendRaw(a.url, { method: 'POST', target: '/public/x?q=1', headers: {} })
      assert.equal(echo.status, 200, echo.raw)
      assert.deepEqual([echo.body?.handler, echo.body?.method, echo.body?.path], ['echo', 'POST', '/public/x'])
      assert.deepEqual(await handledSince(a, from, 2), [
        { handler: 'admin', method: 'GET', path: '/admin', subject: 'alice' },
        { handler: 'echo', method: 'POST', path: '/public/x', subject: null },
      ])
    })

    test(`${kind}: HEAD /admin runs the admin handler with no body in the answer`, async () => {
      const a = app(kind)
      const from = a.handled().length
      const r = await sendRaw(a.url, { method: 'HEAD', target: '/admin', headers: {} })
      assert.equal(r.status, 200, r.raw)
      assert.ok(r.raw.endsWith('\r\n\r\n'), r.raw)
      assert.deepEqual(await handledSince(a, from, 1), [{ handler: 'admin', method: 'HEAD', path: '/admin', subject: null }])
    })
  }
})

/**
 * GET <target>: the handler that ran (a number: the status, no handler ran). express and koa
 * route case-insensitively and non-strictly on the undecoded path; http.server compares its raw
 * self.path; Flask decodes (wsgiref) and is case-sensitive and strict about a trailing slash;
 * nginx decodes, merges slashes and resolves dot segments before its case-insensitive regex.
 */
const ROUTING: ReadonlyArray<Row<'admin' | 'echo' | number>> = [
  //                        express4 express5 koa  http.server flask nginx
  ['/admin',                 A, A, A, A, A, A],
  ['/admin/x',               A, A, A, A, A, A],
  // letter case
  ['/ADMIN',                 A, A, A, E, E, A],
  ['/Admin/x',               A, A, A, E, E, A],
  // trailing slash: werkzeug's `/admin` rule does not take `/admin/` (strict_slashes redirects only the other way)
  ['/admin/',                A, A, A, A, E, A],
  ['/admin/x/',              A, A, A, A, A, A],
  // percent-encoded letters: only the apps that decode before routing
  ['/%61dmin',               E, E, E, E, A, A],
  ['/%41DMIN/x',             E, E, E, E, E, A],
  // fragments (never sent by a browser; these apps do not reject them): node's url parsing drops `#…`
  ['/admin#x',               A, A, A, E, E, A],
  ['/public#/../admin',      E, E, E, E, E, E],
  // dot segments: only nginx resolves them
  ['/x/../admin',            E, E, E, E, E, A],
  ['/./admin',               E, E, E, E, E, A],
  ['/admin/..',              A, A, A, A, A, E],
  ['/admin/%2e%2e',          A, A, A, A, A, E],
  // repeated slashes: http.server 3.11 collapses a leading `//` (gh-87389), werkzeug strips leading slashes, nginx merges all
  ['//admin',                E, E, E, A, A, A],
  ['//admin//x',             E, E, E, A, E, A],
  // `;` parameters: nobody here strips them
  ['/admin;x',               E, E, E, E, E, E],
  ['/admin;/x',              E, E, E, E, E, E],
  ['/public;/../admin',      E, E, E, E, E, A],
  // encoded slash and backslash: Flask sees `//admin` in PATH_INFO and strips it to `admin`; nginx decodes, then resolves
  ['/%2fadmin',              E, E, E, E, A, A],
  ['/%2Fadmin/x',            E, E, E, E, A, A],
  ['/public/..%2fadmin',     E, E, E, E, E, A],
  ['/admin%2f',              E, E, E, E, E, A],
  ['/public/..%5cadmin',     E, E, E, E, E, E],
  ['/admin%00',              E, E, E, E, E, 400],
  // a quote: nginx's echo body is no longer JSON (RawReply.handler reads it anyway)
  ['/admin/%22',             A, A, A, A, A, A],
  // the query takes no part
  ['/admin?x',               A, A, A, A, A, A],
  ['/public?/admin',         E, E, E, E, E, E],
  // absolute-form (RFC 9112 §3.2.2): node and nginx route on its path; http.server compares the whole URL; Flask prefixes `/`
  ['http://app/admin',       A, A, A, E, E, A],
  ['HTTP://APP/ADMIN/x',     A, A, A, E, E, A],
  // asterisk-form on GET: express 5's `/{*rest}` does not match it
  ['*',                      E, 404, E, E, E, 400],
  // near misses
  ['/administrator',         E, E, E, E, E, E],
  ['/public/admin',          E, E, E, E, E, E],
]

/** GET <target>: the path the app reported (what its routing looked at). */
const PATHS: ReadonlyArray<Row<string>> = [
  //                        express4        express5        koa             http.server          flask                nginx
  ['/%61dmin',              '/%61dmin',     '/%61dmin',     '/%61dmin',     '/%61dmin',          '/admin',            '/admin'],
  ['/admin#x',              '/admin',       '/admin',       '/admin',       '/admin#x',          '/admin#x',          '/admin'],
  ['//admin//x',            '//admin//x',   '//admin//x',   '//admin//x',   '/admin//x',         '/admin//x',         '/admin/x'],
  ['/admin/..',             '/admin/..',    '/admin/..',    '/admin/..',    '/admin/..',         '/admin/..',         '/'],
  ['/public/..%2fadmin',    '/public/..%2fadmin', '/public/..%2fadmin', '/public/..%2fadmin', '/public/..%2fadmin', '/public/../admin', '/admin'],
  ['http://app/admin',      '/admin',       '/admin',       '/admin',       'http://app/admin',  '/http://app/admin', '/admin'],
]

describe('routing: which handler each app runs for a request-target (GET)', () => {
  for (const kind of APP_KINDS) {
    test(`${kind}`, async () => {
      const actual: Record<string, 'admin' | 'echo' | number> = {}
      for (const [target] of ROUTING) actual[target] = served(await sendRaw(app(kind).url, get(target)))
      assert.deepEqual(actual, column(ROUTING, kind))
    })
    test(`${kind}: the path it routes on`, async () => {
      const actual: Record<string, unknown> = {}
      for (const [target] of PATHS) actual[target] = (await sendRaw(app(kind).url, get(target))).body?.path
      assert.deepEqual(actual, column(PATHS, kind))
    })
  }
})

/** <method> /admin: `handler method-acted-on`, or the status when no handler ran. */
const METHODS: ReadonlyArray<Row<string | number>> = [
  //              express4          express5          koa               http.server       flask             nginx
  ['OPTIONS',     'admin OPTIONS',  'admin OPTIONS',  'admin OPTIONS',  'admin OPTIONS',  'admin OPTIONS',  'admin OPTIONS'],
  ['PATCH',       'admin PATCH',    'admin PATCH',    'admin PATCH',    'admin PATCH',    'admin PATCH',    'admin PATCH'],
  ['DELETE',      'admin DELETE',   'admin DELETE',   'admin DELETE',   'admin DELETE',   'admin DELETE',   'admin DELETE'],
  ['TRACE',       'admin TRACE',    'admin TRACE',    'admin TRACE',    'admin TRACE',    'admin TRACE',    405],
  // a token no parser knows: llhttp refuses it, http.server has no do_FOO, werkzeug's rule lacks it, nginx's `return` runs for any method
  ['FOO',         400,              400,              400,              501,              405,              'admin FOO'],
  // lower case: only wsgiref passes it on, and werkzeug upper-cases it
  ['get',         400,              400,              400,              501,              'admin GET',      400],
]

/** POST (or the method shown) /admin with one override header: the method the app acted on. */
const OVERRIDES: ReadonlyArray<Row<string>> = [
  //                                             express4   express5   koa     http.server flask   nginx
  ['POST X-HTTP-Method-Override: DELETE',         'DELETE',  'DELETE',  'POST', 'POST',     'POST', 'POST'],
  ['POST X-HTTP-Method-Override: get',            'GET',     'GET',     'POST', 'POST',     'POST', 'POST'],
  // method-override takes the first of a list
  ['POST X-HTTP-Method-Override: DELETE, GET',    'DELETE',  'DELETE',  'POST', 'POST',     'POST', 'POST'],
  // and ignores a method node does not know
  ['POST X-HTTP-Method-Override: FOO',            'POST',    'POST',    'POST', 'POST',     'POST', 'POST'],
  // only its default header, only on POST
  ['POST X-HTTP-Method: DELETE',                  'POST',    'POST',    'POST', 'POST',     'POST', 'POST'],
  ['POST X-Method-Override: DELETE',              'POST',    'POST',    'POST', 'POST',     'POST', 'POST'],
  ['POST X_HTTP_Method_Override: DELETE',         'POST',    'POST',    'POST', 'POST',     'POST', 'POST'],
  ['GET X-HTTP-Method-Override: DELETE',          'GET',     'GET',     'GET',  'GET',      'GET',  'GET'],
  ['PUT X-HTTP-Method-Override: DELETE',          'PUT',     'PUT',     'PUT',  'PUT',      'PUT',  'PUT'],
]

describe('methods and method overrides (target /admin)', () => {
  for (const kind of APP_KINDS) {
    test(`${kind}: methods`, async () => {
      const actual: Record<string, string | number> = {}
      for (const [method] of METHODS) {
        const r = await sendRaw(app(kind).url, { method, target: '/admin', headers: {} })
        actual[method] = r.handler === undefined ? r.status : `${r.handler} ${String(r.body?.method)}`
      }
      assert.deepEqual(actual, column(METHODS, kind))
    })
    test(`${kind}: overrides (express's method-override, default getter; nobody else has one)`, async () => {
      const actual: Record<string, unknown> = {}
      for (const [row] of OVERRIDES) {
        const m = /^(\S+) ([^:]+): (.*)$/.exec(row)!
        const r = await sendRaw(app(kind).url, { method: m[1]!, target: '/admin', headers: { [m[2]!]: m[3]! } })
        assert.equal(r.handler, 'admin', `${row}: ${r.raw}`)
        actual[row] = r.body?.method
      }
      assert.deepEqual(actual, column(OVERRIDES, kind))
    })
  }
})

/**
 * GET /x with these header lines: [subject, scopes] as the app read them (nginx's empty
 * `$http_*` for an absent header counts as null). The CGI/WSGI environ folds `-` and `_`
 * (HTTP_X_AUTH_SUBJECT) and wsgiref joins repeats with `,`; nginx drops names with `_`
 * (underscores_in_headers off); node joins a repeated unknown header with `, `; http.server and
 * nginx 1.22 take the first.
 */
const IDENTITY: ReadonlyArray<Row<readonly [string | null, string | null]>> = [
  //                                                 express4              express5              koa                   http.server        flask                   nginx
  ['X-Auth-Subject: alice|X-Auth-Scopes: read',      ['alice', 'read'],    ['alice', 'read'],    ['alice', 'read'],    ['alice', 'read'], ['alice', 'read'],      ['alice', 'read']],
  ['X_Auth_Subject: evil',                           [null, null],         [null, null],         [null, null],         [null, null],      ['evil', null],         [null, null]],
  ['x-auth_subject: evil',                           [null, null],         [null, null],         [null, null],         [null, null],      ['evil', null],         [null, null]],
  ['X-AUTH_SCOPES: admin',                           [null, null],         [null, null],         [null, null],         [null, null],      [null, 'admin'],        [null, null]],
  ['X-Auth-Subject: alice|X_Auth_Subject: evil',     ['alice', null],      ['alice', null],      ['alice', null],      ['alice', null],   ['alice,evil', null],   ['alice', null]],
  ['X_Auth_Subject: evil|X-Auth-Subject: alice',     ['alice', null],      ['alice', null],      ['alice', null],      ['alice', null],   ['evil,alice', null],   ['alice', null]],
  ['X-Auth-Subject: alice|x-auth-subject: evil',     ['alice, evil', null], ['alice, evil', null], ['alice, evil', null], ['alice', null], ['alice,evil', null],   ['alice', null]],
]

describe('identity headers as each app reads them (GET /x)', () => {
  for (const kind of APP_KINDS) {
    test(`${kind}`, async () => {
      const actual: Record<string, readonly [unknown, unknown]> = {}
      for (const [row] of IDENTITY) {
        // Distinct keys of one object: header names differing only in case are sent as two lines.
        const headers = Object.fromEntries(row.split('|').map((h) => h.split(': ') as [string, string]))
        const r = await sendRaw(app(kind).url, get('/x', headers))
        assert.equal(r.handler, 'echo', r.raw)
        const read = (v: unknown): unknown => (v === '' ? null : v)
        actual[row] = [read(r.body?.subject), read(r.body?.scopes)]
      }
      assert.deepEqual(actual, column(IDENTITY, kind))
    })
  }
})

/** A complete request to the admin handler, with a forged identity. */
const HIDDEN = 'GET /admin/delete-all HTTP/1.1\r\nHost: app\r\nX-Auth-Subject: root\r\nContent-Length: 0\r\n\r\n'

/** One keep-alive connection: a POST whose body (never read by some apps) is HIDDEN; the status lines that came back. */
function postWithHiddenBody(url: string, connection?: 'close'): Promise<string[]> {
  const { hostname, port } = new URL(url)
  const head = ['POST /public/upload HTTP/1.1', 'Host: app', 'Content-Type: text/plain', `Content-Length: ${HIDDEN.length}`]
  if (connection !== undefined) head.push(`Connection: ${connection}`)
  return new Promise((resolve) => {
    let raw = ''
    // Half-close after the bytes: every server answers what it parsed, then closes.
    const sock = connect(Number(port), hostname, () => sock.end(`${head.join('\r\n')}\r\n\r\n${HIDDEN}`))
    sock.setEncoding('latin1').on('data', (d: string) => { raw += d })
    sock.on('error', () => { /* close follows */ })
    sock.setTimeout(5_000, () => sock.destroy())
    sock.on('close', () => resolve(statusLines(raw)))
  })
}

/** The status lines of consecutive Content-Length-framed responses (every app here frames so). */
function statusLines(raw: string): string[] {
  const out: string[] = []
  let at = 0
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at)
    if (end < 0) break
    const head = raw.slice(at, end)
    out.push(/^HTTP\/1\.[01] \d{3}/.exec(head)?.[0] ?? head)
    at = end + 4 + Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0)
  }
  return out
}

const UPLOAD: Handled = { handler: 'echo', method: 'POST', path: '/public/upload', subject: null }
const SMUGGLED: Handled = { handler: 'admin', method: 'GET', path: '/admin/delete-all', subject: 'root' }

/** Status lines and handled() for the POST above: only http.server leaves the body unread and parses it as the next request. */
const SMUGGLING: Record<AppKind, { statuses: string[]; handled: Handled[] }> = {
  express4: { statuses: ['HTTP/1.1 200'], handled: [UPLOAD] },
  express5: { statuses: ['HTTP/1.1 200'], handled: [UPLOAD] },
  koa: { statuses: ['HTTP/1.1 200'], handled: [UPLOAD] },
  'python-http-server': { statuses: ['HTTP/1.1 200', 'HTTP/1.1 200'], handled: [UPLOAD, SMUGGLED] },
  // wsgiref answers HTTP/1.0 and serves one request per connection
  'flask-wsgiref': { statuses: ['HTTP/1.0 200'], handled: [UPLOAD] },
  // nginx discards the body of a request it answers with `return`
  nginx: { statuses: ['HTTP/1.1 200'], handled: [UPLOAD] },
}

describe('a request in an unread body (the smuggling precondition)', () => {
  for (const kind of APP_KINDS) {
    test(`${kind}`, async () => {
      const a = app(kind)
      const from = a.handled().length
      const want = SMUGGLING[kind]
      assert.deepEqual(await postWithHiddenBody(a.url), want.statuses)
      assert.deepEqual(await handledSince(a, from, want.handled.length), want.handled)
    })
  }

  test('python-http-server: with Connection: close on the POST the leftover bytes are never parsed', async () => {
    const a = app('python-http-server')
    const from = a.handled().length
    assert.deepEqual(await postWithHiddenBody(a.url, 'close'), ['HTTP/1.1 200'])
    assert.deepEqual(await handledSince(a, from, 1), [UPLOAD])
  })
})

describe('the differential helper', () => {
  test('requestVariants covers every class of issue #9 with every method and override header, without duplicates', () => {
    const variants = requestVariants()
    const key = (v: Variant) => `${v.method} ${v.target} ${JSON.stringify(v.headers)}`
    assert.equal(new Set(variants.map(key)).size, variants.length)
    const targets = new Set(variants.map((v) => v.target))
    for (const t of ['/ADMIN', '/Admin/x', '/%61dmin', '/%41DMIN/x', '/admin/', '/admin#x', '/public#/../admin', '/x/../admin', '/./admin', '/public/..%2fadmin', '//admin', '/admin;x', '/admin;/x', '/public/..%5cadmin', '/admin?x=1']) {
      assert.ok(targets.has(t), t)
    }
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) assert.ok(variants.some((v) => v.method === m && v.target === '/ADMIN'), m)
    for (const h of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
      for (const m of ['DELETE', 'GET']) assert.ok(variants.some((v) => v.method === 'POST' && v.headers[h] === m), `${h}: ${m}`)
    }
  })

  test('a view that protects nothing: every admin hit of every app is a finding', async () => {
    const variants = [get('/admin'), get('/ADMIN'), get('//admin'), get('/public/x'), { method: 'HEAD', target: '/Admin/x', headers: {} }]
    const findings = await findBypasses([app('express5'), app('python-http-server')], variants, () => ({ rejected: false, protected: false, route: 'everything' }))
    assert.deepEqual(findings, [
      'express5: GET /admin {} -> app served admin (as GET /admin), sidecar route everything unprotected',
      'python-http-server: GET /admin {} -> app served admin (as GET /admin), sidecar route everything unprotected',
      'express5: GET /ADMIN {} -> app served admin (as GET /ADMIN), sidecar route everything unprotected',
      'python-http-server: GET //admin {} -> app served admin (as GET //admin), sidecar route everything unprotected',
      // HEAD is judged by its GET twin
      'express5: HEAD /Admin/x {} -> app served admin (as GET /Admin/x), sidecar route everything unprotected',
    ])
  })

  test('a case-sensitive prefix matcher is caught by the apps that disagree with it, and only by them', async () => {
    const naive = (v: Variant): SidecarView => ({ rejected: false, protected: /^\/admin(\/|$|\?)/.test(v.target), route: 'naive' })
    const findings = await findBypasses([...apps.values()], [get('/admin'), get('/ADMIN/x'), get('//admin'), get('/%61dmin')], naive)
    assert.deepEqual(findings.map((f) => f.slice(0, f.indexOf(' {}'))), [
      'express4: GET /ADMIN/x', 'express5: GET /ADMIN/x', 'koa: GET /ADMIN/x', 'nginx: GET /ADMIN/x',
      'python-http-server: GET //admin', 'flask-wsgiref: GET //admin', 'nginx: GET //admin',
      'flask-wsgiref: GET /%61dmin', 'nginx: GET /%61dmin',
    ])
  })

  test('an admin answer that is not JSON (nginx echoing a `"`) is still a finding', async () => {
    const r = await sendRaw(app('nginx').url, get('/admin/%22'))
    assert.equal(r.body, undefined, r.raw)
    assert.equal(r.handler, 'admin')
    const findings = await findBypasses([app('nginx')], [get('/admin/%22')], () => ({ rejected: false, protected: false }))
    assert.deepEqual(findings, ['nginx: GET /admin/%22 {} -> app served admin (as GET /admin/%22), sidecar route (none) unprotected'])
  })

  test('a strict view (plain paths only, /admin case-insensitive and protected) has no finding over every variant and app', async () => {
    const strict = (v: Variant): SidecarView => {
      const path = v.target.split('?')[0] ?? ''
      if (!/^(\/[A-Za-z0-9_-]+)*\/?$/.test(path)) return { rejected: true, why: 'not a plain path' }
      return /^\/admin(\/|$)/i.test(path) ? { rejected: false, protected: true, route: 'admin' } : { rejected: false, protected: false, route: 'public' }
    }
    const variants = requestVariants()
    // Not vacuous: dozens of variants reach the apps as unprotected.
    const open = variants.filter((v) => {
      const s = strict(v)
      return !s.rejected && !s.protected
    })
    assert.ok(open.length >= 40, String(open.length))
    assert.deepEqual(await findBypasses([...apps.values()], variants, strict), [])
  })

  test('sendRaw reads a chunked JSON answer', async (t) => {
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.write('{"handler":')
      res.end('"admin","n":1}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const r = await sendRaw(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, get('/'))
    assert.match(r.raw, /transfer-encoding: chunked/i)
    assert.deepEqual(r.body, { handler: 'admin', n: 1 })
    assert.equal(r.handler, 'admin')
  })
})
