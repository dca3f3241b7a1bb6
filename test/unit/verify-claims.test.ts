import { test } from 'node:test'
import assert from 'node:assert/strict'
import { claimAt, createClaimRules, typMatches } from '../../src/verify/claims.ts'
import { flatMemberCount, hasDuplicateMembers, parseStrictObject } from '../../src/verify/json.ts'
import { claimMatches, createRouteAuthorizer, grantedScopes } from '../../src/policy/authorize.ts'
import type { IssuerConfig, RouteConfig } from '../../src/config/types.ts'

const issuer = (o: Partial<IssuerConfig> = {}): IssuerConfig => ({
  name: 'corp', issuer: 'https://idp', jwksUri: 'https://idp/jwks', tenants: undefined, discovery: false, discoveryUrl: undefined, keys: [], audiences: ['api'], audienceClaim: 'aud', algorithms: ['RS256'],
  requiredClaims: ['exp'], maxLifetime: undefined, typ: undefined, allowInsecureHttp: false, kidless: { maxCandidates: 1 }, dpop: { mode: 'off', proofMaxAge: 60_000 },
  fetch: { timeout: 5000, maxBytes: 1 << 20, headers: {}, bearerTokenFile: undefined, caFile: undefined },
  refresh: { interval: 300_000, minInterval: 60_000, maxInterval: 3_600_000, unknownKidCooldown: 30_000, unknownKidWait: 2000, maxStale: 86_400_000, discoveryInterval: 86_400_000 },
  ...o,
})
const NOW = 1_800_000_000
const first = (rules: ReturnType<typeof createClaimRules>, p: Record<string, unknown>) => {
  for (const r of rules) {
    const reason = r.check(p, NOW)
    if (reason !== undefined) return reason
  }
  return undefined
}

test('claim rules: exp required, skew both ways, iat in the future, required claims, max lifetime, audience', () => {
  const rules = createClaimRules(issuer({ requiredClaims: ['exp', 'sub'], maxLifetime: 3_600_000 }), 60_000)
  const ok = { exp: NOW + 300, iat: NOW, sub: 'a', aud: 'api' }
  assert.equal(first(rules, ok), undefined)
  assert.equal(first(rules, { ...ok, exp: undefined }), 'missing_claim')
  assert.equal(first(rules, { ...ok, exp: '1' }), 'bad_claim_type', 'issue #9 §2: a registered claim of the wrong type has its own reason')
  assert.equal(first(rules, { ...ok, exp: NOW - 30 }), undefined, 'within skew')
  assert.equal(first(rules, { ...ok, exp: NOW - 60 }), 'expired')
  assert.equal(first(rules, { ...ok, nbf: NOW + 61 }), 'not_yet_valid')
  assert.equal(first(rules, { ...ok, iat: NOW + 61 }), 'issued_in_future')
  assert.equal(first(rules, { ...ok, iat: NOW + 30 }), undefined, 'iat within skew')
  assert.equal(first(rules, { ...ok, sub: undefined }), 'missing_claim')
  assert.equal(first(rules, { ...ok, sub: null }), 'missing_claim')
  assert.equal(first(rules, { ...ok, exp: NOW + 7200, iat: NOW - 1 }), 'lifetime_exceeded')
  assert.equal(first(rules, { ...ok, iat: undefined }), 'missing_claim', 'maxLifetime needs iat')
  assert.equal(first(rules, { ...ok, aud: ['x', 'api'] }), undefined)
  assert.equal(first(rules, { ...ok, aud: 'x' }), 'bad_audience')
  assert.equal(first(rules, { ...ok, aud: undefined }), 'bad_audience')
  for (const r of rules) assert.equal(typeof r.explain(ok, NOW), 'string')
})

test('registered claims of the wrong JSON type are bad_claim_type (issue #9 §2, RFC 7519 §4.1)', () => {
  const rules = createClaimRules(issuer(), 60_000)
  const ok = { iss: 'https://idp', sub: 'alice', aud: 'api', exp: NOW + 300, nbf: NOW, iat: NOW, jti: 'j1' }
  assert.equal(first(rules, ok), undefined)
  const wrong: [string, unknown][] = [
    ['sub', 12345], ['sub', { id: 'admin' }], ['sub', ['admin']], ['sub', true],
    ['iss', 1], ['aud', 5], ['aud', ['api', 5]], ['aud', { a: 'api' }],
    ['exp', '1'], ['exp', true], ['exp', [NOW + 300]], ['nbf', '0'], ['iat', {}], ['jti', 7], ['jti', ['a']],
  ]
  for (const [claim, value] of wrong) {
    assert.equal(first(rules, { ...ok, [claim]: value }), 'bad_claim_type', `${claim}: ${JSON.stringify(value)}`)
    const types = rules.find((r) => r.name === 'types')!
    assert.match(types.explain({ ...ok, [claim]: value }, NOW), new RegExp(`^${claim} .* must be `))
  }
  // null is absent, as for requiredClaims; unregistered claims keep any type.
  assert.equal(first(rules, { ...ok, sub: null, jti: null, nbf: null }), undefined)
  assert.equal(first(rules, { ...ok, roles: { a: 1 }, tid: 5 }), undefined)
  assert.equal(first(rules, { ...ok, aud: [] }), 'bad_audience', 'an empty list has the right type and no audience')
  assert.equal(first(rules, { ...ok, exp: 1.5e9 + 0.5 }), 'expired', 'a NumericDate may be fractional')
})

test('typ is compared as RFC 8725 §3.11 says', () => {
  assert.equal(typMatches('at+jwt', 'at+jwt'), true)
  assert.equal(typMatches('at+jwt', 'application/at+JWT'), true)
  assert.equal(typMatches('at+jwt', 'JWT'), false)
  assert.equal(typMatches('at+jwt', undefined), false)
})

test('strict JSON: duplicate member names at any depth, escaped or not, are refused', () => {
  assert.equal(hasDuplicateMembers('{"sub":"a","sub":"admin"}'), true)
  assert.equal(hasDuplicateMembers('{"sub":"a","\\u0073ub":"admin"}'), true)
  assert.equal(hasDuplicateMembers('{"a":{"r":1,"r":2}}'), true)
  assert.equal(hasDuplicateMembers('{"a":[{"r":1},{"r":2}],"b":"\\"sub\\":"}'), false)
  assert.equal(hasDuplicateMembers('{"a":"x","b":{"a":"y"}}'), false, 'the same name in different objects is fine')
  assert.deepEqual(parseStrictObject('{"sub":"a","sub":"b"}'), { ok: false, why: 'duplicate member names (RFC 7519 §4)' })
  assert.deepEqual(parseStrictObject('[1]'), { ok: false, why: 'not a JSON object' })
})

test('strict JSON, flat objects (counted, not walked): the same verdicts', () => {
  assert.equal(flatMemberCount('{"a":1,"b":[1,"x,y",[2,"z"]],"c":"\\\\"}'), 3)
  assert.equal(flatMemberCount('{"a":"unterminated'), 1, 'never reads past the end')
  assert.equal(flatMemberCount('{ "a" : "}" , "b" : "{" }'), 2, 'braces inside strings do not count')
  assert.equal(flatMemberCount('{"a":{"b":1}}'), -1, 'a nested object takes the full walk')
  assert.equal(flatMemberCount('{"a":[{"b":1}]}'), -1)
  const dup = { ok: false, why: 'duplicate member names (RFC 7519 §4)' }
  assert.deepEqual(parseStrictObject('{"sub":"a","\u0073ub":"admin"}'), dup, 'an escaped name is the same name')
  assert.deepEqual(parseStrictObject('{"__proto__":1,"__proto__":2}'), dup)
  assert.deepEqual(parseStrictObject('{"aud":["x","y"],"roles":["a","a"],"s":"a,\\"b\\":"}'), { ok: true, value: { aud: ['x', 'y'], roles: ['a', 'a'], s: 'a,"b":' } }, 'repeated values and key-like text in strings are fine')
  assert.deepEqual(parseStrictObject('{"x":[1],"y":{"r":1,"r":2}}'), dup, 'nested duplicates still found')
  assert.equal(parseStrictObject('{}').ok, true)
})

test('claim paths use own properties only: __proto__ and inherited members are never consulted', () => {
  const p = JSON.parse('{"__proto__":{"admin":true},"realm_access":{"roles":["a","b"]}}') as Record<string, unknown>
  assert.deepEqual(claimAt(p, ['realm_access', 'roles']), ['a', 'b'])
  assert.equal(claimAt(p, ['admin']), undefined)
  assert.equal(claimAt(p, ['constructor']), undefined)
  assert.equal(claimAt(p, ['toString']), undefined)
})

test('scopes from scope (space-delimited) or scp (string or array); claim values by type; route authorizer', () => {
  assert.deepEqual([...grantedScopes({ scope: 'a b  c' })], ['a', 'b', 'c'])
  assert.deepEqual([...grantedScopes({ scp: ['x', 'y'] })], ['x', 'y'])
  assert.equal(claimMatches(['admin', 'user'], ['admin']), true)
  assert.equal(claimMatches(true, ['true']), false, 'values compare by type')
  const route: RouteConfig = {
    name: 'admin', path: '/admin/**', methods: [], auth: 'required', caseSensitive: false, issuers: ['corp'],
    require: { scopes: ['orders:write'], claims: { 'realm_access.roles': ['admin'], email_verified: [true] } },
  }
  const a = createRouteAuthorizer(route)
  const good = { scope: 'orders:read orders:write', realm_access: { roles: ['admin'] }, email_verified: true }
  assert.equal(a.authorize('corp', good), undefined)
  assert.equal(a.authorize('partner', good), 'issuer_not_allowed')
  assert.equal(a.authorize('corp', { ...good, scope: 'orders:read' }), 'insufficient_scope')
  assert.equal(a.authorize('corp', { ...good, realm_access: { roles: ['user'] } }), 'claim_mismatch')
  assert.equal(a.authorize('corp', { ...good, email_verified: 'true' }), 'claim_mismatch')
  assert.ok(a.explain('corp', good).every((l) => l.ok === true))
  assert.deepEqual(a.explain('corp', { ...good, scope: 'x' }).map((l) => l.ok), [true, false, true, true])
})
