/**
 * The vocabulary schema.ts is written in: the node type, the unit formats, ajv's options, and
 * small builders (a duration with its default, a one-of, a map of optional settings) that
 * give every node its `x-expected` phrase, and {@link doc}, which gives a key its meaning.
 * Split from schema.ts so that file (and src/config/schema/*.ts) is the schema.
 */
import { parseDuration, parseListen, parseSize, unitReason } from './units.ts'

/** The annotation keyword holding the human phrase of a node; scripts/gen-config-validator.ts registers it with ajv. */
export const EXPECTED = 'x-expected'

/**
 * The annotation keyword holding how the reference describes the default of a key the schema
 * leaves without one because convert.ts computes it (`routes[].caseSensitive` depends on
 * `auth`) or because absent means off (`tls`). Markdown, like `description`.
 */
export const DEFAULT_DOC = 'x-default-doc'

/**
 * The subset of JSON Schema this file uses. A type alias (not an interface) so it stays
 * assignable to ajv's index-signatured `SchemaObject`; `x-expected` is mandatory on every node,
 * and every key of an object (`properties`) carries a `description`: the meaning
 * docs/reference/configuration.md shows for it (scripts/gen-docs.ts), so a key cannot be
 * added without being documented.
 */
export type SchemaNode = {
  readonly [EXPECTED]: string
  /** Markdown; links are repository-relative (`docs/keys.md#static-keys`). One paragraph, except on a top-level key, whose later paragraphs introduce its section. */
  readonly description?: string
  readonly [DEFAULT_DOC]?: string
  /** Absent only on an `anyOf` node, whose branches carry their own types. */
  readonly type?: 'object' | 'array' | 'string' | 'boolean' | 'integer' | readonly ('string' | 'number' | 'boolean')[]
  readonly anyOf?: readonly SchemaNode[]
  readonly default?: unknown
  readonly properties?: Readonly<Record<string, Described>>
  readonly required?: readonly string[]
  readonly additionalProperties?: false | SchemaNode
  readonly items?: SchemaNode
  readonly minItems?: number
  readonly uniqueItems?: boolean
  readonly enum?: readonly string[]
  readonly pattern?: string
  readonly minLength?: number
  readonly minimum?: number
  readonly maximum?: number
  readonly format?: UnitFormat
}

/** A node with its meaning: what every key of an object is. */
export type Described = SchemaNode & { readonly description: string }

/**
 * A node with its meaning (and, for a default the schema cannot state, how the reference
 * describes it). Keeps the node's literal type, so RawConfig is still computed from it.
 *
 * @example
 * timeout: doc('One GET, from connecting to the last byte, redirects included. Must be > 0.', duration('5s'))
 */
export function doc<const N extends SchemaNode>(description: string, node: N): N & { readonly description: string }
export function doc<const N extends SchemaNode>(description: string, node: N, defaultDoc: string): N & { readonly description: string; readonly [DEFAULT_DOC]: string }
export function doc(description: string, node: SchemaNode, defaultDoc?: string): SchemaNode {
  return defaultDoc === undefined ? { ...node, description } : { ...node, description, [DEFAULT_DOC]: defaultDoc }
}

/**
 * The keywords that only document (docs/reference/configuration.md): ajv needs none of them,
 * so {@link withoutDocs} leaves them out of the compiled validator (and the chart's schema).
 */
const DOC_KEYWORDS: ReadonlySet<string> = new Set(['description', DEFAULT_DOC])

/**
 * A copy of `node` without the documentation keywords, at every depth: what
 * scripts/gen-config-validator.ts compiles, so validate.generated.ts does not carry the
 * reference's prose (ajv's verbose errors embed every schema object they may point at).
 */
export function withoutDocs<N extends SchemaNode>(node: N): N {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) {
    if (DOC_KEYWORDS.has(key)) continue
    if (key === 'properties') out[key] = Object.fromEntries(Object.entries(value as Record<string, SchemaNode>).map(([k, v]) => [k, withoutDocs(v)]))
    else if ((key === 'items' || key === 'additionalProperties') && typeof value === 'object' && value !== null) out[key] = withoutDocs(value as SchemaNode)
    else if (key === 'anyOf') out[key] = (value as readonly SchemaNode[]).map((v) => withoutDocs(v))
    else out[key] = value
  }
  return out as N
}

/**
 * Custom ajv formats for the unit-bearing strings, each backed by its parser, so the schema
 * rejects `1 fortnight` and schema-issues.ts can ask the same parser for the precise reason.
 */
export const UNIT_FORMATS = {
  duration: parseDuration,
  size: parseSize,
  listen: parseListen,
} as const satisfies Record<string, (text: string) => unknown>
export type UnitFormat = keyof typeof UNIT_FORMATS

/** UNIT_FORMATS as ajv format definitions (the generated validator calls `formats.<name>.validate`). */
export const UNIT_FORMAT_CHECKS: Readonly<Record<UnitFormat, { readonly type: 'string'; readonly validate: (text: string) => boolean }>> = {
  duration: { type: 'string', validate: (text) => unitReason(parseDuration, text) === undefined },
  size: { type: 'string', validate: (text) => unitReason(parseSize, text) === undefined },
  listen: { type: 'string', validate: (text) => unitReason(parseListen, text) === undefined },
}

/**
 * The ajv options the config validator is generated with (scripts/gen-config-validator.ts).
 * Strict mode stays on (unknown keywords or formats in this file are bugs), with our
 * annotation registered. verbose: errors carry parentSchema, where x-expected lives.
 * allowUnionTypes: a required claim value may be a string, number or boolean.
 */
export const AJV_OPTIONS = { allErrors: true, useDefaults: true, verbose: true, strict: true, allowUnionTypes: true } as const

export const DURATION = 'a duration like 30s, 10m or 24h'
const SIZE = 'a size like 512KiB or 1MiB'

// Every node below is `as const satisfies SchemaNode`: checked against SchemaNode, and typed
// literally (`type: 'string'`, `enum: ['append', 'replace']`, which keys have a default), so
// that RawConfig at the end of this file can be computed from it (from-schema.ts).
export const duration = (def: string) => ({ type: 'string', format: 'duration', default: def, [EXPECTED]: DURATION }) as const satisfies SchemaNode
export const size = (def: string) => ({ type: 'string', format: 'size', default: def, [EXPECTED]: SIZE }) as const satisfies SchemaNode
export const listen = (def: string) =>
  ({
    type: 'string',
    format: 'listen',
    default: def,
    [EXPECTED]: 'a listen address like 0.0.0.0:8080 or [::1]:8080',
  }) as const satisfies SchemaNode
export const boolean = (def: boolean) => ({ type: 'boolean', default: def, [EXPECTED]: 'true or false' }) as const satisfies SchemaNode
/** A string from `values`; with `def`, a key that may be left out (and `def` must be one of them). */
export function oneOf<const V extends readonly string[]>(values: V): { readonly type: 'string'; readonly enum: V; readonly [EXPECTED]: string }
export function oneOf<const V extends readonly string[]>(
  values: V,
  def: V[number],
): { readonly type: 'string'; readonly enum: V; readonly default: V[number]; readonly [EXPECTED]: string }
export function oneOf(values: readonly string[], def?: string): SchemaNode {
  return {
    type: 'string',
    enum: values,
    ...(def === undefined ? {} : { default: def }),
    [EXPECTED]: `one of ${values.join(', ')}`,
  }
}
export const CLAIM_PATH = { type: 'string', minLength: 1, [EXPECTED]: 'a claim name like sub, or a dotted path like realm_access.roles' } as const satisfies SchemaNode
/** identity.arrays and a header's own `arrays`: comma-joined, JSON, or space-joined (RFC 6749 §3.3 scope form). */
export const ARRAY_FORMS = ['join', 'json', 'space'] as const
/** An object of optional settings: absent means all defaults. */
export const settings = <const P extends Readonly<Record<string, Described>>>(phrase: string, properties: P) =>
  ({
    type: 'object',
    additionalProperties: false,
    default: {},
    properties,
    [EXPECTED]: phrase,
  }) as const satisfies SchemaNode

/** Issuer and route names end up in log fields and metric labels, so keep them plain. */
export const NAME = {
  type: 'string',
  pattern: '^[a-z0-9][a-z0-9_-]*$',
  [EXPECTED]: 'a name of lower-case letters, digits, _ and - (like corp)',
} as const satisfies SchemaNode
export const URL_STRING = { type: 'string', minLength: 1, [EXPECTED]: 'a URL' } as const satisfies SchemaNode
export const NON_EMPTY_STRING = { type: 'string', minLength: 1, [EXPECTED]: 'a non-empty string' } as const satisfies SchemaNode
export const HEADER_NAME = { type: 'string', minLength: 1, [EXPECTED]: 'an HTTP header name' } as const satisfies SchemaNode
