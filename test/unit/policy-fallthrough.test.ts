/** check-config's fall-through analysis (issue #9 §4): a method-scoped requirement a method can walk around. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { findFallThroughs, requiresLess, samplePaths } from '../../src/policy/fallthrough.ts'
import type { RouteConfig } from '../../src/config/types.ts'

const route = (o: Partial<RouteConfig> & Pick<RouteConfig, 'name' | 'path'>): RouteConfig => ({
  methods: [], auth: 'required', caseSensitive: false, issuers: [], require: { scopes: [], claims: {} }, ...o,
})

test('samplePaths covers the pattern itself', () => {
  assert.deepEqual(samplePaths('/api/**'), ['/api', '/api/x'])
  assert.deepEqual(samplePaths('/**'), ['/', '/x'])
  assert.deepEqual(samplePaths('/users/*/profile'), ['/users/x/profile'])
  assert.deepEqual(samplePaths('/exact'), ['/exact'])
})

test('requiresLess compares auth, issuers, scopes and claims', () => {
  const strict = route({ name: 's', path: '/a/**', issuers: ['corp'], require: { scopes: ['w'], claims: { role: ['admin'] } } })
  const cases: [Partial<RouteConfig>, boolean][] = [
    [{ auth: 'none' }, true],
    [{ auth: 'optional' }, true],
    [{ auth: 'deny' }, false],
    [{}, true],
    [{ issuers: ['corp'], require: { scopes: ['w'], claims: { role: ['admin'] } } }, false],
    [{ issuers: ['corp'], require: { scopes: ['w', 'x'], claims: { role: ['admin'] } } }, false],
    [{ issuers: ['corp', 'partner'], require: { scopes: ['w'], claims: { role: ['admin'] } } }, true],
    [{ issuers: ['corp'], require: { scopes: [], claims: { role: ['admin'] } } }, true],
    [{ issuers: ['corp'], require: { scopes: ['w'], claims: { role: ['admin', 'user'] } } }, true],
    [{ issuers: ['corp'], require: { scopes: ['w'], claims: {} } }, true],
  ]
  for (const [o, less] of cases) assert.equal(requiresLess(route({ name: 'o', path: '/**', ...o }), strict), less, JSON.stringify(o))
})

test('the issue #9 example warns; deny, an equally strict route or no catch-all do not', () => {
  const orders = route({ name: 'orders', path: '/api/**', methods: ['GET', 'HEAD'], require: { scopes: ['orders:read'], claims: {} } })
  const found = findFallThroughs([orders, route({ name: 'default', path: '/**' })])
  assert.equal(found.length, 1)
  assert.deepEqual({ route: found[0]!.route, to: found[0]!.to, methods: found[0]!.methods }, { route: 0, to: 1, methods: ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'] })
  assert.deepEqual(findFallThroughs([orders, route({ name: 'closed', path: '/api/**', auth: 'deny' }), route({ name: 'default', path: '/**' })]), [])
  assert.deepEqual(findFallThroughs([orders, route({ name: 'writes', path: '/api/**', require: { scopes: ['orders:read', 'orders:write'], claims: {} } })]), [])
  assert.deepEqual(findFallThroughs([orders]), [], 'no route for the other methods: no_route, fail closed')
  // A method given its own rule is a decision, even a weaker one; the rest still fall through.
  const two = findFallThroughs([orders, route({ name: 'public-post', path: '/api/**', methods: ['POST'], auth: 'none' }), route({ name: 'default', path: '/**' })])
  assert.deepEqual(two.map((f) => [f.to, f.methods]), [[2, ['PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']]])
  // Two weaker catch-alls on the way: each is named with the methods that reach it.
  const split = findFallThroughs([orders, route({ name: 'api-any', path: '/api/**', auth: 'optional' }), route({ name: 'default', path: '/**' })])
  assert.deepEqual(split.map((f) => [f.to, f.methods]), [[1, ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']]])
  // A route without requirements, or without methods, has nothing to walk around.
  assert.deepEqual(findFallThroughs([route({ name: 'r', path: '/a', methods: ['GET'] }), route({ name: 'o', path: '/**', auth: 'none' })]), [])
  assert.deepEqual(findFallThroughs([route({ name: 'r', path: '/a', require: { scopes: ['x'], claims: {} } }), route({ name: 'o', path: '/**', auth: 'none' })]), [])
})
