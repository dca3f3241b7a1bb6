/**
 * The closed set of reasons a request is not forwarded. One code is used alike in the
 * response body, the WWW-Authenticate header, the access log and the metrics label, so an
 * operator can go from a user's error to a dashboard without translation (the style of
 * jose's JOSEErrorCode and fastify's FST_ERR_*: stable codes, never branch on messages).
 *
 * Each entry is also its row of docs/reference/reasons.md (scripts/gen-docs.ts): `status`
 * and `error` make the answer (request/denials.ts); `outcome` is the `outcome` label of
 * jwt_sidecar_requests_total and `log` the level of the line the proxy writes for it
 * (proxy/server.ts): a client's mistake is `info`, the sidecar's or the upstream's own
 * failure is `warn`. `description` is the short phrase, `meaning` (Markdown, links
 * repository-relative) says exactly when the reason is given.
 */

/** What the reference and the proxy need of a reason. */
export interface ReasonSpec {
  readonly status: number
  /** RFC 6750 §3.1 `error`; undefined: the challenge carries none (the body says invalid_token). */
  readonly error: string | undefined
  /** `denied`: the client's request was refused; `error`: the sidecar or the upstream failed it. */
  readonly outcome: 'denied' | 'error'
  readonly log: 'info' | 'warn'
  readonly description: string
  readonly meaning: string
}

export const REASONS = {
  // RFC 6750 §3.1: a request without a token gets a challenge with no `error` attribute.
  missing_token: {
    status: 401, error: undefined, outcome: 'denied', log: 'info',
    description: 'no bearer token in the request',
    meaning: 'An `auth: required` route, and no token source holds a token. This includes a header without its prefix, such as `Authorization: Basic …`.',
  },
  malformed: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the token is not a well-formed compact JWS',
    meaning: 'The token is not a compact JWS the sidecar accepts. That covers: longer than `tokens.maxBytes`; not exactly three segments (a JWE has five); an empty header, payload or signature; base64url that is not canonical (whitespace inside included); a header or payload that is not a JSON object, or has **duplicate member names** at any depth (RFC 7519 §4 allows last-wins, but the app behind might read the first); no string `alg`; a `kid` or `typ` that is not a string; or a `crit` or `b64` header.',
  },
  unknown_issuer: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the token issuer is not trusted',
    meaning: '`iss` is missing or equals no `issuers[].issuer`. No fetch is made.',
  },
  alg_not_allowed: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the signing algorithm is not allowed for this issuer',
    meaning: "The header `alg` is not in the issuer's `algorithms` (this includes `none` and `HS*`).",
  },
  unknown_kid: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'no key with this key id for this issuer',
    meaning: "The `kid` is not in the issuer's key set, even after the bounded refetch. Or there is no `kid`, and the number of keys that can verify this `alg` is not exactly one.",
  },
  bad_signature: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the signature does not verify',
    meaning: 'The signature does not verify, or the key named by `kid` cannot produce this `alg`.',
  },
  expired: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the token has expired',
    meaning: 'now ≥ `exp` + `tokens.clockSkew`.',
  },
  not_yet_valid: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the token is not valid yet',
    meaning: 'now + `tokens.clockSkew` < `nbf`.',
  },
  bad_audience: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the token is not meant for this audience',
    meaning: "`aud` is missing, or neither it nor any of its elements is in the issuer's `audiences`.",
  },
  missing_claim: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'a required claim is missing',
    meaning: '`exp` is missing, a claim of `issuers[].requiredClaims` is missing or `null`, or `maxLifetime` is set and `iat` is missing.',
  },
  // RFC 7519 §4.1: iss/sub StringOrURI, aud a string or an array of strings, exp/nbf/iat
  // NumericDate, jti a string. `"sub": {"id": "admin"}` is a malformed token, not an identity.
  bad_claim_type: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'a registered claim (iss, sub, aud, exp, nbf, iat, jti) has the wrong JSON type',
    meaning: 'A registered claim has the wrong JSON type (RFC 7519 §4.1): `iss`, `sub` or `jti` not a string, `aud` not a string or an array of strings, `exp`, `nbf` or `iat` not a number. A `sub` of `12345` or `{"id":"admin"}` is a malformed token, never an identity.',
  },
  lifetime_exceeded: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'exp - iat is longer than the issuer allows (maxLifetime)',
    meaning: '`exp - iat` is longer than `issuers[].maxLifetime`.',
  },
  issued_in_future: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'iat is later than now plus the clock skew',
    meaning: '`iat` > now + `tokens.clockSkew`: a clock is wrong, here or at the issuer.',
  },
  bad_type: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the typ header is not the one this issuer requires',
    meaning: '`issuers[].typ` is set and the header `typ` differs.',
  },
  // RFC 9449 (DPoP) and RFC 7800 `cnf`: sender-constrained tokens (verify/dpop.ts, request/binding.ts).
  // A token with `cnf` proves nothing without its key: it is never accepted as a plain bearer token.
  token_bound: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the token is bound to a key (cnf) this request does not prove possession of',
    meaning: 'The token carries `cnf` (RFC 7800) and the request cannot prove it: a `cnf.jkt` token came as a plain `Bearer` token, `cnf` has a confirmation method other than `jkt` and `x5t#S256`, a DPoP-scheme token has no `cnf.jkt`, the DPoP proof is signed by another key than `cnf.jkt`, or an `x5t#S256` token met a config with no client-certificate source.',
  },
  dpop_required: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the issuer requires DPoP-bound tokens (dpop.mode: required)',
    meaning: 'An unbound `Bearer` token from an issuer with `dpop.mode: required`.',
  },
  dpop_not_allowed: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'DPoP scheme for a token without cnf.jkt or an issuer with dpop.mode: off',
    meaning: '`Authorization: DPoP` for an issuer with `dpop.mode: off`, or for a token without `cnf.jkt`.',
  },
  // RFC 8705 §3: a certificate-bound token (cnf x5t#S256) is refused with 401 invalid_token
  // when the request's client certificate is absent or another one (request/client-cert.ts).
  certificate_required: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the token is bound to a client certificate (cnf x5t#S256) and the request presented none',
    meaning: 'The token is bound to a client certificate (`cnf["x5t#S256"]`, RFC 8705) and the request came with none: no certificate in the handshake, or `clientCertificateHeader` missing, repeated, unreadable, or sent by a peer not in `trustedPeers`.',
  },
  certificate_mismatch: {
    status: 401, error: 'invalid_token', outcome: 'denied', log: 'info',
    description: 'the client certificate is not the one the token is bound to (cnf x5t#S256)',
    meaning: 'The client certificate\'s SHA-256 thumbprint is not the token\'s `cnf["x5t#S256"]`: the token is used with another certificate than it was issued to.',
  },
  // RFC 9449 §7.1: a missing or failed proof is `invalid_dpop_proof`.
  invalid_dpop_proof: {
    status: 401, error: 'invalid_dpop_proof', outcome: 'denied', log: 'info',
    description: 'the DPoP proof is missing or does not verify against this request and token',
    meaning: "The `DPoP` header is missing, repeated, or fails an RFC 9449 §4.3 check: not a compact JWS, `typ` not `dpop+jwt`, `alg` not asymmetric, `jwk` missing or carrying private members, signature, `htm`, `htu`, `iat` outside `proofMaxAge`, `jti` missing, `ath` not the token's hash.",
  },
  dpop_replay: {
    status: 401, error: 'invalid_dpop_proof', outcome: 'denied', log: 'info',
    description: 'the DPoP proof jti was already used within the window',
    meaning: "The proof's `jti` was already used with that key within the window, or the replay cache (`tokens.dpopReplayCache.maxEntries`) is full of live entries: refused, never evicted.",
  },
  // RFC 6750 §3.1: a valid token without the privileges the route requires.
  insufficient_scope: {
    status: 403, error: 'insufficient_scope', outcome: 'denied', log: 'info',
    description: 'the token lacks a scope the route requires',
    meaning: "A valid token without a scope the route's `require.scopes` needs.",
  },
  claim_mismatch: {
    status: 403, error: 'insufficient_scope', outcome: 'denied', log: 'info',
    description: 'a claim does not have a value the route requires',
    meaning: "A valid token whose claim fails the route's `require.claims`.",
  },
  issuer_not_allowed: {
    status: 403, error: 'insufficient_scope', outcome: 'denied', log: 'info',
    description: 'the route does not accept tokens from this issuer',
    meaning: "A valid token from an issuer not in the route's `issuers`.",
  },
  // RFC 6750 §3.1 `invalid_request`: the request itself is ambiguous.
  invalid_request: {
    status: 400, error: 'invalid_request', outcome: 'denied', log: 'info',
    description: 'the request carries its credentials ambiguously',
    meaning: "The request is malformed or ambiguous. Either the path cannot be normalised or the target has a fragment (step 2 of [How a request is handled](docs/how-it-works.md#how-a-request-is-handled)), a header name has `_` and `identity.underscoreHeaders` is `reject`, method-override headers disagree (`requests.methodOverride: honor`), a token-source header appears more than once, an HTTP/2 request's `host` differs from its `:authority` or it has neither ([HTTP/2](docs/how-it-works.md#http2)), a cookie or query parameter holds two different values or is empty, the prefix is followed by an empty token, the token has a byte outside the RFC 6750 `b64token` grammar, or different sources hold different tokens.",
  },
  // Authorization, not authentication: no route rule admits the request.
  no_route: {
    status: 403, error: 'access_denied', outcome: 'denied', log: 'info',
    description: 'no route rule admits this request',
    meaning: 'No `routes[]` rule matches the method and path.',
  },
  // A route with `auth: deny` matched: closed on purpose, whatever the token.
  route_denied: {
    status: 403, error: 'access_denied', outcome: 'denied', log: 'info',
    description: 'a route rule with auth: deny matches this request',
    meaning: 'The first matching rule has `auth: deny`.',
  },
  // The sidecar's own fault, not the client's: 503 with Retry-After (RFC 9110 §15.6.4).
  keys_unavailable: {
    status: 503, error: 'temporarily_unavailable', outcome: 'error', log: 'warn',
    description: 'the issuer keys are not available',
    meaning: 'The issuer has no usable key set: no fetch has succeeded yet, or the last good set is older than `refresh.maxStale` and was dropped.',
  },
  internal_error: {
    status: 500, error: 'server_error', outcome: 'error', log: 'warn',
    description: 'internal error',
    meaning: 'An exception in the authentication step. The request is not forwarded.',
  },
  // The client did not send the whole request (headers and body) within requests.timeout.
  request_timeout: {
    status: 408, error: 'request_timeout', outcome: 'denied', log: 'info',
    description: 'the request did not arrive within requests.timeout',
    meaning: "The request's headers and body did not arrive within `requests.timeout`. The connection is closed. Counted under route `_unmatched` (the route is not known where the timeout fires).",
  },
  // Proxy outcomes after a request was admitted.
  upstream_unavailable: {
    status: 502, error: 'bad_gateway', outcome: 'error', log: 'warn',
    description: 'the upstream could not be reached',
    meaning: 'The request was admitted, but the upstream could not be reached or reset the connection.',
  },
  upstream_timeout: {
    status: 504, error: 'gateway_timeout', outcome: 'error', log: 'warn',
    description: 'the upstream did not answer in time',
    meaning: 'The request was admitted, but the upstream did not answer within `upstream.timeout`.',
  },
} as const satisfies Record<string, ReasonSpec>

export type Reason = keyof typeof REASONS

/** Reasons that describe a bad or missing token (401 with a Bearer challenge). */
export type TokenReason = {
  [R in Reason]: (typeof REASONS)[R]['status'] extends 401 ? R : never
}[Reason]
