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
import { createHash, createPublicKey, X509Certificate } from 'node:crypto'
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

async function parsePemFile(text: string, spec: StaticKeyConfig, allowed: readonly Algorithm[], source: KeySource): Promise<Parsed> {
  const labels = [...text.matchAll(PEM_BEGIN)].map((m) => m[1] ?? '')
  // Checked before anything else: createPublicKey() would happily DERIVE a public key from a
  // private one, and a sidecar must not hold (or encourage mounting) signing material.
  if (labels.some((l) => l.includes('PRIVATE KEY'))) return { why: PRIVATE_KEY_WHY }
  if (labels.length !== 1) {
    // A chain (leaf + CA certificates) would turn the CA keys into verification keys.
    return { why: `${labels.length} PEM blocks in one file; give exactly one public key or certificate` }
  }
  const label = labels[0]!
  if (label !== 'PUBLIC KEY' && label !== 'RSA PUBLIC KEY' && label !== 'CERTIFICATE') {
    return { why: `unsupported PEM block "${clip(label, 40)}": expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE` }
  }
  if (spec.alg === undefined) return { why: PEM_ALG_WHY }

  // Only the armoured block, so explanatory text around it (RFC 7468 §2) cannot confuse the parser.
  const block = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`).exec(text)?.[0]
  if (block === undefined) return { why: `PEM block "${label}" has no matching END line` }

  let key: KeyObject
  try {
    // A certificate is only a key container here: its validity period, issuer and key usage are
    // not enforced (trust comes from the operator mounting the file, as with a bare key).
    key = label === 'CERTIFICATE' ? new X509Certificate(block).publicKey : createPublicKey(block)
  } catch (err) {
    return { why: `invalid PEM ${label.toLowerCase()}: ${clip(err instanceof Error ? err.message : String(err), 200)}` }
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
  return parseJwks({ keys: [jwk] }, allowed, { source, kidFromThumbprint: true })
}

export type { WatchOptions as StaticWatchOptions, FileWatcher as StaticWatcher } from '../fs-watch.ts'

/** {@link watchFiles} over the issuer's key files; the caller reloads and compares `digest`. */
export function watchStaticKeys(specs: readonly StaticKeyConfig[], onChange: () => void, options: WatchOptions = {}): FileWatcher {
  return watchFiles(specs.map((s) => s.file), onChange, options)
}
