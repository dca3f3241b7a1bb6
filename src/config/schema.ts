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
 * 1 items") speaks about the schema, not about the file the operator is editing. Each key
 * carries a `description`, its meaning in docs/reference/configuration.md (`npm run docs`).
 *
 * The sections live in src/config/schema/ (issuers.ts, tokens.ts, identity.ts, routes.ts,
 * server.ts, tls.ts); this file puts them together under the top-level keys.
 */
import type { FromSchema, Understood } from './from-schema.ts'
import { EXPECTED, listen, doc } from './schema-nodes.ts'
import type { SchemaNode } from './schema-nodes.ts'
import { issuer } from './schema/issuers.ts'
import { tokens } from './schema/tokens.ts'
import { identity } from './schema/identity.ts'
import { route } from './schema/routes.ts'
import { upstream, admin, shutdown, requests, log } from './schema/server.ts'
import { tls, clientCertificateHeader } from './schema/tls.ts'

// The vocabulary, for the generators, the checks and the tests that read the schema.
export { AJV_OPTIONS, DEFAULT_DOC, EXPECTED, UNIT_FORMATS, UNIT_FORMAT_CHECKS, withoutDocs } from './schema-nodes.ts'
export type { SchemaNode } from './schema-nodes.ts'

/**
 * The schema of the whole file. Plain data, compiled with `allErrors` and `useDefaults` into
 * validate.generated.ts. A top-level key's description is one paragraph for the reference's
 * "Top level" table, then, optionally, paragraphs that introduce its own section.
 */
const schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  required: ['upstream', 'issuers', 'routes'],
  properties: {
    listen: doc('The address for application traffic.', listen('0.0.0.0:8080')),
    upstream: doc('The app behind the sidecar.', upstream),
    admin: doc('The admin port.', admin),
    shutdown: doc('Graceful shutdown on SIGTERM; see [Running it](docs/cli.md#running-it).', shutdown),
    issuers: doc(
      [
        'The trusted token issuers, at least one.',
        'An issuer needs at least one key source: `jwksUri`, `discovery: true`, or `keys` (static files). It may combine one remote source with static files.',
      ].join('\n\n'),
      { type: 'array', minItems: 1, items: issuer, [EXPECTED]: 'at least one issuer' },
    ),
    tokens: doc('Where tokens are read from, and the limits applied before verification.', tokens),
    identity: doc('What the upstream learns about the caller.', identity),
    requests: doc('How inbound requests are read: method overrides and the request timeout.', requests),
    routes: doc(
      [
        'The route rules, at least one. The first match wins; no match is `403 no_route`.',
        "A rule that an earlier rule always matches first is an error: either the earlier rule is `path: /**`, or it has the same path and its methods cover this rule's. A rule with `methods` and requirements whose other methods fall through to a rule that requires less is a **warning** (see [Route patterns](docs/how-it-works.md#route-patterns)).",
      ].join('\n\n'),
      { type: 'array', minItems: 1, items: route, [EXPECTED]: 'at least one route' },
    ),
    log: doc('Logging.', log),
    tls: doc(
      [
        'HTTPS on `listen`, with the certificate reloaded when its files change; see [TLS listener](docs/how-it-works.md#tls-listener).',
        'Any change to `tls` (its files, `minVersion`, `http2`, adding or removing it) needs a restart; changed contents of the named files are picked up live.',
      ].join('\n\n'),
      tls,
      'none (plain HTTP)',
    ),
    clientCertificateHeader: doc(
      [
        'Where the client certificate of a certificate-bound token comes from when TLS ends at an ingress in front of the pod ([Certificate-bound tokens](docs/how-it-works.md#certificate-bound-tokens-mtls-rfc-8705)).',
        'Cannot be combined with `tls.clientCaFile`.',
      ].join('\n\n'),
      clientCertificateHeader,
      'none',
    ),
  },
  [EXPECTED]: 'a map of settings (listen, upstream, admin, shutdown, issuers, tokens, identity, requests, routes, log, tls, clientCertificateHeader)',
} as const satisfies SchemaNode & { readonly $schema: string }

/** The schema as plain data, for ajv (scripts/gen-config-validator.ts), the reference (scripts/gen-docs.ts) and the chart's values.schema.json. */
export const configSchema: SchemaNode & { readonly $schema: string } = schema

/**
 * The file's shape after validation with defaults: every key present unless it is optional
 * without a default, units still strings. Computed from the schema (from-schema.ts), so it
 * cannot disagree with what the validator lets through.
 */
export type RawConfig = Understood<FromSchema<typeof schema>>
