/**
 * One issuer's keys: remote (a JWKS URL, configured or discovered) and/or static files,
 * merged into one index that `getKey` reads synchronously. This file only wires three units:
 * - key-lookup.ts, the lookup core: the merged index, `getKey`, key events on every swap;
 * - refresher.ts, the remote source: schedule, backoff, conditional requests, staleness,
 *   unknown-kid single-flight and cooldown (issue #3);
 * - static-source.ts, the key files: load, watch, keep a broken file's previous keys.
 * Each source hands its keys to the core; neither knows about the other (the core merges
 * them, static keys first).
 */
import type { Algorithm, IssuerConfig } from '../config/types.ts'
import type { FetchJson } from './fetcher.ts'
import { createKeyLookup, UNKNOWN_KID } from './key-lookup.ts'
import { createRefresher } from './refresher.ts'
import { createSnapshot } from './snapshot.ts'
import type { Schedule } from './refresher.ts'
import { createStaticSource } from './static-source.ts'
import type { StaticWatchOptions } from './static.ts'
import type { IssuerKeyStatus, IssuerKeys, KeyEvent, KeyResult } from './types.ts'

export interface IssuerKeysDeps {
  readonly fetchJson: FetchJson
  readonly now: () => number
  readonly random: () => number
  readonly schedule: Schedule
  readonly emit: (event: KeyEvent) => void
  /** Static file watching options (tests shorten the poll). */
  readonly watch?: StaticWatchOptions
  /** `read-only`: a snapshot is loaded but never written (the CLI's key stores). Default `read-write`. */
  readonly snapshots?: 'read-write' | 'read-only'
}

export interface IssuerRuntime {
  readonly keys: IssuerKeys
  start(): void
  stop(): Promise<void>
}

/**
 * @example
 * ```ts
 * const runtime = createIssuerRuntime(issuerConfig, { fetchJson, now: Date.now, random: Math.random, schedule, emit })
 * runtime.start()
 * await runtime.keys.settled()
 * const r = runtime.keys.getKey(kid, alg)
 * await runtime.stop()
 * ```
 */
export function createIssuerRuntime(cfg: IssuerConfig, deps: IssuerKeysDeps): IssuerRuntime {
  const { now, emit } = deps
  const { name } = cfg

  const lookup = createKeyLookup(name, {
    now,
    emit,
    // A kid the index lacks goes to the refresher, which may fetch for it (`remote` is bound
    // below; this only runs once requests arrive). Key files cannot grow on demand.
    unknownKid: (kid: string, alg: Algorithm): KeyResult | Promise<KeyResult> => {
      if (remote !== undefined) return remote.unknownKid(kid, alg)
      emit({ event: 'jwks.unknown_kid', issuer: name, action: 'known_unknown' })
      return UNKNOWN_KID
    },
  }, { maxCandidates: cfg.kidless.maxCandidates })
  const remote = cfg.jwksUri !== undefined || cfg.discovery
    ? createRefresher(cfg, {
      fetchJson: deps.fetchJson, now, random: deps.random, schedule: deps.schedule, emit, keys: lookup,
      ...(cfg.snapshot === undefined ? {} : { snapshot: createSnapshot(cfg, cfg.snapshot.file, { now, emit, readOnly: deps.snapshots === 'read-only' }) }),
    })
    : undefined
  const files = cfg.keys.length > 0
    ? createStaticSource(cfg, { now, emit, keys: lookup, ...(deps.watch === undefined ? {} : { watch: deps.watch }) })
    : undefined

  let started = false
  let stopped = false

  const keys: IssuerKeys = {
    name,
    getKey: lookup.getKey,
    version: lookup.current,
    ready: () => lookup.current().keys.length > 0,
    status: (): IssuerKeyStatus => {
      const r = remote?.status()
      const count = lookup.current().keys.length
      return {
        issuer: name,
        ready: count > 0,
        state: r?.state ?? (files?.hasKeys() === true ? 'static' : 'loading'),
        keys: count,
        // The remote set's age when there is one (staleness is about the provider), else the last static load.
        lastSuccess: r === undefined ? files?.lastLoad() : r.lastSuccess,
        nextRefresh: r?.nextRefresh,
        lastError: r?.lastError,
        jwksUri: r?.jwksUri,
        keyList: lookup.keyList(),
      }
    },
    // Each source settles after its first load attempt following start(), or at stop().
    settled: () => Promise.all([files?.settled(), remote?.settled()]).then(() => undefined),
  }

  return {
    keys,
    start(): void {
      if (started || stopped) return
      started = true
      files?.start()
      remote?.start()
    },
    async stop(): Promise<void> {
      stopped = true
      // Both synchronous parts run before anything is awaited: nothing of ours runs after stop() resolves.
      await Promise.allSettled([files?.stop(), remote?.stop()])
    },
  }
}
