/**
 * The closed set of reasons a request is not forwarded. One code is used alike in the
 * response body, the WWW-Authenticate header, the access log and the metrics label, so an
 * operator can go from a user's error to a dashboard without translation (the style of
 * jose's JOSEErrorCode and fastify's FST_ERR_*: stable codes, never branch on messages).
 */

export const REASONS = {
  // RFC 6750 §3.1: a request without a token gets a challenge with no `error` attribute.
  missing_token: { status: 401, error: undefined, description: 'no bearer token in the request' },
  malformed: { status: 401, error: 'invalid_token', description: 'the token is not a well-formed compact JWS' },
  unknown_issuer: { status: 401, error: 'invalid_token', description: 'the token issuer is not trusted' },
  alg_not_allowed: { status: 401, error: 'invalid_token', description: 'the signing algorithm is not allowed for this issuer' },
  unknown_kid: { status: 401, error: 'invalid_token', description: 'no key with this key id for this issuer' },
  bad_signature: { status: 401, error: 'invalid_token', description: 'the signature does not verify' },
  expired: { status: 401, error: 'invalid_token', description: 'the token has expired' },
  not_yet_valid: { status: 401, error: 'invalid_token', description: 'the token is not valid yet' },
  bad_audience: { status: 401, error: 'invalid_token', description: 'the token is not meant for this audience' },
  missing_claim: { status: 401, error: 'invalid_token', description: 'a required claim is missing' },
  // RFC 7519 §4.1: iss/sub StringOrURI, aud a string or an array of strings, exp/nbf/iat
  // NumericDate, jti a string. `"sub": {"id": "admin"}` is a malformed token, not an identity.
  bad_claim_type: { status: 401, error: 'invalid_token', description: 'a registered claim (iss, sub, aud, exp, nbf, iat, jti) has the wrong JSON type' },
  lifetime_exceeded: { status: 401, error: 'invalid_token', description: 'exp - iat is longer than the issuer allows (maxLifetime)' },
  issued_in_future: { status: 401, error: 'invalid_token', description: 'iat is later than now plus the clock skew' },
  bad_type: { status: 401, error: 'invalid_token', description: 'the typ header is not the one this issuer requires' },
  // RFC 9449 (DPoP) and RFC 7800 `cnf`: sender-constrained tokens (verify/dpop.ts, request/binding.ts).
  // A token with `cnf` proves nothing without its key: it is never accepted as a plain bearer token.
  token_bound: { status: 401, error: 'invalid_token', description: 'the token is bound to a key (cnf) this request does not prove possession of' },
  dpop_required: { status: 401, error: 'invalid_token', description: 'the issuer requires DPoP-bound tokens (dpop.mode: required)' },
  dpop_not_allowed: { status: 401, error: 'invalid_token', description: 'DPoP scheme for a token without cnf.jkt or an issuer with dpop.mode: off' },
  // RFC 8705 §3: a certificate-bound token (cnf x5t#S256) is refused with 401 invalid_token
  // when the request's client certificate is absent or another one (request/client-cert.ts).
  certificate_required: { status: 401, error: 'invalid_token', description: 'the token is bound to a client certificate (cnf x5t#S256) and the request presented none' },
  certificate_mismatch: { status: 401, error: 'invalid_token', description: 'the client certificate is not the one the token is bound to (cnf x5t#S256)' },
  // RFC 9449 §7.1: a missing or failed proof is `invalid_dpop_proof`.
  invalid_dpop_proof: { status: 401, error: 'invalid_dpop_proof', description: 'the DPoP proof is missing or does not verify against this request and token' },
  dpop_replay: { status: 401, error: 'invalid_dpop_proof', description: 'the DPoP proof jti was already used within the window' },
  // RFC 6750 §3.1: a valid token without the privileges the route requires.
  insufficient_scope: { status: 403, error: 'insufficient_scope', description: 'the token lacks a scope the route requires' },
  claim_mismatch: { status: 403, error: 'insufficient_scope', description: 'a claim does not have a value the route requires' },
  issuer_not_allowed: { status: 403, error: 'insufficient_scope', description: 'the route does not accept tokens from this issuer' },
  // RFC 6750 §3.1 `invalid_request`: the request itself is ambiguous.
  invalid_request: { status: 400, error: 'invalid_request', description: 'the request carries its credentials ambiguously' },
  // Authorization, not authentication: no route rule admits the request.
  no_route: { status: 403, error: 'access_denied', description: 'no route rule admits this request' },
  // A route with `auth: deny` matched: closed on purpose, whatever the token.
  route_denied: { status: 403, error: 'access_denied', description: 'a route rule with auth: deny matches this request' },
  // The sidecar's own fault, not the client's: 503 with Retry-After (RFC 9110 §15.6.4).
  keys_unavailable: { status: 503, error: 'temporarily_unavailable', description: 'the issuer keys are not available' },
  internal_error: { status: 500, error: 'server_error', description: 'internal error' },
  // The client did not send the whole request (headers and body) within requests.timeout.
  request_timeout: { status: 408, error: 'request_timeout', description: 'the request did not arrive within requests.timeout' },
  // Proxy outcomes after a request was admitted.
  upstream_unavailable: { status: 502, error: 'bad_gateway', description: 'the upstream could not be reached' },
  upstream_timeout: { status: 504, error: 'gateway_timeout', description: 'the upstream did not answer in time' },
} as const satisfies Record<string, { status: number; error: string | undefined; description: string }>

export type Reason = keyof typeof REASONS

/** Reasons that describe a bad or missing token (401 with a Bearer challenge). */
export type TokenReason = {
  [R in Reason]: (typeof REASONS)[R]['status'] extends 401 ? R : never
}[Reason]
