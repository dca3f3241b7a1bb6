/**
 * The schema of one `routes[]` rule: which requests it matches and what they need. Part of
 * src/config/schema.ts; the descriptions are the reference's "Meaning" column
 * (docs/reference/configuration.md, scripts/gen-docs.ts).
 */
import { EXPECTED, oneOf, settings, doc, NAME } from '../schema-nodes.ts'
import type { SchemaNode } from '../schema-nodes.ts'

const claimValue = { type: ['string', 'number', 'boolean'], [EXPECTED]: 'a string, number or boolean' } as const satisfies SchemaNode

/** One route rule; the first that matches a request decides it (policy/routes.ts). */
export const route = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'path'],
  properties: {
    name: doc('The label in logs and metrics, with the same characters as `issuers[].name`. Must be unique.', NAME),
    path: doc(
      '`/exact`, `/prefix/**`, or a pattern with `*` for part of one segment. The path must start with `/`. It must not contain `?`, `#`, `.`/`..` segments, or an empty segment other than a trailing `/`. `**` is allowed only as the whole last segment.',
      { type: 'string', minLength: 1, [EXPECTED]: 'a path like /healthz or /api/**' },
    ),
    methods: doc(
      'HTTP methods; empty means any. Each must be one of `GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`, `OPTIONS`, `TRACE`, `PATCH` (any case in the file), with no duplicates.',
      {
        type: 'array',
        items: { type: 'string', minLength: 1, [EXPECTED]: 'an HTTP method like GET' },
        default: [],
        [EXPECTED]: 'a list of HTTP methods like [GET, POST] (empty means any)',
      },
    ),
    auth: doc(
      '`required` means a valid token is needed (`401` otherwise). `optional` means a token is verified if present (an invalid one is still rejected), and a request without one is forwarded with no identity. `none` means no token is read. `deny` answers `403 route_denied` for everything the route matches, without reading a token or touching the upstream: use it to close a path for the methods no earlier rule takes.',
      oneOf(['required', 'optional', 'none', 'deny'], 'required'),
    ),
    // No default here: it depends on auth (convert.ts), see RouteConfig.caseSensitive.
    caseSensitive: doc(
      "Compare the path's letter case exactly. The defaults keep the sidecar at least as strict as the app whether the app routes case-insensitively or not; see [Route patterns](docs/how-it-works.md#route-patterns).",
      { type: 'boolean', [EXPECTED]: 'true or false' },
      '`false` for `required` and `deny`, `true` for `none` and `optional`',
    ),
    issuers: doc(
      'Issuer names this route accepts; empty means any configured issuer. A token from another issuer gets `403 issuer_not_allowed`.',
      { type: 'array', items: NAME, default: [], [EXPECTED]: 'a list of issuer names (empty means any)' },
    ),
    require: doc(
      'Least privilege, checked after the token is verified; a miss is `403`. A route with `issuers` or `require` must be `auth: required`: with `optional` or `none`, a request without a token would bypass them, and with `deny` they would never be checked, so the config is refused.',
      settings('a map with scopes and claims', {
        scopes: doc(
          'Scopes that must **all** be granted, read from `scope` (space-delimited) or `scp` (a string or an array). A miss is `403 insufficient_scope`, and the challenge lists the route\'s scopes: `scope="a b"`.',
          {
            type: 'array',
            items: { type: 'string', pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$', [EXPECTED]: 'a scope token (RFC 6749 §3.3)' },
            default: [],
            [EXPECTED]: 'a list of scopes that must all be granted',
          },
        ),
        claims: doc(
          '`claim path: [allowed values]`. The path may be dotted (`realm_access.roles`) and follows own members only. The claim, or any element of an array claim, must equal one allowed value of the same type (`true` is not `"true"`). A miss is `403 claim_mismatch`.',
          {
            type: 'object',
            additionalProperties: { type: 'array', minItems: 1, items: claimValue, [EXPECTED]: 'a non-empty list of allowed values' },
            default: {},
            [EXPECTED]: 'a map of claim path (like realm_access.roles) to allowed values',
          },
        ),
      }),
    ),
  },
  [EXPECTED]: 'a route (a map with name, path, methods, auth, caseSensitive, issuers and require)',
} as const satisfies SchemaNode
