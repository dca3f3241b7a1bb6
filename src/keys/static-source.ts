/**
 * One issuer's static key files as a key source: loaded at start, watched, and reloaded
 * through the same validation and diff as a fetched JWKS. A file that turns invalid keeps the
 * keys it had (the other files still reload); an unchanged load (same digest) is a no-op.
 * Reading and parsing the files is static.ts's; this unit decides what a reload means and
 * hands the keys to the lookup core (key-lookup.ts).
 */
import { performance } from 'node:perf_hooks'
import type { IssuerConfig } from '../config/types.ts'
import { describeKeyError } from './errors.ts'
import type { KeyLookup } from './key-lookup.ts'
import { loadStaticKeys, watchStaticKeys } from './static.ts'
import type { StaticLoad, StaticWatcher, StaticWatchOptions } from './static.ts'
import type { KeyEvent, KeySource, RefreshTrigger } from './types.ts'

export interface StaticSourceDeps {
  /** Epoch ms, for `lastLoad`. */
  readonly now: () => number
  readonly emit: (event: KeyEvent) => void
  /** Where the loaded keys go. */
  readonly keys: Pick<KeyLookup, 'swap' | 'current'>
  /** File watching options (tests shorten the poll). */
  readonly watch?: StaticWatchOptions
}

export interface StaticSource {
  /** The first load (`startup`), then a reload (`file`) whenever the watcher sees a change. */
  start(): void
  /** Stops watching; resolves when no reload of ours runs. */
  stop(): Promise<void>
  /** At least one usable key is held (the issuer's state is `static`, else `loading`). */
  hasKeys(): boolean
  /** epoch ms of the last load in which every file was usable. */
  lastLoad(): number | undefined
  /** Resolves once the first load after start() has finished (whatever it found), or at stop(). Never rejects. */
  settled(): Promise<void>
}

/**
 * @example
 * ```ts
 * const files = createStaticSource(issuerConfig, { now: Date.now, emit, keys: lookup })
 * files.start()
 * await files.settled()   // every file read once
 * await files.stop()
 * ```
 */
export function createStaticSource(cfg: IssuerConfig, deps: StaticSourceDeps): StaticSource {
  const { now, emit, keys } = deps
  const { name } = cfg
  let load: StaticLoad | undefined
  let lastLoad: number | undefined
  let watcher: StaticWatcher | undefined
  let reloading: Promise<void> | undefined
  let again = false
  let stopped = false

  let settle = (): void => {}
  const settled = new Promise<void>((resolve) => {
    settle = resolve
  })

  function reload(trigger: RefreshTrigger): Promise<void> {
    // Coalesce: a reload in progress runs once more afterwards instead of in parallel.
    if (reloading !== undefined) {
      again = true
      return reloading
    }
    reloading = (async () => {
      do {
        again = false
        try {
          await loadOnce(trigger)
        } finally {
          settle()
        }
      } while (again && !stopped)
    })().finally(() => {
      reloading = undefined
    })
    return reloading
  }

  async function loadOnce(trigger: RefreshTrigger): Promise<void> {
    const t0 = performance.now()
    let next: StaticLoad
    try {
      next = await loadStaticKeys(cfg.keys, cfg.algorithms)
    } catch (err) {
      emit({ event: 'jwks.refresh_failed', issuer: name, trigger, durationMs: elapsed(t0), error: describeKeyError(err), failures: 1, retryInMs: undefined })
      return
    }
    if (stopped || (load !== undefined && next.digest === load.digest)) return
    // A file that turned invalid keeps the keys it had: the previous load's keys from it.
    const broken = new Set(next.errors.map((e) => `file:${e.file}`))
    const kept = (load?.keys ?? []).filter((k) => broken.has(k.source))
    const loaded = next
    load = { ...next, keys: [...next.keys.filter((k) => !broken.has(k.source)), ...kept] }
    keys.swap({ static: load.keys }, cfg.keys.map((spec) => {
      const source: KeySource = `file:${spec.file}`
      return { list: loaded.rejected.filter((r) => r.source === source), source }
    }))
    // One result per reload: an error if any file could not be used (its old keys stay).
    if (next.errors.length > 0) {
      const error = next.errors.map((e) => `${e.file}: ${e.why}`).join('; ')
      emit({ event: 'jwks.refresh_failed', issuer: name, trigger, durationMs: elapsed(t0), error, failures: 1, retryInMs: undefined })
      return
    }
    lastLoad = now()
    emit({ event: 'jwks.refreshed', issuer: name, trigger, result: 'updated', durationMs: elapsed(t0), keys: keys.current().keys.length, nextRefreshMs: undefined })
  }

  return {
    start(): void {
      void reload('startup')
      watcher = watchStaticKeys(cfg.keys, () => void reload('file'), deps.watch ?? {})
    },
    stop(): Promise<void> {
      stopped = true
      watcher?.close()
      settle()
      return Promise.allSettled([reloading]).then(() => undefined)
    },
    hasKeys: () => load !== undefined && load.keys.length > 0,
    lastLoad: () => lastLoad,
    settled: () => settled,
  }
}

function elapsed(t0: number): number {
  return Math.round(performance.now() - t0)
}
