/**
 * Everything the request path derives from the config, built once per config and swapped in
 * whole on a live reload. A request reads the current pipeline once, when it starts, and keeps
 * it to the end: it is authenticated and forwarded under one config, never half of two.
 */
import type { RouteConfig, SidecarConfig } from '../config/types.ts'
import type { KeyStore } from '../keys/types.ts'
import { createRouteAuthorizer } from '../policy/authorize.ts'
import type { RouteAuthorizer } from '../policy/authorize.ts'
import { createRouteMatcher } from '../policy/routes.ts'
import type { RouteMatcher } from '../policy/routes.ts'
import { createTokenExtractor } from '../verify/extract.ts'
import type { TokenExtractor } from '../verify/extract.ts'
import { createVerifier } from '../verify/verifier.ts'
import type { KidlessReport, Verifier } from '../verify/verifier.ts'
import type { TokenCacheStats } from '../verify/token-cache.ts'
import { createReplayCache } from '../verify/dpop-replay.ts'
import type { ReplayCache } from '../verify/dpop-replay.ts'
import type { BindingDeps } from './binding.ts'
import { createClientCertificates } from './client-cert.ts'
import { createHeaderPolicy } from './headers.ts'
import type { HeaderPolicy } from './headers.ts'
import { fixedDecisions } from './decide.ts'
import type { FixedDecisions } from './decide.ts'
import { forbidden } from './denials.ts'
import type { Denial } from './denials.ts'

export interface RoutePolicy {
  readonly authorizer: RouteAuthorizer
  /** Its anonymous and missing-token decisions, built once. */
  readonly fixed: FixedDecisions
  /** The route's 403 answers, built once: their challenge names the route's scopes. */
  readonly forbidden: Readonly<Record<'issuer_not_allowed' | 'insufficient_scope' | 'claim_mismatch', Denial>>
}

export interface Pipeline {
  readonly config: SidecarConfig
  readonly routes: RouteMatcher
  readonly extractor: TokenExtractor
  readonly headers: HeaderPolicy
  readonly verifier: Verifier
  readonly policies: ReadonlyMap<RouteConfig, RoutePolicy>
  /** Where tokens may travel (lower-cased header names, cookie and query names). */
  readonly tokenHeaders: readonly string[]
  readonly tokenCookies: ReadonlySet<string>
  readonly tokenQuery: ReadonlySet<string>
  /** `clientCertificateHeader.name`, lower-cased: read by binding.ts, never forwarded upstream. */
  readonly certificateHeader: string | undefined
  /** What the binding check needs (binding.ts: DPoP, client certificates); the replay cache outlives reloads. */
  readonly binding: BindingDeps
}

/**
 * @example
 * let pipeline = createPipeline(config, keys, { cacheStats })
 * // on reload: pipeline = createPipeline(next, keys, { cacheStats })
 */
export interface PipelineDeps {
  /** epoch ms */
  readonly now?: (() => number) | undefined
  /** The verified-token cache's counters, kept across reloads (the cache itself is per pipeline). */
  readonly cacheStats?: TokenCacheStats | undefined
  /** Told of each token without kid: the signature checks it cost (verifier.ts). */
  readonly kidless?: KidlessReport | undefined
  /** The DPoP replay cache, kept across reloads: a reload must not reopen a proof's window. */
  readonly dpopReplay?: ReplayCache | undefined
}

export function createPipeline(config: SidecarConfig, keys: KeyStore, deps: PipelineDeps = {}): Pipeline {
  const tokenHeaders: string[] = []
  const tokenCookies = new Set<string>()
  const tokenQuery = new Set<string>()
  for (const s of config.tokens.from) {
    if (s.kind === 'header') tokenHeaders.push(s.header.toLowerCase())
    else if (s.kind === 'cookie') tokenCookies.add(s.cookie)
    else tokenQuery.add(s.query)
  }
  // RFC 9449 §7.1: with an issuer that accepts DPoP, `Authorization: DPoP …` is a token source
  // whatever tokens.from says, so forwardToken: false removes it.
  const dpop = config.issuers.some((i) => i.dpop.mode !== 'off')
  if (dpop && !tokenHeaders.includes('authorization')) tokenHeaders.push('authorization')
  return {
    config,
    routes: createRouteMatcher(config.routes),
    extractor: createTokenExtractor(config.tokens.from, { dpop }),
    headers: createHeaderPolicy(config.identity, {
      tokenHeaders,
      stripMethodOverride: config.requests.methodOverride === 'strip',
      consumedHeaders: config.clientCertificateHeader === undefined ? [] : [config.clientCertificateHeader.name.toLowerCase()],
    }),
    // A new verifier, and so an empty token cache, per config: a reload that changes an
    // issuer's rules can never be answered from verifications made under the old ones.
    verifier: createVerifier(
      { issuers: config.issuers, clockSkew: config.tokens.clockSkew, maxBytes: config.tokens.maxBytes, cache: config.tokens.cache },
      { keys, ...(deps.now === undefined ? {} : { now: deps.now }), ...(deps.cacheStats === undefined ? {} : { cacheStats: deps.cacheStats }), ...(deps.kidless === undefined ? {} : { kidless: deps.kidless }) },
    ),
    policies: new Map(config.routes.map((r) => [r, {
      authorizer: createRouteAuthorizer(r),
      fixed: fixedDecisions(r, config.issuers),
      forbidden: {
        issuer_not_allowed: forbidden('issuer_not_allowed', r.require.scopes),
        insufficient_scope: forbidden('insufficient_scope', r.require.scopes),
        claim_mismatch: forbidden('claim_mismatch', r.require.scopes),
      },
    }])),
    tokenHeaders,
    tokenCookies,
    tokenQuery,
    certificateHeader: config.clientCertificateHeader?.name.toLowerCase(),
    binding: { replay: deps.dpopReplay ?? createReplayCache(), certificates: createClientCertificates(config), clockSkew: config.tokens.clockSkew, now: deps.now ?? Date.now },
  }
}
