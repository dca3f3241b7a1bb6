/**
 * JSON Schema validation of the loaded data (schema.ts), with ajv's errors rewritten in the
 * operator's terms: the path into the file, and the schema's `x-expected` phrase instead of
 * ajv's English about the schema ("must NOT have fewer than 1 items").
 */
import type { ErrorObject, ValidateFunction } from 'ajv'
import { isRecord } from './checks/guards.ts'
import type { PathSegment } from './interpolate.ts'
import type { FoundIssue } from './issues.ts'
import { EXPECTED, UNIT_FORMATS, type SchemaNode } from './schema.ts'
import { unitReason } from './units.ts'
import { validate as generatedValidate } from './validate.generated.ts'

/**
 * The schema's validator, compiled from schema.ts at development time into standalone code
 * (scripts/gen-config-validator.ts, checked to be current by test/unit/config-validator.test.ts),
 * as fastify does for its own options: compiling the schema at every start cost about 100 ms of
 * the cold start, and ajv itself is not loaded at run time.
 */
const validate = generatedValidate as unknown as ValidateFunction

/** JSON pointer → path segments, typed by walking the data (array indexes become numbers). */
function pointerToPath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return []
  const path: PathSegment[] = []
  let node = data
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    if (Array.isArray(node)) {
      path.push(Number(key))
      node = node[Number(key)] as unknown
    } else {
      path.push(key)
      node = isRecord(node) ? node[key] : undefined
    }
  }
  return path
}

function expected(node: SchemaNode | undefined): string {
  return node?.[EXPECTED] ?? 'a valid value'
}

function toIssue(e: ErrorObject, data: unknown): FoundIssue {
  const parent = e.parentSchema as SchemaNode | undefined
  const at = pointerToPath(e.instancePath, data)
  const params = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'required': {
      const key = String(params['missingProperty'])
      return { path: [...at, key], message: `required key is missing (expected ${expected(parent?.properties?.[key])})` }
    }
    case 'additionalProperties': {
      const known = Object.keys(parent?.properties ?? {}).join(', ')
      return { path: [...at, String(params['additionalProperty'])], message: `unknown key (expected one of: ${known})` }
    }
    case 'uniqueItems': {
      const [first, again] = [Number(params['j']), Number(params['i'])].sort((a, b) => a - b)
      return { path: [...at, again ?? 0], message: `duplicate of item [${first}] (expected ${expected(parent)})` }
    }
    default: {
      // For unit strings, ask the parser why: "a bare number has no unit" beats a bare "expected".
      const format = parent?.format
      const value: unknown = e.data
      const reason =
        format !== undefined && (typeof value === 'string' || typeof value === 'number')
          ? unitReason(UNIT_FORMATS[format], String(value))
          : undefined
      return { path: at, message: `expected ${expected(parent)}${reason === undefined ? '' : ` (${reason})`}` }
    }
  }
}

/**
 * Validates `data` against the config schema, filling in every default in place (ajv's
 * `useDefaults`), and returns its problems in ajv's order.
 *
 * @example
 * const issues = schemaIssues(doc.toJS()) // [] for a valid file, which now has every default
 */
export function schemaIssues(data: unknown): FoundIssue[] {
  if (validate(data)) return []
  const errors = validate.errors ?? []
  // A failed oneOf/anyOf also reports why each branch failed; only the combinator's own
  // error (with its x-expected phrase) says something useful to the operator.
  const combinators = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf')
  const relevant = errors.filter((e) => !combinators.some((c) => e.schemaPath.startsWith(`${c.schemaPath}/`)))
  return relevant.map((e) => toIssue(e, data))
}
