/**
 * The key store's contract with the verifier, the admin port and observe/. Internals (fetch,
 * freshness, static files) may change; callers only ever see these types.
 */
import type { KeyObject } from 'node:crypto'
import type { Algorithm } from '../config/types.ts'

/** Where a key came from: the remote JWKS, or a static file (its absolute path). */
export type KeySource = 'jwks' | `file:${string}`

/** One usable verification key, imported once per fetch or file load (never per request). */
export interface VerificationKey {
  readonly kid: string | undefined
  /** RFC 7638 JWK thumbprint (SHA-256, base64url): stable identity for logs and diffs. */
  readonly thumbprint: string
  readonly kty: 'RSA' | 'EC' | 'OKP'
  /** The `alg` the key declares, if any (RFC 7517 §4.4): then only that alg may use it. */
  readonly alg: Algorithm | undefined
  /** The algorithms this key may verify: its `alg` if declared, else every algorithm its type supports, within the allowlist. */
  readonly algorithms: ReadonlySet<Algorithm>
  readonly key: KeyObject
  readonly source: KeySource
  /** A PEM file holding a certificate chain: the key is its leaf's (the first certificate), of this many (issue #12). */
  readonly chainLength?: number
}

export type KeyResult =
  | {
      readonly ok: true
      readonly key: VerificationKey
      /**
       * A token without kid that several keys fit (at most `kidless.maxCandidates`, issue #12):
       * every key to try, in index order, `key` first. Absent when exactly one key is meant.
       */
      readonly candidates?: readonly VerificationKey[]
    }
  | {
      readonly ok: false
      readonly reason: 'unknown_kid' | 'keys_unavailable' | 'bad_signature'
      /** A token without kid: this many keys fit its alg, more than `kidless.maxCandidates`, so none is tried. */
      readonly fitting?: number
    }

/**
 * The state of an issuer's key set, one closed set for /keys, /readyz and the
 * `jwt_sidecar_jwks_state` metric:
 * - `loading`: no usable key yet (start-up, or every source failing since start);
 * - `fresh`: the last remote refresh succeeded;
 * - `stale`: refreshes are failing; the last-known-good set is used, for at most `maxStale`;
 * - `expired`: past `maxStale` the remote keys are dropped until a refresh succeeds;
 * - `static`: keys come from files only.
 */
export type KeySetState = 'loading' | 'fresh' | 'stale' | 'expired' | 'static'
export const KEY_SET_STATES: readonly KeySetState[] = ['loading', 'fresh', 'stale', 'expired', 'static']

/**
 * Per-issuer key access. `getKey` answers synchronously when it can (the hot path allocates
 * nothing); it returns a promise only while a bounded unknown-kid refetch runs.
 */
export interface IssuerKeys {
  readonly name: string
  getKey(kid: string | undefined, alg: Algorithm): KeyResult | Promise<KeyResult>
  /**
   * An opaque value that changes whenever the issuer's key index is swapped (a refresh, a
   * file reload, keys expiring past maxStale, a reload switching runtimes), compared by
   * identity. The verified-token cache keeps an entry only while this stays the same, so a
   * withdrawn key cannot keep working through it.
   */
  version(): object
  /** True when the issuer has at least one usable key. */
  ready(): boolean
  status(): IssuerKeyStatus
  /**
   * Resolves once the issuer's first load attempt after start() has finished, successful or
   * not, so a caller can look at `ready()` / `status()` instead of polling them:
   * - key files: every file read and validated once (a bad file settles it too);
   * - a JWKS URL: the first fetch answered, failed or timed out (`fetch.timeout`);
   * - discovery: the discovery document and then the JWKS fetched, as one attempt (a failed
   *   discovery settles it);
   * - both: when both have. `stop()` settles it at once. Never rejects and never waits for a
   *   retry: an issuer whose provider is down settles within its fetch timeouts, not ready.
   * Before start() it stays pending.
   */
  settled(): Promise<void>
}

/** Public data only: what /keys and /readyz?verbose show. */
export interface KeyInfo {
  readonly kid: string | undefined
  readonly kty: VerificationKey['kty']
  readonly alg: Algorithm | undefined
  readonly thumbprint: string
  readonly source: KeySource
  /** The key is the leaf's of a certificate chain of this many certificates (a `tls.crt`); absent otherwise. */
  readonly chainLength?: number
  /** ISO time this key (thumbprint + kid) was first seen by this process. */
  readonly firstSeen: string
}

export interface IssuerKeyStatus {
  readonly issuer: string
  readonly ready: boolean
  readonly state: KeySetState
  /** Usable keys now. */
  readonly keys: number
  /** epoch ms of the last successful remote refresh (or static load), or undefined. */
  readonly lastSuccess: number | undefined
  /** epoch ms of the next scheduled remote refresh, or undefined. */
  readonly nextRefresh: number | undefined
  readonly lastError: string | undefined
  /** The JWKS URL in use (configured or discovered), if any. */
  readonly jwksUri: string | undefined
  readonly keyList: readonly KeyInfo[]
}

export interface KeyStore {
  /** The configured issuer with this name; undefined for a name not in the config. */
  issuer(name: string): IssuerKeys | undefined
  /** Every issuer has usable keys. */
  ready(): boolean
  status(): readonly IssuerKeyStatus[]
  /** Start fetching (all issuers concurrently), watching files and the background schedule. Never throws for a provider outage. */
  start(): void
  /** Every issuer has settled (see {@link IssuerKeys.settled}): its first load attempt is over, with or without keys. */
  settled(): Promise<void>
  /** Cancel timers, watchers and in-flight fetches. */
  stop(): Promise<void>
}

/** What caused a refresh: the first load, the schedule (incl. retries), an unknown kid, a key file change. */
export type RefreshTrigger = 'startup' | 'schedule' | 'unknown_kid' | 'file'
/**
 * Why a key snapshot (snapshot.ts) was not used at start: none yet, unreadable, not a valid
 * snapshot (bad JSON, a key the import refuses, a fetch time in the future), written for another
 * issuer or jwksUri, or older than `refresh.maxStale`.
 */
export type SnapshotIgnoredWhy = 'missing' | 'unreadable' | 'invalid' | 'other_issuer' | 'too_old'
export type UnknownKidAction = 'refreshed' | 'cooldown' | 'known_unknown'

interface KeyFields {
  readonly issuer: string
  readonly kid: string | undefined
  readonly kty: VerificationKey['kty']
  readonly alg: Algorithm | undefined
  readonly thumbprint: string
  readonly source: KeySource
  /** The leaf's key of a certificate chain of this many certificates; absent otherwise. */
  readonly chainLength?: number
}

/**
 * Security and health events; observe/ turns them into logs (the `event` field) and metrics.
 * Never token material; key material only as kid, kty, alg and thumbprint.
 */
export type KeyEvent =
  | { readonly event: 'jwks.refreshed'; readonly issuer: string; readonly trigger: RefreshTrigger; readonly result: 'updated' | 'not_modified'; readonly durationMs: number; readonly keys: number; readonly nextRefreshMs: number | undefined }
  | { readonly event: 'jwks.refresh_failed'; readonly issuer: string; readonly trigger: RefreshTrigger; readonly durationMs: number; readonly error: string; readonly failures: number; readonly retryInMs: number | undefined }
  | ({ readonly event: 'jwks.key_added' } & KeyFields)
  | ({ readonly event: 'jwks.key_removed' } & KeyFields)
  | ({ readonly event: 'jwks.key_changed'; readonly previousThumbprint: string } & KeyFields)
  | { readonly event: 'jwks.keyset_replaced'; readonly issuer: string; readonly added: number; readonly removed: number }
  | { readonly event: 'jwks.key_rejected'; readonly issuer: string; readonly kid: string | undefined; readonly why: string; readonly source: KeySource }
  | { readonly event: 'jwks.stale'; readonly issuer: string; readonly lastSuccess: number; readonly error: string }
  | { readonly event: 'jwks.expired'; readonly issuer: string; readonly lastSuccess: number | undefined }
  | { readonly event: 'jwks.recovered'; readonly issuer: string; readonly from: 'stale' | 'expired' | 'loading' }
  | { readonly event: 'jwks.discovered'; readonly issuer: string; readonly jwksUri: string }
  | { readonly event: 'jwks.unknown_kid'; readonly issuer: string; readonly action: UnknownKidAction }
  | { readonly event: 'jwks.snapshot_loaded'; readonly issuer: string; readonly file: string; readonly fetchedAt: number; readonly keys: number }
  | { readonly event: 'jwks.snapshot_ignored'; readonly issuer: string; readonly file: string; readonly why: SnapshotIgnoredWhy; readonly detail: string }
  | { readonly event: 'jwks.snapshot_written'; readonly issuer: string; readonly file: string; readonly keys: number }
  | { readonly event: 'jwks.snapshot_write_failed'; readonly issuer: string; readonly file: string; readonly error: string }

export type KeyEventSink = (event: KeyEvent) => void
