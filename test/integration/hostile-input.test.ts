/**
 * Hostile input over real HTTP: forged and confused JOSE headers (alg none, HS256 with the
 * public key, CVE-2022-21449 psychic signatures, embedded jwk / jku / x5u), parser
 * differentials (duplicate JSON members, `__proto__`), oversized and broken transport input,
 * ambiguous token sources, header injection and path tricks. Every token is built at test
 * time with keys generated now, every request goes over a loopback socket and is sent
 * verbatim (node:http, or a raw `net` socket where an HTTP client refuses the bytes), and
 * every rejection asserts the status, the `reason` and that the upstream saw nothing.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyObject, createHmac, createPublicKey, generateKeyPairSync, sign } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { startHttpServer, startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestServer, TestUpstream } from '../helpers/issuer.ts'
import { startSidecar } from '../helpers/sidecar.ts'
import type { TestSidecar } from '../helpers/sidecar.ts'

let corp: TestIssuer
let partner: TestIssuer
let upstream: TestUpstream
let attacker: TestServer
let attackerHits = 0
let sidecar: TestSidecar
/** The attacker's own RSA key pair (for the embedded-jwk, jku and x5u headers). */
const evil = generateKeyPairSync('rsa', { modulusLength: 2048 })

before(async () => {
  corp = await startTestIssuer({ alg: 'RS256', kids: ['k1'] })
  partner = await startTestIssuer({ alg: 'ES256', kids: ['e1'] })
  upstream = await startUpstream()
  // The "attacker" key server: any request here means the sidecar followed a token's URL.
  attacker = await startHttpServer((_req, res) => {
    attackerHits++
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: [{ ...evil.publicKey.export({ format: 'jwk' }), kid: 'attacker-kid', alg: 'RS256', use: 'sig' }] }))
  })
  sidecar = await startSidecar(`
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
upstream:
  url: ${upstream.url}
  timeout: 5s
issuers:
  - name: corp
    issuer: ${JSON.stringify(corp.issuer)}
    jwksUri: ${JSON.stringify(corp.jwksUri)}
    audiences: [test-api]
    algorithms: [RS256]
    refresh: { unknownKidCooldown: 30s, unknownKidWait: 500ms }
  - name: partner
    issuer: ${JSON.stringify(partner.issuer)}
    jwksUri: ${JSON.stringify(partner.jwksUri)}
    audiences: [test-api]
    algorithms: [ES256]
    refresh: { unknownKidCooldown: 30s, unknownKidWait: 500ms }
tokens:
  from:
    - header: Authorization
      prefix: "Bearer "
    - query: access_token
identity:
  headers: { X-Auth-Subject: sub, X-Auth-Roles: roles }
  strip: ["X-Auth-*"]
routes:
  - { name: public, path: /public/**, auth: none }
  - { name: admin, path: /admin/**, auth: required, require: { scopes: [admin] } }
  - { name: default, path: /**, auth: required }
log:
  level: debug
  access: true
`)
})

after(async () => {
  await sidecar?.close()
  await Promise.all([corp?.close(), partner?.close(), upstream?.close(), attacker?.close()])
})

// ---------------------------------------------------------------------------------------------
// Generic helpers: verbatim requests, compact JWS by hand
// ---------------------------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
}

/** node:http sends the path verbatim (undici and fetch resolve dot segments before sending). */
function get(path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const { hostname, port } = new URL(sidecar.proxyUrl)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method: 'GET', headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * Write `head` (the request line and header lines, CRLF-joined by the caller) on a raw socket
 * and read until the server closes. Returns the status code of the first response line, or 0
 * when the connection ended without one (a reset counts as an ending, not a failure).
 */
function raw(head: string): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(sidecar.proxyUrl)
  return new Promise((resolve) => {
    let text = ''
    const sock = connect(Number(port), hostname, () => sock.end(head))
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => { text += d })
    const done = (): void => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text)
      resolve({ status: m === null ? 0 : Number(m[1]), text })
    }
    sock.on('close', done)
    sock.on('error', () => { /* ECONNRESET/EPIPE after the server refused: 'close' follows */ })
    sock.setTimeout(5_000, () => sock.destroy())
  })
}

const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url')
const now = (): number => Math.floor(Date.now() / 1000)
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` })
/** A claims set corp would accept, as JSON text (callers splice hostile members into it). */
const claimsText = (iss: string, extra = ''): string => `{"iss":${JSON.stringify(iss)},"aud":"test-api","iat":${now()},"exp":${now() + 300}${extra}}`

/** The compact JWS of the exact header and payload texts given, RS256-signed with `key`. */
function rs256(headerText: string, payloadText: string, key: KeyObject): string {
  const input = `${b64u(headerText)}.${b64u(payloadText)}`
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`
}

const corpPrivate = (): KeyObject => KeyObject.from(corp.keys()[0]!.privateKey)

/** The parsed `{error, reason}` body of a sidecar denial. */
function body(r: Reply): { error: unknown; reason: unknown } {
  try {
    return JSON.parse(r.text) as { error: unknown; reason: unknown }
  } catch {
    assert.fail(`status ${r.status}: body is not JSON: ${JSON.stringify(r.text.slice(0, 200))}`)
  }
}

/** One row of a table: a request and the denial it must get. */
interface Denied {
  readonly name: string
  readonly path?: string
  readonly headers: () => Promise<Record<string, string>> | Record<string, string>
  readonly status: number
  readonly reason: string
}

/** Send the row's request; assert status, reason, that nothing was forwarded and no token echoed. */
async function expectDenied(c: Denied): Promise<Reply> {
  const headers = await c.headers()
  const seen = upstream.requests()
  const r = await get(c.path ?? '/x', headers)
  const b = body(r)
  assert.deepEqual({ status: r.status, reason: b.reason }, { status: c.status, reason: c.reason }, `${c.name}: ${r.text}`)
  assert.equal(typeof b.error, 'string')
  assert.equal(upstream.requests(), seen, `${c.name}: the upstream must not be contacted`)
  const auth = headers.authorization
  if (auth !== undefined && auth.length > 40) assert.ok(!r.text.includes(auth.slice(7, 47)), 'the token is never echoed')
  return r
}

/** Send a request that must be forwarded: 200, exactly one upstream request; returns what it saw. */
async function expectForwarded(path: string, headers: Record<string, string>) {
  const seen = upstream.requests()
  const r = await get(path, headers)
  assert.equal(r.status, 200, `${path}: ${r.text}`)
  assert.equal(upstream.requests(), seen + 1, 'exactly one upstream request')
  return upstream.last()!
}

function table(cases: readonly Denied[]): void {
  for (const c of cases) test(`${c.name} → ${c.status} ${c.reason}`, async () => { await expectDenied(c) })
}

// ---------------------------------------------------------------------------------------------
// 1–5: JOSE header attacks
// ---------------------------------------------------------------------------------------------

describe('alg none, in every casing', () => {
  const payload = (): string => b64u(claimsText(corp.issuer, ',"sub":"admin"'))
  const cases: Denied[] = []
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    const h = (): string => b64u(JSON.stringify({ alg, typ: 'JWT' }))
    cases.push(
      { name: `alg ${alg}, empty signature (h.p.)`, headers: () => bearer(`${h()}.${payload()}.`), status: 401, reason: 'malformed' },
      { name: `alg ${alg}, garbage signature`, headers: () => bearer(`${h()}.${payload()}.${b64u('garbage-signature-bytes')}`), status: 401, reason: 'alg_not_allowed' },
      { name: `alg ${alg}, signature segment stripped (h.p)`, headers: () => bearer(`${h()}.${payload()}`), status: 401, reason: 'malformed' },
    )
  }
  table(cases)
})

describe('HS256 with the issuer RSA public key as the HMAC secret (algorithm confusion)', () => {
  const hs256 = (secret: string): Record<string, string> => {
    const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'k1' }))}.${b64u(claimsText(corp.issuer, ',"sub":"admin"'))}`
    return bearer(`${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`)
  }
  const pub = (): KeyObject => createPublicKey(corpPrivate())
  table([
    { name: 'secret = SPKI PEM text', headers: () => hs256(pub().export({ type: 'spki', format: 'pem' }).toString()), status: 401, reason: 'alg_not_allowed' },
    { name: 'secret = PKCS#1 PEM text', headers: () => hs256(pub().export({ type: 'pkcs1', format: 'pem' }).toString()), status: 401, reason: 'alg_not_allowed' },
    { name: 'secret = the served JWK JSON text', headers: () => hs256(JSON.stringify(corp.jwks().keys[0])), status: 401, reason: 'alg_not_allowed' },
  ])
})

describe('CVE-2022-21449 psychic ECDSA signatures (partner, ES256, kid e1)', () => {
  // P-256 group order n (SEC 2 §2.4.2).
  const n = Buffer.from('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 'hex')
  const forged = (sig: Buffer): Record<string, string> =>
    bearer(`${b64u(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'e1' }))}.${b64u(claimsText(partner.issuer, ',"sub":"admin"'))}.${sig.toString('base64url')}`)
  test('control: a genuine partner token is forwarded', async () => {
    assert.equal((await expectForwarded('/x', bearer(await partner.sign({ sub: 'bob' })))).headers['x-auth-subject'], 'bob')
  })
  table([
    { name: 'r = s = 0 (64 zero bytes)', headers: () => forged(Buffer.alloc(64)), status: 401, reason: 'bad_signature' },
    { name: 'r = s = n', headers: () => forged(Buffer.concat([n, n])), status: 401, reason: 'bad_signature' },
  ])
})

describe('keys named by the token itself: embedded jwk, jku, x5u', () => {
  const evilToken = (header: Record<string, unknown>): Record<string, string> =>
    bearer(rs256(JSON.stringify({ alg: 'RS256', typ: 'JWT', ...header }), claimsText(corp.issuer, ',"sub":"admin"'), evil.privateKey))
  table([
    { name: 'embedded jwk (attacker key, attacker signature, no kid)', headers: () => evilToken({ jwk: evil.publicKey.export({ format: 'jwk' }) }), status: 401, reason: 'bad_signature' },
    { name: 'jku → attacker JWKS, kid attacker-kid', headers: () => evilToken({ kid: 'attacker-kid', jku: `${attacker.url}/jwks.json` }), status: 401, reason: 'unknown_kid' },
    { name: 'x5u → attacker URL, kid attacker-kid', headers: () => evilToken({ kid: 'attacker-kid', x5u: `${attacker.url}/cert.pem` }), status: 401, reason: 'unknown_kid' },
  ])
  test('the attacker server never got a request', () => {
    assert.equal(attackerHits, 0)
  })
})

describe('hostile kid values', () => {
  const withKid = (kid: string) => async (): Promise<Record<string, string>> => bearer(await corp.sign({ sub: 'admin' }, { kid }))
  table([
    { name: 'kid ../../../../etc/passwd', headers: withKid('../../../../etc/passwd'), status: 401, reason: 'unknown_kid' },
    { name: "kid ' OR 1=1--", headers: withKid("' OR 1=1--"), status: 401, reason: 'unknown_kid' },
    { name: 'kid {"$ne":null}', headers: withKid('{"$ne":null}'), status: 401, reason: 'unknown_kid' },
    { name: 'kid of 10 KiB (token > tokens.maxBytes)', headers: withKid('k'.repeat(10 * 1024)), status: 401, reason: 'malformed' },
  ])
})

// ---------------------------------------------------------------------------------------------
// 6–7: JSON parser differentials
// ---------------------------------------------------------------------------------------------

describe('duplicate JSON member names', () => {
  const header = '{"alg":"RS256","typ":"JWT","kid":"k1"}'
  test('control: the hand-built RS256 token is forwarded', async () => {
    const seen = await expectForwarded('/x', bearer(rs256(header, claimsText(corp.issuer, ',"sub":"a"'), corpPrivate())))
    assert.equal(seen.headers['x-auth-subject'], 'a')
  })
  table([
    { name: 'payload {"sub":"a","sub":"admin"}', headers: () => bearer(rs256(header, claimsText(corp.issuer, ',"sub":"a","sub":"admin"'), corpPrivate())), status: 401, reason: 'malformed' },
    // A last-wins parser would see RS256 here; a first-wins one, none.
    { name: 'header {"alg":"none",…,"alg":"RS256"}', headers: () => bearer(rs256('{"alg":"none","typ":"JWT","kid":"k1","alg":"RS256"}', claimsText(corp.issuer, ',"sub":"a"'), corpPrivate())), status: 401, reason: 'malformed' },
  ])
})

describe('__proto__ in the payload is a plain member, never a prototype', () => {
  // roles too, so a prototype leak would also show up as an identity header.
  const token = (): string => rs256('{"alg":"RS256","typ":"JWT","kid":"k1"}', claimsText(corp.issuer, ',"sub":"alice","__proto__":{"scope":"admin","roles":["root"]}'), corpPrivate())
  table([{ name: '__proto__.scope admin on /admin/x', path: '/admin/x', headers: () => bearer(token()), status: 403, reason: 'insufficient_scope' }])
  test('on /x: forwarded with x-auth-subject and no x-auth-roles', async () => {
    const seen = await expectForwarded('/x', bearer(token()))
    assert.equal(seen.headers['x-auth-subject'], 'alice')
    assert.equal(seen.headers['x-auth-roles'], undefined)
  })
})

// ---------------------------------------------------------------------------------------------
// 8–9: size and transport
// ---------------------------------------------------------------------------------------------

describe('oversized tokens', () => {
  test('a 100 KB token: Node refuses the header block (431 or 400) before the sidecar sees it', async () => {
    const seen = upstream.requests()
    const { port } = new URL(sidecar.proxyUrl)
    const r = await raw(`GET /x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${'a'.repeat(100 * 1024)}\r\nConnection: close\r\n\r\n`)
    assert.ok(r.status === 431 || r.status === 400, `status ${r.status}: ${JSON.stringify(r.text.slice(0, 200))}`)
    assert.equal(upstream.requests(), seen)
  })
  table([{
    name: 'a 9 KB signed token (over tokens.maxBytes 8 KiB)',
    headers: async () => {
      const t = await corp.sign({ sub: 'alice', pad: 'p'.repeat(6_600) })
      assert.ok(t.length > 9_000 && t.length < 10 * 1024, `token is ${t.length} bytes`)
      return bearer(t)
    },
    status: 401,
    reason: 'malformed',
  }])
})

describe('whitespace and bare LF inside the token', () => {
  // RFC 6750 §2.1: the credential is one b64token; a space inside is not a bad token but a
  // malformed request (issue #9 §3), refused before any parsing.
  table([
    { name: 'Bearer aaa.bbb ccc', headers: () => bearer('aaa.bbb ccc'), status: 400, reason: 'invalid_request' },
    {
      name: 'a valid token with a space inserted',
      headers: async () => {
        const t = await corp.sign({ sub: 'alice' })
        return bearer(`${t.slice(0, 30)} ${t.slice(30)}`)
      },
      status: 400,
      reason: 'invalid_request',
    },
  ])
  test('a bare LF inside the Authorization value → 400 from the HTTP parser, upstream untouched', async () => {
    const seen = upstream.requests()
    const { port } = new URL(sidecar.proxyUrl)
    const t = await corp.sign({ sub: 'alice' })
    // If LF were taken as a line end, the second half would become a header of its own.
    const r = await raw(`GET /x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${t}\nX-Injected: 1\r\nConnection: close\r\n\r\n`)
    assert.equal(r.status, 400, JSON.stringify(r.text.slice(0, 300)))
    assert.equal(upstream.requests(), seen)
  })
})

// ---------------------------------------------------------------------------------------------
// 10–11: token sources, header injection
// ---------------------------------------------------------------------------------------------

describe('a token in the header and the query', () => {
  test('different tokens in Authorization and ?access_token → 400 invalid_request', async () => {
    const other = await corp.sign({ sub: 'bob' })
    await expectDenied({ name: 'header ≠ query', path: `/x?access_token=${other}`, headers: async () => bearer(await corp.sign({ sub: 'alice' })), status: 400, reason: 'invalid_request' })
  })
  test('the same valid token in both → forwarded, and access_token is removed from the query', async () => {
    const t = await corp.sign({ sub: 'alice' })
    const seen = await expectForwarded(`/x?a=1&access_token=${t}&b=2`, bearer(t))
    assert.ok(!seen.url.includes('access_token'), seen.url)
    assert.ok(!seen.url.includes(t.split('.')[2]!), seen.url)
    assert.equal(seen.url, '/x?a=1&b=2', 'the other parameters pass through unchanged')
    assert.equal(seen.headers['x-auth-subject'], 'alice')
  })
})

describe('CR/LF in a forwarded claim', () => {
  test('sub "eve\\r\\nX-Admin: true" → 200, no x-admin, an RFC 8187 ext-value', async () => {
    const seen = await expectForwarded('/x', bearer(await corp.sign({ sub: 'eve\r\nX-Admin: true' })))
    assert.equal(seen.headers['x-admin'], undefined)
    assert.equal(seen.headers['x-auth-subject'], "UTF-8''eve%0D%0AX-Admin%3A%20true")
  })
})

// ---------------------------------------------------------------------------------------------
// 12: path tricks
// ---------------------------------------------------------------------------------------------

describe('path tricks', () => {
  describe('without a token (only /public/** is auth: none)', () => {
    const none = (): Record<string, string> => ({})
    table([
      ...['/public/../admin', '/public/%2e%2e/admin', '/public/%2E%2E/admin', '/%61dmin', '//admin', '/admin;x', '/admin?x=/public'].map(
        (path): Denied => ({ name: path, path, headers: none, status: 401, reason: 'missing_token' }),
      ),
      ...['/public/..%2fadmin', '/public/..%2Fadmin', '/public/..%5cadmin', '/public%2f..%2fadmin'].map(
        (path): Denied => ({ name: path, path, headers: none, status: 400, reason: 'invalid_request' }),
      ),
    ])
  })

  const tricks = ['/public/../admin/x', '/%61dmin/x', '//admin/x']

  describe('a valid token without the admin scope', () => {
    for (const path of tricks) {
      test(`${path} → 403 insufficient_scope with a scope challenge`, async () => {
        const r = await expectDenied({ name: path, path, headers: async () => bearer(await corp.sign({ sub: 'alice', scope: 'read write' })), status: 403, reason: 'insufficient_scope' })
        const challenge = String(r.headers['www-authenticate'])
        assert.ok(challenge.includes('error="insufficient_scope"'), challenge)
        assert.ok(challenge.includes('scope="admin"'), challenge)
      })
    }
  })

  describe('a token with scope admin', () => {
    for (const path of tricks) {
      test(`${path} → 200, the upstream receives /admin/x`, async () => {
        const seen = await expectForwarded(path, bearer(await corp.sign({ sub: 'root', scope: 'admin' })))
        assert.equal(seen.url, '/admin/x')
        assert.equal(seen.headers['x-auth-subject'], 'root')
      })
    }
  })
})

// ---------------------------------------------------------------------------------------------
// 13: Connection-nominated identity headers
// ---------------------------------------------------------------------------------------------

describe('a spoofed identity header named in Connection', () => {
  const spoof = { 'x-auth-subject': 'admin', connection: 'X-Auth-Subject' }
  test('on /public/x: forwarded without x-auth-subject', async () => {
    const seen = await expectForwarded('/public/x', spoof)
    assert.equal(seen.headers['x-auth-subject'], undefined)
  })
  test('on /x with a valid token: x-auth-subject is the verified sub', async () => {
    const seen = await expectForwarded('/x', { ...spoof, ...bearer(await corp.sign({ sub: 'alice' })) })
    assert.equal(seen.headers['x-auth-subject'], 'alice')
  })
})

// ---------------------------------------------------------------------------------------------
// 14–19: issue #9, requests the sidecar and the app behind it would read differently
// (test/integration/framework-differential.test.ts runs the same classes against real apps)
// ---------------------------------------------------------------------------------------------

describe('issue #9 §1: header names legacy stacks fold together (X_Auth_Subject is X-Auth-Subject to CGI/WSGI)', () => {
  // First: the request.header_dropped lines are rate-limited (10 per 10 s), and this one reads them.
  test('any other name with "_" is dropped by default (identity.underscoreHeaders: drop), and counted', async () => {
    const seen = await expectForwarded('/public/x', { 'X_Forwarded_For': '10.0.0.1', 'x_custom': '1', 'x-kept': 'yes' })
    assert.equal(seen.headers['x-kept'], 'yes')
    assert.equal(Object.keys(seen.headers).some((h) => h.includes('_')), false, JSON.stringify(seen.headers))
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text()
    assert.match(metrics, /jwt_sidecar_inbound_header_names_total\{kind="alias",action="dropped"\} [1-9]/)
    assert.match(metrics, /jwt_sidecar_inbound_header_names_total\{kind="underscore",action="dropped"\} [1-9]/)
    const line = sidecar.logs().find((l) => l.event === 'request.header_dropped' && JSON.stringify(l.names).includes('x_custom'))
    assert.ok(line !== undefined, 'a request.header_dropped line names the headers')
    assert.ok(!sidecar.logText().includes('10.0.0.1'), 'header values are never logged')
  })
  const spoofs = ['X_Auth_Subject', 'x-auth_subject', 'X_AUTH_SUBJECT', 'X-Auth_Roles', 'x_auth_anything']
  for (const name of spoofs) {
    test(`${name}: evil on auth: none → forwarded without any spelling of it`, async () => {
      const seen = await expectForwarded('/public/x', { [name]: 'evil' })
      for (const h of Object.keys(seen.headers)) assert.ok(!h.replaceAll('_', '-').startsWith('x-auth-'), `${h} reached the upstream`)
    })
    test(`${name}: evil with a valid token → only the verified identity reaches the upstream`, async () => {
      const seen = await expectForwarded('/x', { [name]: 'evil', ...bearer(await corp.sign({ sub: 'alice' })) })
      assert.equal(seen.headers['x-auth-subject'], 'alice')
      assert.ok(!JSON.stringify(seen.headers).includes('evil'), JSON.stringify(seen.headers))
    })
  }
})

describe('issue #9 §2: registered claims of the wrong JSON type', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['sub 12345', { sub: 12345 }],
    ['sub {"id":"admin"}', { sub: { id: 'admin' } }],
    ['sub ["admin"]', { sub: ['admin'] }],
    ['aud ["test-api", 5]', { aud: ['test-api', 5] }],
    ['exp "9999999999"', { exp: '9999999999' }],
    ['nbf true', { nbf: true }],
    ['jti 7', { jti: 7 }],
  ]
  table(cases.map(([name, claims]): Denied => ({ name, headers: async () => bearer(await corp.sign({ sub: 'alice', ...claims })), status: 401, reason: 'bad_claim_type' })))
  table([{ name: 'iss 5 (signed, so it cannot pick an issuer either)', headers: () => bearer(rs256('{"alg":"RS256","kid":"k1"}', `{"iss":5,"aud":"test-api","exp":${now() + 300}}`, corpPrivate())), status: 401, reason: 'bad_claim_type' }])
})

describe('issue #9 §3: the credential is exactly one b64token (RFC 6750 §2.1), in every source', () => {
  test('Bearer <token> followed by 0xA0 → 400 invalid_request (trim() would have accepted it)', async () => {
    const seen = upstream.requests()
    const { port } = new URL(sidecar.proxyUrl)
    const t = await corp.sign({ sub: 'alice' })
    const head = `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${t}\u00a0\r\nConnection: close\r\n\r\n`
    const r = await raw(head)
    assert.equal(r.status, 400, r.text.slice(0, 300))
    assert.match(r.text, /"reason":"invalid_request"/)
    assert.equal(upstream.requests(), seen)
  })
  test('extra spaces after the scheme and trailing OWS are fine', async () => {
    const t = await corp.sign({ sub: 'alice' })
    const seen = await expectForwarded('/x', { authorization: `Bearer    ${t}` })
    assert.equal(seen.headers['x-auth-subject'], 'alice')
  })
  table([
    { name: 'query token with a space (percent-encoded)', path: '/x?access_token=abc%20def', headers: () => ({}), status: 400, reason: 'invalid_request' },
    { name: 'query token with a NBSP', path: '/x?access_token=abc%C2%A0', headers: () => ({}), status: 400, reason: 'invalid_request' },
    { name: 'Bearer token,other', headers: () => bearer('aaa.bbb.ccc,ddd'), status: 400, reason: 'invalid_request' },
  ])
})

describe('issue #9 §6: request targets the app reads differently from the route matcher', () => {
  const noAdmin = async (): Promise<Record<string, string>> => bearer(await corp.sign({ sub: 'alice', scope: 'read' }))
  table([
    { name: 'fragment /admin#x', path: '/admin#x', headers: () => ({}), status: 400, reason: 'invalid_request' },
    { name: 'fragment /public#/../admin', path: '/public#/../admin', headers: () => ({}), status: 400, reason: 'invalid_request' },
    { name: 'fragment after the query /public/x?a#b', path: '/public/x?a#b', headers: () => ({}), status: 400, reason: 'invalid_request' },
    ...['/ADMIN/x', '/Admin', '/%41DMIN/users', '/aDmIn/'].map((path): Denied => ({ name: `letter case ${path} (no admin scope)`, path, headers: noAdmin, status: 403, reason: 'insufficient_scope' })),
    ...['/PUBLIC/x', '/Public'].map((path): Denied => ({ name: `letter case ${path} is not the auth: none route`, path, headers: () => ({}), status: 401, reason: 'missing_token' })),
  ])
  test('method-override headers never reach the upstream (requests.methodOverride: strip)', async () => {
    const seen = await expectForwarded('/public/x', { 'x-http-method-override': 'DELETE', 'x-http-method': 'PUT', 'x-method-override': 'PATCH', 'x_http_method_override': 'DELETE' })
    for (const h of ['x-http-method-override', 'x-http-method', 'x-method-override', 'x_http_method_override']) assert.equal(seen.headers[h], undefined, h)
  })
})
