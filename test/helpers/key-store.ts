/**
 * A real key store for tests that drive the verifier: `createKeyStore` as app.ts calls it, over
 * IssuerConfigs built directly (the config loader's minimums, e.g. 1 s intervals, do not apply),
 * handed over once every issuer has had its first load: the store's own `settled()`, so a test
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
  /** issuers[].kidless.maxCandidates (default 1) */
  readonly maxCandidates?: number
}

/** An IssuerConfig with the loader's defaults where they matter and long refresh intervals. */
export function issuerConfig(o: IssuerConfigOptions): IssuerConfig {
  return {
    name: o.name,
    issuer: o.issuer,
    jwksUri: o.jwksUri,
    tenants: undefined,
    discovery: false,
    discoveryUrl: undefined,
    audienceClaim: 'aud',
    keys: o.keys ?? [],
    audiences: o.audiences ?? ['test-api'],
    algorithms: o.algorithms ?? [...SUPPORTED_ALGORITHMS],
    requiredClaims: o.requiredClaims ?? ['exp'],
    maxLifetime: o.maxLifetime,
    typ: o.typ,
    allowInsecureHttp: false,
    kidless: { maxCandidates: o.maxCandidates ?? 1 }, dpop: { mode: 'off', proofMaxAge: 60_000 },
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
 * Create and start the store; resolve once every issuer has settled (`settled()`: each of its
 * sources, its JWKS URL and its key files, has had its first load, successful or not). Rejects
 * (and stops the store) when that takes longer than `timeoutMs`, naming the issuers still loading.
 */
export async function startKeyStore(issuers: readonly IssuerConfig[], deps: Omit<KeyStoreDeps, 'onEvent'> = {}, timeoutMs = 10_000): Promise<StartedKeyStore> {
  const events: KeyEvent[] = []
  const store = createKeyStore(issuers, { ...deps, onEvent: (e) => events.push(e) })
  const loading = new Set(issuers.map((i) => i.name))
  for (const i of issuers) void store.issuer(i.name)?.settled().then(() => loading.delete(i.name))
  store.start()
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  const outcome = await Promise.race([store.settled(), timedOut])
  clearTimeout(timer)
  if (outcome === 'timeout') {
    const names = [...loading].join(', ') // before stop(), which settles them all
    await store.stop()
    throw new Error(`key store: no startup load within ${timeoutMs} ms for ${names}`)
  }
  return { store, events }
}
