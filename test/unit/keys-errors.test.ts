/**
 * keys/errors.ts: one closed set of codes; every error a key source throws is a KeyError whose
 * code is in it, so callers branch on `code` and the reported text is always `code: message`.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DiscoveryError, discoverJwksUri } from '../../src/keys/discovery.ts'
import { JwksFetchError, KEY_ERROR_CODES, KeyError, describeKeyError } from '../../src/keys/errors.ts'
import type { FetchJson } from '../../src/keys/fetcher.ts'
import { InvalidJwksError, parseJwks } from '../../src/keys/key-set.ts'

const codes: ReadonlySet<string> = new Set(KEY_ERROR_CODES)

describe('key errors', () => {
  it('the code set is closed: no duplicates, snake_case (it prefixes every reported refresh error)', () => {
    assert.equal(codes.size, KEY_ERROR_CODES.length)
    for (const c of KEY_ERROR_CODES) assert.match(c, /^[a-z][a-z_]*$/)
  })

  it('the fetch, discovery and JWKS errors are KeyErrors with their own name and a code from the set', async () => {
    const fetchError = new JwksFetchError('status', 'HTTP 503: expected 200', { status: 503 })
    const notFound: FetchJson = () => Promise.reject(fetchError)
    const notAnObject: FetchJson = () => Promise.resolve({ status: 'ok', body: [], validators: { etag: undefined, lastModified: undefined }, maxAgeMs: undefined })
    const thrown = await Promise.all([
      discoverJwksUri('https://idp.example', notFound, { allowInsecureHttp: false }).catch((e: unknown) => e),
      discoverJwksUri('https://idp.example', notAnObject, { allowInsecureHttp: false }).catch((e: unknown) => e),
      parseJwks({ nokeys: [] }, ['RS256']).catch((e: unknown) => e),
    ])
    assert.equal(thrown[0], fetchError, 'a fetch failure passes through discovery as is')
    assert.ok(thrown[1] instanceof DiscoveryError)
    assert.ok(thrown[2] instanceof InvalidJwksError)
    for (const [err, name, code] of [[thrown[0], 'JwksFetchError', 'status'], [thrown[1], 'DiscoveryError', 'discovery'], [thrown[2], 'InvalidJwksError', 'invalid_jwks']] as const) {
      assert.ok(err instanceof KeyError && err instanceof Error, name)
      assert.equal(err.name, name)
      assert.equal(err.code, code)
      assert.ok(codes.has(err.code), name)
    }
    assert.equal(fetchError.status, 503)
  })

  it('describeKeyError: `code: message` for a KeyError, the bare message for anything else', () => {
    assert.equal(describeKeyError(new KeyError('no_usable_keys', 'no usable keys (2 rejected)')), 'no_usable_keys: no usable keys (2 rejected)')
    assert.equal(describeKeyError(new JwksFetchError('timeout', 'no complete response within 5000 ms')), 'timeout: no complete response within 5000 ms')
    // A code on a foreign error is not ours to repeat (Node's ENOENT, or a look-alike).
    assert.equal(describeKeyError(Object.assign(new Error('boom'), { code: 'network' })), 'boom')
    assert.equal(describeKeyError('a string'), 'a string')
    const cause = new Error('socket hang up')
    assert.equal(new KeyError('network', 'x', { cause }).cause, cause)
  })
})
