/**
 * A persisted copy of one issuer's last validated remote key set (issue #13 §3), so a pod that
 * starts while its IdP is down can verify tokens with the keys its previous run trusted, for
 * what remains of `maxStale`, instead of answering 503 until the IdP returns.
 *
 * - Written after each successful refresh (a 304 included: it renews the fetch time the
 *   snapshot carries, which is what `maxStale` bounds). Public members only, as imported
 *   (`KeyObject.export({format: 'jwk'})` of a public key, plus kid and alg), with the issuer,
 *   the source URL and the fetch time. Atomic: a temporary file in the same directory, fsync,
 *   rename (POSIX rename(2) replaces the target in one step), mode 0600. A failed write is an
 *   event; the key path never waits for it or depends on it.
 * - Read once at start, before the first fetch. The document goes through the same import
 *   (`parseJwks`) as a fetched JWKS, and must be whole: a key the import refuses means the file
 *   is not what we wrote, so the snapshot is ignored, never half used. It must name this issuer
 *   (and the configured jwksUri, when there is one), and its fetch time must be in the past and
 *   younger than `maxStale`. Anything else is `jwks.snapshot_ignored` with a closed-set `why`.
 *
 * The snapshot is not signed: whoever can write its path can plant keys, exactly as with a
 * static key file. That is why it lives on a volume only this container writes (an `emptyDir`)
 * and is written 0600.
 */
import { randomBytes } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { IssuerConfig } from '../config/types.ts'
import { describeKeyError } from './errors.ts'
import { parseJwks } from './key-set.ts'
import type { KeySet } from './key-set.ts'
import { isObject } from './untrusted.ts'
import type { KeyEvent, SnapshotIgnoredWhy, VerificationKey } from './types.ts'

/** The document format; bumped if its shape changes (an older one is then `invalid`). */
const FORMAT = 1
/** A fetch time this far ahead of our clock is clock skew between restarts; more is not ours. */
const FUTURE_TOLERANCE_MS = 60_000

export interface SnapshotDeps {
  readonly now: () => number
  readonly emit: (event: KeyEvent) => void
  /** Read the snapshot, never write it: a CLI run must not touch the sidecar's file (issue #13). */
  readonly readOnly?: boolean
}

/** A usable snapshot: its keys and the time the IdP last vouched for them. */
export interface LoadedSnapshot {
  readonly set: KeySet
  readonly fetchedAt: number
}

export interface Snapshot {
  /** The snapshot if it is usable now, else undefined (after a `jwks.snapshot_ignored` event). Never rejects. */
  load(): Promise<LoadedSnapshot | undefined>
  /** Persist these keys as fetched at `fetchedAt` from `jwksUri`; writes are serialised. Never rejects. */
  save(keys: readonly VerificationKey[], fetchedAt: number, jwksUri: string): Promise<void>
  /** Resolves once every write begun so far has ended (stop() waits for it: nothing of ours runs after). */
  flush(): Promise<void>
}

class Ignored extends Error {
  readonly why: SnapshotIgnoredWhy
  constructor(why: SnapshotIgnoredWhy, message: string) {
    super(message)
    this.why = why
  }
}

/**
 * @example
 * ```ts
 * const snapshot = createSnapshot(issuerConfig, '/var/run/jwt-sidecar/corp.jwks.json', { now: Date.now, emit })
 * const loaded = await snapshot.load()     // before the first fetch
 * await snapshot.save(set.keys, Date.now(), jwksUri)   // after each successful refresh
 * ```
 */
export function createSnapshot(cfg: IssuerConfig, file: string, deps: SnapshotDeps): Snapshot {
  const { now, emit } = deps
  const issuer = cfg.name
  let writing: Promise<void> = Promise.resolve()

  async function read(): Promise<LoadedSnapshot> {
    let text: string
    try {
      const bytes = await readFile(file)
      // The same bound as a fetched JWKS: the file is no more trusted than the network.
      if (bytes.length > cfg.fetch.maxBytes) throw new Ignored('invalid', `larger than fetch.maxBytes (${cfg.fetch.maxBytes} bytes)`)
      text = bytes.toString('utf8')
    } catch (err) {
      if (err instanceof Ignored) throw err
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw new Ignored('missing', 'no snapshot yet')
      throw new Ignored('unreadable', code ?? 'read failed')
    }
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch {
      throw new Ignored('invalid', 'not JSON')
    }
    if (!isObject(doc) || doc['format'] !== FORMAT || typeof doc['issuer'] !== 'string' || typeof doc['jwksUri'] !== 'string' || typeof doc['fetchedAt'] !== 'string') {
      throw new Ignored('invalid', `not a format ${FORMAT} snapshot (format, issuer, jwksUri, fetchedAt, jwks)`)
    }
    if (doc['issuer'] !== cfg.issuer) throw new Ignored('other_issuer', 'written for another issuer')
    // With discovery the URL may move; the discovery document's issuer check binds it instead.
    if (cfg.jwksUri !== undefined && doc['jwksUri'] !== cfg.jwksUri) throw new Ignored('other_issuer', 'written for another jwksUri')
    const fetchedAt = Date.parse(doc['fetchedAt'])
    if (!Number.isFinite(fetchedAt)) throw new Ignored('invalid', 'fetchedAt is not a time')
    const t = now()
    if (fetchedAt > t + FUTURE_TOLERANCE_MS) throw new Ignored('invalid', 'fetchedAt is in the future')
    if (t - fetchedAt >= cfg.refresh.maxStale) throw new Ignored('too_old', `fetched ${new Date(fetchedAt).toISOString()}, past refresh.maxStale`)
    let set: KeySet
    try {
      set = await parseJwks(doc['jwks'], cfg.algorithms)
    } catch (err) {
      throw new Ignored('invalid', describeKeyError(err))
    }
    // We wrote only keys the import accepted: a refused one means the file is not ours.
    if (set.rejected.length > 0) throw new Ignored('invalid', `${set.rejected.length} key(s) fail validation: ${set.rejected[0]?.why ?? ''}`)
    if (set.keys.length === 0) throw new Ignored('invalid', 'no keys')
    return { set, fetchedAt }
  }

  async function write(keys: readonly VerificationKey[], fetchedAt: number, jwksUri: string): Promise<void> {
    const doc = {
      format: FORMAT,
      issuer: cfg.issuer,
      jwksUri,
      fetchedAt: new Date(fetchedAt).toISOString(),
      jwks: { keys: keys.map(publicJwk) },
    }
    const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
    try {
      const fh = await open(tmp, 'wx', 0o600)
      try {
        await fh.writeFile(`${JSON.stringify(doc)}\n`)
        // The data reaches the disk before the name points at it: a crash leaves the old file or the new one.
        await fh.sync()
      } finally {
        await fh.close()
      }
      await rename(tmp, file)
      emit({ event: 'jwks.snapshot_written', issuer, file, keys: keys.length })
    } catch (err) {
      await unlink(tmp).catch(() => {})
      const e = err as NodeJS.ErrnoException
      emit({ event: 'jwks.snapshot_write_failed', issuer, file, error: e.code ?? describeKeyError(err) })
    }
  }

  return {
    async load(): Promise<LoadedSnapshot | undefined> {
      try {
        const loaded = await read()
        emit({ event: 'jwks.snapshot_loaded', issuer, file, fetchedAt: loaded.fetchedAt, keys: loaded.set.keys.length })
        return loaded
      } catch (err) {
        const why = err instanceof Ignored ? err.why : 'invalid'
        emit({ event: 'jwks.snapshot_ignored', issuer, file, why, detail: err instanceof Error ? err.message : String(err) })
        return undefined
      }
    },
    save(keys, fetchedAt, jwksUri): Promise<void> {
      if (deps.readOnly === true) return writing
      writing = writing.then(() => write(keys, fetchedAt, jwksUri))
      return writing
    },
    flush: () => writing,
  }
}

/** The public members of an imported key (a public KeyObject exports nothing else), with kid and alg. */
function publicJwk(k: VerificationKey): JsonWebKey {
  const jwk: JsonWebKey = { ...k.key.export({ format: 'jwk' }) }
  if (k.kid !== undefined) jwk['kid'] = k.kid
  if (k.alg !== undefined) jwk['alg'] = k.alg
  return jwk
}
