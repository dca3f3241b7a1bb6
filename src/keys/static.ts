/**
 * Static key files (PEM public key, PEM X.509 certificate, JWK, JWKS), and a watcher that says
 * when they may have changed.
 *
 * This unit only turns files into keys: every key rule (private members, RSA size and hygiene,
 * curves, alg fit, the allowlist, the RFC 7638 thumbprint kid) is parseJwks's (key-set.ts),
 * so a key from a file passes exactly the checks a key from a JWKS passes. Deciding what a
 * failed reload means (keep the previous keys) is the key store's job; this unit reports
 * per-file `errors` and never throws for a bad file.
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { watchFiles } from '../fs-watch.ts'
import type { FileWatcher, WatchOptions } from '../fs-watch.ts'
import { clip, isObject, show } from './untrusted.ts'
import type { Algorithm, StaticKeyConfig } from '../config/types.ts'
import { jsonDepthExceededAt, MAX_JSON_DEPTH } from './json-bounds.ts'
import { MAX_JWKS_KEYS, parseJwks } from './key-set.ts'
import type { KeySet, RejectedKey } from './key-set.ts'
import type { KeySource, VerificationKey } from './types.ts'

/** A configured file that yielded no usable key at all; the other files still load. */
export interface StaticFileError {
  readonly file: string
  readonly why: string
}

/** A key skipped by parseJwks or for a cross-file duplicate kid, with the file it came from. */
export interface StaticRejectedKey extends RejectedKey {
  readonly source: KeySource
}

/** The result of reading every configured key file once. Frozen. */
export interface StaticLoad {
  /** Usable keys from all files, in config order (and document order within a file). */
  readonly keys: readonly VerificationKey[]
  /** Keys skipped by parseJwks, or because an earlier file already has their kid. */
  readonly rejected: readonly StaticRejectedKey[]
  /** Files that could not be used at all (unreadable, unknown format, no usable key). */
  readonly errors: readonly StaticFileError[]
  /**
   * sha256 (hex) over everything the load depends on: the allowlist, each spec, and each file's
   * bytes (or its read error). Equal digests mean an identical result, so a reload can be skipped.
   */
  readonly digest: string
}

/**
 * Key files are a few KiB; a bigger file is a wrong path (a log, a bundle), not a key. Refusing
 * it keeps a misconfiguration from buffering an arbitrary file every reload.
 */
export const MAX_KEY_FILE_BYTES = 1024 * 1024

const PRIVATE_KEY_WHY = 'private key material is never loaded; give the public key'
// fast-jwt CVE-2023-48223 (and the older "RS256 key used as HS256 secret" class): a library
// that infers the algorithm from the key text can be talked into the wrong one. The operator
// states it; we never guess.
const PEM_ALG_WHY = 'a PEM key needs "alg" in the config: it is never inferred from the key text (CVE-2023-48223)'

// RFC 7468 §2: a label is printable ASCII without "-"; explanatory text may precede the block.
const PEM_BEGIN = /-----BEGIN ([^-\r\n]*)-----/g
const HAS_PEM = /-----BEGIN [^-\r\n]*-----/ // not global: .test() on a /g regex keeps state

/**
 * Read and validate every configured key file.
 *
 * Format is detected by content, not extension: JSON with `keys` is a JWKS, JSON with `kty` a
 * single JWK, `-----BEGIN PUBLIC KEY-----` / `RSA PUBLIC KEY` / `CERTIFICATE` a PEM key. A
 * file that fails is reported in `errors` and the others still load. A kid found in an earlier
 * file wins; the later key goes to `rejected`.
 *
 * @example
 * ```ts
 * const load = await loadStaticKeys(issuer.keys, issuer.algorithms)
 * for (const e of load.errors) log.error({ file: e.file, why: e.why }, 'static key file unusable')
 * if (load.digest !== previous?.digest && load.errors.length === 0) swapIn(load.keys)
 * ```
 */
export async function loadStaticKeys(specs: readonly StaticKeyConfig[], allowed: readonly Algorithm[]): Promise<StaticLoad> {
  const hash = createHash('sha256')
  // Length-prefixed fields: no two different inputs can hash the same byte stream.
  const field = (data: string | Uint8Array): void => {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    hash.update(`${bytes.length}:`)
    hash.update(bytes)
  }
  field(allowed.join(','))

  const keys: VerificationKey[] = []
  const rejected: StaticRejectedKey[] = []
  const errors: StaticFileError[] = []
  const kidOwner = new Map<string, string>()

  // Read concurrently, interpret in config order (order decides which duplicate kid wins).
  const contents = await Promise.all(specs.map((s) => readKeyFile(s.file)))
  for (const [i, spec] of specs.entries()) {
    const content = contents[i]!
    field(spec.file)
    field(spec.alg ?? '')
    field(spec.kid === undefined ? '' : `=${spec.kid}`)
    field('bytes' in content ? 'ok' : 'error')
    field('bytes' in content ? content.bytes : content.why)

    const fail = (why: string): void => void errors.push(Object.freeze({ file: spec.file, why }))
    if (!('bytes' in content)) {
      fail(content.why)
      continue
    }
    const source: KeySource = `file:${spec.file}`
    const parsed = await parseKeyFile(content.bytes, spec, allowed, source)
    if (!('keys' in parsed)) {
      fail(parsed.why)
      continue
    }
    for (const r of parsed.rejected) rejected.push(Object.freeze({ ...r, source }))
    if (parsed.keys.length === 0) {
      fail(`no usable key: ${clip(parsed.rejected.map((r) => r.why).join('; ') || 'the file holds no key', 200)}`)
      continue
    }
    // A file whose keys are all duplicates of earlier files is not an error: the file is
    // fine and its kids are served (by the earlier file). Only the rejections say so.
    for (const key of parsed.keys) {
      const owner = key.kid === undefined ? undefined : kidOwner.get(key.kid)
      if (owner !== undefined) {
        rejected.push(Object.freeze({ kid: key.kid, why: `duplicate kid (also in ${owner})`, source }))
        continue
      }
      if (key.kid !== undefined) kidOwner.set(key.kid, spec.file)
      keys.push(key)
    }
  }

  return Object.freeze({
    keys: Object.freeze(keys),
    rejected: Object.freeze(rejected),
    errors: Object.freeze(errors),
    digest: hash.digest('hex'),
  })
}

type Content = { readonly bytes: Buffer } | { readonly why: string }

async function readKeyFile(file: string): Promise<Content> {
  try {
    // stat first: a FIFO or device would block or stream forever; a directory is a wrong path.
    const st = await stat(file)
    if (!st.isFile()) return { why: 'not a regular file' }
    if (st.size > MAX_KEY_FILE_BYTES) return { why: `larger than ${MAX_KEY_FILE_BYTES} bytes: not a key file` }
    const bytes = await readFile(file)
    if (bytes.length > MAX_KEY_FILE_BYTES) return { why: `larger than ${MAX_KEY_FILE_BYTES} bytes: not a key file` }
    return { bytes }
  } catch (err) {
    // The code, not the message: Node's message repeats the path and the digest must be stable.
    const code = (err as NodeJS.ErrnoException).code
    return { why: `cannot read: ${code ?? (err instanceof Error ? err.message : String(err))}` }
  }
}

type Parsed = KeySet | { readonly why: string }

async function parseKeyFile(bytes: Buffer, spec: StaticKeyConfig, allowed: readonly Algorithm[], source: KeySource): Promise<Parsed> {
  // Strip a UTF-8 BOM: editors on some platforms add one and JSON.parse refuses it.
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '')
  const trimmed = text.trimStart()
  if (trimmed.startsWith('{')) return parseJsonFile(trimmed, spec, allowed, source)
  if (HAS_PEM.test(text)) return parsePemFile(text, spec, allowed, source)
  return { why: 'unknown format: expected a PEM public key or certificate, a JWK or a JWKS (JSON)' }
}

async function parseJsonFile(text: string, spec: StaticKeyConfig, allowed: readonly Algorithm[], source: KeySource): Promise<Parsed> {
  // Issue #9 §8: bounded before JSON.parse builds anything (json-bounds.ts). A file is as
  // untrusted in shape as a fetched JWKS: a ConfigMap can be written by someone else.
  const deepAt = jsonDepthExceededAt(text, MAX_JSON_DEPTH)
  if (deepAt !== undefined) return { why: `too deep: JSON nests deeper than ${MAX_JSON_DEPTH} levels (at character ${deepAt})` }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    // Not V8's message: newer V8 quotes a slice of the input, and a key file is never quoted
    // into logs or /keys (a private key pasted by mistake would leak). The position is enough.
    const at = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1]
    return { why: `invalid JSON${at === undefined ? '' : ` at character ${at}`}` }
  }
  if (!isObject(json)) return { why: 'unknown format: JSON that is not an object' }
  const isJwks = 'keys' in json
  const isJwk = 'kty' in json
  if (isJwks && isJwk) return { why: 'ambiguous JSON: both "keys" (a JWKS) and "kty" (a JWK)' }
  if (!isJwks && !isJwk) return { why: 'unknown format: JSON that is neither a JWK ("kty") nor a JWKS ("keys")' }

  const list = isJwks ? json['keys'] : [json]
  if (!Array.isArray(list)) return { why: 'JWKS "keys" is not an array' }
  // The whole file is refused before any entry is copied or imported, as parseJwks would for
  // a fetched JWKS (key-set.ts); the file's previous keys stay in use (static-source.ts).
  if (list.length > MAX_JWKS_KEYS) return { why: `too many keys: JWKS lists ${list.length} keys, more than ${MAX_JWKS_KEYS}` }
  // A kid names one key; applied to a whole set it would make every key a duplicate.
  if (isJwks && spec.kid !== undefined) return { why: 'a configured "kid" needs a single JWK or PEM key, not a JWKS' }

  const entries: unknown[] = []
  for (const entry of list as unknown[]) {
    if (!isObject(entry)) {
      entries.push(entry) // parseJwks rejects it with its own reason
      continue
    }
    let jwk: Record<string, unknown> = entry
    if (spec.alg !== undefined) {
      // The config and the file disagree on what the key is for: refuse rather than pick one.
      if ('alg' in entry && entry['alg'] !== spec.alg) {
        return { why: `alg ${show(entry['alg'])} in the file conflicts with the configured alg "${spec.alg}"` }
      }
      jwk = { ...jwk, alg: spec.alg }
    }
    // The configured kid overrides the file's (it is the operator's label, not a security claim).
    if (spec.kid !== undefined) jwk = { ...jwk, kid: spec.kid }
    entries.push(jwk)
  }
  return parseJwks({ keys: entries }, allowed, { source, kidFromThumbprint: true })
}

/** A chain longer than this is not a key file (Kubernetes tls.crt and fullchain.pem hold 2–4). */
const MAX_CHAIN = 10

const PEM_LABEL_FORMS: Readonly<Record<string, string>> = {
  'PUBLIC KEY': 'SPKI',
  'RSA PUBLIC KEY': 'PKCS#1',
  CERTIFICATE: 'X.509',
}

async function parsePemFile(text: string, spec: StaticKeyConfig, allowed: readonly Algorithm[], source: KeySource): Promise<Parsed> {
  const labels = [...text.matchAll(PEM_BEGIN)].map((m) => m[1] ?? '')
  // Checked before anything else: createPublicKey() would happily DERIVE a public key from a
  // private one, and a sidecar must not hold (or encourage mounting) signing material.
  if (labels.some((l) => l.includes('PRIVATE KEY'))) return { why: PRIVATE_KEY_WHY }
  const chain = labels.length > 1 && labels.every((l) => l === 'CERTIFICATE')
  if (labels.length !== 1 && !chain) {
    // Several keys, or a key next to certificates: which one verifies would be a guess.
    return { why: `${labels.length} PEM blocks (${[...new Set(labels)].map((l) => clip(l, 40)).join(', ')}) in one file; give exactly one public key, one certificate, or one certificate chain (leaf first)` }
  }
  const label = labels[0]!
  if (PEM_LABEL_FORMS[label] === undefined) {
    return { why: `unsupported PEM block "${clip(label, 40)}": expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE` }
  }
  if (spec.alg === undefined) return { why: PEM_ALG_WHY }

  // Only the armoured blocks, so explanatory text around them (RFC 7468 §2) cannot confuse the parser.
  const blocks = [...text.matchAll(new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, 'g'))].map((m) => m[0])
  if (blocks.length !== labels.length) return { why: `PEM block "${label}" has no matching END line` }

  let key: KeyObject
  if (chain) {
    const leaf = leafOfChain(blocks)
    if (typeof leaf === 'string') return { why: leaf }
    key = leaf
  } else {
    const block = blocks[0]!
    try {
      // A certificate is only a key container here: its validity period, issuer and key usage are
      // not enforced (trust comes from the operator mounting the file, as with a bare key).
      key = label === 'CERTIFICATE' ? new X509Certificate(block).publicKey : createPublicKey(block)
    } catch (err) {
      return { why: mislabelled(label, block) ?? `invalid PEM ${label.toLowerCase()}: ${clip(err instanceof Error ? err.message : String(err), 200)}` }
    }
  }
  let jwk: Record<string, unknown>
  try {
    jwk = { ...key.export({ format: 'jwk' }) }
  } catch {
    // DSA, RSA-PSS-restricted (RSASSA-PSS SPKI) and DH keys have no JWK form.
    return { why: `key type ${key.asymmetricKeyType ?? 'unknown'} is not supported` }
  }
  jwk['alg'] = spec.alg
  if (spec.kid !== undefined) jwk['kid'] = spec.kid
  const parsed = await parseJwks({ keys: [jwk] }, allowed, { source, kidFromThumbprint: true })
  if (!chain) return parsed
  // Said in /keys and in jwks.key_added: the key is the leaf's, the CA keys are not keys here.
  return Object.freeze({ ...parsed, keys: Object.freeze(parsed.keys.map((k) => Object.freeze({ ...k, chainLength: blocks.length }))) })
}

/**
 * A Kubernetes `tls.crt` or a `fullchain.pem` holds the leaf and then the CAs that issued it
 * (RFC 8446 §4.4.2 orders a chain the same way). The leaf's key is the one that signs; the CA
 * keys must never become verification keys. The file must be one chain: each certificate
 * issued (and signed) by the next, so unrelated certificates are refused as several keys are.
 * Validity dates are not enforced, as for a single certificate.
 */
function leafOfChain(blocks: readonly string[]): KeyObject | string {
  if (blocks.length > MAX_CHAIN) return `${blocks.length} certificates in one file, more than ${MAX_CHAIN}: not a certificate chain`
  const certs: X509Certificate[] = []
  for (const [i, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block))
    } catch (err) {
      return mislabelled('CERTIFICATE', block) ?? `invalid PEM certificate ${i + 1} of ${blocks.length}: ${clip(err instanceof Error ? err.message : String(err), 200)}`
    }
  }
  for (let i = 0; i + 1 < certs.length; i++) {
    const [child, parent] = [certs[i]!, certs[i + 1]!]
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      return `${certs.length} certificates that are not one chain: certificate ${i + 2} did not issue certificate ${i + 1} (a chain is the leaf first, then each issuer; several unrelated keys in one file are refused)`
    }
  }
  return certs[0]!.publicKey
}

/**
 * What a PEM block that failed to parse under its label actually holds, when that is another
 * supported form: `BEGIN RSA PUBLIC KEY` around an SPKI key (Perl's Crypt::JWT writes those),
 * `BEGIN PUBLIC KEY` around PKCS#1. Refused, not accepted: a label that lies about its content
 * is a broken tool or a wrong file, and the fix (relabel) is one line the operator can check.
 */
function mislabelled(label: string, block: string): string | undefined {
  const der = Buffer.from(block.replace(/-----(BEGIN|END) [^-]*-----/g, '').replace(/\s+/g, ''), 'base64')
  const holds = (): 'PUBLIC KEY' | 'RSA PUBLIC KEY' | 'CERTIFICATE' | 'PRIVATE' | undefined => {
    // First: createPublicKey would derive a public key from private DER and call it PKCS#1.
    for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
      try {
        createPrivateKey({ key: der, format: 'der', type })
        return 'PRIVATE'
      } catch { /* not this private form */ }
    }
    try {
      createPublicKey({ key: der, format: 'der', type: 'spki' })
      return 'PUBLIC KEY'
    } catch { /* not SPKI */ }
    try {
      createPublicKey({ key: der, format: 'der', type: 'pkcs1' })
      return 'RSA PUBLIC KEY'
    } catch { /* not PKCS#1 */ }
    try {
      new X509Certificate(der)
      return 'CERTIFICATE'
    } catch { /* not a certificate */ }
    return undefined
  }
  const actual = holds()
  if (actual === 'PRIVATE') return PRIVATE_KEY_WHY
  if (actual === undefined || actual === label) return undefined
  const what = actual === 'CERTIFICATE' ? 'an X.509 certificate' : actual === 'PUBLIC KEY' ? 'an SPKI public key' : 'a PKCS#1 RSA public key'
  return `the block is labelled ${label} (${PEM_LABEL_FORMS[label] ?? '?'}) but holds ${what}; relabel it BEGIN ${actual}`
}

export type { WatchOptions as StaticWatchOptions, FileWatcher as StaticWatcher } from '../fs-watch.ts'

/** {@link watchFiles} over the issuer's key files; the caller reloads and compares `digest`. */
export function watchStaticKeys(specs: readonly StaticKeyConfig[], onChange: () => void, options: WatchOptions = {}): FileWatcher {
  return watchFiles(specs.map((s) => s.file), onChange, options)
}
