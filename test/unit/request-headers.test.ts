import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHeaderPolicy, formatClaim } from '../../src/request/headers.ts'

test('stripInbound removes configured names, patterns and every identity header, case-insensitively', () => {
  const policy = createHeaderPolicy({
    headers: { 'X-Auth-Subject': 'sub', 'X-User-Email': 'email' },
    strip: ['X-Auth-*', 'X-Internal-Role'],
    forwardToken: true,
    arrays: 'join',
    maxValueBytes: 4096,
    claimsHeader: undefined,
    bindingHeader: undefined,
    underscoreHeaders: 'drop',
  })
  const headers: Record<string, string> = {
    'x-auth-subject': 'spoof', 'x-auth-anything': 'spoof', 'x-user-email': 'spoof',
    'x-internal-role': 'admin', 'x-auth': 'kept (pattern needs the dash)', accept: 'kept',
  }
  policy.stripInbound(headers)
  assert.deepEqual(headers, { 'x-auth': 'kept (pattern needs the dash)', accept: 'kept' })
})

test('stripInbound leaves HTTP/2 pseudo-headers alone, even under a pattern that matches their names', () => {
  // `*th` and `*ity` pass the config checks (they spare Authorization) and match `:path` and `:authority`.
  const policy = createHeaderPolicy({ headers: {}, strip: ['*th', '*ity'], forwardToken: true, arrays: 'join', maxValueBytes: 4096, claimsHeader: undefined, bindingHeader: undefined, underscoreHeaders: 'reject' })
  const headers: Record<string, string> = { ':method': 'GET', ':path': '/x', ':authority': 'api.example', ':scheme': 'https', 'x-depth': 'spoof', 'x-identity': 'spoof' }
  assert.equal(policy.stripInbound(headers)?.rejected, undefined)
  assert.deepEqual(headers, { ':method': 'GET', ':path': '/x', ':authority': 'api.example', ':scheme': 'https' })
})

test('setIdentity maps claims to headers and skips missing claims', () => {
  const policy = createHeaderPolicy({ headers: { 'X-Auth-Subject': 'sub', 'X-Auth-Scopes': 'scope', 'X-Auth-Email': 'email' }, strip: [], forwardToken: true, arrays: 'join', maxValueBytes: 4096, claimsHeader: undefined, bindingHeader: undefined, underscoreHeaders: 'drop' })
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

test('issue #9 §1: names are compared folded (case, _ and -); identity.underscoreHeaders decides the rest', () => {
  const identity = { headers: { 'X-Auth-Subject': 'sub' }, strip: ['X-Internal-*'], forwardToken: true, arrays: 'join', maxValueBytes: 4096, claimsHeader: 'X-Auth-Claims', bindingHeader: undefined } as const
  const inbound = (): Record<string, string> => ({
    'x-auth-subject': 's', x_auth_subject: 's', 'x-auth_subject': 's', x_auth_claims: 'c', x_internal_role: 'r',
    'x-http-method-override': 'DELETE', x_http_method: 'DELETE', x_api_token: 't', x_forwarded_for: '1.2.3.4', transfer_encoding: 'chunked',
    x_custom: 'kept only with allow', 'x-api-token': 'the token source itself', accept: '*/*',
  })
  const kinds = (r: ReturnType<ReturnType<typeof createHeaderPolicy>['stripInbound']>) => Object.fromEntries((r?.dropped ?? []).map((d) => [d.name, d.kind]))

  const drop = createHeaderPolicy({ ...identity, underscoreHeaders: 'drop' }, { tokenHeaders: ['x-api-token'] })
  const h1 = inbound()
  const r1 = drop.stripInbound(h1)
  assert.deepEqual(h1, { 'x-api-token': 'the token source itself', accept: '*/*' })
  assert.equal(r1?.rejected, undefined)
  assert.deepEqual(kinds(r1), {
    'x-auth-subject': 'protected', x_auth_subject: 'alias', 'x-auth_subject': 'alias', x_auth_claims: 'alias', x_internal_role: 'alias',
    'x-http-method-override': 'protected', x_http_method: 'alias', x_api_token: 'alias', x_forwarded_for: 'alias', transfer_encoding: 'alias',
    x_custom: 'underscore',
  })

  const allow = createHeaderPolicy({ ...identity, underscoreHeaders: 'allow' }, { tokenHeaders: ['x-api-token'] })
  const h2 = inbound()
  allow.stripInbound(h2)
  assert.deepEqual(h2, { x_custom: 'kept only with allow', 'x-api-token': 'the token source itself', accept: '*/*' }, 'aliases go in every mode')

  const reject = createHeaderPolicy({ ...identity, underscoreHeaders: 'reject' }, { tokenHeaders: ['x-api-token'] })
  const r3 = reject.stripInbound({ accept: '*/*', x_custom: '1' })
  assert.deepEqual(r3?.rejected, { name: 'x_custom', kind: 'underscore' })
  assert.equal(reject.stripInbound({ accept: '*/*', 'x-auth-subject': 's' })?.rejected, undefined, 'a protected name without _ is dropped, not a reason to reject')

  const honor = createHeaderPolicy({ ...identity, underscoreHeaders: 'allow' }, { stripMethodOverride: false })
  const h4: Record<string, string> = { 'x-http-method-override': 'DELETE', 'x-method-override': 'PUT' }
  assert.equal(honor.stripInbound(h4), undefined, 'nothing done, nothing allocated')
  assert.deepEqual(h4, { 'x-http-method-override': 'DELETE', 'x-method-override': 'PUT' })
  // Under honor the routes are matched with the `-` spellings only: a `_` spelling the app may
  // fold into one would name a method nobody checked, so it goes even where `_` names are allowed.
  const h5: Record<string, string> = { 'x-http-method-override': 'GET', x_http_method_override: 'DELETE', x_method_override: 'PUT', x_custom: 'kept' }
  assert.deepEqual(kinds(honor.stripInbound(h5)), { x_http_method_override: 'alias', x_method_override: 'alias' })
  assert.deepEqual(h5, { 'x-http-method-override': 'GET', x_custom: 'kept' })
})

const identity = (headers: Record<string, string | { claim: string; arrays?: 'join' | 'json' | 'space' }>, arrays: 'join' | 'json' | 'space' = 'join') =>
  createHeaderPolicy({ headers, strip: [], forwardToken: true, arrays, maxValueBytes: 64, claimsHeader: undefined, bindingHeader: undefined, underscoreHeaders: 'drop' })

test("formatClaim 'space': arrays of scope tokens joined with one space, the RFC 9068 scope shape (issue #12 §7)", () => {
  assert.equal(formatClaim(['orders:read', 'orders:write'], 'space'), 'orders:read orders:write')
  assert.equal(formatClaim([], 'space'), '')
  // A string is sent as it is: `scope: "a b"` and `scp: ["a","b"]` arrive in one shape.
  assert.equal(formatClaim('a b', 'space'), 'a b')
  assert.equal(formatClaim({ k: ['a'] }, 'space'), '{"k":["a"]}')
  // Still never read as an ext-value by an app that decodes them.
  assert.equal(formatClaim(["UTF-8'x", 'y'], 'space'), "UTF-8''UTF-8%27x%20y")
})

test("formatClaim 'space': an element that is not a scope token refuses the whole value (null), never a shape read two ways", () => {
  for (const bad of [['a b'], ['a', ''], ['a', 3], ['a', null], ['a', ['b']], ['a"b'], ['a\\b'], ['a\tb'], ['Jürgen']]) {
    assert.equal(formatClaim(bad, 'space'), null, JSON.stringify(bad))
  }
  // The other forms keep their behaviour.
  assert.equal(formatClaim(['a b', 3], 'join'), 'a b,3')
  assert.equal(formatClaim(['a b'], 'json'), '["a b"]')
})

test('a header may name its own array form: groups comma-joined and scp space-joined in one config', () => {
  const policy = identity({ 'X-Auth-Groups': 'groups', 'X-Auth-Scopes': { claim: 'scp', arrays: 'space' }, 'X-Auth-Roles': { claim: 'realm_access.roles' } })
  const out: Record<string, string | string[] | undefined> = {}
  assert.equal(policy.setIdentity(out, { groups: ['ops', 'dev'], scp: ['orders:read', 'orders:write'], realm_access: { roles: ['admin', 'clerk'] } }), undefined)
  assert.deepEqual(out, { 'x-auth-groups': 'ops,dev', 'x-auth-scopes': 'orders:read orders:write', 'x-auth-roles': 'admin,clerk' })
  // Without its own form a header follows identity.arrays.
  const spaced: Record<string, string | string[] | undefined> = {}
  identity({ 'X-Auth-Scopes': 'scp', 'X-Auth-Groups': { claim: 'groups', arrays: 'json' } }, 'space').setIdentity(spaced, { scp: ['a', 'b'], groups: ['g h'] })
  assert.deepEqual(spaced, { 'x-auth-scopes': 'a b', 'x-auth-groups': '["g h"]' })
})

test("setIdentity: a 'space' array that is not all scope tokens is not sent and is reported as not_joinable", () => {
  const policy = identity({ 'X-Auth-Scopes': { claim: 'scp', arrays: 'space' }, 'X-Auth-Subject': 'sub', 'X-Auth-Bio': 'bio' })
  const out: Record<string, string | string[] | undefined> = { 'x-auth-scopes': undefined }
  const dropped = policy.setIdentity(out, { sub: 'alice', scp: ['read', 'admin write'], bio: 'x'.repeat(65) })
  assert.deepEqual(out, { 'x-auth-scopes': undefined, 'x-auth-subject': 'alice' })
  assert.deepEqual(dropped, [
    { header: 'x-auth-scopes', cause: 'not_joinable', bytes: 0 },
    { header: 'x-auth-bio', cause: 'too_long', bytes: 65 },
  ])
})

test('setIdentity: the binding header names what a sender-constrained token was proven with; absent for an unbound one; always stripped inbound; a consumed header\'s alias is stripped', () => {
  const policy = createHeaderPolicy(
    { headers: { 'X-Auth-Subject': 'sub' }, strip: [], forwardToken: true, arrays: 'join', maxValueBytes: 4096, claimsHeader: undefined, bindingHeader: 'X-Auth-Binding', underscoreHeaders: 'allow' },
    { consumedHeaders: ['x-client-cert'] },
  )
  assert.ok(policy.identityNames.includes('x-auth-binding'))
  const set = (binding?: { jkt: string | undefined; x5t: string | undefined }): Record<string, string | string[] | undefined> => {
    const out: Record<string, string | string[] | undefined> = {}
    policy.setIdentity(out, { sub: 'alice' }, binding)
    return out
  }
  assert.deepEqual(set(), { 'x-auth-subject': 'alice' })
  assert.deepEqual(set({ jkt: 'J', x5t: undefined }), { 'x-auth-subject': 'alice', 'x-auth-binding': 'jkt=J' })
  assert.deepEqual(set({ jkt: undefined, x5t: 'X' }), { 'x-auth-subject': 'alice', 'x-auth-binding': 'x5t#S256=X' })
  assert.deepEqual(set({ jkt: 'J', x5t: 'X' }), { 'x-auth-subject': 'alice', 'x-auth-binding': 'jkt=J, x5t#S256=X' })
  assert.deepEqual(set({ jkt: undefined, x5t: undefined }), { 'x-auth-subject': 'alice' })
  const inbound: Record<string, string> = { 'x-auth-binding': 'jkt=forged', x_auth_binding: 'jkt=forged', 'x-client-cert': 'read by the sidecar', x_client_cert: 'forged', x_other: 'kept (allow)' }
  policy.stripInbound(inbound)
  assert.deepEqual(inbound, { 'x-client-cert': 'read by the sidecar', x_other: 'kept (allow)' })
})
