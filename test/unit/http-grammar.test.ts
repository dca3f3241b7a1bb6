/** The one grammar module (issue #9 §5): every caller's notion of a token, a b64token and OWS, table-driven. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKEN_PATTERN, isB64Token, isToken, trimOws } from '../../src/http/grammar.ts'

test('isToken: RFC 9110 §5.6.2 token (header names, methods, cookie names)', () => {
  const cases: [string, boolean][] = [
    ['Authorization', true], ['X-Auth-Subject', true], ['x_auth_subject', true], ["!#$%&'*+-.^_`|~", true], ['GET', true],
    ['', false], ['X Auth', false], ['X:Auth', false], ['X\r\nAuth', false], ['Ä', false], ['a(b)', false], ['a"b', false], ['a/b', false],
  ]
  for (const [s, ok] of cases) assert.equal(isToken(s), ok, JSON.stringify(s))
  // The schema uses the same pattern (cookie names): it must be the same language.
  const re = new RegExp(TOKEN_PATTERN)
  for (const [s, ok] of cases) assert.equal(re.test(s), ok, JSON.stringify(s))
})

test('isB64Token: RFC 6750 §2.1, trailing "=" only, nothing outside the alphabet', () => {
  const cases: [string, boolean][] = [
    ['eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln', true], ['a-._~+/b', true], ['abc==', true], ['=', false], ['a=b', false],
    ['', false], ['abc def', false], ['abc\u00a0', false], ['abc\t', false], ['abc,def', false], ['abc"', false], ['é', false],
  ]
  for (const [s, ok] of cases) assert.equal(isB64Token(s), ok, JSON.stringify(s))
})

test('trimOws: SP and HTAB only (RFC 9110 §5.6.3), never the Unicode spaces trim() removes', () => {
  const cases: [string, string][] = [
    [' a ', 'a'], ['\ta\t', 'a'], [' \t a b \t ', 'a b'], ['a', 'a'], ['', ''], ['   ', ''],
    ['a\u00a0', 'a\u00a0'], ['\ufeffa', '\ufeffa'], ['a\u2028', 'a\u2028'], ['a\r', 'a\r'],
  ]
  for (const [s, out] of cases) assert.equal(trimOws(s), out, JSON.stringify(s))
  const same = 'untouched'
  assert.equal(trimOws(same), same)
})
