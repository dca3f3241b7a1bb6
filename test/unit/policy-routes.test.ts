import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkPath, compilePathPattern, createRouteMatcher } from '../../src/policy/routes.ts'
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
    { name: 'health', path: '/healthz', methods: ['GET'], auth: 'none' },
    { name: 'public', path: '/public/**', methods: [], auth: 'optional' },
    { name: 'api', path: '/api/**', methods: [], auth: 'required' },
  ]
  const m = createRouteMatcher(routes)
  assert.equal(m.match('GET', '/healthz')?.name, 'health')
  assert.equal(m.match('POST', '/healthz'), undefined)
  assert.equal(m.match('GET', '/public/x')?.name, 'public')
  assert.equal(m.match('DELETE', '/api/orders/1')?.name, 'api')
  assert.equal(m.match('GET', '/other'), undefined)
})

test('ambiguous paths are refused rather than guessed', () => {
  assert.deepEqual(checkPath('/api/orders/1'), { ok: true, path: '/api/orders/1' })
  assert.deepEqual(checkPath('/a.b/c..d/.well-known'), { ok: true, path: '/a.b/c..d/.well-known' }, 'dots inside segments are fine')
  for (const p of ['/public/../admin', '/public/./x', '/public/%2e%2e/admin', '/public/%2E./admin', '/a%2Fb', '/a%5cb', '/a\\b', '//admin', '/a//b', '/a/%2F/b', 'relative', '/bad%zzescape', '/trailing%4']) {
    assert.equal(checkPath(p).ok, false, p)
  }
})

test('encoded unreserved characters are decoded for matching, so a rule cannot be dodged (RFC 3986 §6.2.2.2)', () => {
  assert.deepEqual(checkPath('/%61dmin/%7Eusers/a%2Db'), { ok: true, path: '/admin/~users/a-b' })
  assert.deepEqual(checkPath('/files/a%20b%3f'), { ok: true, path: '/files/a%20b%3F' }, 'reserved and other escapes stay encoded')
  const m = createRouteMatcher([
    { name: 'admin', path: '/admin/**', methods: [], auth: 'required' },
    { name: 'open', path: '/**', methods: [], auth: 'none' },
  ])
  const checked = checkPath('/%61dmin/users')
  assert.ok(checked.ok)
  assert.equal(m.match('GET', checked.path)?.name, 'admin')
  assert.equal(checkPath('/%2F%2Fadmin').ok, false)
})
