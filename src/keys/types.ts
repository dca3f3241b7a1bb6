/**
 * The key store's contract with the verifier. Issue #3 (key lifecycle) replaces the
 * internals behind it; callers only ever see these types.
 */
import type { KeyObject } from 'node:crypto'
import type { Algorithm } from '../config/types.ts'

/** One usable verification key, imported once per fetch (never per request). */
export interface VerificationKey {
  readonly kid: string | undefined
  /** RFC 7638 JWK thumbprint (SHA-256, base64url): stable identity for logs and diffs. */
  readonly thumbprint: string
  /** The algorithms this key may verify: its `alg` if the JWK names one, else every algorithm its type supports. */
  readonly algorithms: ReadonlySet<Algorithm>
  readonly key: KeyObject
}

export type KeyResult =
  | { readonly ok: true; readonly key: VerificationKey }
  | { readonly ok: false; readonly reason: 'unknown_kid' | 'keys_unavailable' | 'bad_signature' }

/**
 * Per-issuer key access. `getKey` answers synchronously when it can (the hot path allocates
 * nothing but the result); it returns a promise only when a bounded unknown-kid refetch runs.
 */
export interface IssuerKeys {
  readonly name: string
  getKey(kid: string | undefined, alg: Algorithm): KeyResult | Promise<KeyResult>
  /** True when the issuer has a usable key set. */
  ready(): boolean
  status(): IssuerKeyStatus
}

export interface IssuerKeyStatus {
  readonly issuer: string
  readonly ready: boolean
  readonly keys: number
  /** epoch ms of the last successful fetch, or undefined. */
  readonly lastSuccess: number | undefined
  readonly lastError: string | undefined
}

export interface KeyStore {
  /** The configured issuer with this name; undefined for a name not in the config. */
  issuer(name: string): IssuerKeys | undefined
  /** Every issuer has usable keys. */
  ready(): boolean
  status(): readonly IssuerKeyStatus[]
  /** Start fetching (all issuers concurrently) and the background schedule. Never throws for a provider outage. */
  start(): void
  /** Cancel timers and in-flight fetches. */
  stop(): Promise<void>
}

/** Security and health events the key store emits; observe/ turns them into logs and metrics. */
export type KeyEvent =
  | { readonly event: 'jwks.fetch'; readonly issuer: string; readonly result: 'success' | 'error'; readonly trigger: 'startup' | 'interval' | 'unknown_kid'; readonly durationMs: number; readonly keys?: number; readonly error?: string }
  | { readonly event: 'jwks.key_added'; readonly issuer: string; readonly kid: string | undefined; readonly thumbprint: string }
  | { readonly event: 'jwks.key_removed'; readonly issuer: string; readonly kid: string | undefined; readonly thumbprint: string }
  | { readonly event: 'jwks.key_rejected'; readonly issuer: string; readonly kid: string | undefined; readonly why: string }

export type KeyEventSink = (event: KeyEvent) => void
