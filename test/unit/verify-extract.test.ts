import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTokenExtractor } from '../../src/verify/extract.ts'

const ex = createTokenExtractor([{ header: 'Authorization', prefix: 'Bearer ' }, { header: 'X-Token', prefix: '' }])
const raw = (h: Record<string, string>): string[] => Object.entries(h).flat()

test('takes the token after the prefix; the scheme is case-insensitive', () => {
  for (const value of ['Bearer abc.def.ghi', 'bearer abc.def.ghi', 'BEARER  abc.def.ghi']) {
    const h = { authorization: value }
    const r = ex.extract(h, raw(h))
    assert.equal(r.kind, 'token')
    if (r.kind === 'token') assert.equal(r.token, 'abc.def.ghi')
  }
})

test('no token, another scheme, or an empty token', () => {
  assert.equal(ex.extract({}, []).kind, 'none')
  const basic = { authorization: 'Basic dXNlcjpwdw==' }
  assert.equal(ex.extract(basic, raw(basic)).kind, 'none')
  const empty = { authorization: 'Bearer ' }
  assert.equal(ex.extract(empty, raw(empty)).kind, 'invalid')
})

test('a repeated Authorization header is invalid, even though Node keeps only the first', () => {
  const r = ex.extract({ authorization: 'Bearer a.b.c' }, ['Authorization', 'Bearer a.b.c', 'authorization', 'Bearer x.y.z'])
  assert.equal(r.kind, 'invalid')
})

test('the same token in two places is fine; two different tokens are invalid', () => {
  const same = { authorization: 'Bearer a.b.c', 'x-token': 'a.b.c' }
  assert.equal(ex.extract(same, raw(same)).kind, 'token')
  const different = { authorization: 'Bearer a.b.c', 'x-token': 'x.y.z' }
  assert.equal(ex.extract(different, raw(different)).kind, 'invalid')
})
