/**
 * fastify's schema compilers, replaced by ones that refuse. No route of the proxy or the admin
 * server declares a schema, and fastify's defaults load ajv, its formats and
 * fast-json-stringify (≈ 110 modules, ≈ 30 ms and ≈ 3 MiB) into every start for nothing. A route
 * that declares a schema would fail at registration, at start-up, rather than go unvalidated.
 *
 * @example
 * const app = fastify({ schemaController: NO_ROUTE_SCHEMAS })
 */
export const NO_ROUTE_SCHEMAS = {
  compilersFactory: {
    buildValidator: () => refuse,
    buildSerializer: () => refuse,
  },
}

function refuse(): never {
  throw new Error('jwt-sidecar registers no route schemas: fastify\'s schema compilers are not loaded (src/fastify-schemas.ts)')
}
