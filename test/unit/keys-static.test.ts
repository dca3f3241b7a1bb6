import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, calculateJwkThumbprint } from 'jose'
import { explainRequest } from '../../src/cli/explain.ts'
import { parseConfig } from '../../src/config/load.ts'
import { createKeyStore } from '../../src/keys/store.ts'
import { MAX_JSON_DEPTH } from '../../src/keys/json-bounds.ts'
import { MAX_JWKS_KEYS } from '../../src/keys/key-set.ts'
import { loadStaticKeys, MAX_KEY_FILE_BYTES, watchStaticKeys } from '../../src/keys/static.ts'
import type { StaticLoad } from '../../src/keys/static.ts'
import { waitFor } from '../../src/wait-for.ts'
import { issuerConfig, startKeyStore } from '../helpers/key-store.ts'
import type { Algorithm, StaticKeyConfig } from '../../src/config/types.ts'

const ALL: readonly Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

// Real keys, generated once per run (RSA generation is the slow part).
const RSA_A = generateKeyPairSync('rsa', { modulusLength: 2048 })
const RSA_B = generateKeyPairSync('rsa', { modulusLength: 2048 })
const RSA_1024 = generateKeyPairSync('rsa', { modulusLength: 1024 })
const P256 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const ED25519 = generateKeyPairSync('ed25519')

const spki = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }) as string
const jwkOf = (k: KeyObject): Record<string, unknown> => ({ ...k.export({ format: 'jwk' }) })
const thumbprint = async (k: KeyObject): Promise<string> => calculateJwkThumbprint(k.export({ format: 'jwk' }), 'sha256')

const dirs: string[] = []
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'jwt-sidecar-static-'))
  dirs.push(d)
  return d
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** Write `content` to a new file in a fresh temp dir; returns its absolute path. */
function file(content: string, name = 'key'): string {
  const path = join(tmp(), name)
  writeFileSync(path, content)
  return path
}
function spec(path: string, alg?: Algorithm, kid?: string): StaticKeyConfig {
  return { file: path, alg, kid }
}
async function load1(path: string, alg?: Algorithm, kid?: string): Promise<StaticLoad> {
  return loadStaticKeys([spec(path, alg, kid)], ALL)
}
function onlyError(load: StaticLoad): string {
  assert.equal(load.keys.length, 0, 'no key may load')
  assert.equal(load.errors.length, 1)
  return load.errors[0]!.why
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

const HAS_OPENSSL = spawnSync('openssl', ['version']).error === undefined

interface Pair { readonly key: string; readonly crt: string }
let made: { readonly ca: Pair; readonly mid: Pair; readonly leaf: Pair; readonly other: Pair } | undefined
/**
 * A real PKI made once with the openssl CLI: a root CA (RSA), an intermediate CA it issued
 * (RSA, CA:TRUE), a leaf the intermediate issued (EC P-256, like a tls.crt; without an
 * authority key id, so only names and signatures tie it to its issuer), and an unrelated
 * self-signed certificate with the intermediate's name.
 */
function pki(): NonNullable<typeof made> {
  if (made !== undefined) return made
  assert.ok(HAS_OPENSSL, 'the openssl CLI is not on PATH: install Debian\'s openssl package to run this test')
  const d = tmp()
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore', cwd: d })
  const at = (name: string): Pair => ({ key: join(d, `${name}.key`), crt: join(d, `${name}.crt`) })
  const [ca, mid, leaf, other] = [at('ca'), at('mid'), at('leaf'), at('other')]
  writeFileSync(join(d, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
  writeFileSync(join(d, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nauthorityKeyIdentifier=none\n')
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', ca.key, '-out', ca.crt, '-subj', '/CN=root', '-days', '1')
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', mid.key, '-out', join(d, 'mid.csr'), '-subj', '/CN=intermediate')
  run('x509', '-req', '-in', join(d, 'mid.csr'), '-CA', ca.crt, '-CAkey', ca.key, '-set_serial', '2', '-extfile', join(d, 'ca.ext'), '-out', mid.crt, '-days', '1')
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', leaf.key, '-out', join(d, 'leaf.csr'), '-subj', '/CN=leaf')
  run('x509', '-req', '-in', join(d, 'leaf.csr'), '-CA', mid.crt, '-CAkey', mid.key, '-set_serial', '3', '-extfile', join(d, 'leaf.ext'), '-out', leaf.crt, '-days', '1')
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', other.key, '-out', other.crt, '-subj', '/CN=intermediate', '-days', '1')
  return (made = { ca, mid, leaf, other })
}

void describe('loadStaticKeys: PEM', () => {
  void it('loads an SPKI RSA public key with the configured alg; kid defaults to the RFC 7638 thumbprint', async () => {
    const path = file(spki(RSA_A.publicKey))
    const load = await load1(path, 'RS256')
    assert.deepEqual(load.errors, [])
    assert.deepEqual(load.rejected, [])
    assert.equal(load.keys.length, 1)
    const k = load.keys[0]!
    const tp = await thumbprint(RSA_A.publicKey)
    assert.equal(k.thumbprint, tp)
    assert.equal(k.kid, tp)
    assert.equal(k.source, `file:${path}`)
    assert.equal(k.kty, 'RSA')
    assert.equal(k.alg, 'RS256')
    assert.deepEqual([...k.algorithms], ['RS256'])
    assert.ok(k.key.equals(RSA_A.publicKey))
  })

  void it('refuses a PEM key without a configured alg (never inferred: CVE-2023-48223)', async () => {
    const why = onlyError(await load1(file(spki(RSA_A.publicKey))))
    assert.match(why, /CVE-2023-48223/)
    assert.match(why, /never inferred/)
  })

  void it('loads the public key of an X.509 certificate', async () => {
    assert.ok(HAS_OPENSSL, 'the openssl CLI is not on PATH: install Debian\'s openssl package to run this test')
    const d = tmp()
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(d, 'k'), '-out', join(d, 'c'), '-subj', '/CN=test', '-days', '1'], { stdio: 'ignore' })
    const load = await load1(join(d, 'c'), 'RS256')
    assert.deepEqual(load.errors, [])
    assert.equal(load.keys.length, 1)
    assert.equal(load.keys[0]!.thumbprint, await thumbprint(createPublicKey(readFileSync(join(d, 'k')))))
    // The private key openssl wrote next to it is refused, never turned into a public key.
    assert.match(onlyError(await load1(join(d, 'k'), 'RS256')), /private key material is never loaded/)
  })

  void it('loads a PKCS#1 RSA PUBLIC KEY', async () => {
    const pem = RSA_B.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string
    assert.match(pem, /BEGIN RSA PUBLIC KEY/)
    const load = await load1(file(pem), 'PS256')
    assert.deepEqual(load.errors, [])
    assert.equal(load.keys[0]!.thumbprint, await thumbprint(RSA_B.publicKey))
    assert.equal(load.keys[0]!.alg, 'PS256')
  })

  void it('loads EC P-256 with ES256 and Ed25519 with EdDSA', async () => {
    const ec = await load1(file(spki(P256.publicKey)), 'ES256')
    assert.deepEqual(ec.errors, [])
    assert.equal(ec.keys[0]!.kty, 'EC')
    assert.equal(ec.keys[0]!.alg, 'ES256')
    const ed = await load1(file(spki(ED25519.publicKey)), 'EdDSA')
    assert.deepEqual(ed.errors, [])
    assert.equal(ed.keys[0]!.kty, 'OKP')
    assert.equal(ed.keys[0]!.alg, 'EdDSA')
  })

  void it('refuses an alg the key cannot produce (parseJwks rule)', async () => {
    const why = onlyError(await load1(file(spki(P256.publicKey)), 'RS256'))
    assert.match(why, /does not fit/)
  })

  void it('refuses every kind of private key PEM', async () => {
    const pems = [
      RSA_A.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, // BEGIN PRIVATE KEY
      RSA_A.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string, // BEGIN RSA PRIVATE KEY
      P256.privateKey.export({ type: 'sec1', format: 'pem' }) as string, // BEGIN EC PRIVATE KEY
      RSA_A.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string, // BEGIN ENCRYPTED PRIVATE KEY
      spki(RSA_A.publicKey) + (RSA_B.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), // hidden after a public key
    ]
    for (const pem of pems) {
      assert.equal(onlyError(await load1(file(pem), 'RS256')), 'private key material is never loaded; give the public key')
    }
  })

  void it('refuses a file with several public keys, or a key next to a certificate: which one verifies would be a guess', async () => {
    const why = onlyError(await load1(file(spki(RSA_A.publicKey) + spki(RSA_B.publicKey)), 'RS256'))
    assert.match(why, /^2 PEM blocks \(PUBLIC KEY\) in one file; give exactly one public key, one certificate, or one certificate chain \(leaf first\)$/)
    const { ca } = pki()
    assert.match(onlyError(await load1(file(readFileSync(ca.crt, 'utf8') + spki(RSA_A.publicKey)), 'RS256')), /^2 PEM blocks \(CERTIFICATE, PUBLIC KEY\) in one file/)
  })

  void it('a certificate chain (Kubernetes tls.crt, fullchain.pem: leaf, then its issuers): the leaf key, with chainLength', async () => {
    const { ca, mid, leaf, other } = pki()
    const pem = (...files: string[]) => files.map((f) => readFileSync(f, 'utf8')).join('')
    const leafKey = await thumbprint(createPublicKey(readFileSync(leaf.key)))
    for (const [chain, n] of [[pem(leaf.crt, mid.crt, ca.crt), 3], [pem(mid.crt, ca.crt), 2]] as const) {
      const load = await load1(file(`subject=CN=leaf\n${chain}`), n === 3 ? 'ES256' : 'RS256')
      assert.deepEqual(load.errors, [])
      assert.equal(load.keys.length, 1, 'one key: the CA keys never become verification keys')
      assert.equal(load.keys[0]!.chainLength, n)
      if (n === 3) assert.equal(load.keys[0]!.thumbprint, leafKey)
      assert.ok(Object.isFrozen(load.keys[0]))
    }
    // A single certificate or key says nothing about chains.
    assert.equal((await load1(file(pem(leaf.crt)), 'ES256')).keys[0]!.chainLength, undefined)
    // Not one chain: CA first, a gap, an unrelated certificate.
    assert.match(onlyError(await load1(file(pem(ca.crt, mid.crt, leaf.crt)), 'RS256')), /^3 certificates that are not one chain: certificate 2 did not issue certificate 1/)
    assert.match(onlyError(await load1(file(pem(leaf.crt, ca.crt)), 'ES256')), /^2 certificates that are not one chain: certificate 2 did not issue certificate 1/)
    assert.match(onlyError(await load1(file(pem(leaf.crt, mid.crt, other.crt)), 'ES256')), /^3 certificates that are not one chain: certificate 3 did not issue certificate 2/)
    // Same subject name as the real issuer, another key: the signature decides, not the name.
    assert.match(onlyError(await load1(file(pem(leaf.crt, other.crt)), 'ES256')), /^2 certificates that are not one chain: certificate 2 did not issue certificate 1/)
  })

  void it('a chain through the key store: the jwks.key_added event and /keys (keyList) carry chainLength', async () => {
    const { ca, mid, leaf } = pki()
    const path = file([leaf.crt, mid.crt, ca.crt].map((f) => readFileSync(f, 'utf8')).join(''))
    const { store, events } = await startKeyStore([issuerConfig({ name: 'tls', issuer: 'https://tls.example', keys: [{ file: path, alg: 'ES256', kid: 'leaf' }] })])
    try {
      const added = events.filter((e) => e.event === 'jwks.key_added')
      assert.deepEqual(added.map((e) => [e.kid, e.source, 'chainLength' in e ? e.chainLength : undefined]), [['leaf', `file:${path}`, 3]])
      assert.deepEqual(store.issuer('tls')!.status().keyList.map((k) => [k.kid, k.chainLength]), [['leaf', 3]])
    } finally {
      await store.stop()
    }
    // jwt-sidecar verify says where the key came from: the leaf of the chain.
    const config = parseConfig(`upstream: { url: "http://127.0.0.1:9" }
issuers:
  - { name: tls, issuer: "https://tls.example", keys: [{ file: ${JSON.stringify(path)}, alg: ES256, kid: leaf }], audiences: [api], algorithms: [ES256] }
routes:
  - { name: default, path: /** }
`, 'test.yaml', {})
    const keys = createKeyStore(config.issuers)
    keys.start()
    try {
      await keys.settled()
      const token = await new SignJWT({ aud: 'api' }).setProtectedHeader({ alg: 'ES256', kid: 'leaf' }).setIssuer('https://tls.example').setExpirationTime('5m')
        .sign(createPrivateKey(readFileSync(leaf.key)))
      const e = await explainRequest(config, keys, { token, source: 'raw token (test)', path: '/x', method: 'GET' })
      assert.equal(e.forwarded, true, JSON.stringify(e.steps))
      assert.match(e.steps.find((st) => st.step === 'key')?.detail ?? '', new RegExp(`source file:${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(the leaf of a chain of 3 certificates\\)$`))
    } finally {
      await keys.stop()
    }
  })

  void it('a PEM block whose label and content disagree: refused, saying what it holds and how to relabel it', async () => {
    const relabel = (pem: string, from: string, to: string) => pem.replaceAll(`-----BEGIN ${from}-----`, `-----BEGIN ${to}-----`).replaceAll(`-----END ${from}-----`, `-----END ${to}-----`)
    // Perl's Crypt::JWT writes an SPKI key under BEGIN RSA PUBLIC KEY.
    const spkiAsPkcs1 = relabel(spki(RSA_A.publicKey), 'PUBLIC KEY', 'RSA PUBLIC KEY')
    assert.equal(onlyError(await load1(file(spkiAsPkcs1), 'RS256')), 'the block is labelled RSA PUBLIC KEY (PKCS#1) but holds an SPKI public key; relabel it BEGIN PUBLIC KEY')
    const pkcs1AsSpki = relabel(RSA_B.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string, 'RSA PUBLIC KEY', 'PUBLIC KEY')
    assert.equal(onlyError(await load1(file(pkcs1AsSpki), 'RS256')), 'the block is labelled PUBLIC KEY (SPKI) but holds a PKCS#1 RSA public key; relabel it BEGIN RSA PUBLIC KEY')
    const keyAsCert = relabel(spki(P256.publicKey), 'PUBLIC KEY', 'CERTIFICATE')
    assert.equal(onlyError(await load1(file(keyAsCert), 'ES256')), 'the block is labelled CERTIFICATE (X.509) but holds an SPKI public key; relabel it BEGIN PUBLIC KEY')
    const certAsKey = relabel(readFileSync(pki().leaf.crt, 'utf8'), 'CERTIFICATE', 'PUBLIC KEY')
    assert.equal(onlyError(await load1(file(certAsKey), 'ES256')), 'the block is labelled PUBLIC KEY (SPKI) but holds an X.509 certificate; relabel it BEGIN CERTIFICATE')
    // Private material under a public label is refused as private, never derived into a public key.
    for (const type of ['pkcs8', 'pkcs1'] as const) {
      const priv = RSA_A.privateKey.export({ type, format: 'pem' }) as string
      const disguised = priv.replace(/-----(BEGIN|END) [A-Z ]*PRIVATE KEY-----/g, '-----$1 PUBLIC KEY-----')
      assert.equal(onlyError(await load1(file(disguised), 'RS256')), 'private key material is never loaded; give the public key', type)
    }
    // Garbage stays an invalid block, with the parser's reason.
    assert.match(onlyError(await load1(file('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'), 'RS256')), /^invalid PEM public key: /)
  })

  void it('refuses a 1024-bit RSA key through parseJwks: no usable key, and the rejection says why', async () => {
    const path = file(spki(RSA_1024.publicKey))
    const load = await load1(path, 'RS256')
    assert.match(onlyError(load), /^no usable key: RSA modulus of 1024 bits is below 2048/)
    assert.equal(load.rejected.length, 1)
    assert.equal(load.rejected[0]!.source, `file:${path}`)
  })

  void it('uses a configured kid instead of the thumbprint', async () => {
    const load = await load1(file(spki(RSA_A.publicKey)), 'RS256', 'my-kid')
    assert.equal(load.keys[0]!.kid, 'my-kid')
    assert.equal(load.keys[0]!.thumbprint, await thumbprint(RSA_A.publicKey))
  })
})

void describe('loadStaticKeys: JWK and JWKS', () => {
  void it('loads a single JWK; the configured alg is set when the JWK has none', async () => {
    const path = file(JSON.stringify(jwkOf(P256.publicKey)))
    const plain = await load1(path)
    assert.deepEqual(plain.errors, [])
    assert.equal(plain.keys[0]!.alg, undefined)
    assert.equal(plain.keys[0]!.kid, await thumbprint(P256.publicKey))
    const withAlg = await load1(path, 'ES256', 'ec-1')
    assert.equal(withAlg.keys[0]!.alg, 'ES256')
    assert.equal(withAlg.keys[0]!.kid, 'ec-1')
  })

  void it('loads a JWKS with two keys, in document order', async () => {
    const path = file(JSON.stringify({ keys: [{ ...jwkOf(RSA_A.publicKey), kid: 'a', alg: 'RS256' }, { ...jwkOf(ED25519.publicKey), kid: 'b' }] }))
    const load = await load1(path)
    assert.deepEqual(load.errors, [])
    assert.deepEqual(load.keys.map((k) => k.kid), ['a', 'b'])
    assert.deepEqual(load.keys.map((k) => k.source), [`file:${path}`, `file:${path}`])
  })

  void it('refuses a configured alg that conflicts with the JWK alg, naming both', async () => {
    const why = onlyError(await load1(file(JSON.stringify({ ...jwkOf(RSA_A.publicKey), alg: 'RS384' })), 'RS256'))
    assert.match(why, /"RS384"/)
    assert.match(why, /"RS256"/)
  })

  void it('refuses a configured kid for a JWKS', async () => {
    const why = onlyError(await load1(file(JSON.stringify({ keys: [jwkOf(RSA_A.publicKey)] })), undefined, 'k'))
    assert.match(why, /single JWK/)
  })

  void it('refuses a private JWK (parseJwks rule) and an empty JWKS', async () => {
    assert.match(onlyError(await load1(file(JSON.stringify(jwkOf(RSA_A.privateKey))))), /private key material/)
    assert.match(onlyError(await load1(file('{"keys": []}'))), /no usable key/)
  })

  void it('reports unknown formats and broken JSON', async () => {
    assert.match(onlyError(await load1(file('hello'), 'RS256')), /unknown format/)
    assert.match(onlyError(await load1(file('{"foo": 1}'))), /unknown format/)
    assert.match(onlyError(await load1(file('{"keys": ['))), /invalid JSON/)
    const der = RSA_A.publicKey.export({ type: 'spki', format: 'der' })
    const derPath = join(tmp(), 'key.der')
    writeFileSync(derPath, der)
    assert.match(onlyError(await load1(derPath, 'RS256')), /unknown format/)
  })
})

void describe('loadStaticKeys: nesting depth and key count (issue #9 §8)', () => {
  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`

  void it('refuses a 400,000-deep JSON file before parsing it, with its own reason', async () => {
    const deep = `{"keys":${nested(400_000)}}`
    assert.ok(deep.length < MAX_KEY_FILE_BYTES, 'the size cap alone would let it through')
    const why = onlyError(await load1(file(deep)))
    assert.equal(why, `too deep: JSON nests deeper than ${MAX_JSON_DEPTH} levels (at character ${8 + MAX_JSON_DEPTH - 1})`)
  })

  void it(`a JWK with a vendor member nested to depth ${MAX_JSON_DEPTH} in all loads; one level more is refused`, async () => {
    const jwk = { ...jwkOf(P256.publicKey), alg: 'ES256' }
    // The JWK object is level 1, so the member's arrays take the other MAX_JSON_DEPTH - 1 levels.
    const ok = await load1(file(JSON.stringify({ ...jwk, x_vendor: JSON.parse(nested(MAX_JSON_DEPTH - 1)) as unknown })))
    assert.deepEqual(ok.errors, [])
    assert.equal(ok.keys.length, 1)
    const why = onlyError(await load1(file(JSON.stringify({ ...jwk, x_vendor: JSON.parse(nested(MAX_JSON_DEPTH)) as unknown }))))
    assert.match(why, /^too deep: /)
  })

  void it(`loads a JWKS file of ${MAX_JWKS_KEYS} keys and refuses ${MAX_JWKS_KEYS + 1} and 5,000 whole`, async () => {
    const many = (n: number): string => JSON.stringify({ keys: Array.from({ length: n }, (_, i) => ({ ...jwkOf(P256.publicKey), kid: `k${i}`, alg: 'ES256' })) })
    const ok = await load1(file(many(MAX_JWKS_KEYS)))
    assert.deepEqual(ok.errors, [])
    assert.equal(ok.keys.length, MAX_JWKS_KEYS)
    for (const n of [MAX_JWKS_KEYS + 1, 5_000]) {
      const load = await load1(file(many(n)))
      assert.equal(onlyError(load), `too many keys: JWKS lists ${n} keys, more than ${MAX_JWKS_KEYS}`)
      assert.deepEqual(load.rejected, [], 'refused whole: no key was looked at, so none is reported')
    }
  })

  void it('a bad file does not stop the others from loading', async () => {
    const good = file(JSON.stringify({ ...jwkOf(P256.publicKey), kid: 'good', alg: 'ES256' }))
    const deep = file(`{"keys":${nested(1_000)}}`)
    const load = await loadStaticKeys([spec(deep), spec(good)], ALL)
    assert.deepEqual(load.keys.map((k) => k.kid), ['good'])
    assert.deepEqual(load.errors.map((e) => e.file), [deep])
  })
})

void describe('loadStaticKeys: several files', () => {
  void it('keeps the first of two keys with the same kid across files', async () => {
    const first = file(spki(RSA_A.publicKey))
    const second = file(JSON.stringify(jwkOf(RSA_B.publicKey)))
    const load = await loadStaticKeys([spec(first, 'RS256', 'same'), spec(second, 'RS256', 'same')], ALL)
    assert.deepEqual(load.errors, [])
    assert.equal(load.keys.length, 1)
    assert.equal(load.keys[0]!.source, `file:${first}`)
    assert.deepEqual(load.rejected, [{ kid: 'same', why: `duplicate kid (also in ${first})`, source: `file:${second}` }])
  })

  void it('reports an unreadable file and still loads the others', async () => {
    const good = file(spki(RSA_A.publicKey))
    const missing = join(tmp(), 'missing.pem')
    const dir = tmp()
    const load = await loadStaticKeys([spec(missing, 'RS256'), spec(good, 'RS256'), spec(dir, 'RS256')], ALL)
    assert.deepEqual(load.keys.map((k) => k.source), [`file:${good}`])
    assert.deepEqual(load.errors, [
      { file: missing, why: 'cannot read: ENOENT' },
      { file: dir, why: 'not a regular file' },
    ])
  })

  void it('digest: stable across loads, unchanged by a rewrite with the same bytes, changed by new content', async () => {
    const path = file(spki(RSA_A.publicKey))
    const specs = [spec(path, 'RS256'), spec(join(tmp(), 'missing'), 'RS256')]
    const d1 = (await loadStaticKeys(specs, ALL)).digest
    assert.match(d1, /^[0-9a-f]{64}$/)
    assert.equal((await loadStaticKeys(specs, ALL)).digest, d1)
    writeFileSync(path, spki(RSA_A.publicKey))
    assert.equal((await loadStaticKeys(specs, ALL)).digest, d1)
    writeFileSync(path, spki(RSA_B.publicKey))
    assert.notEqual((await loadStaticKeys(specs, ALL)).digest, d1)
    // The config is an input too: another alg gives another result, so another digest.
    assert.notEqual((await loadStaticKeys([spec(path, 'PS256')], ALL)).digest, (await loadStaticKeys([spec(path, 'RS256')], ALL)).digest)
  })
})

void describe('watchStaticKeys', () => {
  void it('notices a plain rewrite of the file (directory watch)', async () => {
    const path = file(spki(RSA_A.publicKey), 'key.pem')
    let calls = 0
    const w = watchStaticKeys([spec(path, 'RS256')], () => calls++, { debounceMs: 50, pollIntervalMs: 60_000 })
    try {
      writeFileSync(path, spki(RSA_B.publicKey))
      await waitFor(() => calls > 0, { what: 'onChange after a rewrite', timeoutMs: 3_000 })
    } finally {
      w.close()
    }
  })

  void it('follows a Kubernetes Secret update (atomic ..data symlink swap) and reloads the NEW key', async () => {
    // The kubelet's AtomicWriter layout: key.pem -> ..data/key.pem, ..data -> ..<timestamp>/
    const d = tmp()
    mkdirSync(join(d, '..2026_old'))
    writeFileSync(join(d, '..2026_old', 'key.pem'), spki(RSA_A.publicKey))
    symlinkSync('..2026_old', join(d, '..data'))
    symlinkSync(join('..data', 'key.pem'), join(d, 'key.pem'))
    const path = join(d, 'key.pem')
    const specs = [spec(path, 'RS256')]
    const before = await loadStaticKeys(specs, ALL)
    assert.equal(before.keys[0]!.thumbprint, await thumbprint(RSA_A.publicKey))

    let calls = 0
    // A long poll interval: only the directory watch can notice within the test's 3 s.
    const w = watchStaticKeys(specs, () => calls++, { debounceMs: 50, pollIntervalMs: 60_000 })
    try {
      mkdirSync(join(d, '..2026_new'))
      writeFileSync(join(d, '..2026_new', 'key.pem'), spki(RSA_B.publicKey))
      symlinkSync('..2026_new', join(d, '..data_tmp'))
      renameSync(join(d, '..data_tmp'), join(d, '..data'))
      rmSync(join(d, '..2026_old'), { recursive: true })
      await waitFor(() => calls > 0, { what: 'onChange after the ..data swap', timeoutMs: 3_000 })
      const afterSwap = await loadStaticKeys(specs, ALL)
      assert.equal(afterSwap.keys[0]!.thumbprint, await thumbprint(RSA_B.publicKey))
      assert.notEqual(afterSwap.digest, before.digest)

      // And the watch still works after the swap (a file watch would have lost track here).
      const seen = calls
      await sleep(100) // let the first burst's debounce settle
      mkdirSync(join(d, '..2026_third'))
      writeFileSync(join(d, '..2026_third', 'key.pem'), spki(P256.publicKey))
      symlinkSync('..2026_third', join(d, '..data_tmp'))
      renameSync(join(d, '..data_tmp'), join(d, '..data'))
      rmSync(join(d, '..2026_new'), { recursive: true })
      await waitFor(() => calls > seen, { what: 'onChange after a second swap', timeoutMs: 3_000 })
    } finally {
      w.close()
    }
  })

  void it('falls back to polling when no directory event arrives (directory created after the watcher started)', async () => {
    const d = join(tmp(), 'later')
    const path = join(d, 'key.pem')
    let calls = 0
    // Must not throw although the directory does not exist: the poll covers it.
    const w = watchStaticKeys([spec(path, 'RS256')], () => calls++, { debounceMs: 20, pollIntervalMs: 100 })
    try {
      await sleep(30)
      mkdirSync(d)
      writeFileSync(path, spki(RSA_A.publicKey))
      await waitFor(() => calls > 0, { what: 'the poll to notice the new file', timeoutMs: 3_000 })
      assert.equal((await loadStaticKeys([spec(path, 'RS256')], ALL)).keys.length, 1)
    } finally {
      w.close()
    }
  })

  void it('close() stops every callback, including one already debounced', async () => {
    const path = file(spki(RSA_A.publicKey), 'key.pem')
    let calls = 0
    const w = watchStaticKeys([spec(path, 'RS256')], () => calls++, { debounceMs: 150, pollIntervalMs: 50 })
    writeFileSync(path, spki(RSA_B.publicKey))
    await sleep(30) // the directory event is in, its debounce has not fired yet
    w.close()
    writeFileSync(path, spki(P256.publicKey))
    await sleep(300) // longer than the debounce plus several poll intervals
    assert.equal(calls, 0)
  })

  void it('rejects nonsensical timings', () => {
    assert.throws(() => watchStaticKeys([], () => {}, { pollIntervalMs: 0 }), RangeError)
    assert.throws(() => watchStaticKeys([], () => {}, { debounceMs: Number.NaN }), RangeError)
  })
})
