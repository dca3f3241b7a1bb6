/**
 * The conversion of validated data (every default filled in, units still strings) into the
 * runtime {@link SidecarConfig}: durations in ms, sizes in bytes, listen addresses split,
 * file paths resolved against the config file, then deep-frozen.
 */
import { dirname, resolve as resolvePath } from 'node:path'
import type { RawConfig } from './schema.ts'
import type { SidecarConfig, TokenSource } from './types.ts'
import { parseDuration, parseListen, parseSize } from './units.ts'

/**
 * Builds fresh objects (nothing shared with the YAML data, even through aliases); `source`
 * is the config file, which relative file paths are relative to.
 *
 * @example
 * const config = deepFreeze({ ...convert(data as RawConfig, 'config/sidecar.yaml'), warnings })
 */
export function convert(raw: RawConfig, source: string): SidecarConfig {
  return {
    source,
    listen: parseListen(raw.listen),
    // Relative files are relative to the config file, as key files are.
    ...(raw.tls === undefined ? {} : {
      tls: {
        certFile: resolvePath(dirname(source), raw.tls.certFile),
        keyFile: resolvePath(dirname(source), raw.tls.keyFile),
        clientCaFile: raw.tls.clientCaFile === undefined ? undefined : resolvePath(dirname(source), raw.tls.clientCaFile),
        minVersion: raw.tls.minVersion,
        http2: raw.tls.http2,
      },
    }),
    ...(raw.clientCertificateHeader === undefined ? {} : {
      clientCertificateHeader: {
        name: raw.clientCertificateHeader.name,
        format: raw.clientCertificateHeader.format,
        trustedPeers: [...raw.clientCertificateHeader.trustedPeers],
      },
    }),
    upstream: { url: raw.upstream.url, timeout: parseDuration(raw.upstream.timeout), xForwarded: raw.upstream.xForwarded, drainsBodies: raw.upstream.drainsBodies },
    admin: { listen: parseListen(raw.admin.listen), maxEventLoopDelay: parseDuration(raw.admin.maxEventLoopDelay) },
    shutdown: { delay: parseDuration(raw.shutdown.delay), timeout: parseDuration(raw.shutdown.timeout) },
    issuers: raw.issuers.map((i) => ({
      name: i.name,
      issuer: i.issuer,
      tenants: i.tenants === undefined ? undefined : [...i.tenants],
      jwksUri: i.jwksUri,
      // discoveryUrl turns discovery on by itself (checks/issuers.ts).
      discovery: i.discovery || i.discoveryUrl !== undefined,
      discoveryUrl: i.discoveryUrl,
      // Relative key files are relative to the config file, not to the working directory.
      keys: i.keys.map((k) => ({
        file: resolvePath(dirname(source), k.file),
        alg: k.alg,
        kid: k.kid,
      })),
      audiences: [...i.audiences],
      audienceClaim: i.audienceClaim,
      algorithms: [...i.algorithms],
      requiredClaims: [...i.requiredClaims],
      maxLifetime: i.maxLifetime === undefined ? undefined : parseDuration(i.maxLifetime),
      typ: i.typ,
      allowInsecureHttp: i.allowInsecureHttp,
      kidless: { maxCandidates: i.kidless.maxCandidates },
      dpop: { mode: i.dpop.mode, proofMaxAge: parseDuration(i.dpop.proofMaxAge) },
      fetch: {
        timeout: parseDuration(i.fetch.timeout),
        maxBytes: parseSize(i.fetch.maxBytes),
        headers: Object.fromEntries(Object.entries(i.fetch.headers)),
        bearerTokenFile: i.fetch.bearerTokenFile === undefined ? undefined : resolvePath(dirname(source), i.fetch.bearerTokenFile),
        caFile: i.fetch.caFile === undefined ? undefined : resolvePath(dirname(source), i.fetch.caFile),
      },
      refresh: {
        interval: parseDuration(i.refresh.interval),
        minInterval: parseDuration(i.refresh.minInterval),
        maxInterval: parseDuration(i.refresh.maxInterval),
        unknownKidCooldown: parseDuration(i.refresh.unknownKidCooldown),
        unknownKidWait: parseDuration(i.refresh.unknownKidWait),
        maxStale: parseDuration(i.refresh.maxStale),
        discoveryInterval: parseDuration(i.refresh.discoveryInterval),
      },
      // Off unless configured (absent, so configs without it compare as before).
      ...(i.snapshot === undefined ? {} : { snapshot: { file: resolvePath(dirname(source), i.snapshot.file) } }),
    })),
    tokens: {
      from: raw.tokens.from.map((f): TokenSource => {
        if (f.cookie !== undefined) return { kind: 'cookie', cookie: f.cookie }
        if (f.query !== undefined) return { kind: 'query', query: f.query }
        return { kind: 'header', header: f.header ?? '', prefix: f.prefix ?? '' }
      }),
      clockSkew: parseDuration(raw.tokens.clockSkew),
      maxBytes: parseSize(raw.tokens.maxBytes),
      cache: raw.tokens.cache.enabled ? { maxEntries: raw.tokens.cache.maxEntries, maxBytes: parseSize(raw.tokens.cache.maxBytes) } : undefined,
      dpopReplayCache: { maxEntries: raw.tokens.dpopReplayCache.maxEntries },
    },
    identity: {
      headers: Object.fromEntries(Object.entries(raw.identity.headers)),
      strip: [...raw.identity.strip],
      forwardToken: raw.identity.forwardToken,
      arrays: raw.identity.arrays,
      maxValueBytes: parseSize(raw.identity.maxValueBytes),
      claimsHeader: raw.identity.claimsHeader,
      bindingHeader: raw.identity.bindingHeader,
      underscoreHeaders: raw.identity.underscoreHeaders,
    },
    requests: { methodOverride: raw.requests.methodOverride, timeout: parseDuration(raw.requests.timeout) },
    routes: raw.routes.map((r) => ({
      name: r.name,
      path: r.path,
      methods: r.methods.map((m) => m.toUpperCase()),
      auth: r.auth,
      // Protecting routes match any letter case, admitting ones exact (never less strict than the app).
      caseSensitive: r.caseSensitive ?? (r.auth === 'none' || r.auth === 'optional'),
      issuers: [...r.issuers],
      require: {
        scopes: [...r.require.scopes],
        claims: Object.fromEntries(Object.entries(r.require.claims).map(([k, v]) => [k, [...v]])),
      },
    })),
    log: { level: raw.log.level, access: raw.log.access, ...(raw.log.format === undefined ? {} : { format: raw.log.format }) },
    warnings: [],
  }
}

/** Freezes `value` and everything reachable from it, so no unit can change the config. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
