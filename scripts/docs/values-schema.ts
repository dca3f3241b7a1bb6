/**
 * The `config` part of the chart's values.schema.json, derived from the sidecar's config
 * schema (src/config/schema.ts), so `helm install` refuses a bad config before anything
 * renders. Written by `npm run docs`; test/integration/helm.test.ts checks it is current.
 */
import { EXPECTED, withoutDocs } from '../../src/config/schema.ts'
import type { SchemaNode } from '../../src/config/schema.ts'

/** The unit formats of schema.ts as patterns (helm's validator knows no custom formats); load.ts stays the exact check. */
const FORMAT_PATTERNS: Readonly<Record<string, string>> = {
  duration: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$',
  size: '^[0-9]+(\\.[0-9]+)?(B|KB|MB|GB|KiB|MiB|GiB)$',
  listen: '^(\\[[0-9A-Fa-f:.]+\\]|[^:\\[\\]]+):[0-9]{1,5}$',
}

type JsonSchema = { [key: string]: unknown }

/** `x-expected` as the description, formats as patterns; the reference's prose stays out (withoutDocs). */
function convert(node: SchemaNode): JsonSchema {
  const out: JsonSchema = {}
  for (const [key, value] of Object.entries(node)) {
    if (key === EXPECTED) out.description = `Expected: ${String(value)}.`
    else if (key === 'format') out.pattern = FORMAT_PATTERNS[String(value)]
    else if (key === 'properties') out.properties = Object.fromEntries(Object.entries(value as Record<string, SchemaNode>).map(([k, v]) => [k, convert(v)]))
    else if ((key === 'items' || key === 'additionalProperties') && typeof value === 'object' && value !== null) out[key] = convert(value as SchemaNode)
    else if (key !== '$schema') out[key] = structuredClone(value)
  }
  return out
}

/**
 * The `config` property of values.schema.json: src/config/schema.ts's configSchema, with
 * - `x-expected` as `description` and the unit formats as patterns;
 * - `listen` and `admin.listen` left out (the chart sets them from sidecar.ports, so the schema
 *   refuses them in `config`), and `upstream` / `upstream.url` optional (the chart defaults the
 *   URL to http://127.0.0.1:<app.port>);
 * - `tls.certFile` / `tls.keyFile` optional (with tlsSecret.secretName the chart sets them to
 *   the mounted Secret's files; without it, the chart's render fails when either is missing).
 * Everything else (required keys, enums, defaults, additionalProperties: false) is the same.
 */
export function configValuesSchema(schema: SchemaNode): JsonSchema {
  const out = convert(withoutDocs(schema))
  const props = out.properties as Record<string, JsonSchema>
  delete props.listen
  const admin = props.admin!
  delete (admin.properties as Record<string, JsonSchema>).listen
  admin.description = 'Expected: a map with maxEventLoopDelay (admin.listen is set by the chart from sidecar.ports.admin).'
  const upstream = props.upstream!
  delete upstream.required // only `url` was required
  out.required = (out.required as string[]).filter((k) => k !== 'upstream')
  const tls = props.tls!
  delete tls.required // certFile and keyFile: from tlsSecret, or checked by the chart (_tls.tpl)
  tls.description = 'Expected: a map with certFile, keyFile, clientCaFile and minVersion (certFile and keyFile are set by the chart from tlsSecret when it is set).'
  out.description =
    "The sidecar's config file (src/config/schema.ts, docs/reference/configuration.md), rendered to /etc/jwt-sidecar/sidecar.yaml. listen and admin.listen come from sidecar.ports; upstream.url defaults to http://127.0.0.1:<app.port>."
  return out
}

/**
 * values.schema.json's text with its `config` property replaced by {@link configValuesSchema};
 * the rest of the file (the chart's own values) is kept as it is.
 */
export function valuesSchemaText(current: string, schema: SchemaNode): string {
  const values = JSON.parse(current) as { properties: Record<string, unknown> }
  values.properties.config = configValuesSchema(schema)
  return `${JSON.stringify(values, null, 2)}\n`
}
