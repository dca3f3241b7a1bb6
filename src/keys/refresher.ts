/**
 * One issuer's remote key source: a JWKS URL, configured or found by OIDC discovery, kept
 * fresh in the background (issue #3), in the spirit of Envoy's jwks_async_fetcher and jose's
 * remote JWK set:
 * - refresh at clamp(Cache-Control max-age, minInterval, maxInterval) with jitter;
 *   conditional requests (ETag / Last-Modified), a 304 renews freshness;
 * - one fetch in flight (single-flight); a failure never drops good keys and retries with
 *   exponential backoff from 1s up to minInterval;
 * - the last-known-good set stays usable for `maxStale` after the last success, then it is
 *   dropped (`expired`) until a refresh succeeds;
 * - an unknown kid triggers at most one refresh per `unknownKidCooldown`; requests wait for
 *   it at most `unknownKidWait` and never queue; kids a fresh fetch proved unknown are
 *   answered at once until the next successful refresh.
 * The keys go to the lookup core (key-lookup.ts), which swaps the index and emits key events;
 * this unit emits the refresh events (refreshed, refresh_failed, stale, expired, recovered,
 * discovered, unknown_kid).
 * With a snapshot (snapshot.ts, issue #13 §3) the keys it holds are adopted before the first
 * fetch as `stale`, with the snapshot's fetch time as `lastSuccess`, so `maxStale` bounds them
 * from the moment the IdP last vouched for them; every successful refresh rewrites it.
 */
import { performance } from 'node:perf_hooks'
import type { Algorithm, IssuerConfig } from '../config/types.ts'
import { discoverJwksUri } from './discovery.ts'
import { KeyError, describeKeyError } from './errors.ts'
import type { FetchJson, Validators } from './fetcher.ts'
import { backoffDelay, nextRefreshDelay } from './freshness.ts'
import { KEYS_UNAVAILABLE, UNKNOWN_KID } from './key-lookup.ts'
import type { KeyLookup } from './key-lookup.ts'
import { parseJwks } from './key-set.ts'
import type { LoadedSnapshot, Snapshot } from './snapshot.ts'
import type { KeyEvent, KeyResult, KeySetState, RefreshTrigger, UnknownKidAction, VerificationKey } from './types.ts'

/** A cancellable one-shot timer. The default implementation `unref()`s it. */
export interface Timer {
  cancel(): void
}
/** Run `fn` once after `ms`; injected so tests can drive schedules. */
export type Schedule = (fn: () => void, ms: number) => Timer

export interface RefresherDeps {
  readonly fetchJson: FetchJson
  /** Epoch ms: status, staleness and cooldowns. Durations use the monotonic clock. */
  readonly now: () => number
  /** [0, 1) for jitter. */
  readonly random: () => number
  readonly schedule: Schedule
  readonly emit: (event: KeyEvent) => void
  /** Where the fetched keys go, and what an unknown kid is checked against. */
  readonly keys: Pick<KeyLookup, 'find' | 'current' | 'swap' | 'reportRejected'>
  /** The issuer's persisted key set (`issuers[].snapshot`), if configured. */
  readonly snapshot?: Snapshot
}

/** The remote half of IssuerKeyStatus. */
export interface RemoteStatus {
  readonly state: Exclude<KeySetState, 'static'>
  /** epoch ms of the last successful refresh (a 304 included). */
  readonly lastSuccess: number | undefined
  readonly nextRefresh: number | undefined
  readonly lastError: string | undefined
  /** Configured or discovered. */
  readonly jwksUri: string | undefined
}

export interface Refresher {
  /** The first fetch (`startup`), then the schedule. */
  start(): void
  /** Cancels timers, the unknown-kid wait and the fetch in flight; resolves when nothing of ours runs. */
  stop(): Promise<void>
  /** A kid the index does not hold: maybe one just rotated in (see the module comment). */
  unknownKid(kid: string, alg: Algorithm): KeyResult | Promise<KeyResult>
  status(): RemoteStatus
  /**
   * Resolves once the first refresh after start() has finished, with keys or with an error
   * (discovery and the JWKS fetch are one attempt), or at stop(). A snapshot is read before
   * that refresh, so its keys are in use before this settles (ready, `stale`). Never rejects; a provider
   * that is down settles it within the fetch timeouts.
   */
  settled(): Promise<void>
}

/** Kids proven unknown are remembered only while short and few: attacker-chosen strings. */
const KNOWN_UNKNOWN_MAX = 1000
const KNOWN_UNKNOWN_MAX_LENGTH = 128

/**
 * @example
 * ```ts
 * const remote = createRefresher(issuerConfig, { fetchJson, now: Date.now, random: Math.random, schedule, emit, keys: lookup })
 * remote.start()
 * await remote.settled()   // the first fetch is done, successful or not
 * await remote.stop()
 * ```
 */
export function createRefresher(cfg: IssuerConfig, deps: RefresherDeps): Refresher {
  const { fetchJson, now, random, schedule, emit, keys, snapshot } = deps
  const { name, refresh } = cfg
  const abort = new AbortController()

  let jwksUri = cfg.jwksUri
  let discoveredAt = -Infinity
  let validators: Validators | undefined
  let lastSuccess: number | undefined
  let failures = 0
  let lastError: string | undefined
  let expired = false
  let hadRemoteKeys = false
  /** The remote keys held come from the snapshot: no refresh has vouched for them in this process. */
  let fromSnapshot = false
  /** The last remote set, rewritten to the snapshot after a 304 with the new fetch time. */
  let remoteKeys: readonly VerificationKey[] = []
  let nextRefreshAt: number | undefined
  let refreshTimer: Timer | undefined
  let expiryTimer: Timer | undefined
  let inflight: Promise<void> | undefined
  /** Remote fetches started so far, and the number of the last one that succeeded. */
  let fetchesStarted = 0
  let lastOkFetch = 0
  let stopped = false

  // Unknown-kid state.
  let lastUnknownKidRefresh = -Infinity
  let unknownKidWaiter: Promise<void> | undefined
  let releaseWaiter: (() => void) | undefined
  let knownUnknown = new Set<string>()

  let settle = (): void => {}
  const settled = new Promise<void>((resolve) => {
    settle = resolve
  })

  function state(): RemoteStatus['state'] {
    if (expired) return 'expired'
    if (!hadRemoteKeys) return 'loading'
    return failures > 0 || fromSnapshot ? 'stale' : 'fresh'
  }

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
    keys.swap({ remote: [] }, [])
  }

  /** Single-flight: concurrent triggers share the fetch in flight. Never rejects. */
  function refreshRemote(trigger: RefreshTrigger): Promise<void> {
    if (inflight !== undefined) return inflight
    if (stopped) return Promise.resolve()
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
          const found = await discoverJwksUri(cfg.issuer, fetchJson, { allowInsecureHttp: cfg.allowInsecureHttp, signal: abort.signal, url: cfg.discoveryUrl })
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
          keys.reportRejected(set.rejected, 'jwks')
          throw new KeyError('no_usable_keys', `no usable keys (${set.rejected.length} rejected)`)
        }
        validators = outcome.validators
        expired = false
        hadRemoteKeys = true
        remoteKeys = set.keys
        markSuccess(fetchNo)
        keys.swap({ remote: set.keys }, [{ list: set.rejected, source: 'jwks' }])
      } else if (hadRemoteKeys && !expired) {
        // RFC 9111 §4.3.4: a 304 freshens what we hold.
        markSuccess(fetchNo)
      } else {
        // A 304 for keys we no longer hold vouches for nothing (validators are dropped on
        // expiry, so only a misbehaving server gets here).
        validators = undefined
        throw new KeyError('not_modified_without_keys', '304 Not Modified without a held key set')
      }
    } catch (err) {
      if (stopped) return
      failures++
      lastError = describeKeyError(err)
      const retryInMs = backoffDelay(failures, refresh, random)
      scheduleRefresh(retryInMs)
      emit({ event: 'jwks.refresh_failed', issuer: name, trigger, durationMs: elapsed(t0), error: lastError, failures, retryInMs })
      if (before === 'fresh' && lastSuccess !== undefined) emit({ event: 'jwks.stale', issuer: name, lastSuccess, error: lastError })
      return
    }
    const delay = nextRefreshDelay(outcome.maxAgeMs, refresh, random)
    scheduleRefresh(delay)
    emit({ event: 'jwks.refreshed', issuer: name, trigger, result: outcome.status === 'ok' ? 'updated' : 'not_modified', durationMs: elapsed(t0), keys: keys.current().keys.length, nextRefreshMs: delay })
    if (before === 'stale' || before === 'expired' || (before === 'loading' && failures > 0)) {
      emit({ event: 'jwks.recovered', issuer: name, from: before })
    }
    failures = 0
  }

  function markSuccess(fetchNo: number): void {
    lastSuccess = now()
    fromSnapshot = false
    // Fire and forget: a slow or failing disk never delays or breaks the key path (snapshot.ts reports it).
    if (snapshot !== undefined && jwksUri !== undefined) void snapshot.save(remoteKeys, lastSuccess, jwksUri)
    lastError = undefined
    lastOkFetch = fetchNo
    // "Remembered until the next successful refresh" (issue #3 item 4).
    knownUnknown = new Set()
    scheduleExpiry()
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
    if (knownUnknown.has(kid)) {
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
        : running.then(() => (keys.find(kid, alg) === undefined ? refreshRemote('unknown_kid') : undefined)))
    }
    counted('refreshed')
    return unknownKidWaiter.then(() => {
      const found = keys.current().keys.length === 0 ? KEYS_UNAVAILABLE : (keys.find(kid, alg) ?? UNKNOWN_KID)
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

  /** Keys from the snapshot, before any fetch: usable, `stale`, expiring maxStale after their fetch time. */
  function adopt(loaded: LoadedSnapshot | undefined): void {
    if (loaded === undefined || stopped || hadRemoteKeys) return
    hadRemoteKeys = true
    fromSnapshot = true
    remoteKeys = loaded.set.keys
    lastSuccess = loaded.fetchedAt
    keys.swap({ remote: loaded.set.keys }, [])
    scheduleExpiry()
  }

  return {
    start(): void {
      const first = snapshot === undefined ? refreshRemote('startup') : snapshot.load().then(adopt).then(() => refreshRemote('startup'))
      void first.then(settle)
    },
    stop(): Promise<void> {
      stopped = true
      refreshTimer?.cancel()
      expiryTimer?.cancel()
      releaseWaiter?.()
      abort.abort()
      settle()
      // A refresh that ends now may still start a snapshot write: wait for it too.
      return Promise.allSettled([inflight]).then(() => snapshot?.flush())
    },
    unknownKid,
    status: () => ({ state: state(), lastSuccess, nextRefresh: nextRefreshAt, lastError, jwksUri }),
    settled: () => settled,
  }
}

function elapsed(t0: number): number {
  return Math.round(performance.now() - t0)
}
