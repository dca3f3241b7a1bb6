/**
 * The nesting-depth scan that runs before JSON.parse of any key document (issue #9 §8).
 * Pure function, no I/O: the fetcher, static-file and key-store tests cover where it is used.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { jsonDepthExceededAt, MAX_JSON_DEPTH } from '../../src/keys/json-bounds.ts'

/** `depth` nested arrays around `inner`: `[[inner]]` for depth 2. */
const nested = (depth: number, inner = ''): string => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`

/** The real depth of a JSON text, by walking what JSON.parse built: the scan must agree with it. */
function parsedDepth(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0
  const children = Array.isArray(value) ? (value as unknown[]) : Object.values(value)
  return 1 + Math.max(0, ...children.map(parsedDepth))
}

void describe('jsonDepthExceededAt', () => {
  // [what, JSON text, its depth]. Every text is valid JSON, so the table is checked against
  // JSON.parse too: a scan that miscounts strings would disagree with the parser.
  const table: ReadonlyArray<readonly [string, string, number]> = [
    ['a scalar', '"keys"', 0],
    ['an empty object', '{}', 1],
    ['an empty array', '[]', 1],
    ['a JWKS with x5c (the deepest real key document)', '{"keys":[{"kty":"RSA","x5c":["MIIC"]}]}', 4],
    ['a discovery document with mtls_endpoint_aliases', '{"issuer":"https://idp","mtls_endpoint_aliases":{"token_endpoint":"https://mtls"}}', 2],
    ['siblings do not add up', '[[1],[2],[3],{"a":1},{"b":"]"},[]]', 2],
    ['brackets and braces inside a string', '{"a":"[[[[{{{{]]]]}}}}"}', 1],
    ['an escaped quote does not end the string', String.raw`{"a":"\"[[[[{{{{"}`, 1],
    ['an escaped backslash before the closing quote does end it', String.raw`["\\",[[]]]`, 3],
    ['three backslashes: an escaped backslash, then an escaped quote', String.raw`["\\\"[[[[",[]]`, 2],
    ['four backslashes then the closing quote', String.raw`["\\\\",[[[]]]]`, 4],
    ['\\u0022 is not a quote to the scanner either', String.raw`["\u0022[[[["]`, 1],
    ['a string that is only backslash pairs', String.raw`["\\\\\\\\"]`, 1],
    ['an empty string followed by nesting', '["",[[""]]]', 3],
    ['a string key full of brackets', '{"[[[[":{"]]]]":[]}}', 3],
    ['whitespace between tokens', ' [ [ { "a" : [ ] } ] ] ', 4],
  ]
  for (const [what, text, depth] of table) {
    void it(`${what}: depth ${depth}`, () => {
      assert.equal(parsedDepth(JSON.parse(text)), depth, 'the table itself is right')
      assert.equal(jsonDepthExceededAt(text, depth), undefined, 'at the bound: accepted')
      if (depth > 0) {
        const at = jsonDepthExceededAt(text, depth - 1)
        assert.ok(at !== undefined, 'one below the bound: refused')
        assert.ok(text[at] === '[' || text[at] === '{', `the offset ${at} points at an opening bracket`)
      }
    })
  }

  void it(`depth exactly ${MAX_JSON_DEPTH} (the default bound) passes; ${MAX_JSON_DEPTH + 1} is refused at the first extra level`, () => {
    assert.equal(jsonDepthExceededAt(nested(MAX_JSON_DEPTH)), undefined)
    assert.equal(jsonDepthExceededAt(nested(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH)
    const jwks = `{"keys":${nested(MAX_JSON_DEPTH - 1)}}`
    assert.equal(jsonDepthExceededAt(jwks), undefined)
    assert.equal(jsonDepthExceededAt(`{"keys":${nested(MAX_JSON_DEPTH)}}`), '{"keys":'.length + MAX_JSON_DEPTH - 1)
  })

  void it('refuses a 400,000-deep document (issue #9 §8) at its 33rd character, closed or not', () => {
    assert.equal(jsonDepthExceededAt(nested(400_000)), MAX_JSON_DEPTH)
    assert.equal(jsonDepthExceededAt('['.repeat(400_000)), MAX_JSON_DEPTH)
    assert.equal(jsonDepthExceededAt(`{"keys":${'{"a":'.repeat(400_000)}1${'}'.repeat(400_000)}}`), '{"keys":'.length + (MAX_JSON_DEPTH - 1) * '{"a":'.length)
  })

  void it('counts past a 1 MiB string without looking inside it', () => {
    const big = `{"keys":[{"x5c":["${'A'.repeat(1024 * 1024)}"]}]}`
    assert.equal(jsonDepthExceededAt(big), undefined)
    assert.equal(jsonDepthExceededAt(big, 3), big.indexOf('["'))
  })

  void it('leaves malformed text to JSON.parse: unterminated strings and stray closers are not its business', () => {
    assert.equal(jsonDepthExceededAt('["[[[[[[', 1), undefined, 'the rest is string')
    assert.equal(jsonDepthExceededAt(String.raw`["\"`, 1), undefined)
    assert.equal(jsonDepthExceededAt(']]]][[[[', 4), undefined, 'JSON.parse refuses the first "]" before any nesting')
    assert.equal(jsonDepthExceededAt('<html>[oops]</html>', 1), undefined)
    assert.equal(jsonDepthExceededAt('', 0), undefined)
  })
})
