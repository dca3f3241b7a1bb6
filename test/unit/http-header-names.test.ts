/** Header-name folding, the hop-by-hop set and name patterns (issue #9 §1, §5), table-driven. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FRAMING, HOP_BY_HOP, connectionNamed, endToEndHeaders, foldHeaderName, headerNameMatcher } from '../../src/http/header-names.ts'

test('foldHeaderName: case and _/- fold together, as CGI/WSGI/PHP/Rack read names', () => {
  const cases: [string, string][] = [
    ['X-Auth-Subject', 'x-auth-subject'], ['X_Auth_Subject', 'x-auth-subject'], ['x-auth_subject', 'x-auth-subject'],
    ['X_AUTH_SUBJECT', 'x-auth-subject'], ['authorization', 'authorization'], ['__', '--'],
  ]
  for (const [name, folded] of cases) assert.equal(foldHeaderName(name), folded, name)
})

test('headerNameMatcher: exact names and * patterns, folded on both sides', () => {
  const covered = headerNameMatcher(['X-Auth-Subject', 'X_User'], ['X-Internal-*', 'Remote_*'])
  const cases: [string, boolean][] = [
    ['x-auth-subject', true], ['x_auth_subject', true], ['x-user', true], ['x_user', true],
    ['x-internal-role', true], ['x_internal_role', true], ['x-internal-', true], ['x-internal', false],
    ['remote-user', true], ['remote_user', true], ['x-auth-subjects', false], ['accept', false],
    ['x-internal.role', false],
  ]
  for (const [name, hit] of cases) assert.equal(covered(foldHeaderName(name)), hit, name)
  // Regex metacharacters in a pattern are literal.
  const dots = headerNameMatcher([], ['a.b-*'])
  assert.equal(dots('a.b-x'), true)
  assert.equal(dots('axb-x'), false)
  assert.equal(headerNameMatcher([], [])('anything'), false)
})

test('HOP_BY_HOP and FRAMING name the RFC 9110 §7.6.1 and RFC 9112 §6 headers', () => {
  for (const h of ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']) {
    assert.ok(HOP_BY_HOP.has(h), h)
  }
  for (const h of ['host', 'content-length', 'transfer-encoding']) assert.ok(FRAMING.has(h), h)
  assert.equal(HOP_BY_HOP.has('authorization'), false)
})

test('connectionNamed: the names a Connection header lists, lower-cased', () => {
  const cases: [string | string[] | undefined, string[]][] = [
    [undefined, []], ['close', ['close']], ['Keep-Alive, X-Auth-Subject', ['keep-alive', 'x-auth-subject']],
    [['a', 'B'], ['a', 'b']], [' , x ,', ['x']],
  ]
  for (const [value, names] of cases) assert.deepEqual([...connectionNamed({ connection: value })], names, String(value))
})

test('endToEndHeaders copies what the next hop may see: not hop-by-hop, not Connection-listed, not `drop`', () => {
  const inbound = { connection: 'keep-alive, X-Listed', 'keep-alive': 'timeout=5', te: 'trailers', 'x-listed': 'l', host: 'h', 'x-kept': 'k', 'set-cookie': ['a', 'b'] }
  const out = endToEndHeaders(inbound, new Set(['host']))
  assert.notEqual(out, inbound, 'a fresh object')
  assert.deepEqual(out, { 'x-kept': 'k', 'set-cookie': ['a', 'b'] })
})

test('endToEndHeaders never copies an HTTP/2 pseudo-header (RFC 9113 §8.3): they are the request line, not fields', () => {
  const inbound = { ':method': 'GET', ':path': '/admin', ':authority': 'api.example', ':scheme': 'https', ':protocol': 'websocket', 'x-kept': 'k' }
  assert.deepEqual(endToEndHeaders(inbound, new Set()), { 'x-kept': 'k' })
})
