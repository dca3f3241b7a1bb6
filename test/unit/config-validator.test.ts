// The committed standalone config validator is exactly what the generator writes from schema.ts
// today: a schema change without `npm run gen:config-validator` fails here, not in production.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { GENERATED_PATH, generateValidatorSource } from '../../scripts/gen-config-validator.ts'
import type { ValidateFunction } from 'ajv'
import { validate as generated } from '../../src/config/validate.generated.ts'

const validate = generated as unknown as ValidateFunction

test('src/config/validate.generated.ts is current with src/config/schema.ts (npm run gen:config-validator)', () => {
  assert.equal(readFileSync(GENERATED_PATH, 'utf8'), generateValidatorSource())
})

test('the generated validator applies defaults, formats and the x-expected annotation like the compiled schema', () => {
  const config: Record<string, unknown> = { upstream: { url: 'http://127.0.0.1:8080' }, issuers: [{ name: 'a', issuer: 'https://a.example', jwksUri: 'https://a.example/jwks', audiences: ['api'] }], routes: [{ name: 'all', path: '/**', auth: 'required' }] }
  assert.equal(validate(config), true, JSON.stringify(validate.errors))
  assert.equal(typeof config.listen, 'string', 'defaults filled in')
  const bad = { ...config, listen: 'nowhere:99999' }
  assert.equal(validate(bad), false)
  const err = validate.errors!.find((e) => e.keyword === 'format')
  assert.ok(err !== undefined, JSON.stringify(validate.errors))
  assert.equal(err.instancePath, '/listen')
  assert.equal(typeof (err.parentSchema as Record<string, unknown>)['x-expected'], 'string')
})
