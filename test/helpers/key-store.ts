/**
 * A real key store for tests that drive the verifier: `createKeyStore` as app.ts calls it, over
 * IssuerConfigs built directly (the config loader's minimums, e.g. 1 s intervals, do not apply),
 * handed over once every issuer has had its first load. "Loaded" is read from the store's own
 * startup events (`jwks.refreshed` or `jwks.refresh_failed`, trigger `startup`), so a test
 * neither polls nor guesses a delay, and an issuer whose keys are refused counts as loaded too.
 *
 * @example
 * ```ts
 * const { store } = await startKeyStore([issuerConfig({ name: 'corp', issuer: idp.issuer, jwksUri: idp.jwksUri })])
 * t.after(() => store.stop())
 * const verifier = createVerifier({ issuers: [...], clockSkew: 0, maxBytes: 8192 }, { keys: store })
 * ```
 */
import { SUPPORTED_ALGORITHMS } from '../../src/config/types.ts'
import type { Algorithm, IssuerConfig, RefreshSettings, StaticKeyConfig } from '../../src/config/types.ts'
import { createKeyStore } from '../../src/keys/store.ts'
import type { KeyStoreDeps, ReconfigurableKeyStore } from '../../src/keys/store.ts'
import type { KeyEvent } from '../../src/keys/types.ts'

/** Long intervals: nothing refreshes on its own during a test unless the test asks for it. */
const REFRESH: RefreshSettings = {
  interval: 3_600_000,
  minInterval: 600_000,
  maxInterval: 3_600_000,
  unknownKidCooldown: 3_600_000,
  unknownKidWait: 2_000,
  maxStale: 86_400_000,
  discoveryInterval: 3_600_000,
}

export interface IssuerConfigOptions {
  readonly name: string
  readonly issuer: string
  readonly jwksUri?: string
  readonly keys?: readonly StaticKeyConfig[]
  /** Default: every supported algorithm. */
  readonly algorithms?: readonly Algorithm[]
  /** Default `['test-api']`, the audience test/helpers/issuer.ts signs for. */
  readonly audiences?: readonly string[]
  readonly requiredClaims?: readonly string[]
  /** ms */
  readonly maxLifetime?: number
  readonly typ?: string
  readonly refresh?: Partial<RefreshSettings>
}

/** An IssuerConfig with the loader's defaults where they matter and long refresh intervals. */
export function issuerConfig(o: IssuerConfigOptions): IssuerConfig {
  return {
    name: o.name,
    issuer: o.issuer,
    jwksUri: o.jwksUri,
    discovery: false,
    keys: o.keys ?? [],
    audiences: o.audiences ?? ['test-api'],
    algorithms: o.algorithms ?? [...SUPPORTED_ALGORITHMS],
    requiredClaims: o.requiredClaims ?? ['exp'],
    maxLifetime: o.maxLifetime,
    typ: o.typ,
    allowInsecureHttp: false,
    fetch: { timeout: 5_000, maxBytes: 1024 * 1024, headers: {}, bearerTokenFile: undefined, caFile: undefined },
    refresh: { ...REFRESH, ...o.refresh },
  }
}

export interface StartedKeyStore {
  readonly store: ReconfigurableKeyStore
  /** Every event the store emitted so far, in order. */
  readonly events: KeyEvent[]
}

/**
 * Create and start the store; resolve once each issuer's sources (its JWKS URL, its key files)
 * have each reported their startup load, successful or not. Rejects (and stops the store) when
 * that takes longer than `timeoutMs`, naming the issuers still loading.
 */
export async function startKeyStore(issuers: readonly IssuerConfig[], deps: Omit<KeyStoreDeps, 'onEvent'> = {}, timeoutMs = 10_000): Promise<StartedKeyStore> {
  const events: KeyEvent[] = []
  const pending = new Map(issuers.map((i) => [i.name, (i.jwksUri === undefined ? 0 : 1) + (i.keys.length > 0 ? 1 : 0)]))
  let loaded!: () => void
  const allLoaded = new Promise<void>((resolve) => {
    loaded = resolve
  })
  const settle = (): void => {
    if ([...pending.values()].every((n) => n <= 0)) loaded()
  }
  const store = createKeyStore(issuers, {
    ...deps,
    onEvent: (e) => {
      events.push(e)
      if ((e.event === 'jwks.refreshed' || e.event === 'jwks.refresh_failed') && e.trigger === 'startup') {
        pending.set(e.issuer, (pending.get(e.issuer) ?? 0) - 1)
        settle()
      }
    },
  })
  store.start()
  settle()
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  const outcome = await Promise.race([allLoaded, timedOut])
  clearTimeout(timer)
  if (outcome === 'timeout') {
    await store.stop()
    const loading = [...pending].filter(([, n]) => n > 0).map(([name]) => name)
    throw new Error(`key store: no startup load within ${timeoutMs} ms for ${loading.join(', ')}`)
  }
  return { store, events }
}
