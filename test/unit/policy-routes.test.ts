import { test } from 'node:test'
import assert from 'node:assert/strict'
import { normalizePath } from '../../src/policy/normalize.ts'
import { compilePathPattern, createRouteMatcher } from '../../src/policy/routes.ts'
import type { RouteConfig } from '../../src/config/types.ts'

test('exact, prefix (/**) and one-segment (*) patterns', () => {
  const exact = compilePathPattern('/healthz')
  assert.equal(exact('/healthz'), true)
  assert.equal(exact('/healthz/'), false)
  assert.equal(exact('/healthzz'), false)
  const prefix = compilePathPattern('/api/**')
  assert.equal(prefix('/api'), true)
  assert.equal(prefix('/api/'), true)
  assert.equal(prefix('/api/v1/orders'), true)
  assert.equal(prefix('/apix'), false)
  const all = compilePathPattern('/**')
  assert.equal(all('/'), true)
  assert.equal(all('/anything/at/all'), true)
  const seg = compilePathPattern('/users/*/profile')
  assert.equal(seg('/users/42/profile'), true)
  assert.equal(seg('/users/42/43/profile'), false)
  assert.equal(seg('/users//profile'), false)
  const dots = compilePathPattern('/a.b/*')
  assert.equal(dots('/aXb/1'), false, 'regex metacharacters in patterns are literal')
})

test('first match wins, methods filter, no match is undefined (deny)', () => {
  const routes: RouteConfig[] = [
    { name: 'health', path: '/healthz', methods: ['GET'], auth: 'none', caseSensitive: true, issuers: [], require: { scopes: [], claims: {} } },
    { name: 'public', path: '/public/**', methods: [], auth: 'optional', caseSensitive: true, issuers: [], require: { scopes: [], claims: {} } },
    { name: 'api', path: '/api/**', methods: [], auth: 'required', caseSensitive: false, issuers: [], require: { scopes: [], claims: {} } },
  ]
  const m = createRouteMatcher(routes)
  assert.equal(m.match('GET', '/healthz')?.name, 'health')
  assert.equal(m.match('POST', '/healthz'), undefined)
  assert.equal(m.match('GET', '/public/x')?.name, 'public')
  assert.equal(m.match('DELETE', '/api/orders/1')?.name, 'api')
  assert.equal(m.match('GET', '/other'), undefined)
})

test('route matching sees the normalised path, so a rule cannot be dodged by spelling', () => {
  const m = createRouteMatcher([
    { name: 'admin', path: '/admin/**', methods: [], auth: 'required', caseSensitive: false, issuers: [], require: { scopes: [], claims: {} } },
    { name: 'open', path: '/**', methods: [], auth: 'none', caseSensitive: true, issuers: [], require: { scopes: [], claims: {} } },
  ])
  for (const p of ['/%61dmin/users', '/public/../admin/users', '//admin//users', '/./admin/users']) {
    const n = normalizePath(p)
    assert.ok(n.ok, p)
    assert.equal(m.match('GET', n.path)?.name, 'admin', p)
  }
})

test('issue #9 §6: routes that protect match any letter case and a trailing slash; routes that admit match exactly', () => {
  const route = (o: Partial<RouteConfig> & Pick<RouteConfig, 'name' | 'path' | 'auth' | 'caseSensitive'>): RouteConfig => ({ methods: [], issuers: [], require: { scopes: [], claims: {} }, ...o })
  const m = createRouteMatcher([
    route({ name: 'health', path: '/healthz', auth: 'none', caseSensitive: true }),
    route({ name: 'public', path: '/public/**', auth: 'optional', caseSensitive: true }),
    route({ name: 'users', path: '/api/users', auth: 'required', caseSensitive: false }),
    route({ name: 'user', path: '/api/users/*', auth: 'required', caseSensitive: false }),
    route({ name: 'admin', path: '/admin/**', auth: 'required', caseSensitive: false }),
    route({ name: 'closed', path: '/internal/**', auth: 'deny', caseSensitive: false }),
    route({ name: 'exact-case', path: '/Reports', auth: 'required', caseSensitive: true }),
    route({ name: 'default', path: '/**', auth: 'required', caseSensitive: false }),
  ])
  const cases: [string, string][] = [
    ['/healthz', 'health'], ['/HEALTHZ', 'default'], ['/healthz/', 'default'],
    ['/public/x', 'public'], ['/PUBLIC/x', 'default'], ['/public/', 'public'],
    ['/api/users', 'users'], ['/api/users/', 'users'], ['/API/Users', 'users'], ['/api/users//', 'default'],
    ['/api/users/42', 'user'], ['/api/users/42/', 'user'], ['/Api/Users/42', 'user'],
    ['/admin', 'admin'], ['/ADMIN/x', 'admin'], ['/aDmIn/', 'admin'], ['/administrator', 'default'],
    ['/INTERNAL/x', 'closed'],
    ['/Reports', 'exact-case'], ['/Reports/', 'exact-case'], ['/reports', 'default'],
  ]
  for (const [path, name] of cases) assert.equal(m.match('GET', path)?.name, name, path)
})
