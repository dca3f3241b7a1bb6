// The raw config type is computed from the schema (src/config/from-schema.ts). The type-level
// assertions here are checked by `npm run typecheck`; the runtime test checks that the rule the
// type follows (a key is present when required or defaulted) is what the validator really does.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Ajv, type ValidateFunction } from 'ajv'
import type { FromSchema, Understood } from '../../src/config/from-schema.ts'
import { AJV_OPTIONS, EXPECTED, UNIT_FORMAT_CHECKS, configSchema, type RawConfig, type SchemaNode } from '../../src/config/schema.ts'
import type { Algorithm, AuthMode } from '../../src/config/types.ts'
import { validate as generated } from '../../src/config/validate.generated.ts'

/** True only for identical types: readonly and optional modifiers included. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false

const sample = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { description: 'the name', type: 'string', 'x-expected': 'a name' },
    timeout: { description: 'the timeout', type: 'string', format: 'duration', default: '5s', 'x-expected': 'a duration' },
    typ: { description: 'the typ', type: 'string', 'x-expected': 'a typ' },
    mode: { description: 'the mode', type: 'string', enum: ['a', 'b'], default: 'a', 'x-expected': 'a or b' },
    value: { description: 'the value', type: ['string', 'number', 'boolean'], 'x-expected': 'a scalar' },
    max: { description: 'the max', type: 'integer', default: 1, 'x-expected': 'a number' },
    tags: { description: 'the tags', type: 'array', items: { type: 'string', 'x-expected': 'a tag' }, default: [], 'x-expected': 'tags' },
    headers: { description: 'the headers', type: 'object', additionalProperties: { type: 'string', 'x-expected': 'a value' }, default: {}, 'x-expected': 'headers' },
  },
  'x-expected': 'a sample',
} as const satisfies SchemaNode

type Sample = {
  readonly name: string
  readonly timeout: string
  readonly typ?: string
  readonly mode: 'a' | 'b'
  readonly value?: string | number | boolean
  readonly max: number
  readonly tags: readonly string[]
  readonly headers: Readonly<Record<string, string>>
}

test('FromSchema: required and defaulted keys are present, others optional; enums and type lists are unions', () => {
  const rules: Equal<FromSchema<typeof sample>, Sample> = true
  // RawConfig keeps the schema's closed sets instead of widening them to string.
  const algorithms: Equal<RawConfig['issuers'][number]['algorithms'], readonly Algorithm[]> = true
  const auth: Equal<RawConfig['routes'][number]['auth'], AuthMode> = true
  const caseSensitive: Equal<RawConfig['routes'][number]['caseSensitive'], boolean | undefined> = true
  // A construct FromSchema does not know poisons the whole type instead of passing as unknown.
  const unknownNode: Equal<Understood<FromSchema<{ readonly type: 'object' }>>, unknown> = false
  assert.deepEqual([rules, algorithms, auth, caseSensitive, unknownNode], [true, true, true, true, false])
})

test("FromSchema's present keys are the ones ajv with useDefaults fills in", () => {
  const ajv = new Ajv(AJV_OPTIONS)
  ajv.addKeyword({ keyword: EXPECTED, schemaType: 'string' })
  for (const [name, check] of Object.entries(UNIT_FORMAT_CHECKS)) ajv.addFormat(name, check)
  const data = { name: 'n' }
  assert.equal(ajv.validate(sample, data), true, ajv.errorsText())
  const present: readonly (keyof Sample)[] = ['name', 'timeout', 'mode', 'max', 'tags', 'headers']
  assert.deepEqual(Object.keys(data).sort(), [...present].sort())
})

/** Every path the type says is present (required, or with a default) in `node`'s data. */
function presentPaths(node: SchemaNode, data: unknown, at: string, out: string[]): string[] {
  if (node.type === 'object' && node.properties !== undefined && typeof data === 'object' && data !== null) {
    for (const [key, child] of Object.entries(node.properties)) {
      const value = (data as Record<string, unknown>)[key]
      if (node.required?.includes(key) === true || child.default !== undefined) out.push(value === undefined ? `${at}.${key} (missing)` : `${at}.${key}`)
      presentPaths(child, value, `${at}.${key}`, out)
    }
  } else if (node.type === 'array' && node.items !== undefined && Array.isArray(data)) {
    data.forEach((item, i) => presentPaths(node.items!, item, `${at}[${i}]`, out))
  }
  return out
}

test('the validator fills in every key RawConfig says is present, nested settings included', () => {
  const validate = generated as unknown as ValidateFunction
  const data: Record<string, unknown> = {
    upstream: { url: 'http://127.0.0.1:3000' },
    issuers: [{ name: 'a', issuer: 'https://a.example', jwksUri: 'https://a.example/jwks', audiences: ['api'], keys: [{ file: 'k.pem', alg: 'RS256' }] }],
    routes: [{ name: 'all', path: '/**' }],
  }
  assert.equal(validate(data), true, JSON.stringify(validate.errors))
  const paths = presentPaths(configSchema, data, '', [])
  assert.deepEqual(paths.filter((p) => p.endsWith('(missing)')), [])
  assert.ok(paths.includes('.issuers[0].refresh.maxStale') && paths.includes('.tokens.cache.maxEntries'), paths.join('\n'))
})
