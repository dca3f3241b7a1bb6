/**
 * The key index (src/keys/key-index.ts): what `getKey` reads on every request. Lookups by kid
 * (first key wins), the kid-less rule (a key only when exactly one could have signed, or up to
 * kidless.maxCandidates keys), the
 * pre-allocated results, and how static and remote keys are merged.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import type { Algorithm } from '../../src/config/types.ts'
import { EMPTY_INDEX, buildIndex, mergeSources } from '../../src/keys/key-index.ts'
import type { KeySource, VerificationKey } from '../../src/keys/types.ts'

const EC = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
const RSA = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey

let n = 0
/** A VerificationKey as the key set makes them (the index never looks inside the KeyObject). */
function key(kid: string | undefined, algorithms: readonly Algorithm[], source: KeySource = 'jwks'): VerificationKey {
  const rsa = algorithms.some((a) => a.startsWith('RS') || a.startsWith('PS'))
  return Object.freeze({
    kid,
    thumbprint: `thumb-${++n}`,
    kty: rsa ? 'RSA' : 'EC',
    alg: algorithms.length === 1 ? algorithms[0] : undefined,
    algorithms: new Set(algorithms),
    key: rsa ? RSA : EC,
    source,
  })
}

test('byKid: each kid gives its key and a frozen {ok: true, key} result, the same object on every lookup', () => {
  const a = key('a', ['ES256'])
  const b = key('b', ['RS256', 'PS256'])
  const idx = buildIndex([a, b])
  assert.equal(idx.byKid.get('a')?.key, a)
  assert.equal(idx.byKid.get('b')?.key, b)
  assert.deepEqual(idx.byKid.get('a')?.result, { ok: true, key: a })
  assert.ok(Object.isFrozen(idx.byKid.get('a')) && Object.isFrozen(idx.byKid.get('a')?.result))
  // Pre-allocated: the hot path hands out this object, it never builds one per request.
  assert.equal(idx.byKid.get('a')?.result, idx.byKid.get('a')?.result)
  assert.equal(idx.byKid.get('c'), undefined)
  // kids are compared exactly: no case folding, no trimming.
  assert.equal(idx.byKid.get('A'), undefined)
  assert.equal(idx.byKid.get('a '), undefined)
})

test('a duplicate kid: the first key keeps it; the later key stays in the key list', () => {
  const first = key('dup', ['ES256'])
  const second = key('dup', ['ES256'])
  const idx = buildIndex([first, second])
  assert.equal(idx.byKid.get('dup')?.key, first)
  assert.deepEqual(idx.keys, [first, second])
  assert.equal(idx.byKid.size, 1)
})

test('a kid-less key is not in byKid; a token without kid gets a key only when exactly one key supports its alg', () => {
  const es = key(undefined, ['ES256'])
  const rsa = key('r1', ['RS256', 'PS256'])
  const idx = buildIndex([es, rsa])
  assert.equal(idx.byKid.size, 1)
  assert.deepEqual(idx.noKid.get('ES256'), { ok: true, key: es })
  // A key with several algorithms is the single candidate for each of them; kids do not matter here.
  assert.equal(idx.noKid.get('RS256'), idx.byKid.get('r1')?.result, 'the same pre-allocated result as the kid lookup')
  assert.equal(idx.noKid.get('PS256'), idx.byKid.get('r1')?.result)
  assert.equal(idx.noKid.get('ES384'), undefined, 'no key for the alg')
})

test('two keys that could have signed, default maxCandidates 1: unknown_kid for that alg, saying how many fit (one request never costs N signature checks)', () => {
  const one = key(undefined, ['ES256'])
  const two = key('k2', ['ES256'])
  const rsa = key('r', ['RS256', 'PS256'])
  const pss = key('p', ['PS256'])
  const idx = buildIndex([one, two, rsa, pss])
  assert.deepEqual(idx.noKid.get('ES256'), { ok: false, reason: 'unknown_kid', fitting: 2 })
  assert.deepEqual(idx.noKid.get('PS256'), { ok: false, reason: 'unknown_kid', fitting: 2 })
  assert.equal(idx.noKid.get('RS256'), idx.byKid.get('r')?.result, 'RS256 still has exactly one candidate')
  assert.deepEqual(buildIndex([one, two, rsa, pss], 1), idx, 'the default is 1')
  // Two keys sharing a kid are still two candidates for a kid-less token.
  assert.deepEqual(buildIndex([key('same', ['ES256']), key('same', ['ES256'])]).noKid.get('ES256'), { ok: false, reason: 'unknown_kid', fitting: 2 })
})

test('kidless.maxCandidates N: up to N keys that fit the alg are candidates, in index order, the first as `key`; more than N: none (unknown_kid with the count)', () => {
  const old = key(undefined, ['RS256'], 'file:/keys/old.pem')
  const next = key(undefined, ['RS256', 'PS256'])
  const third = key('k3', ['RS256'])
  const ec = key(undefined, ['ES256'])
  const idx = buildIndex([old, next, third, ec], 3)
  const rs = idx.noKid.get('RS256')
  assert.ok(rs?.ok === true)
  assert.equal(rs.key, old)
  assert.deepEqual(rs.candidates, [old, next, third], 'index order: static first, then the JWKS in document order')
  assert.ok(Object.isFrozen(rs) && Object.isFrozen(rs.candidates))
  assert.equal(idx.noKid.get('RS256'), rs, 'pre-allocated: the same object on every lookup')
  // Only keys whose type and declared alg fit: the EC key is never a candidate for RS256, nor the RSA keys for ES256.
  assert.deepEqual(idx.noKid.get('ES256'), { ok: true, key: ec }, 'exactly one fits: the plain result, no candidate list')
  assert.deepEqual(idx.noKid.get('PS256'), { ok: true, key: next })
  assert.deepEqual(buildIndex([old, next, third, ec], 2).noKid.get('RS256'), { ok: false, reason: 'unknown_kid', fitting: 3 }, 'three fit, bound 2: none is tried')
  assert.equal(buildIndex([old, next, third, ec], 5).noKid.get('RS256')?.ok, true)
})

test('the index is frozen and owns its key list: changing the input array afterwards changes nothing', () => {
  const a = key('a', ['ES256'])
  const input = [a]
  const idx = buildIndex(input)
  input.push(key('b', ['ES256']))
  assert.deepEqual(idx.keys, [a])
  assert.ok(Object.isFrozen(idx) && Object.isFrozen(idx.keys))
  assert.equal(idx.noKid.get('ES256')?.ok, true)
})

test('EMPTY_INDEX: no keys, no lookups, frozen', () => {
  assert.deepEqual(EMPTY_INDEX.keys, [])
  assert.equal(EMPTY_INDEX.byKid.size, 0)
  assert.equal(EMPTY_INDEX.noKid.size, 0)
  assert.ok(Object.isFrozen(EMPTY_INDEX))
  assert.deepEqual(buildIndex([]).keys, EMPTY_INDEX.keys)
})

test('mergeSources: static keys first, then remote ones; a remote key whose kid a static key has is left out and reported', () => {
  const s1 = key('shared', ['ES256'], 'file:/etc/keys/corp.pem')
  const s2 = key(undefined, ['ES256'], 'file:/etc/keys/other.jwk')
  const r1 = key('shared', ['ES256'])
  const r2 = key('remote-only', ['ES256'])
  const r3 = key(undefined, ['ES256'])
  const { keys, conflicts } = mergeSources([s1, s2], [r1, r2, r3])
  assert.deepEqual(keys, [s1, s2, r2, r3])
  assert.equal(conflicts.length, 1)
  assert.equal(conflicts[0]!.key, r1)
  // The file is named without its `file:` prefix, so the operator sees which file wins.
  assert.equal(conflicts[0]!.why, 'duplicate kid (a static key from /etc/keys/corp.pem has it)')
  // Merged and indexed, the kid names the operator's key.
  assert.equal(buildIndex(keys).byKid.get('shared')?.key, s1)
})

test('mergeSources: kid-less keys never conflict; remote duplicates among themselves are kept (the index keeps the first)', () => {
  const s = key(undefined, ['ES256'], 'file:/k.pem')
  const r1 = key('twice', ['ES256'])
  const r2 = key('twice', ['ES256'])
  const r3 = key(undefined, ['ES256'])
  const { keys, conflicts } = mergeSources([s], [r1, r2, r3])
  assert.deepEqual(keys, [s, r1, r2, r3])
  assert.deepEqual(conflicts, [])
  assert.equal(buildIndex(keys).byKid.get('twice')?.key, r1)
})

test('mergeSources: either side empty', () => {
  const s = key('s', ['ES256'], 'file:/k.pem')
  const r = key('r', ['ES256'])
  assert.deepEqual(mergeSources([], [r]), { keys: [r], conflicts: [] })
  assert.deepEqual(mergeSources([s], []), { keys: [s], conflicts: [] })
  assert.deepEqual(mergeSources([], []), { keys: [], conflicts: [] })
})
