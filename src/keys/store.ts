/**
 * The key store: one runtime per configured issuer (issuer-keys.ts), started concurrently.
 * A provider that is down never stops the others, nor the process: its issuer answers
 * `keys_unavailable` while the runtime keeps retrying in the background.
 */
import { isDeepStrictEqual } from 'node:util'
import type { IssuerConfig } from '../config/types.ts'
import { packageVersion } from '../package-root.ts'
import { createJsonFetcher } from './fetcher.ts'
import type { FetchJson } from './fetcher.ts'
import { createIssuerRuntime } from './issuer-keys.ts'
import type { IssuerKeysDeps, IssuerRuntime } from './issuer-keys.ts'
import type { Schedule, Timer } from './refresher.ts'
import type { IssuerKeys, KeyEvent, KeyEventSink, KeyStore } from './types.ts'

export type { Schedule }

/** A key store whose issuers can change at run time (live config reload). */
export interface ReconfigurableKeyStore extends KeyStore {
  /**
   * Apply a new issuer list: unchanged key settings keep their runtime and keys (no refetch
   * storm); changed ones get a new runtime that takes over once it has keys; removed ones stop.
   */
  reconfigure(issuers: readonly IssuerConfig[]): { readonly kept: readonly string[]; readonly replaced: readonly string[]; readonly added: readonly string[] }
}

export interface KeyStoreDeps {
  /** The HTTP fetcher for one issuer. Default: fetcher.ts with the issuer's `fetch` settings. */
  readonly fetcherFor?: (issuer: IssuerConfig) => FetchJson
  /** Epoch ms. Default `Date.now`. */
  readonly now?: () => number
  /** [0, 1) for refresh jitter. Default `Math.random`. */
  readonly random?: () => number
  readonly onEvent?: KeyEventSink
  readonly schedule?: Schedule
  /** Static file watching (tests shorten the poll). */
  readonly watch?: IssuerKeysDeps['watch']
  /** `read-only` for a tool that must not write the sidecar's snapshot files (`jwt-sidecar verify`, `token`). */
  readonly snapshots?: IssuerKeysDeps['snapshots']
}

/**
 * @example
 * ```ts
 * const store = createKeyStore(config.issuers, { onEvent: (e) => log.info(e, e.event) })
 * store.start()                                  // never throws for a provider outage
 * await store.settled()                          // every issuer tried once; a down provider too
 * const r = store.issuer('corp')!.getKey(kid, alg)
 * const result = r instanceof Promise ? await r : r
 * await store.stop()
 * ```
 */
export function createKeyStore(issuers: readonly IssuerConfig[], deps: KeyStoreDeps = {}): ReconfigurableKeyStore {
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
  const fetcherFor = deps.fetcherFor ?? defaultFetcher
  const make = (cfg: IssuerConfig): IssuerRuntime => createIssuerRuntime(cfg, {
    fetchJson: fetcherFor(cfg),
    now: deps.now ?? Date.now,
    random: deps.random ?? Math.random,
    schedule: deps.schedule ?? defaultSchedule,
    emit,
    ...(deps.watch === undefined ? {} : { watch: deps.watch }),
    ...(deps.snapshots === undefined ? {} : { snapshots: deps.snapshots }),
  })

  /**
   * Per issuer name: the runtime in use, and one being brought up by a reload. The facade
   * callers hold switches to the new runtime only once it has keys, so a reload that changes
   * an issuer's key settings never opens a `keys_unavailable` gap.
   */
  interface Slot { active: IssuerRuntime; config: IssuerConfig; next?: { runtime: IssuerRuntime; config: IssuerConfig }; facade: IssuerKeys }
  const slots = new Map<string, Slot>()
  let started = false
  const retired = new Set<Promise<void>>()
  const retire = (r: IssuerRuntime): void => {
    const p = r.stop().finally(() => retired.delete(p))
    retired.add(p)
  }

  function current(slot: Slot): IssuerRuntime {
    const next = slot.next
    if (next !== undefined && next.runtime.keys.ready()) {
      retire(slot.active)
      slot.active = next.runtime
      slot.config = next.config
      delete slot.next
    }
    return slot.active
  }

  /** The runtime in use and the one a reload is bringing up, each after its first attempt. */
  function settledSlot(slot: Slot): Promise<void> {
    const runtimes = slot.next === undefined ? [slot.active] : [slot.active, slot.next.runtime]
    return Promise.all(runtimes.map((r) => r.keys.settled())).then(() => undefined)
  }

  function addSlot(cfg: IssuerConfig): void {
    const slot: Slot = {
      active: make(cfg),
      config: cfg,
      facade: {
        name: cfg.name,
        getKey: (kid, alg) => current(slot).keys.getKey(kid, alg),
        version: () => current(slot).keys.version(),
        ready: () => current(slot).keys.ready(),
        status: () => current(slot).keys.status(),
        settled: () => settledSlot(slot),
      },
    }
    slots.set(cfg.name, slot)
    if (started) slot.active.start()
  }
  for (const cfg of issuers) addSlot(cfg)

  return {
    issuer: (name) => slots.get(name)?.facade,
    ready: () => [...slots.values()].every((s) => s.facade.ready()),
    status: () => [...slots.values()].map((s) => s.facade.status()),
    settled: () => Promise.all([...slots.values()].map(settledSlot)).then(() => undefined),
    start: () => {
      started = true
      for (const s of slots.values()) s.active.start()
    },
    reconfigure(next) {
      const names = new Set(next.map((c) => c.name))
      for (const [name, slot] of slots) {
        if (names.has(name)) continue
        retire(slot.active)
        if (slot.next !== undefined) retire(slot.next.runtime)
        slots.delete(name)
      }
      const kept: string[] = []
      const replaced: string[] = []
      const added: string[] = []
      for (const cfg of next) {
        const slot = slots.get(cfg.name)
        if (slot === undefined) {
          addSlot(cfg)
          added.push(cfg.name)
        } else if (sameKeySource(slot.config, cfg)) {
          // Audiences, claim rules and the like live in the verifier; the keys stay as they are.
          kept.push(cfg.name)
        } else {
          if (slot.next !== undefined) retire(slot.next.runtime)
          const runtime = make(cfg)
          slot.next = { runtime, config: cfg }
          if (started) runtime.start()
          replaced.push(cfg.name)
        }
      }
      return { kept, replaced, added }
    },
    stop: async () => {
      started = false
      const all = [...slots.values()].flatMap((s) => [s.active, ...(s.next === undefined ? [] : [s.next.runtime])])
      await Promise.all([...all.map((r) => r.stop()), ...retired])
    },
  }
}

/**
 * The settings that decide an issuer's key set (and its index: `kidless`); anything else can
 * change without a refetch.
 * Compared structurally (util.isDeepStrictEqual), not as JSON text, which is order-sensitive:
 * the order `fetch.headers` are written in the YAML does not change where keys come from, so
 * reordering them must not cost a new runtime and a refetch. Array order still counts (`keys`:
 * the earlier file wins a duplicate kid). The loader gives every config the same shape (each
 * optional setting present, possibly undefined), so isDeepStrictEqual telling an undefined
 * member from an absent one, which JSON cannot, never makes a difference here.
 */
function sameKeySource(a: IssuerConfig, b: IssuerConfig): boolean {
  const pick = (c: IssuerConfig) => [c.issuer, c.jwksUri, c.discovery, c.discoveryUrl, c.keys, c.algorithms, c.allowInsecureHttp, c.fetch, c.refresh, c.kidless]
  return isDeepStrictEqual(pick(a), pick(b))
}

function defaultFetcher(issuer: IssuerConfig): FetchJson {
  return createJsonFetcher({
    timeout: issuer.fetch.timeout,
    maxBytes: issuer.fetch.maxBytes,
    userAgent: `jwt-sidecar/${packageVersion()}`,
    headers: issuer.fetch.headers,
    bearerTokenFile: issuer.fetch.bearerTokenFile,
    caFile: issuer.fetch.caFile,
    allowInsecureHttp: issuer.allowInsecureHttp,
  })
}

function defaultSchedule(fn: () => void, ms: number): Timer {
  const t = setTimeout(fn, ms)
  // Background refreshes must never keep the process alive on their own.
  t.unref()
  return { cancel: () => clearTimeout(t) }
}
