import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'
import { calculateJwkThumbprint } from 'jose'
import { InvalidJwksError, MAX_JWKS_KEYS, diffKeySets, parseJwks } from '../../src/keys/key-set.ts'
import type { Algorithm } from '../../src/config/types.ts'

const ALL: readonly Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

// Real keys, generated once per run: RSA generation is the slow part, so share them.
function rsa(bits = 2048): { pub: JsonWebKey; priv: JsonWebKey } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits })
  return { pub: publicKey.export({ format: 'jwk' }), priv: privateKey.export({ format: 'jwk' }) }
}
function ec(namedCurve: string): JsonWebKey {
  return generateKeyPairSync('ec', { namedCurve }).publicKey.export({ format: 'jwk' })
}
const RSA_A = rsa()
const RSA_B = rsa()
const RSA_1024 = rsa(1024)
const P256 = ec('P-256')
const P384 = ec('P-384')
const P521 = ec('P-521')
const SECP256K1 = ec('secp256k1')
const ED25519 = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' })
const ED448 = generateKeyPairSync('ed448').publicKey.export({ format: 'jwk' })

async function whyRejected(jwk: Record<string, unknown>, allowed: readonly Algorithm[] = ALL): Promise<string> {
  const set = await parseJwks({ keys: [jwk] }, allowed)
  assert.equal(set.keys.length, 0, 'the key must be skipped')
  assert.equal(set.rejected.length, 1)
  const r = set.rejected[0]!
  assert.equal(r.kid, jwk['kid'])
  return r.why
}

void describe('parseJwks', () => {
  void it('imports RSA, EC and OKP keys with the algorithms their type supports', async () => {
    const set = await parseJwks(
      {
        keys: [
          { ...RSA_A.pub, kid: 'rsa' },
          { ...P256, kid: 'p256' },
          { ...P384, kid: 'p384' },
          { ...P521, kid: 'p521' },
          { ...ED25519, kid: 'ed' },
        ],
      },
      ALL,
    )
    assert.deepEqual(set.rejected, [])
    assert.deepEqual(set.keys.map((k) => k.kid), ['rsa', 'p256', 'p384', 'p521', 'ed'])
    const algs = (kid: string): Algorithm[] => [...set.byKid.get(kid)!.algorithms].sort()
    assert.deepEqual(algs('rsa'), ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'])
    assert.deepEqual(algs('p256'), ['ES256'])
    assert.deepEqual(algs('p384'), ['ES384'])
    assert.deepEqual(algs('p521'), ['ES512'])
    assert.deepEqual(algs('ed'), ['EdDSA'])
    for (const k of set.keys) {
      assert.equal(k.key.type, 'public')
      assert.ok(Object.isFrozen(k))
    }
    assert.equal(set.byKid.get('rsa')!.key.asymmetricKeyType, 'rsa')
    assert.equal(set.byKid.get('ed')!.key.asymmetricKeyType, 'ed25519')
    assert.ok(Object.isFrozen(set))
    assert.ok(Object.isFrozen(set.keys))
  })

  void it('computes the RFC 7638 SHA-256 thumbprint once per key', async () => {
    const set = await parseJwks({ keys: [{ ...RSA_A.pub, kid: 'a', alg: 'RS256', use: 'sig' }] }, ALL)
    assert.equal(set.keys[0]!.thumbprint, await calculateJwkThumbprint({ kty: 'RSA', n: RSA_A.pub.n!, e: RSA_A.pub.e! }, 'sha256'))
  })

  void it("uses the JWK's alg when present, intersected with the allowlist", async () => {
    const set = await parseJwks(
      {
        keys: [
          { ...RSA_A.pub, kid: 'ps', alg: 'PS384' },
          { ...RSA_B.pub, kid: 'any' },
        ],
      },
      ['RS256', 'PS384'],
    )
    assert.deepEqual([...set.byKid.get('ps')!.algorithms], ['PS384'])
    assert.deepEqual([...set.byKid.get('any')!.algorithms].sort(), ['PS384', 'RS256'])
  })

  void it('accepts keys without kid, and use: sig and key_ops with verify', async () => {
    const set = await parseJwks({ keys: [{ ...P256, use: 'sig', key_ops: ['verify'] }] }, ALL)
    assert.equal(set.keys.length, 1)
    assert.equal(set.keys[0]!.kid, undefined)
    assert.equal(set.byKid.size, 0)
  })

  void describe('rejects, with a reason', () => {
    void it('a private key (never holds private material)', async () => {
      assert.match(await whyRejected({ ...RSA_A.priv, kid: 'priv' }), /private key material \("d"\)/)
      assert.match(await whyRejected({ ...P256, d: 'AAAA', kid: 'ecpriv' }), /private/)
    })
    void it('a symmetric key (kty oct)', async () => {
      assert.match(await whyRejected({ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac', alg: 'HS256' }), /symmetric key \(kty "oct"\)/)
    })
    void it('use other than sig', async () => {
      assert.match(await whyRejected({ ...RSA_A.pub, kid: 'enc', use: 'enc' }), /use "enc" is not "sig"/)
    })
    void it('key_ops without verify', async () => {
      assert.match(await whyRejected({ ...RSA_A.pub, kid: 'ops', key_ops: ['encrypt', 'wrapKey'] }), /key_ops does not include "verify"/)
      assert.match(await whyRejected({ ...RSA_A.pub, kid: 'ops2', key_ops: 'verify' }), /key_ops/)
    })
    void it('an RSA modulus below 2048 bits', async () => {
      assert.match(await whyRejected({ ...RSA_1024.pub, kid: 'small' }), /RSA modulus of 1024 bits is below 2048/)
    })
    void it('an EC curve other than P-256/P-384/P-521', async () => {
      assert.equal(SECP256K1.crv, 'secp256k1')
      assert.match(await whyRejected({ ...SECP256K1, kid: 'k1' }), /EC curve "secp256k1" is not supported/)
      assert.match(await whyRejected({ ...SECP256K1, crv: 'P-256K', kid: 'k1b' }), /EC curve "P-256K" is not supported/)
    })
    void it('an OKP curve other than Ed25519', async () => {
      assert.match(await whyRejected({ ...ED448, kid: 'ed448' }), /OKP curve "Ed448" is not supported/)
    })
    void it('an alg that is not supported', async () => {
      assert.match(await whyRejected({ ...RSA_A.pub, kid: 'rsa1', alg: 'RSA1_5' }), /alg "RSA1_5" is not supported/)
      assert.match(await whyRejected({ ...P256, kid: 'none', alg: 'none' }), /alg "none" is not supported/)
    })
    void it('an alg that does not fit the key type or curve', async () => {
      assert.match(await whyRejected({ ...P256, kid: 'mix', alg: 'RS256' }), /alg "RS256" does not fit a EC P-256 key/)
      assert.match(await whyRejected({ ...P256, kid: 'mix2', alg: 'ES384' }), /does not fit/)
    })
    void it('a key with no algorithm left after the issuer allowlist', async () => {
      assert.match(await whyRejected({ ...P256, kid: 'ec' }, ['RS256']), /no allowed algorithm \(key: ES256\)/)
    })
    void it('a duplicate kid (the first usable key is kept)', async () => {
      const set = await parseJwks(
        {
          keys: [
            { ...RSA_A.pub, kid: 'same', use: 'enc' }, // unusable: does not shadow the next one
            { ...RSA_A.pub, kid: 'same' },
            { ...RSA_B.pub, kid: 'same' },
          ],
        },
        ALL,
      )
      assert.equal(set.keys.length, 1)
      assert.equal(set.byKid.get('same')!.key.export({ format: 'jwk' }).n, RSA_A.pub.n)
      assert.deepEqual(set.rejected.map((r) => r.why), ['use "enc" is not "sig"', 'duplicate kid (the first key with this kid is kept)'])
    })
    void it('unsupported key types, broken members and non-objects', async () => {
      assert.match(await whyRejected({ kty: 'AKP', kid: 'pq' }), /key type "AKP" is not supported/)
      assert.match(await whyRejected({ kty: 'RSA', kid: 'nomod', e: 'AQAB' }), /without "n"/)
      assert.match(await whyRejected({ kty: 'RSA', kid: 'junk', n: '!!!', e: 'AQAB' }), /RSA modulus|invalid key material/)
      assert.match(await whyRejected({ ...P256, x: 'AAAA', kid: 'offcurve' }), /invalid key material/)
      const set = await parseJwks({ keys: [42, null, { kid: 7, kty: 'RSA' }] }, ALL)
      assert.deepEqual(set.rejected, [
        { kid: undefined, why: 'not a JSON object' },
        { kid: undefined, why: 'not a JSON object' },
        { kid: undefined, why: 'kid is not a string' },
      ])
    })
    void it('keeps provider-controlled text short', async () => {
      const why = await whyRejected({ ...RSA_A.pub, kid: 'long', use: 'x'.repeat(10_000) })
      assert.ok(why.length < 80, why)
    })
  })

  void it('skips bad keys but keeps the good ones', async () => {
    const set = await parseJwks({ keys: [{ kty: 'oct', k: 'AA', kid: 'h' }, { ...P256, kid: 'good' }] }, ALL)
    assert.deepEqual(set.keys.map((k) => k.kid), ['good'])
    assert.equal(set.rejected.length, 1)
  })

  void it('returns an empty set (the caller decides) when no key is usable', async () => {
    const set = await parseJwks({ keys: [] }, ALL)
    assert.equal(set.keys.length, 0)
  })

  void it('throws InvalidJwksError for a document that is not {keys: [...]}', async () => {
    for (const doc of [null, 'keys', [], {}, { keys: {} }, { keys: 'x' }]) {
      await assert.rejects(parseJwks(doc, ALL), (err: unknown) => err instanceof InvalidJwksError && err.code === 'invalid_jwks')
    }
  })
})

void describe('diffKeySets', () => {
  void it('reports every key as added on the first load', async () => {
    const next = await parseJwks({ keys: [{ ...RSA_A.pub, kid: 'a' }, { ...P256, kid: 'b' }] }, ALL)
    const d = diffKeySets(undefined, next)
    assert.deepEqual(d.added.map((k) => k.kid), ['a', 'b'])
    assert.deepEqual(d.removed, [])
  })

  void it('reports added and removed keys by thumbprint and kid', async () => {
    const prev = await parseJwks({ keys: [{ ...RSA_A.pub, kid: 'a' }, { ...P256, kid: 'b' }] }, ALL)
    const next = await parseJwks({ keys: [{ ...P256, kid: 'b', alg: 'ES256' }, { ...P384, kid: 'c' }] }, ALL)
    const d = diffKeySets(prev, next)
    assert.deepEqual(d.added.map((k) => k.kid), ['c'])
    assert.deepEqual(d.removed.map((k) => k.kid), ['a'])
  })

  void it('reports a key replaced under the same kid as changed, and a wholesale swap as replaced', async () => {
    const prev = await parseJwks({ keys: [{ ...RSA_A.pub, kid: 'a' }] }, ALL)
    const next = await parseJwks({ keys: [{ ...RSA_B.pub, kid: 'a' }] }, ALL)
    const d = diffKeySets(prev, next)
    assert.deepEqual([d.added, d.removed], [[], []])
    assert.equal(d.changed.length, 1)
    assert.equal(d.changed[0]!.key.kid, 'a')
    assert.notEqual(d.changed[0]!.key.thumbprint, d.changed[0]!.previous.thumbprint)
    assert.equal(d.replaced, true, 'no key in common with the previous set')
  })

  void it('a rotation that keeps one key in common is not a replacement', async () => {
    const prev = await parseJwks({ keys: [{ ...RSA_A.pub, kid: 'a' }, { ...P256, kid: 'b' }] }, ALL)
    const next = await parseJwks({ keys: [{ ...RSA_B.pub, kid: 'a' }, { ...P256, kid: 'b' }] }, ALL)
    const d = diffKeySets(prev, next)
    assert.equal(d.changed.length, 1)
    assert.equal(d.replaced, false)
  })

  void it('shows the same key re-published under a new kid as removed and added', async () => {
    const prev = await parseJwks({ keys: [{ ...RSA_A.pub, kid: 'a' }] }, ALL)
    const next = await parseJwks({ keys: [{ ...RSA_A.pub, kid: 'a2' }] }, ALL)
    const d = diffKeySets(prev, next)
    assert.deepEqual([d.added[0]!.kid, d.removed[0]!.kid], ['a2', 'a'])
    assert.equal(d.changed.length, 0)
  })

  void it('reports nothing for an unchanged set', async () => {
    const doc = { keys: [{ ...RSA_A.pub, kid: 'a' }, { ...ED25519 }] }
    const d = diffKeySets(await parseJwks(doc, ALL), await parseJwks(doc, ALL))
    assert.deepEqual(d, { added: [], removed: [], changed: [], replaced: false })
  })
})

void describe(`parseJwks: at most ${MAX_JWKS_KEYS} keys per document (issue #9 §8)`, () => {
  /** `n` distinct-kid copies of one P-256 key: every one of them would import. */
  const many = (n: number): Record<string, unknown>[] => Array.from({ length: n }, (_, i) => ({ ...P256, kid: `k${i}`, alg: 'ES256' }))
  const tooMany = (count: number) => (err: unknown): boolean => {
    assert.ok(err instanceof InvalidJwksError, String(err))
    assert.equal(err.code, 'too_many_keys')
    assert.equal(err.message, `JWKS lists ${count} keys, more than ${MAX_JWKS_KEYS}: refused before any import`)
    return true
  }

  void it(`imports ${MAX_JWKS_KEYS} keys`, async () => {
    assert.equal(MAX_JWKS_KEYS, 100)
    const set = await parseJwks({ keys: many(MAX_JWKS_KEYS) }, ALL)
    assert.equal(set.keys.length, MAX_JWKS_KEYS)
    assert.deepEqual(set.rejected, [])
  })

  void it(`refuses ${MAX_JWKS_KEYS + 1} and 5,000 keys as a whole, with code too_many_keys`, async () => {
    await assert.rejects(parseJwks({ keys: many(MAX_JWKS_KEYS + 1) }, ALL), tooMany(MAX_JWKS_KEYS + 1))
    await assert.rejects(parseJwks({ keys: many(5_000) }, ALL), tooMany(5_000))
  })

  void it('counts entries, not usable keys: one good key among 100 non-keys is refused too', async () => {
    await assert.rejects(parseJwks({ keys: [{ ...P256, kid: 'good' }, ...Array.from({ length: MAX_JWKS_KEYS }, () => null)] }, ALL), tooMany(MAX_JWKS_KEYS + 1))
  })

  void it('refuses before looking at any entry (nothing is checked, thumbprinted or imported)', async () => {
    let reads = 0
    // A real JWK whose every member read is counted: parseJwks must not get that far.
    const watched = (i: number): object => Object.defineProperties({}, Object.fromEntries(
      Object.entries({ ...P256, kid: `k${i}` }).map(([k, v]) => [k, { enumerable: true, get: () => (reads++, v) }]),
    ))
    const keys = Array.from({ length: 5_000 }, (_, i) => watched(i))
    await assert.rejects(parseJwks({ keys }, ALL), tooMany(5_000))
    assert.equal(reads, 0)
    // The same entries within the bound are read (and imported): the counter does count.
    const set = await parseJwks({ keys: keys.slice(0, 2) }, ALL)
    assert.equal(set.keys.length, 2)
    assert.ok(reads > 0)
  })
})
