/**
 * The key store: one runtime per configured issuer (issuer-keys.ts), started concurrently.
 * A provider that is down never stops the others, nor the process: its issuer answers
 * `keys_unavailable` while the runtime keeps retrying in the background.
 */
import type { IssuerConfig } from '../config/types.ts'
import { packageVersion } from '../package-root.ts'
import { createJsonFetcher } from './fetcher.ts'
import type { FetchJson } from './fetcher.ts'
import { createIssuerRuntime } from './issuer-keys.ts'
import type { IssuerKeysDeps, IssuerRuntime, Schedule, Timer } from './issuer-keys.ts'
import type { KeyEvent, KeyEventSink, KeyStore } from './types.ts'

export type { Schedule, Timer }

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
}

/**
 * @example
 * ```ts
 * const store = createKeyStore(config.issuers, { onEvent: (e) => log.info(e, e.event) })
 * store.start()                                  // never throws for a provider outage
 * const r = store.issuer('corp')!.getKey(kid, alg)
 * const result = r instanceof Promise ? await r : r
 * await store.stop()
 * ```
 */
export function createKeyStore(issuers: readonly IssuerConfig[], deps: KeyStoreDeps = {}): KeyStore {
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
  const runtimes = new Map<string, IssuerRuntime>()
  for (const cfg of issuers) {
    runtimes.set(cfg.name, createIssuerRuntime(cfg, {
      fetchJson: fetcherFor(cfg),
      now: deps.now ?? Date.now,
      random: deps.random ?? Math.random,
      schedule: deps.schedule ?? defaultSchedule,
      emit,
      ...(deps.watch === undefined ? {} : { watch: deps.watch }),
    }))
  }
  const all = [...runtimes.values()]
  return {
    issuer: (name) => runtimes.get(name)?.keys,
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
