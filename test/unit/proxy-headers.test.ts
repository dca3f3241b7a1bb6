import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHeaderPolicy, formatClaim } from '../../src/proxy/headers.ts'

test('stripInbound removes configured names, patterns and every identity header, case-insensitively', () => {
  const policy = createHeaderPolicy({
    headers: { 'X-Auth-Subject': 'sub', 'X-User-Email': 'email' },
    strip: ['X-Auth-*', 'X-Internal-Role'],
    forwardToken: true,
    arrays: 'join',
    maxValueBytes: 4096,
    claimsHeader: undefined,
    underscoreHeaders: 'drop',
  })
  const headers: Record<string, string> = {
    'x-auth-subject': 'spoof', 'x-auth-anything': 'spoof', 'x-user-email': 'spoof',
    'x-internal-role': 'admin', 'x-auth': 'kept (pattern needs the dash)', accept: 'kept',
  }
  policy.stripInbound(headers)
  assert.deepEqual(headers, { 'x-auth': 'kept (pattern needs the dash)', accept: 'kept' })
})

test('setIdentity maps claims to headers and skips missing claims', () => {
  const policy = createHeaderPolicy({ headers: { 'X-Auth-Subject': 'sub', 'X-Auth-Scopes': 'scope', 'X-Auth-Email': 'email' }, strip: [], forwardToken: true, arrays: 'join', maxValueBytes: 4096, claimsHeader: undefined, underscoreHeaders: 'drop' })
  const out: Record<string, string | string[] | undefined> = {}
  policy.setIdentity(out, { sub: 'alice', scope: 'a b' })
  assert.deepEqual(out, { 'x-auth-subject': 'alice', 'x-auth-scopes': 'a b' })
})

test('formatClaim: strings, numbers, booleans, arrays, objects', () => {
  assert.equal(formatClaim('alice'), 'alice')
  assert.equal(formatClaim(42), '42')
  assert.equal(formatClaim(true), 'true')
  assert.equal(formatClaim(['a', 'b', 3]), 'a,b,3')
  assert.equal(formatClaim({ roles: ['x'] }), '{"roles":["x"]}')
  assert.equal(formatClaim(undefined), undefined)
  assert.equal(formatClaim(null), undefined)
})

test('formatClaim: CR/LF, NUL and non-ASCII become an RFC 8187 ext-value, never raw', () => {
  assert.equal(formatClaim('alice\r\nX-Admin: yes'), "UTF-8''alice%0D%0AX-Admin%3A%20yes")
  assert.equal(formatClaim('a\u0000b'), "UTF-8''a%00b")
  assert.equal(formatClaim('Jürgen'), "UTF-8''J%C3%BCrgen")
  assert.equal(decodeURIComponent(formatClaim('Jürgen €')!.slice(7)), 'Jürgen €')
})

test("formatClaim: a raw value that poses as an ext-value is encoded too, so it decodes to itself", () => {
  const smuggled = "UTF-8''%0D%0AX-Admin: true"
  const sent = formatClaim(smuggled)!
  assert.equal(sent, "UTF-8''UTF-8%27%27%250D%250AX-Admin%3A%20true")
  assert.equal(decodeURIComponent(sent.slice(7)), smuggled)
  assert.equal(formatClaim("utf-8'x"), "UTF-8''utf-8%27x")
  assert.equal(formatClaim("it's fine"), "it's fine")
})
