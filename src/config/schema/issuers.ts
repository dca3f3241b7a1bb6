/**
 * The schema of one `issuers[]` entry: who signs the tokens, where its keys come from, and
 * how they are kept fresh. Part of src/config/schema.ts; the descriptions are the reference's
 * "Meaning" column (docs/reference/configuration.md, scripts/gen-docs.ts).
 */
import { SUPPORTED_ALGORITHMS } from '../types.ts'
import { EXPECTED, DURATION, duration, size, boolean, oneOf, settings, doc, NAME, URL_STRING, NON_EMPTY_STRING } from '../schema-nodes.ts'
import type { SchemaNode } from '../schema-nodes.ts'

const staticKey = {
  type: 'object',
  additionalProperties: false,
  required: ['file'],
  properties: {
    file: doc(
      'A PEM SPKI public key, a PEM X.509 certificate or certificate chain (leaf first: its key is used), a JWK or a JWKS. Absolute, or relative to the config file\'s directory. Watched: a change is used without a restart.',
      { ...NON_EMPTY_STRING, [EXPECTED]: 'a file path (absolute, or relative to this config file)' },
    ),
    // Required for PEM at load time: the algorithm is never inferred from key text (CVE-2023-48223).
    alg: doc(
      "The algorithm. **Required for PEM** (never inferred from the key text: CVE-2023-48223). For a JWK/JWKS it must match the key's own `alg`, or sets it.",
      oneOf(SUPPORTED_ALGORITHMS),
    ),
    kid: doc('The key id tokens must name. Only for a file with one key.', NON_EMPTY_STRING, 'the RFC 7638 thumbprint'),
  },
  [EXPECTED]: 'a static key like {file: /keys/signing.pem, alg: RS256}',
} as const satisfies SchemaNode

/** One trusted issuer: its `iss`, its key source, and what its tokens must carry. */
export const issuer = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'issuer', 'audiences'],
  properties: {
    name: doc(
      'The label in logs and metrics. Lower-case letters, digits, `_` and `-`, starting with a letter or digit (`^[a-z0-9][a-z0-9_-]*$`). Must be unique.',
      NAME,
    ),
    issuer: doc(
      "The exact `iss` value of this issuer's tokens, compared case-sensitively. Must be unique across issuers. With `discovery: true` (and no `discoveryUrl`) it must be an `https://` URL (or loopback `http://`). It may hold the placeholder `{tenantid}` once, with `tenants` (Microsoft Entra ID's multi-tenant issuer, `https://login.microsoftonline.com/{tenantid}/v2.0`); any other `{…}` is an error.",
      { ...NON_EMPTY_STRING, [EXPECTED]: "the exact iss value of the issuer's tokens" },
    ),
    // Microsoft Entra ID multi-tenant: `issuer` holds {tenantid}, these are the tenants accepted (checks/issuers.ts).
    tenants: doc(
      'With a `{tenantid}` issuer, and only then: the accepted tenant ids (letters, digits, `.`, `_`, `-`; distinct). A token passes only if its `iss` is the template with one of them in place of `{tenantid}`, and its `tid` claim is that same tenant (else `401 unknown_issuer`). One key set serves every tenant; metrics and logs name the issuer by `name`, never by tenant. A `{tenantid}` issuer without `tenants` is an error, since no token could ever match it.',
      {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        // Substituted into a URL path segment: no '/', '{', '}' or other characters that would change its shape.
        items: { type: 'string', pattern: '^[A-Za-z0-9._-]+$', [EXPECTED]: 'a tenant id (letters, digits, . _ -)' },
        [EXPECTED]: 'a non-empty list of distinct tenant ids',
      },
    ),
    jwksUri: doc(
      'The JWKS URL, with no `#fragment`. It must be `https://` unless the host is loopback (`127.0.0.0/8`, `::1`, `localhost`) or `allowInsecureHttp` is true. Not together with `discovery`.',
      URL_STRING,
    ),
    discovery: doc(
      'Find the JWKS URL with OpenID Connect Discovery: GET `{issuer}/.well-known/openid-configuration` (or `discoveryUrl`), whose `issuer` must equal the configured one exactly, and use its `jwks_uri` (same https rule). For a `{tenantid}` issuer the document\'s `issuer` is the template itself, compared as written.',
      boolean(false),
    ),
    // Where the discovery document is when it is not at {issuer}/.well-known/openid-configuration (Azure AD B2C, Entra's {tenantid} issuers).
    discoveryUrl: doc(
      "Where the discovery document is, when it is not at `{issuer}/.well-known/openid-configuration`: Azure AD B2C's policy URLs (`https://<tenant>.b2clogin.com/<tenant>.onmicrosoft.com/<policy>/v2.0/.well-known/openid-configuration`), Entra's `organizations` or `common` document for a `{tenantid}` issuer (required there). Turns discovery on by itself (`discovery: true` may be left out); not together with `jwksUri`; the same https rule as `jwksUri`; the document's `issuer` must still equal `issuer`.",
      URL_STRING,
    ),
    keys: doc(
      'Static key files, for air-gapped or small setups; see [Static keys](docs/keys.md#static-keys).',
      { type: 'array', items: staticKey, default: [], [EXPECTED]: 'a list of static key files' },
    ),
    audiences: doc(
      'A non-empty list. The token\'s `aud` (or `audienceClaim`) must contain at least one of these, compared exactly; else `401 bad_audience`.',
      { type: 'array', minItems: 1, items: NON_EMPTY_STRING, [EXPECTED]: 'a non-empty list of strings' },
    ),
    // AWS Cognito access tokens name the app client in client_id and carry no aud.
    audienceClaim: doc(
      'The claim the audience is read from: a string, or an array of strings of which one must match. `client_id` for AWS Cognito access tokens, which name the app client there and carry no `aud`. `jwt-sidecar verify` shows the claim it compared.',
      { ...NON_EMPTY_STRING, default: 'aud', [EXPECTED]: 'a claim name like aud or client_id' },
    ),
    algorithms: doc(
      `The accepted \`alg\` values, distinct, from ${SUPPORTED_ALGORITHMS.map((a) => `\`${a}\``).join(', ')}. \`none\` and \`HS*\` are not accepted. Keys that fit none of these algorithms are not imported.`,
      {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        // RFC 8725 §3.1: pin the algorithms per issuer; never `none` or HS* with a public key.
        items: oneOf(SUPPORTED_ALGORITHMS),
        default: ['RS256'],
        [EXPECTED]: 'a non-empty list of distinct algorithms',
      },
    ),
    requiredClaims: doc(
      'Claims every token of this issuer must carry (not `null`); a miss is `401 missing_claim`. `exp` is required whatever this says.',
      { type: 'array', items: NON_EMPTY_STRING, default: ['exp'], [EXPECTED]: 'a list of claim names like [sub, exp]' },
    ),
    maxLifetime: doc(
      'The longest accepted `exp - iat`; longer is `401 lifetime_exceeded`, and without `iat` it is `missing_claim`. Catches tokens minted with a far-away `exp`.',
      { type: 'string', format: 'duration', [EXPECTED]: DURATION },
    ),
    // RFC 9068 §2.1 access tokens carry typ "at+jwt"; RFC 8725 §3.11 explicit typing.
    typ: doc(
      'The `typ` header tokens must carry, for example `at+jwt` (RFC 9068 access tokens), compared case-insensitively with or without `application/` (RFC 8725 §3.11). A mismatch is `401 bad_type`: it keeps ID tokens from being used as access tokens.',
      { ...NON_EMPTY_STRING, [EXPECTED]: 'a typ value like at+jwt' },
    ),
    allowInsecureHttp: doc(
      'Allows plain `http` to a non-loopback host (JWKS, discovery, redirects). Anyone on the network path could then substitute their own keys.',
      boolean(false),
    ),
    // Issue #12 item 4: a token without kid may be tried against several keys. Each candidate
    // is one signature check a forged token can trigger, so the bound is small and fixed.
    kidless: doc(
      'Tokens without `kid` when several keys could have signed them; see [Keys](docs/keys.md).',
      settings('a map with maxCandidates', {
        maxCandidates: doc(
          'A whole number from 1 to 5. A token without `kid` is checked against every key that fits its `alg` (key type, curve and declared `alg`), in `/keys` order, when at most this many fit; the first that verifies wins. When more fit, none is tried (`401 unknown_kid`). `1` keeps a token without `kid` to the single key that fits. **Each candidate is a signature check anyone can make the sidecar spend with a forged token**; the cost shows in `jwt_sidecar_kidless_signature_checks`.',
          { type: 'integer', minimum: 1, maximum: 5, default: 1, [EXPECTED]: 'a whole number from 1 to 5' },
        ),
      }),
    ),
    // RFC 9449 DPoP. Whatever the mode, a token bound to a DPoP key (`cnf.jkt`) is never accepted as a plain bearer token.
    dpop: doc(
      'Sender-constrained tokens (RFC 9449 DPoP); see [Sender-constrained tokens](docs/how-it-works.md#sender-constrained-tokens-dpop). Whatever it says, a token bound to a DPoP key (`cnf.jkt`) is never accepted as a plain bearer token (`401 token_bound`).',
      settings('a map with mode and proofMaxAge', {
        mode: doc(
          '`off`: the `DPoP` scheme is not read for this issuer (`401 dpop_not_allowed` when another issuer makes it read). `allowed`: `Authorization: DPoP <token>` with a `DPoP` proof, or an unbound `Bearer` token. `required`: only DPoP-bound tokens (`401 dpop_required` for `Bearer`).',
          oneOf(['off', 'allowed', 'required'], 'off'),
        ),
        proofMaxAge: doc(
          'How long after its `iat` a DPoP proof is accepted, plus `tokens.clockSkew` either way. Its `jti` is remembered until `iat` + `proofMaxAge` + `tokens.clockSkew` (replay cache).',
          duration('60s'),
        ),
      }),
    ),
    fetch: doc(
      'How key documents (JWKS, discovery) are downloaded.',
      settings('a map with timeout, maxBytes, headers, bearerTokenFile and caFile', {
        timeout: doc('One GET, from connecting to the last byte, redirects included. Must be > 0.', duration('5s')),
        maxBytes: doc('A larger response is refused, and its download aborted. Must be > 0.', size('1MiB')),
        headers: doc(
          'Extra request headers (`Name: value`; values may use `${VAR}`). `Accept`, `User-Agent`, `Host` and conditional headers cannot be overridden.',
          {
            type: 'object',
            additionalProperties: { type: 'string', pattern: '^[^\\r\\n]*$', [EXPECTED]: 'a header value on one line' },
            default: {},
            [EXPECTED]: 'a map of header name: value',
          },
        ),
        bearerTokenFile: doc(
          'Send `Authorization: Bearer <file content>`, re-read on **every** fetch (Kubernetes service-account tokens rotate). The token never appears in logs or errors.',
          { ...NON_EMPTY_STRING, [EXPECTED]: 'a file path' },
        ),
        caFile: doc(
          "A PEM CA bundle trusted for this issuer's TLS instead of the system roots (e.g. the cluster CA for the Kubernetes API server's JWKS).",
          { ...NON_EMPTY_STRING, [EXPECTED]: 'a PEM file path' },
        ),
      }),
    ),
    refresh: doc(
      'Keeping the keys fresh; see [Keys](docs/keys.md).',
      settings('a map with interval, minInterval, maxInterval, unknownKidCooldown, unknownKidWait, maxStale and discoveryInterval', {
        interval: doc('Time between refreshes when the response has no usable `Cache-Control`/`Expires`. Between `minInterval` and `maxInterval`.', duration('5m')),
        minInterval: doc('The shortest cache lifetime honoured, and the ceiling of the retry backoff. At least `1s`.', duration('1m')),
        maxInterval: doc('The longest cache lifetime honoured: a key withdrawn by the provider stops working within this time (plus jitter).', duration('1h')),
        unknownKidCooldown: doc('A token with an unknown `kid` triggers at most one refresh per issuer within this window.', duration('30s')),
        unknownKidWait: doc('How long requests wait for that refresh before they fail with `unknown_kid`.', duration('2s')),
        maxStale: doc(
          'How long after the last successful refresh the last-known-good keys stay usable while refreshes fail. Then they are dropped until a refresh succeeds: `503 keys_unavailable` and not ready, unless the issuer also has static `keys`, which stay (other kids get `401 unknown_kid`). At least `maxInterval`.',
          duration('24h'),
        ),
        discoveryInterval: doc('How often the discovery document is fetched again.', duration('24h')),
      }),
    ),
    // Issue #13 §3: the last validated remote key set, persisted for a cold start during an IdP outage. Absent: off.
    snapshot: doc(
      "Persist the issuer's validated remote key set and use it for a cold start while the IdP is down; see [Cold starts during an IdP outage](docs/keys.md#cold-starts-during-an-idp-outage-the-key-snapshot). Needs `jwksUri` or discovery.",
      {
        type: 'object',
        additionalProperties: false,
        required: ['file'],
        properties: {
          file: doc(
            'A file path (absolute, or relative to this config file) on a volume only the sidecar writes, e.g. an `emptyDir` at `/var/run/jwt-sidecar`. One file per issuer. Written after each successful refresh (`304` included), mode `0600`, atomically; the directory must exist.',
            { ...NON_EMPTY_STRING, [EXPECTED]: 'a file path on a writable volume (absolute, or relative to this config file)' },
          ),
        },
        [EXPECTED]: 'a map with file, like {file: /var/run/jwt-sidecar/corp.jwks.json}',
      },
      'absent (off)',
    ),
  },
  [EXPECTED]: 'an issuer (a map with name, issuer, audiences and a key source: jwksUri, discovery or keys)',
} as const satisfies SchemaNode
