/**
 * One issuer's keys: remote (a JWKS URL, configured or discovered) and/or static files,
 * merged into one index that `getKey` reads synchronously.
 *
 * Remote lifecycle (issue #3), in the spirit of Envoy's jwks_async_fetcher and jose's
 * remote JWK set:
 * - refresh in the background at clamp(Cache-Control max-age, minInterval, maxInterval) with
 *   jitter; conditional requests (ETag / Last-Modified), a 304 renews freshness;
 * - one fetch in flight (single-flight); a failure never drops good keys and retries with
 *   exponential backoff from 1s up to minInterval;
 * - the last-known-good set stays usable for `maxStale` after the last success, then it is
 *   dropped (`expired`) until a refresh succeeds;
 * - an unknown kid triggers at most one refresh per `unknownKidCooldown`; requests wait for
 *   it at most `unknownKidWait` and never queue; kids a fresh fetch proved unknown are
 *   answered at once until the next successful refresh.
 * Static files are watched and reloaded through the same validation and diff; a file that
 * turns invalid keeps its previous keys.
 */
import { performance } from 'node:perf_hooks'
import type { Algorithm, IssuerConfig } from '../config/types.ts'
import { discoverJwksUri } from './discovery.ts'
import type { FetchJson, Validators } from './fetcher.ts'
import { backoffDelay, nextRefreshDelay } from './freshness.ts'
import { EMPTY_INDEX, buildIndex, mergeSources } from './key-index.ts'
import type { KeyIndex } from './key-index.ts'
import { diffKeySets, identity, parseJwks } from './key-set.ts'
import type { RejectedKey } from './key-set.ts'
import { loadStaticKeys, watchStaticKeys } from './static.ts'
import type { StaticLoad, StaticWatcher } from './static.ts'
import type {
  IssuerKeyStatus, IssuerKeys, KeyEvent, KeyInfo, KeyResult, KeySetState, KeySource, RefreshTrigger, UnknownKidAction, VerificationKey,
} from './types.ts'

/** A cancellable one-shot timer. The default implementation `unref()`s it. */
export interface Timer {
  cancel(): void
}
/** Run `fn` once after `ms`; injected so tests can drive schedules. */
export type Schedule = (fn: () => void, ms: number) => Timer

export interface IssuerKeysDeps {
  readonly fetchJson: FetchJson
  readonly now: () => number
  readonly random: () => number
  readonly schedule: Schedule
  readonly emit: (event: KeyEvent) => void
  /** Static file watching options (tests shorten the poll). */
  readonly watch?: { readonly debounceMs?: number; readonly pollIntervalMs?: number }
}

export interface IssuerRuntime {
  readonly keys: IssuerKeys
  start(): void
  stop(): Promise<void>
}

// Shared, frozen failure results: the hot path returns these without allocating.
const KEYS_UNAVAILABLE: KeyResult = Object.freeze({ ok: false, reason: 'keys_unavailable' })
const UNKNOWN_KID: KeyResult = Object.freeze({ ok: false, reason: 'unknown_kid' })
const BAD_SIGNATURE: KeyResult = Object.freeze({ ok: false, reason: 'bad_signature' })

/** Kids proven unknown are remembered only while short and few: attacker-chosen strings. */
const KNOWN_UNKNOWN_MAX = 1000
const KNOWN_UNKNOWN_MAX_LENGTH = 128

export function createIssuerRuntime(cfg: IssuerConfig, deps: IssuerKeysDeps): IssuerRuntime {
  const { fetchJson, now, random, schedule, emit } = deps
  const { name, refresh } = cfg
  const hasRemote = cfg.jwksUri !== undefined || cfg.discovery
  const hasStatic = cfg.keys.length > 0
  const abort = new AbortController()

  // Effective keys.
  let index: KeyIndex = EMPTY_INDEX
  const firstSeen = new Map<string, string>()
  /** Rejections already reported, so a key the provider keeps publishing is reported once. */
  let reported = new Set<string>()

  // Remote state.
  let jwksUri = cfg.jwksUri
  let discoveredAt = -Infinity
  let validators: Validators | undefined
  let remoteKeys: readonly VerificationKey[] = []
  let lastSuccess: number | undefined
  let failures = 0
  let lastError: string | undefined
  let expired = false
  let hadRemoteKeys = false
  let nextRefreshAt: number | undefined
  let refreshTimer: Timer | undefined
  let expiryTimer: Timer | undefined
  let inflight: Promise<void> | undefined
  /** Remote fetches started so far, and the number of the last one that succeeded. */
  let fetchesStarted = 0
  let lastOkFetch = 0

  // Unknown-kid state.
  let lastUnknownKidRefresh = -Infinity
  let unknownKidWaiter: Promise<void> | undefined
  let releaseWaiter: (() => void) | undefined
  let knownUnknown = new Set<string>()

  // Static state.
  let staticLoad: StaticLoad | undefined
  let lastStaticLoad: number | undefined
  let watcher: StaticWatcher | undefined
  let staticReload: Promise<void> | undefined
  let staticAgain = false

  let started = false
  let stopped = false

  // ---------------------------------------------------------------------------------------
  // State and the effective set

  function state(): KeySetState {
    if (!hasRemote) return staticLoad !== undefined && staticLoad.keys.length > 0 ? 'static' : 'loading'
    if (expired) return 'expired'
    if (!hadRemoteKeys) return 'loading'
    return failures > 0 ? 'stale' : 'fresh'
  }

  function report(rejected: readonly RejectedKey[], source: KeySource, keep: Set<string>): void {
    for (const r of rejected) {
      const id = `${source}\n${r.kid ?? ''}\n${r.why}`
      keep.add(id)
      if (!reported.has(id)) emit({ event: 'jwks.key_rejected', issuer: name, kid: r.kid, why: r.why, source })
    }
  }

  /** Rebuild the index from both sources, diff it against the current one, swap, emit. */
  function rebuild(rejected: readonly { readonly list: readonly RejectedKey[]; readonly source: KeySource }[]): void {
    const merged = mergeSources(staticLoad?.keys ?? [], expired ? [] : remoteKeys)
    const keep = new Set<string>()
    for (const r of rejected) report(r.list, r.source, keep)
    for (const c of merged.conflicts) report([{ kid: c.key.kid, why: c.why }], c.key.source, keep)
    // Rejections of the source not reloaded this time stay reported.
    for (const id of reported) if (!rejected.some((r) => id.startsWith(`${r.source}\n`))) keep.add(id)
    reported = keep

    const diff = diffKeySets(index, { keys: merged.keys })
    index = buildIndex(merged.keys) // the swap: readers see the old or the new index, never a mix
    const at = new Date(now()).toISOString()
    for (const k of merged.keys) if (!firstSeen.has(identity(k))) firstSeen.set(identity(k), at)
    for (const k of diff.removed) firstSeen.delete(identity(k))
    for (const c of diff.changed) firstSeen.delete(identity(c.previous))
    const fields = (k: VerificationKey) => ({ issuer: name, kid: k.kid, kty: k.kty, alg: k.alg, thumbprint: k.thumbprint, source: k.source })
    for (const k of diff.added) emit({ event: 'jwks.key_added', ...fields(k) })
    for (const k of diff.removed) emit({ event: 'jwks.key_removed', ...fields(k) })
    for (const c of diff.changed) emit({ event: 'jwks.key_changed', ...fields(c.key), previousThumbprint: c.previous.thumbprint })
    if (diff.replaced) emit({ event: 'jwks.keyset_replaced', issuer: name, added: diff.added.length + diff.changed.length, removed: diff.removed.length + diff.changed.length })
  }

  // ---------------------------------------------------------------------------------------
  // Remote refresh

  function scheduleRefresh(ms: number): void {
    refreshTimer?.cancel()
    refreshTimer = undefined
    nextRefreshAt = undefined
    if (stopped) return
    nextRefreshAt = now() + ms
    refreshTimer = schedule(() => {
      refreshTimer = undefined
      void refreshRemote('schedule')
    }, ms)
  }

  function scheduleExpiry(): void {
    expiryTimer?.cancel()
    expiryTimer = undefined
    if (stopped || lastSuccess === undefined) return
    const at = lastSuccess + refresh.maxStale
    expiryTimer = schedule(() => {
      expiryTimer = undefined
      expire()
    }, Math.max(0, at - now()))
  }

  /** Past maxStale the last-known-good set is no longer good: drop it until a refresh succeeds. */
  function expire(): void {
    if (stopped || expired || lastSuccess === undefined) return
    // Timers may fire a millisecond early against the wall clock: re-arm, never give up.
    if (now() - lastSuccess < refresh.maxStale) return scheduleExpiry()
    expired = true
    // The next fetch must be unconditional: a 304 cannot vouch for keys we no longer hold.
    validators = undefined
    emit({ event: 'jwks.expired', issuer: name, lastSuccess })
    rebuild([])
  }

  /** Single-flight: concurrent triggers share the fetch in flight. Never rejects. */
  function refreshRemote(trigger: RefreshTrigger): Promise<void> {
    if (inflight !== undefined) return inflight
    if (stopped || !hasRemote) return Promise.resolve()
    const p = runRefresh(trigger).finally(() => {
      inflight = undefined
    })
    inflight = p
    return p
  }

  async function runRefresh(trigger: RefreshTrigger): Promise<void> {
    const fetchNo = ++fetchesStarted
    // Durations on the monotonic clock; `now` stays the epoch clock for status and staleness.
    const t0 = performance.now()
    const before = state()
    let outcome
    try {
      if (cfg.discovery && (jwksUri === undefined || now() - discoveredAt >= refresh.discoveryInterval)) {
        try {
          const found = await discoverJwksUri(cfg.issuer, fetchJson, { allowInsecureHttp: cfg.allowInsecureHttp, signal: abort.signal })
          discoveredAt = now()
          if (found.jwksUri !== jwksUri) {
            jwksUri = found.jwksUri
            validators = undefined
            emit({ event: 'jwks.discovered', issuer: name, jwksUri: found.jwksUri })
          }
        } catch (err) {
          // With a jwks_uri from an earlier discovery, keep using it: the document moving
          // is rare, the provider being briefly down is not.
          if (jwksUri === undefined || stopped) throw err
        }
      }
      outcome = await fetchJson(jwksUri!, { ...(validators === undefined ? {} : { validators }), signal: abort.signal })
      if (stopped) return
      if (outcome.status === 'ok') {
        const set = await parseJwks(outcome.body, cfg.algorithms)
        if (stopped) return
        if (set.keys.length === 0) {
          // Report why each key was refused, then fail the refresh: zero keys is never an update.
          const keep = new Set(reported)
          report(set.rejected, 'jwks', keep)
          reported = keep
          throw Object.assign(new Error(`no usable keys (${set.rejected.length} rejected)`), { code: 'no_usable_keys' })
        }
        remoteKeys = set.keys
        validators = outcome.validators
        expired = false
        hadRemoteKeys = true
        markSuccess(fetchNo)
        rebuild([{ list: set.rejected, source: 'jwks' }])
      } else if (hadRemoteKeys && !expired) {
        // RFC 9111 §4.3.4: a 304 freshens what we hold.
        markSuccess(fetchNo)
      } else {
        // A 304 for keys we no longer hold vouches for nothing (validators are dropped on
        // expiry, so only a misbehaving server gets here).
        validators = undefined
        throw Object.assign(new Error('304 Not Modified without a held key set'), { code: 'not_modified_without_keys' })
      }
    } catch (err) {
      if (stopped) return
      failures++
      lastError = describe(err)
      const retryInMs = backoffDelay(failures, refresh, random)
      scheduleRefresh(retryInMs)
      emit({ event: 'jwks.refresh_failed', issuer: name, trigger, durationMs: elapsed(t0), error: lastError, failures, retryInMs })
      if (before === 'fresh' && lastSuccess !== undefined) emit({ event: 'jwks.stale', issuer: name, lastSuccess, error: lastError })
      return
    }
    const delay = nextRefreshDelay(outcome.maxAgeMs, refresh, random)
    scheduleRefresh(delay)
    emit({ event: 'jwks.refreshed', issuer: name, trigger, result: outcome.status === 'ok' ? 'updated' : 'not_modified', durationMs: elapsed(t0), keys: index.keys.length, nextRefreshMs: delay })
    if (before === 'stale' || before === 'expired' || (before === 'loading' && failures > 0)) {
      emit({ event: 'jwks.recovered', issuer: name, from: before })
    }
    failures = 0
  }

  function markSuccess(fetchNo: number): void {
    lastSuccess = now()
    lastError = undefined
    lastOkFetch = fetchNo
    // "Remembered until the next successful refresh" (issue #3 item 4).
    knownUnknown = new Set()
    scheduleExpiry()
  }

  // ---------------------------------------------------------------------------------------
  // Static files

  function reloadStatic(trigger: RefreshTrigger): Promise<void> {
    // Coalesce: a reload in progress runs once more afterwards instead of in parallel.
    if (staticReload !== undefined) {
      staticAgain = true
      return staticReload
    }
    staticReload = (async () => {
      do {
        staticAgain = false
        await loadStaticOnce(trigger)
      } while (staticAgain && !stopped)
    })().finally(() => {
      staticReload = undefined
    })
    return staticReload
  }

  async function loadStaticOnce(trigger: RefreshTrigger): Promise<void> {
    const t0 = performance.now()
    let load: StaticLoad
    try {
      load = await loadStaticKeys(cfg.keys, cfg.algorithms)
    } catch (err) {
      emit({ event: 'jwks.refresh_failed', issuer: name, trigger, durationMs: elapsed(t0), error: describe(err), failures: 1, retryInMs: undefined })
      return
    }
    if (stopped || (staticLoad !== undefined && load.digest === staticLoad.digest)) return
    // A file that turned invalid keeps the keys it had: the previous load's keys from it.
    const broken = new Set(load.errors.map((e) => `file:${e.file}`))
    const kept = (staticLoad?.keys ?? []).filter((k) => broken.has(k.source))
    const keys = [...load.keys.filter((k) => !broken.has(k.source)), ...kept]
    staticLoad = { ...load, keys }
    rebuild(cfg.keys.map((spec) => {
      const source: KeySource = `file:${spec.file}`
      return { list: load.rejected.filter((r) => r.source === source), source }
    }))
    // One result per reload: an error if any file could not be used (its old keys stay).
    if (load.errors.length > 0) {
      const error = load.errors.map((e) => `${e.file}: ${e.why}`).join('; ')
      emit({ event: 'jwks.refresh_failed', issuer: name, trigger, durationMs: elapsed(t0), error, failures: 1, retryInMs: undefined })
      return
    }
    lastStaticLoad = now()
    emit({ event: 'jwks.refreshed', issuer: name, trigger, result: 'updated', durationMs: elapsed(t0), keys: index.keys.length, nextRefreshMs: undefined })
  }

  // ---------------------------------------------------------------------------------------
  // Lookup

  function lookup(kid: string | undefined, alg: Algorithm): KeyResult | undefined {
    if (kid === undefined) return index.noKid.get(alg) ?? UNKNOWN_KID
    const hit = index.byKid.get(kid)
    if (hit === undefined) return undefined
    // RFC 7517 §4.4: a key that declares an alg verifies only that alg, and a key type only
    // its own family: the key the token names cannot have produced this signature.
    return hit.key.algorithms.has(alg) ? hit.result : BAD_SIGNATURE
  }

  function getKey(kid: string | undefined, alg: Algorithm): KeyResult | Promise<KeyResult> {
    if (index.keys.length === 0) return KEYS_UNAVAILABLE
    const found = lookup(kid, alg)
    if (found !== undefined) return found
    return unknownKid(kid as string, alg)
  }

  function counted(action: UnknownKidAction): void {
    emit({ event: 'jwks.unknown_kid', issuer: name, action })
  }

  /**
   * A kid we do not know may be a key the provider just rotated in. Refresh at most once per
   * cooldown (a flood of random kids costs one fetch) and let requests wait for that one
   * refresh at most `unknownKidWait`; otherwise fail at once. Never a queue.
   */
  function unknownKid(kid: string, alg: Algorithm): KeyResult | Promise<KeyResult> {
    if (!hasRemote || knownUnknown.has(kid)) {
      counted('known_unknown')
      return UNKNOWN_KID
    }
    // Fetches started before this request cannot prove anything about its kid.
    const seenAt = fetchesStarted
    if (unknownKidWaiter === undefined) {
      const t = now()
      if (stopped || t - lastUnknownKidRefresh < refresh.unknownKidCooldown) {
        counted('cooldown')
        return UNKNOWN_KID
      }
      lastUnknownKidRefresh = t
      // A fetch already in flight started before this kid was seen and may predate its
      // publication: if it does not bring the kid, refresh once more right after it.
      const running = inflight
      unknownKidWaiter = startWait(running === undefined
        ? refreshRemote('unknown_kid')
        : running.then(() => (lookup(kid, alg) === undefined ? refreshRemote('unknown_kid') : undefined)))
    }
    counted('refreshed')
    return unknownKidWaiter.then(() => {
      const found = index.keys.length === 0 ? KEYS_UNAVAILABLE : (lookup(kid, alg) ?? UNKNOWN_KID)
      // Proven unknown only by a fetch that STARTED after this request and succeeded:
      // then answer this kid at once until the next successful refresh.
      if (found === UNKNOWN_KID && lastOkFetch > seenAt && knownUnknown.size < KNOWN_UNKNOWN_MAX && kid.length <= KNOWN_UNKNOWN_MAX_LENGTH) {
        knownUnknown.add(kid)
      }
      return found
    })
  }

  /** One shared waiter (one timer), released by the refresh or by the wait bound. */
  function startWait(refreshing: Promise<void>): Promise<void> {
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
      const waitTimer = schedule(release, refresh.unknownKidWait)
      releaseWaiter = release
      void refreshing.then(release)
    })
  }

  // ---------------------------------------------------------------------------------------

  const keys: IssuerKeys = {
    name,
    getKey,
    version: () => index,
    ready: () => index.keys.length > 0,
    status: (): IssuerKeyStatus => ({
      issuer: name,
      ready: index.keys.length > 0,
      state: state(),
      keys: index.keys.length,
      // The remote set's age when there is one (staleness is about the provider), else the last static load.
      lastSuccess: hasRemote ? lastSuccess : lastStaticLoad,
      nextRefresh: nextRefreshAt,
      lastError,
      jwksUri,
      keyList: index.keys.map((k): KeyInfo => ({
        kid: k.kid, kty: k.kty, alg: k.alg, thumbprint: k.thumbprint, source: k.source,
        firstSeen: firstSeen.get(identity(k)) ?? '',
      })),
    }),
  }

  return {
    keys,
    start(): void {
      if (started || stopped) return
      started = true
      if (hasStatic) {
        void reloadStatic('startup')
        watcher = watchStaticKeys(cfg.keys, () => void reloadStatic('file'), deps.watch ?? {})
      }
      if (hasRemote) void refreshRemote('startup')
    },
    async stop(): Promise<void> {
      stopped = true
      refreshTimer?.cancel()
      expiryTimer?.cancel()
      watcher?.close()
      releaseWaiter?.()
      abort.abort()
      // Nothing of ours runs after stop() resolves.
      await Promise.allSettled([inflight, staticReload])
    },
  }
}

function elapsed(t0: number): number {
  return Math.round(performance.now() - t0)
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  const message = err instanceof Error ? err.message : String(err)
  return typeof code === 'string' && /^[a-z_]+$/.test(code) ? `${code}: ${message}` : message
}
