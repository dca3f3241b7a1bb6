/**
 * Per-issuer key sets behind the synchronous `getKey` the verifier calls on every request.
 *
 * Background: fetch → parse → diff → swap → emit, on a fixed interval, one fetch per issuer
 * in flight (single-flight, as jose's `pendingFetch`), and a failure never drops good keys
 * (Envoy's jwks_async_fetcher keeps the cached set on a failed refetch). Foreground: a known
 * kid is answered synchronously from pre-allocated results; an unknown kid may trigger ONE
 * refetch per cooldown, which a request waits for at most `unknownKidWait`.
 *
 * This is the first version (issue #2). Issue #3 replaces the internals (Cache-Control
 * freshness, backoff, last-known-good with maxStale, discovery, static keys) behind the same
 * `KeyStore` contract.
 */
import { performance } from 'node:perf_hooks'
import type { Algorithm, IssuerConfig } from '../config/types.ts'
import { packageVersion } from '../package-root.ts'
import { createJwksFetcher } from './fetcher.ts'
import type { FetchJwks } from './fetcher.ts'
import { diffKeySets, parseJwks } from './key-set.ts'
import type { KeySet } from './key-set.ts'
import type { IssuerKeys, KeyEvent, KeyEventSink, KeyResult, KeyStore, VerificationKey } from './types.ts'

/** A cancellable one-shot timer. The default implementation `unref()`s it. */
export interface Timer {
  cancel(): void
}
/** Run `fn` once after `ms`; injected so tests can drive schedules without sleeping. */
export type Schedule = (fn: () => void, ms: number) => Timer

export interface KeyStoreDeps {
  /** Fetch one issuer's JWKS document. Default: fetcher.ts with the issuer's `fetch` settings. */
  readonly fetchJwks?: (url: string, issuer: IssuerConfig, signal: AbortSignal) => Promise<unknown>
  /** Epoch ms. Default `Date.now`. */
  readonly now?: () => number
  readonly onEvent?: KeyEventSink
  readonly schedule?: Schedule
  /** Sent as `User-Agent: jwt-sidecar/<version>`. Default: read from our package.json once. */
  readonly version?: string
}

/** A failed fetch is retried after min(interval, this). Issue #3 replaces it with backoff. */
export const RETRY_AFTER_FAILURE_MS = 10_000

// Shared, frozen failure results: the hot path returns these without allocating.
const KEYS_UNAVAILABLE: KeyResult = Object.freeze({ ok: false, reason: 'keys_unavailable' })
const UNKNOWN_KID: KeyResult = Object.freeze({ ok: false, reason: 'unknown_kid' })
const BAD_SIGNATURE: KeyResult = Object.freeze({ ok: false, reason: 'bad_signature' })

/** A key set plus its lookup tables, built once per successful fetch and swapped in whole. */
interface Index {
  readonly set: KeySet
  /** kid → the pre-allocated `{ok: true, key}` result. */
  readonly byKid: ReadonlyMap<string, { readonly key: VerificationKey; readonly result: KeyResult }>
  /** For a token without kid: the result if exactly one key supports the alg. */
  readonly noKid: ReadonlyMap<Algorithm, KeyResult>
}

type Trigger = 'startup' | 'interval' | 'unknown_kid'

/**
 * Create the key store for the configured issuers. Nothing happens until `start()`.
 *
 * @example
 * ```ts
 * const store = createKeyStore(config.issuers, { onEvent: (e) => log.info(e, e.event) })
 * store.start()                                  // never throws for a provider outage
 * const keys = store.issuer('corp')!
 * const r = keys.getKey(header.kid, header.alg)  // sync for a known kid
 * const result = r instanceof Promise ? await r : r
 * if (!result.ok) return reject(result.reason)
 * await store.stop()                             // on shutdown
 * ```
 */
export function createKeyStore(issuers: readonly IssuerConfig[], deps: KeyStoreDeps = {}): KeyStore {
  const now = deps.now ?? Date.now
  const schedule = deps.schedule ?? defaultSchedule
  const sink = deps.onEvent
  const emit = (event: KeyEvent): void => {
    if (sink === undefined) return
    // An observer's bug must not break key rotation.
    try {
      sink(event)
    } catch {
      /* ignored on purpose */
    }
  }
  const fetchJwks = deps.fetchJwks ?? defaultFetchJwks(deps.version ?? packageVersion())

  const byName = new Map<string, IssuerRuntime>()
  for (const cfg of issuers) byName.set(cfg.name, createIssuerRuntime(cfg, { now, schedule, emit, fetchJwks }))
  const all = [...byName.values()]

  return {
    issuer: (name) => byName.get(name)?.keys,
    ready: () => all.every((r) => r.keys.ready()),
    status: () => all.map((r) => r.keys.status()),
    start: () => {
      for (const r of all) r.start()
    },
    stop: async () => {
      await Promise.all(all.map((r) => r.stop()))
    },
  }
}

interface IssuerRuntime {
  readonly keys: IssuerKeys
  start(): void
  stop(): Promise<void>
}

interface RuntimeDeps {
  readonly now: () => number
  readonly schedule: Schedule
  readonly emit: (event: KeyEvent) => void
  readonly fetchJwks: (url: string, issuer: IssuerConfig, signal: AbortSignal) => Promise<unknown>
}

function createIssuerRuntime(cfg: IssuerConfig, deps: RuntimeDeps): IssuerRuntime {
  const { now, schedule, emit, fetchJwks } = deps
  const { name } = cfg
  const { interval, unknownKidCooldown, unknownKidWait } = cfg.refresh
  const retryDelay = Math.min(interval, RETRY_AFTER_FAILURE_MS)
  const abort = new AbortController()

  let current: Index | undefined
  let started = false
  let stopped = false
  let inflight: Promise<void> | undefined
  let timer: Timer | undefined
  let lastSuccess: number | undefined
  let lastError: string | undefined
  /** Rejections already reported, so a key the provider keeps publishing is reported once, not every interval. */
  let reportedRejections = new Set<string>()
  /** When the last unknown-kid refetch was triggered; -Infinity = never. */
  let lastUnknownKidFetch = -Infinity
  /** Settles when the current unknown-kid refetch finishes or its wait bound passes. */
  let unknownKidWaiter: Promise<void> | undefined
  let releaseWaiter: (() => void) | undefined

  function reschedule(ms: number): void {
    timer?.cancel()
    timer = undefined
    if (stopped) return
    timer = schedule(() => {
      timer = undefined
      void refresh('interval')
    }, ms)
  }

  /** Single-flight: concurrent triggers share the fetch in flight. Never rejects. */
  function refresh(trigger: Trigger): Promise<void> {
    if (inflight !== undefined) return inflight
    if (stopped) return Promise.resolve()
    const p = runFetch(trigger).finally(() => {
      inflight = undefined
    })
    inflight = p
    return p
  }

  async function runFetch(trigger: Trigger): Promise<void> {
    // Durations use the monotonic clock (a wall-clock step must not make a fetch look
    // negative or hours long); `now` stays the epoch clock for cooldowns and status.
    const t0 = performance.now()
    let set: KeySet
    try {
      const json = await fetchJwks(cfg.jwksUri, cfg, abort.signal)
      if (stopped) return
      set = await parseJwks(json, cfg.algorithms)
      if (stopped) return
      reportRejections(set)
      if (set.keys.length === 0) {
        throw Object.assign(new Error(`no usable keys (${set.rejected.length} rejected)`), { code: 'no_usable_keys' })
      }
    } catch (err) {
      if (stopped) return
      // Keep the previous set: a provider outage or a bad document must never drop good keys.
      lastError = describe(err)
      emit({ event: 'jwks.fetch', issuer: name, result: 'error', trigger, durationMs: Math.round(performance.now() - t0), error: lastError })
      reschedule(retryDelay)
      return
    }

    const { added, removed } = diffKeySets(current?.set, set)
    current = buildIndex(set) // the swap: one assignment, readers see the old or the new set
    lastSuccess = now()
    lastError = undefined
    emit({ event: 'jwks.fetch', issuer: name, result: 'success', trigger, durationMs: Math.round(performance.now() - t0), keys: set.keys.length })
    for (const k of added) emit({ event: 'jwks.key_added', issuer: name, kid: k.kid, thumbprint: k.thumbprint })
    for (const k of removed) emit({ event: 'jwks.key_removed', issuer: name, kid: k.kid, thumbprint: k.thumbprint })
    reschedule(interval)
  }

  function reportRejections(set: KeySet): void {
    const seen = new Set<string>()
    for (const r of set.rejected) {
      const id = `${r.kid ?? ''}\n${r.why}`
      seen.add(id)
      if (!reportedRejections.has(id)) emit({ event: 'jwks.key_rejected', issuer: name, kid: r.kid, why: r.why })
    }
    reportedRejections = seen
  }

  function lookup(idx: Index, kid: string | undefined, alg: Algorithm): KeyResult | undefined {
    if (kid === undefined) return idx.noKid.get(alg) ?? UNKNOWN_KID
    const hit = idx.byKid.get(kid)
    if (hit === undefined) return undefined
    // The key the token names cannot have produced this alg (RS256 vs an EC key, or an alg
    // the issuer does not allow): the signature cannot verify.
    return hit.key.algorithms.has(alg) ? hit.result : BAD_SIGNATURE
  }

  function getKey(kid: string | undefined, alg: Algorithm): KeyResult | Promise<KeyResult> {
    const idx = current
    if (idx === undefined) return KEYS_UNAVAILABLE
    const found = lookup(idx, kid, alg)
    if (found !== undefined) return found
    // kid is a string here (lookup answers every kid-less token).
    return unknownKid(kid as string, alg)
  }

  /**
   * A kid we do not know may be a key the provider just rotated in. Refetch at most once per
   * cooldown (a flood of random kids costs one fetch), and let requests wait for that one
   * fetch at most `unknownKidWait`. Outside a refetch, inside the cooldown, fail synchronously.
   */
  function unknownKid(kid: string, alg: Algorithm): KeyResult | Promise<KeyResult> {
    if (unknownKidWaiter === undefined) {
      const t = now()
      if (stopped || t - lastUnknownKidFetch < unknownKidCooldown) return UNKNOWN_KID
      lastUnknownKidFetch = t
      unknownKidWaiter = startUnknownKidWait(refresh('unknown_kid'))
    }
    // Requests arriving during the refetch share one waiter (one timer, not one per request).
    return unknownKidWaiter.then(() => {
      const idx = current
      return idx === undefined ? KEYS_UNAVAILABLE : (lookup(idx, kid, alg) ?? UNKNOWN_KID)
    })
  }

  function startUnknownKidWait(fetching: Promise<void>): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false
      const release = (): void => {
        if (done) return
        done = true
        waitTimer.cancel()
        unknownKidWaiter = undefined
        releaseWaiter = undefined
        resolve()
      }
      const waitTimer = schedule(release, unknownKidWait)
      releaseWaiter = release
      void fetching.then(release)
    })
  }

  const keys: IssuerKeys = {
    name,
    getKey,
    ready: () => current !== undefined,
    status: () => ({
      issuer: name,
      ready: current !== undefined,
      keys: current?.set.keys.length ?? 0,
      lastSuccess,
      lastError,
    }),
  }

  return {
    keys,
    start(): void {
      if (started || stopped) return
      started = true
      void refresh('startup')
    },
    async stop(): Promise<void> {
      stopped = true
      timer?.cancel()
      timer = undefined
      releaseWaiter?.()
      abort.abort()
      // Wait for the aborted fetch to settle so nothing of ours runs after stop() resolves.
      await inflight
    },
  }
}

function buildIndex(set: KeySet): Index {
  // One frozen `{ok: true, key}` per key, made here so getKey returns it without allocating.
  const ok = new Map<VerificationKey, KeyResult>()
  for (const key of set.keys) ok.set(key, Object.freeze({ ok: true, key }))
  const result = (key: VerificationKey): KeyResult => ok.get(key) ?? Object.freeze({ ok: true, key })

  const byKid = new Map<string, { readonly key: VerificationKey; readonly result: KeyResult }>()
  for (const [kid, key] of set.byKid) byKid.set(kid, Object.freeze({ key, result: result(key) }))

  // A token without kid gets a key only when exactly one key could have signed it; trying
  // every key would let one request cost N signature checks.
  const candidates = new Map<Algorithm, VerificationKey[]>()
  for (const key of set.keys) {
    for (const alg of key.algorithms) {
      const list = candidates.get(alg)
      if (list === undefined) candidates.set(alg, [key])
      else list.push(key)
    }
  }
  const noKid = new Map<Algorithm, KeyResult>()
  for (const [alg, list] of candidates) {
    const [only, ...more] = list
    if (only !== undefined && more.length === 0) noKid.set(alg, result(only))
  }
  return Object.freeze({ set, byKid, noKid })
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  const message = err instanceof Error ? err.message : String(err)
  return typeof code === 'string' && /^[a-z_]+$/.test(code) ? `${code}: ${message}` : message
}

function defaultSchedule(fn: () => void, ms: number): Timer {
  const t = setTimeout(fn, ms)
  // Background refreshes must never keep the process alive on their own.
  t.unref()
  return { cancel: () => clearTimeout(t) }
}

function defaultFetchJwks(version: string): (url: string, issuer: IssuerConfig, signal: AbortSignal) => Promise<unknown> {
  const userAgent = `jwt-sidecar/${version}`
  // One fetcher per issuer (its own timeout and size cap), built on first use.
  const fetchers = new Map<string, FetchJwks>()
  return (url, issuer, signal) => {
    let f = fetchers.get(issuer.name)
    if (f === undefined) {
      f = createJwksFetcher({ timeout: issuer.fetch.timeout, maxBytes: issuer.fetch.maxBytes, userAgent })
      fetchers.set(issuer.name, f)
    }
    return f(url, signal)
  }
}
