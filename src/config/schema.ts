/**
 * The one JSON Schema of the config file (draft-07), compiled by ajv 8 into validate.generated.ts
 * (scripts/gen-config-validator.ts).
 *
 * It describes the YAML as written: durations, sizes and listen addresses are still
 * strings here (checked by the formats below) and convert.ts converts them afterwards.
 * Every optional key carries its `default`, so the validated data is complete, and every
 * object is `additionalProperties: false`, so a typo (`audience:`) is an error instead of
 * a silently ignored setting (fastify's options schema works the same way).
 *
 * Each node carries `x-expected`, the human phrase error messages are built from
 * ("expected a non-empty list of strings"); ajv's own English ("must NOT have fewer than
 * 1 items") speaks about the schema, not about the file the operator is editing.
 */
import type { FromSchema, Understood } from './from-schema.ts'
import { SUPPORTED_ALGORITHMS } from './types.ts'
import { TOKEN_PATTERN } from '../http/grammar.ts'
import { EXPECTED, DURATION, duration, size, listen, boolean, oneOf, CLAIM_PATH, ARRAY_FORMS, settings, NAME, URL_STRING, NON_EMPTY_STRING, HEADER_NAME } from './schema-nodes.ts'
import type { SchemaNode } from './schema-nodes.ts'

// The vocabulary, for the generator, the checks and the tests that read the schema.
export { AJV_OPTIONS, EXPECTED, UNIT_FORMATS, UNIT_FORMAT_CHECKS } from './schema-nodes.ts'
export type { SchemaNode } from './schema-nodes.ts'

const staticKey = {
  type: 'object',
  additionalProperties: false,
  required: ['file'],
  properties: {
    file: { ...NON_EMPTY_STRING, [EXPECTED]: 'a file path (absolute, or relative to this config file)' },
    // Required for PEM at load time: the algorithm is never inferred from key text (CVE-2023-48223).
    alg: oneOf(SUPPORTED_ALGORITHMS),
    kid: NON_EMPTY_STRING,
  },
  [EXPECTED]: 'a static key like {file: /keys/signing.pem, alg: RS256}',
} as const satisfies SchemaNode

const issuer = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'issuer', 'audiences'],
  properties: {
    name: NAME,
    issuer: { ...NON_EMPTY_STRING, [EXPECTED]: "the exact iss value of the issuer's tokens" },
    // Microsoft Entra ID multi-tenant: `issuer` holds {tenantid}, these are the tenants accepted (checks/issuers.ts).
    tenants: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      // Substituted into a URL path segment: no '/', '{', '}' or other characters that would change its shape.
      items: { type: 'string', pattern: '^[A-Za-z0-9._-]+$', [EXPECTED]: 'a tenant id (letters, digits, . _ -)' },
      [EXPECTED]: 'a non-empty list of distinct tenant ids',
    },
    jwksUri: URL_STRING,
    discovery: boolean(false),
    // Where the discovery document is when it is not at {issuer}/.well-known/openid-configuration (Azure AD B2C, Entra's {tenantid} issuers).
    discoveryUrl: URL_STRING,
    keys: { type: 'array', items: staticKey, default: [], [EXPECTED]: 'a list of static key files' },
    audiences: {
      type: 'array',
      minItems: 1,
      items: NON_EMPTY_STRING,
      [EXPECTED]: 'a non-empty list of strings',
    },
    // AWS Cognito access tokens name the app client in client_id and carry no aud.
    audienceClaim: { ...NON_EMPTY_STRING, default: 'aud', [EXPECTED]: 'a claim name like aud or client_id' },
    algorithms: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      // RFC 8725 §3.1: pin the algorithms per issuer; never `none` or HS* with a public key.
      items: oneOf(SUPPORTED_ALGORITHMS),
      default: ['RS256'],
      [EXPECTED]: 'a non-empty list of distinct algorithms',
    },
    requiredClaims: {
      type: 'array',
      items: NON_EMPTY_STRING,
      default: ['exp'],
      [EXPECTED]: 'a list of claim names like [sub, exp]',
    },
    maxLifetime: { type: 'string', format: 'duration', [EXPECTED]: DURATION },
    // RFC 9068 §2.1 access tokens carry typ "at+jwt"; RFC 8725 §3.11 explicit typing.
    typ: { ...NON_EMPTY_STRING, [EXPECTED]: 'a typ value like at+jwt' },
    allowInsecureHttp: boolean(false),
    // Issue #12 item 4: a token without kid may be tried against several keys. Each candidate
    // is one signature check a forged token can trigger, so the bound is small and fixed.
    kidless: settings('a map with maxCandidates', {
      maxCandidates: { type: 'integer', minimum: 1, maximum: 5, default: 1, [EXPECTED]: 'a whole number from 1 to 5' },
    }),
    // Issue #13: RFC 9449 DPoP. Whatever the mode, a token carrying `cnf` is never accepted as a plain bearer token.
    dpop: settings('a map with mode and proofMaxAge', {
      mode: oneOf(['off', 'allowed', 'required'], 'off'),
      proofMaxAge: duration('60s'),
    }),
    fetch: settings('a map with timeout, maxBytes, headers, bearerTokenFile and caFile', {
      timeout: duration('5s'),
      maxBytes: size('1MiB'),
      headers: {
        type: 'object',
        additionalProperties: { type: 'string', pattern: '^[^\\r\\n]*$', [EXPECTED]: 'a header value on one line' },
        default: {},
        [EXPECTED]: 'a map of header name: value',
      },
      bearerTokenFile: { ...NON_EMPTY_STRING, [EXPECTED]: 'a file path' },
      caFile: { ...NON_EMPTY_STRING, [EXPECTED]: 'a PEM file path' },
    }),
    refresh: settings('a map with interval, minInterval, maxInterval, unknownKidCooldown, unknownKidWait, maxStale and discoveryInterval', {
      interval: duration('5m'),
      minInterval: duration('1m'),
      maxInterval: duration('1h'),
      unknownKidCooldown: duration('30s'),
      unknownKidWait: duration('2s'),
      maxStale: duration('24h'),
      discoveryInterval: duration('24h'),
    }),
    // Issue #13 §3: the last validated remote key set, persisted for a cold start during an IdP outage. Absent: off.
    snapshot: {
      type: 'object',
      additionalProperties: false,
      required: ['file'],
      properties: {
        file: { ...NON_EMPTY_STRING, [EXPECTED]: 'a file path on a writable volume (absolute, or relative to this config file)' },
      },
      [EXPECTED]: 'a map with file, like {file: /var/run/jwt-sidecar/corp.jwks.json}',
    },
  },
  [EXPECTED]: 'an issuer (a map with name, issuer, audiences and a key source: jwksUri, discovery or keys)',
} as const satisfies SchemaNode

const tokenSource = {
  type: 'object',
  additionalProperties: false,
  // Exactly one of header / cookie / query: checked in checks/tokens.ts, with a clearer message than oneOf.
  properties: {
    header: HEADER_NAME,
    // A prefix ends up compared against a header value, which cannot hold CR or LF (RFC 9110 §5.5).
    prefix: { type: 'string', pattern: '^[^\\r\\n]*$', [EXPECTED]: 'a prefix on one line, like "Bearer "' },
    // RFC 6265 §4.1.1: a cookie-name is an RFC 9110 token.
    cookie: { type: 'string', pattern: TOKEN_PATTERN, [EXPECTED]: 'a cookie name' },
    query: { ...NON_EMPTY_STRING, [EXPECTED]: 'a query parameter name' },
  },
  [EXPECTED]: 'a token source: {header: Authorization, prefix: "Bearer "}, {cookie: name} or {query: name}',
} as const satisfies SchemaNode

const claimValue = { type: ['string', 'number', 'boolean'], [EXPECTED]: 'a string, number or boolean' } as const satisfies SchemaNode

const route = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'path'],
  properties: {
    name: NAME,
    path: { type: 'string', minLength: 1, [EXPECTED]: 'a path like /healthz or /api/**' },
    methods: {
      type: 'array',
      items: { type: 'string', minLength: 1, [EXPECTED]: 'an HTTP method like GET' },
      default: [],
      [EXPECTED]: 'a list of HTTP methods like [GET, POST] (empty means any)',
    },
    auth: oneOf(['required', 'optional', 'none', 'deny'], 'required'),
    // No default here: it depends on auth (convert.ts), see RouteConfig.caseSensitive.
    caseSensitive: { type: 'boolean', [EXPECTED]: 'true or false' },
    issuers: {
      type: 'array',
      items: NAME,
      default: [],
      [EXPECTED]: 'a list of issuer names (empty means any)',
    },
    require: settings('a map with scopes and claims', {
      scopes: {
        type: 'array',
        items: { type: 'string', pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$', [EXPECTED]: 'a scope token (RFC 6749 §3.3)' },
        default: [],
        [EXPECTED]: 'a list of scopes that must all be granted',
      },
      claims: {
        type: 'object',
        additionalProperties: { type: 'array', minItems: 1, items: claimValue, [EXPECTED]: 'a non-empty list of allowed values' },
        default: {},
        [EXPECTED]: 'a map of claim path (like realm_access.roles) to allowed values',
      },
    }),
  },
  [EXPECTED]: 'a route (a map with name, path, methods, auth, caseSensitive, issuers and require)',
} as const satisfies SchemaNode

/**
 * The schema of the whole file. Plain data, compiled with `allErrors` and `useDefaults` into
 * validate.generated.ts; the README's config reference mirrors it.
 */
const schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  required: ['upstream', 'issuers', 'routes'],
  properties: {
    listen: listen('0.0.0.0:8080'),
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: URL_STRING,
        timeout: duration('30s'),
        xForwarded: oneOf(['append', 'replace'], 'append'),
        drainsBodies: boolean(false),
      },
      [EXPECTED]: 'a map with url, timeout, xForwarded and drainsBodies',
    },
    admin: settings('a map with listen and maxEventLoopDelay', {
      listen: listen('0.0.0.0:9901'),
      maxEventLoopDelay: duration('2s'),
    }),
    shutdown: settings('a map with delay and timeout', {
      delay: duration('5s'),
      timeout: duration('25s'),
    }),
    issuers: { type: 'array', minItems: 1, items: issuer, [EXPECTED]: 'at least one issuer' },
    tokens: settings('a map with from, clockSkew, maxBytes, cache and dpopReplayCache', {
      from: {
        type: 'array',
        minItems: 1,
        items: tokenSource,
        // RFC 6750 §2.1: the bearer token travels in Authorization with the Bearer scheme.
        default: [{ header: 'Authorization', prefix: 'Bearer ' }],
        [EXPECTED]: 'a non-empty list of token sources',
      },
      clockSkew: duration('60s'),
      maxBytes: size('8KiB'),
      // The verified-token cache (verify/token-cache.ts): on by default, bounded both ways.
      cache: settings('a map with enabled, maxEntries and maxBytes', {
        enabled: boolean(true),
        maxEntries: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000, [EXPECTED]: 'a whole number from 1 to 1000000' },
        maxBytes: size('32MiB'),
      }),
      // The DPoP proof replay cache (verify/dpop-replay.ts), one per process: about 120 bytes
      // per proof, each kept proofMaxAge + clockSkew after its iat. Full refuses (fail closed).
      dpopReplayCache: settings('a map with maxEntries', {
        maxEntries: { type: 'integer', minimum: 1, maximum: 10_000_000, default: 100_000, [EXPECTED]: 'a whole number from 1 to 10000000' },
      }),
    }),
    identity: settings('a map with headers, strip, forwardToken, arrays, maxValueBytes, claimsHeader, bindingHeader and underscoreHeaders', {
      headers: {
        type: 'object',
        // A claim, or a claim with its own array form: one config can forward `groups`
        // comma-joined and `scp` space-joined (issue #12 §7).
        additionalProperties: {
          anyOf: [
            CLAIM_PATH,
            {
              type: 'object',
              additionalProperties: false,
              required: ['claim'],
              properties: { claim: CLAIM_PATH, arrays: oneOf(ARRAY_FORMS) },
              [EXPECTED]: 'a map with claim and arrays, like {claim: scp, arrays: space}',
            },
          ],
          [EXPECTED]: 'a claim name like sub, a dotted path like realm_access.roles, or {claim: scp, arrays: space}',
        },
        default: {},
        [EXPECTED]: 'a map of upstream header name to claim name',
      },
      strip: {
        type: 'array',
        items: { type: 'string', minLength: 1, [EXPECTED]: 'a header name or a pattern with *' },
        default: [],
        [EXPECTED]: 'a list of header names or patterns with *',
      },
      forwardToken: boolean(true),
      arrays: oneOf(ARRAY_FORMS, 'join'),
      maxValueBytes: size('4KiB'),
      claimsHeader: HEADER_NAME,
      // RFC 9449 / RFC 8705: what a sender-constrained token was proven with (request/binding.ts).
      bindingHeader: HEADER_NAME,
      // nginx's default (underscores_in_headers off): behind CGI/WSGI/PHP a `_` name is a `-` name.
      underscoreHeaders: oneOf(['drop', 'reject', 'allow'], 'drop'),
    }),
    requests: settings('a map with methodOverride and timeout', {
      methodOverride: oneOf(['strip', 'honor'], 'strip'),
      timeout: duration('60s'),
    }),
    routes: { type: 'array', minItems: 1, items: route, [EXPECTED]: 'at least one route' },
    log: settings('a map with level and access', {
      level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
      access: boolean(true),
    }),
    // RFC 6750 §5.3: bearer tokens only over TLS. Absent: the listener is plain HTTP (TLS
    // terminated in front of the pod). The pair is reloaded when its files change (proxy/tls.ts).
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['certFile', 'keyFile'],
      properties: {
        certFile: { type: 'string', minLength: 1, [EXPECTED]: 'a PEM certificate file (the chain, leaf first), like /etc/jwt-sidecar-tls/tls.crt' },
        keyFile: { type: 'string', minLength: 1, [EXPECTED]: 'a PEM private key file, like /etc/jwt-sidecar-tls/tls.key' },
        clientCaFile: { type: 'string', minLength: 1, [EXPECTED]: 'a PEM file of CA certificates that client certificates must chain to' },
        minVersion: oneOf(['TLSv1.2', 'TLSv1.3'], 'TLSv1.2'),
        // ALPN h2 next to http/1.1 (RFC 9113 §3.2); the upstream stays HTTP/1.1 (proxy/listener.ts).
        http2: boolean(false),
      },
      [EXPECTED]: 'a map with certFile, keyFile, clientCaFile, minVersion and http2',
    },
    // RFC 8705 certificate-bound tokens when TLS ends at a trusted ingress in front of the pod:
    // the client certificate arrives in a header, trusted only from the listed peer addresses
    // (request/client-cert.ts).
    clientCertificateHeader: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'trustedPeers'],
      properties: {
        name: HEADER_NAME,
        format: oneOf(['xfcc', 'pem'], 'xfcc'),
        trustedPeers: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', minLength: 1, [EXPECTED]: 'an IP address or CIDR range, like 10.0.0.0/8 or 127.0.0.1' },
          [EXPECTED]: 'a non-empty list of IP addresses or CIDR ranges of the ingress',
        },
      },
      [EXPECTED]: 'a map with name, format and trustedPeers, like {name: x-forwarded-client-cert, format: xfcc, trustedPeers: [10.0.0.0/8]}',
    },
  },
  [EXPECTED]: 'a map of settings (listen, upstream, admin, shutdown, issuers, tokens, identity, requests, routes, log, tls, clientCertificateHeader)',
} as const satisfies SchemaNode & { readonly $schema: string }

/** The schema as plain data, for ajv (scripts/gen-config-validator.ts), the README and Helm checks. */
export const configSchema: SchemaNode & { readonly $schema: string } = schema

/**
 * The file's shape after validation with defaults: every key present unless it is optional
 * without a default, units still strings. Computed from the schema (from-schema.ts), so it
 * cannot disagree with what the validator lets through.
 */
export type RawConfig = Understood<FromSchema<typeof schema>>
