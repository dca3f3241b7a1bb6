/**
 * `npm run docs`: writes the generated reference from the source of truth, so it is never
 * kept by hand (issue #14 §2):
 *
 *   docs/reference/configuration.md  every config key: src/config/schema.ts (descriptions included)
 *   docs/reference/reasons.md        every reason: src/verify/reasons.ts and src/request/denials.ts
 *   docs/reference/metrics.md        every metric: the registry src/observe/metrics.ts builds
 *   helm/jwt-sidecar/values.schema.json's `config`: src/config/schema.ts again
 *
 * test/unit/docs-generated.test.ts regenerates them in memory and fails when a committed file
 * differs, so CI catches a change to the source without `npm run docs`.
 *
 *   node --import tsx scripts/gen-docs.ts        # or: npm run docs
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { configSchema } from '../src/config/schema.ts'
import { configurationReference } from './docs/config-reference.ts'
import { metricsReference } from './docs/metrics-reference.ts'
import { reasonsReference } from './docs/reasons-reference.ts'
import { valuesSchemaText } from './docs/values-schema.ts'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
const VALUES_SCHEMA = 'helm/jwt-sidecar/values.schema.json'

/** Every generated file, by its path from the repository root, with the content it must have. */
export async function generatedDocs(): Promise<ReadonlyMap<string, string>> {
  return new Map([
    ['docs/reference/configuration.md', configurationReference(configSchema)],
    ['docs/reference/reasons.md', reasonsReference()],
    ['docs/reference/metrics.md', await metricsReference()],
    // The chart's own values are hand-kept in the same file: only `config` is replaced.
    [VALUES_SCHEMA, valuesSchemaText(readFileSync(join(ROOT, VALUES_SCHEMA), 'utf8'), configSchema)],
  ])
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const [path, text] of await generatedDocs()) {
    const file = join(ROOT, path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, text)
    console.log(`wrote ${path}`)
  }
}
