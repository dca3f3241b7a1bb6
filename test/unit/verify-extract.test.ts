import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTokenExtractor, withoutCookies, withoutQueryParams } from '../../src/verify/extract.ts'

const ex = createTokenExtractor([{ kind: 'header', header: 'Authorization', prefix: 'Bearer ' }, { kind: 'header', header: 'X-Token', prefix: '' }])
const raw = (h: Record<string, string>): string[] => Object.entries(h).flat()

test('takes the token after the prefix; the scheme is case-insensitive', () => {
  for (const value of ['Bearer abc.def.ghi', 'bearer abc.def.ghi', 'BEARER  abc.def.ghi']) {
    const h = { authorization: value }
    const r = ex.extract(h, raw(h), undefined)
    assert.equal(r.kind, 'token')
    if (r.kind === 'token') assert.equal(r.token, 'abc.def.ghi')
  }
})

test('no token, another scheme, or an empty token', () => {
  assert.equal(ex.extract({}, [], undefined).kind, 'none')
  const basic = { authorization: 'Basic dXNlcjpwdw==' }
  assert.equal(ex.extract(basic, raw(basic), undefined).kind, 'none')
  const empty = { authorization: 'Bearer ' }
  assert.equal(ex.extract(empty, raw(empty), undefined).kind, 'invalid')
})

test('a repeated Authorization header is invalid, even though Node keeps only the first', () => {
  const r = ex.extract({ authorization: 'Bearer a.b.c' }, ['Authorization', 'Bearer a.b.c', 'authorization', 'Bearer x.y.z'], undefined)
  assert.equal(r.kind, 'invalid')
})

test('the same token in two places is fine; two different tokens are invalid', () => {
  const same = { authorization: 'Bearer a.b.c', 'x-token': 'a.b.c' }
  assert.equal(ex.extract(same, raw(same), undefined).kind, 'token')
  const different = { authorization: 'Bearer a.b.c', 'x-token': 'x.y.z' }
  assert.equal(ex.extract(different, raw(different), undefined).kind, 'invalid')
})

test('cookie and query sources; the same token in several places is fine, different ones are not', () => {
  const all = createTokenExtractor([
    { kind: 'header', header: 'Authorization', prefix: 'Bearer ' },
    { kind: 'cookie', cookie: 'session_jwt' },
    { kind: 'query', query: 'access_token' },
  ])
  const cookie = { cookie: 'theme=dark; session_jwt="a.b.c"; x=1' }
  const fromCookie = all.extract(cookie, raw(cookie), undefined)
  assert.ok(fromCookie.kind === 'token' && fromCookie.token === 'a.b.c' && fromCookie.source.kind === 'cookie')
  const fromQuery = all.extract({}, [], 'page=2&access_token=a.b.c')
  assert.ok(fromQuery.kind === 'token' && fromQuery.token === 'a.b.c' && fromQuery.source.kind === 'query')
  const h = { authorization: 'Bearer a.b.c', cookie: 'session_jwt=a.b.c' }
  assert.equal(all.extract(h, raw(h), 'access_token=a.b.c').kind, 'token')
  assert.equal(all.extract(h, raw(h), 'access_token=x.y.z').kind, 'invalid')
  assert.equal(all.extract({}, [], 'access_token=a.b.c&access_token=x.y.z').kind, 'invalid', 'a repeated parameter with two values')
  assert.equal(all.extract({}, [], 'access_token=%zz').kind, 'invalid')
  const twoCookies = { cookie: 'session_jwt=a.b.c; session_jwt=x.y.z' }
  assert.equal(all.extract(twoCookies, raw(twoCookies), undefined).kind, 'invalid')
})

test('removing a token from the query and from cookies keeps everything else', () => {
  assert.equal(withoutQueryParams('a=1&access_token=t&b=2', new Set(['access_token'])), 'a=1&b=2')
  assert.equal(withoutQueryParams('access_token=t', new Set(['access_token'])), undefined)
  assert.equal(withoutCookies('a=1; session_jwt=t; b=2', new Set(['session_jwt'])), 'a=1; b=2')
  assert.equal(withoutCookies('session_jwt=t', new Set(['session_jwt'])), undefined)
})

test('issue #9 §3: the credential is exactly a b64token in every source; OWS is SP/HTAB only', () => {
  const all = createTokenExtractor([
    { kind: 'header', header: 'Authorization', prefix: 'Bearer ' },
    { kind: 'cookie', cookie: 'session_jwt' },
    { kind: 'query', query: 'access_token' },
  ])
  const header = (v: string) => all.extract({ authorization: v }, ['Authorization', v], undefined)
  const cookie = (v: string) => all.extract({ cookie: v }, ['Cookie', v], undefined)
  const query = (q: string) => all.extract({}, [], q)
  const cases: [string, ReturnType<typeof header>['kind'], ReturnType<typeof header>][] = [
    ['header: token', 'token', header('Bearer a.b.c')],
    ['header: padding =', 'token', header('Bearer abc==')],
    ['header: more spaces after the scheme', 'token', header('Bearer    a.b.c')],
    ['header: trailing SP/HTAB', 'token', header('Bearer a.b.c \t')],
    ['header: NBSP after the token', 'invalid', header('Bearer a.b.c\u00a0')],
    ['header: BOM before the token', 'invalid', header('Bearer \ufeffa.b.c')],
    ['header: a space inside', 'invalid', header('Bearer a.b c')],
    ['header: a comma', 'invalid', header('Bearer a.b.c, x')],
    ['header: a quote', 'invalid', header('Bearer "a.b.c"')],
    ['header: HTAB instead of SP after the scheme (not our prefix)', 'none', header('Bearer\ta.b.c')],
    ['cookie: token', 'token', cookie('session_jwt=a.b.c')],
    ['cookie: OWS around it', 'token', cookie(' session_jwt = a.b.c ')],
    ['cookie: NBSP after the value', 'invalid', cookie('session_jwt=a.b.c\u00a0')],
    ['cookie: NBSP before the name (another cookie)', 'none', cookie('\u00a0session_jwt=a.b.c')],
    ['query: token', 'token', query('access_token=a.b.c')],
    ['query: %20 inside', 'invalid', query('access_token=a.b%20c')],
    ['query: + (a space in form encoding)', 'invalid', query('access_token=a.b+c')],
    ['query: %C2%A0 after', 'invalid', query('access_token=a.b.c%C2%A0')],
  ]
  for (const [name, kind, r] of cases) assert.equal(r.kind, kind, name)
})
