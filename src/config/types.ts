/**
 * The resolved, validated, deep-frozen configuration every unit is built from.
 *
 * It mirrors the YAML file key for key (see config/schema/ and docs/reference/configuration.md),
 * with every default filled in and every unit normalised: durations are milliseconds, sizes are
 * bytes, listen addresses are split.
 */

/** Algorithms the sidecar can verify. Symmetric algorithms and `none` are never accepted. */
export const SUPPORTED_ALGORITHMS = [
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA',
] as const
export type Algorithm = (typeof SUPPORTED_ALGORITHMS)[number]

export interface ListenAddress {
  readonly host: string
  readonly port: number
}

export interface FetchSettings {
  /** ms; one GET (JWKS or discovery), connect to last byte. */
  readonly timeout: number
  /** bytes; a larger response body is refused. */
  readonly maxBytes: number
  /** Extra request headers sent on every fetch (values may use ${VAR}). */
  readonly headers: Readonly<Record<string, string>>
  /** A bearer token read from this file on EVERY fetch (Kubernetes service-account tokens rotate). */
  readonly bearerTokenFile: string | undefined
  /** PEM CA bundle trusted for this issuer's TLS, instead of the system roots. */
  readonly caFile: string | undefined
}

export interface RefreshSettings {
  /** ms; refresh period when the response has no usable Cache-Control/Expires. */
  readonly interval: number
  /** ms; lower clamp for cache lifetimes, and the ceiling of the failure backoff. */
  readonly minInterval: number
  /** ms; upper clamp for cache lifetimes: a withdrawn key is noticed within this time. */
  readonly maxInterval: number
  /** ms; at most one unknown-kid refetch per issuer within this window. */
  readonly unknownKidCooldown: number
  /** ms; how long a request waits for an unknown-kid refetch before failing with unknown_kid. */
  readonly unknownKidWait: number
  /** ms after the last successful refresh during which the last-known-good set stays usable. */
  readonly maxStale: number
  /** ms between refreshes of the OIDC discovery document. */
  readonly discoveryInterval: number
}

/** A static key file: PEM SPKI, PEM X.509 certificate, JWK or JWKS. */
export interface StaticKeyConfig {
  /** Absolute, or relative to the config file's directory (resolved by the loader). */
  readonly file: string
  /** Required for PEM (never inferred from the key text: CVE-2023-48223); optional for JWK/JWKS. */
  readonly alg: Algorithm | undefined
  /** Defaults to the key's RFC 7638 thumbprint. */
  readonly kid: string | undefined
}

export interface IssuerConfig {
  /** Label in logs and metrics: [a-z0-9_-]+, unique. */
  readonly name: string
  /** Exact `iss` value, or a template holding `{tenantid}` (then `tenants` lists the tenants it stands for). */
  readonly issuer: string
  /** With a `{tenantid}` issuer: the accepted tenant ids (each token's `tid` must equal its tenant); undefined otherwise. */
  readonly tenants: readonly string[] | undefined
  /** Remote keys from this JWKS URL (exclusive with `discovery`). */
  readonly jwksUri: string | undefined
  /** Remote keys from the discovery document's `jwks_uri` (at `discoveryUrl`, or `{issuer}/.well-known/openid-configuration`). */
  readonly discovery: boolean
  /** Where the discovery document is, when not at `{issuer}/.well-known/openid-configuration`. */
  readonly discoveryUrl: string | undefined
  /** Static key files; an issuer may have remote keys, static keys, or both. */
  readonly keys: readonly StaticKeyConfig[]
  /** The token's audience claim must contain at least one of these. */
  readonly audiences: readonly string[]
  /** The claim holding the audience: `aud` (RFC 7519 §4.1.3), or e.g. `client_id` (AWS Cognito access tokens). */
  readonly audienceClaim: string
  readonly algorithms: readonly Algorithm[]
  /** Claims every token must carry (default [exp]); `exp` is checked whatever this says. */
  readonly requiredClaims: readonly string[]
  /** ms; the longest accepted `exp - iat`; undefined = no limit. */
  readonly maxLifetime: number | undefined
  /** The `typ` header tokens must carry (e.g. `at+jwt`, RFC 9068), compared as RFC 8725 §3.11 says; undefined = not checked. */
  readonly typ: string | undefined
  /** Plain http: is only allowed for loopback hosts unless this is true. */
  readonly allowInsecureHttp: boolean
  /**
   * A token without `kid` is checked against at most `maxCandidates` keys that fit its alg, in
   * key-index order; when more keys fit, none is tried (unknown_kid). 1 (the default): only
   * when exactly one key fits.
   */
  readonly kidless: { readonly maxCandidates: number }
  /**
   * RFC 9449 DPoP: `off` (the DPoP scheme is refused), `allowed` (DPoP-bound or plain bearer
   * tokens), `required` (DPoP-bound only). A token with `cnf` is never a plain bearer token,
   * whatever the mode. proofMaxAge: ms a proof is accepted after its iat (plus clock skew).
   */
  readonly dpop: { readonly mode: 'off' | 'allowed' | 'required'; readonly proofMaxAge: number }
  readonly fetch: FetchSettings
  readonly refresh: RefreshSettings
  /**
   * Persist the validated remote key set to `file` after each successful refresh and load it
   * at start, as `stale`, when the IdP is unreachable (issue #13 §3, keys/snapshot.ts);
   * undefined = off. The path is absolute (resolved against the config file).
   */
  readonly snapshot?: { readonly file: string } | undefined
}

export interface HeaderTokenSource {
  readonly kind: 'header'
  readonly header: string
  /** Compared case-insensitively (RFC 7235 §2.1: the auth-scheme is case-insensitive). */
  readonly prefix: string
}
export interface CookieTokenSource {
  readonly kind: 'cookie'
  readonly cookie: string
}
export interface QueryTokenSource {
  readonly kind: 'query'
  readonly query: string
}
export type TokenSource = HeaderTokenSource | CookieTokenSource | QueryTokenSource

export interface TokensConfig {
  readonly from: readonly TokenSource[]
  /** ms of tolerance on exp/nbf. */
  readonly clockSkew: number
  /** bytes; a longer token is rejected before it is parsed. */
  readonly maxBytes: number
  /** The verified-token cache; undefined when `tokens.cache.enabled` is false. */
  readonly cache: TokenCacheConfig | undefined
  /** The DPoP replay cache's bound (proofs); read at start only. */
  readonly dpopReplayCache: { readonly maxEntries: number }
}

export interface TokenCacheConfig {
  readonly maxEntries: number
  /** bytes, as estimated per entry (verify/token-cache.ts entryBytes). */
  readonly maxBytes: number
}

/** How an array claim becomes a header value: `a,b`, `["a","b"]`, or `a b` (RFC 6749 §3.3 scope form). */
export type ArrayForm = 'join' | 'json' | 'space'

/** One identity header's claim with its own array form (`identity.arrays` when absent). */
export interface IdentityHeaderRule {
  readonly claim: string
  readonly arrays?: ArrayForm
}

export interface IdentityConfig {
  /** upstream header name (as written in the file) -> claim name, or claim with its own array form. */
  readonly headers: Readonly<Record<string, string | IdentityHeaderRule>>
  /** Header names or `*` patterns removed from every incoming request, case-insensitively. */
  readonly strip: readonly string[]
  /** Keep the token where it came from for the upstream (a query token is always removed from the URL). */
  readonly forwardToken: boolean
  /** Array claims as `a,b` (`join`), as JSON (`json`) or as `a b` (`space`), unless a header says otherwise. */
  readonly arrays: ArrayForm
  /** bytes; a longer header value is dropped (and logged). */
  readonly maxValueBytes: number
  /** Carry the whole verified payload as base64url JSON in this header; undefined = off. */
  readonly claimsHeader: string | undefined
  /**
   * Where the verified binding of a sender-constrained token goes: `jkt=<thumbprint>` (DPoP,
   * RFC 9449) and/or `x5t#S256=<thumbprint>` (mTLS, RFC 8705); absent for an unbound token.
   */
  readonly bindingHeader: string | undefined
  /**
   * Inbound header names containing `_`, which CGI/WSGI/PHP/Rack apps read as the `-` name:
   * `drop` them (the default, as nginx does), `reject` the request (400), or `allow` them.
   * A `_` spelling of a protected or sidecar-owned name is removed whatever this says.
   */
  readonly underscoreHeaders: 'drop' | 'reject' | 'allow'
}

/** `deny`: answered 403 `route_denied` without touching the upstream (close a path for the methods no earlier route takes). */
export type AuthMode = 'required' | 'optional' | 'none' | 'deny'

export interface RouteConfig {
  /** Label in logs and metrics: [a-z0-9_-]+, unique. */
  readonly name: string
  /** `/exact`, `/prefix/**`, or a glob where `*` matches one segment. */
  readonly path: string
  /** Upper-case methods; empty = any. */
  readonly methods: readonly string[]
  readonly auth: AuthMode
  /**
   * Match the path's letter case exactly. Default: false for routes that protect (`required`,
   * `deny`), true for routes that admit without a token (`none`, `optional`), so the sidecar
   * is never less strict than an app that routes case-insensitively, nor than one that does not.
   */
  readonly caseSensitive: boolean
  /** Issuer names this route accepts; empty = any configured issuer. */
  readonly issuers: readonly string[]
  readonly require: RouteRequirements
}

/** Least privilege per route (checked after the token is verified; failure is 403). */
export interface RouteRequirements {
  /** Every one of these must be granted (`scope`, space-delimited, or `scp`, string or array). */
  readonly scopes: readonly string[]
  /** Dotted claim path -> allowed values; the claim (or any element of an array claim) must equal one. */
  readonly claims: Readonly<Record<string, readonly ClaimValue[]>>
}
export type ClaimValue = string | number | boolean

export interface UpstreamConfig {
  readonly url: string
  /** ms until the upstream's response headers (and between body chunks). */
  readonly timeout: number
  /** `append`: keep the client's X-Forwarded-* and append; `replace`: the sidecar's view only. */
  readonly xForwarded: 'append' | 'replace'
  /**
   * The upstream always reads request bodies to the end, so a connection that carried a body
   * may be reused. false (default): such a connection is closed after its response, so the
   * unread bytes of a body can never be parsed by the app as a request of their own.
   */
  readonly drainsBodies: boolean
}

export interface RequestsConfig {
  /** Method-override headers (X-HTTP-Method-Override…): `strip` (default) or `honor` (routes match the overridden method of a POST). */
  readonly methodOverride: 'strip' | 'honor'
  /** ms; the whole request, headers and body, must arrive within this, or 408. */
  readonly timeout: number
}

/** Something valid but probably not what was meant: printed by check-config, logged at start. */
export interface ConfigWarning {
  readonly file: string
  readonly line: number | undefined
  readonly path: string
  readonly message: string
}

export interface LogConfig {
  readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** One line per proxied request. */
  readonly access: boolean
  /** JSON lines or readable lines; undefined: readable when stdout is a terminal (observe/log.ts resolveLogFormat). */
  readonly format?: 'json' | 'pretty' | undefined
}

export interface ShutdownConfig {
  /** ms; after SIGTERM /readyz fails at once, and the sidecar keeps serving this long (endpoints update). */
  readonly delay: number
  /** ms; then it stops accepting and drains in-flight requests at most this long. */
  readonly timeout: number
}

/** `tls`: file paths resolved against the config file; the pair is reloaded when they change. */
export interface TlsConfig {
  readonly certFile: string
  readonly keyFile: string
  /** Client certificates are required and must chain to these CAs. */
  readonly clientCaFile: string | undefined
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** ALPN offers `h2` before `http/1.1`: HTTP/2 clients are served too (proxy/listener.ts). */
  readonly http2: boolean
}

/** `clientCertificateHeader`: a trusted ingress passes the client certificate (request/client-cert.ts). */
export interface ClientCertificateHeaderConfig {
  /** As written; compared lower-cased. */
  readonly name: string
  /** `xfcc`: Envoy's x-forwarded-client-cert (Hash or Cert); `pem`: a URL-encoded PEM (nginx $ssl_client_escaped_cert). */
  readonly format: 'xfcc' | 'pem'
  /** IP addresses and CIDR ranges the header is believed from. */
  readonly trustedPeers: readonly string[]
}

export interface SidecarConfig {
  /** The file this config came from (for messages). */
  readonly source: string
  readonly listen: ListenAddress
  /** The data-plane listener's TLS (RFC 6750 §5.3); undefined: plain HTTP. */
  readonly tls?: TlsConfig
  /** Where the client certificate comes from when TLS ends in front of the pod (RFC 8705). */
  readonly clientCertificateHeader?: ClientCertificateHeaderConfig
  readonly upstream: UpstreamConfig
  readonly admin: {
    readonly listen: ListenAddress
    /** ms; /healthz fails while the event loop has recently been blocked longer than this. */
    readonly maxEventLoopDelay: number
  }
  readonly shutdown: ShutdownConfig
  readonly issuers: readonly IssuerConfig[]
  readonly tokens: TokensConfig
  readonly identity: IdentityConfig
  readonly requests: RequestsConfig
  readonly routes: readonly RouteConfig[]
  readonly log: LogConfig
  /** check-config's warnings (file, line, path, message), e.g. a route a method can walk around. */
  readonly warnings: readonly ConfigWarning[]
}
