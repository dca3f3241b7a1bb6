/**
 * The generated reference (`npm run docs`, scripts/gen-docs.ts) is committed, so it can be read
 * on GitHub; this is what keeps it true. Each file is regenerated in memory and compared with
 * the committed one: a schema description, a reason or a metric changed without `npm run docs`
 * fails here, in CI. The other tests check that the generator itself misses nothing (a row per
 * schema key, reason and metric), and that the hand-written pages name only metrics that exist.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ROOT, generatedDocs } from '../../scripts/gen-docs.ts'
import { RESTART_ONLY } from '../../src/config/restart-only.ts'
import { configSchema } from '../../src/config/schema.ts'
import type { SchemaNode } from '../../src/config/schema.ts'
import { createMetrics } from '../../src/observe/metrics.ts'
import { REASONS } from '../../src/verify/reasons.ts'
import type { Reason } from '../../src/verify/reasons.ts'

const docs = await generatedDocs()

function generated(path: string): string {
  const text = docs.get(path)
  assert.ok(text !== undefined, `scripts/gen-docs.ts no longer generates ${path}`)
  return text
}

/** The first cell of every table row that starts with a code span: `` | `x` | … `` → [x, the row's cells]. */
function rowsByKey(markdown: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of markdown.split('\n')) {
    const m = /^\| `([^`]+)` \|/.exec(line)
    if (m === null) continue
    assert.ok(!out.has(m[1]!), `two rows for ${m[1]!}`)
    out.set(m[1]!, line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()))
  }
  return out
}

/** Every key path of the schema: `a.b` below properties, `a[].b` below array items, `a.<name>.b` below a map's object values. */
function schemaPaths(node: SchemaNode, prefix = ''): string[] {
  const out: string[] = []
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? key : `${prefix}.${key}`
    out.push(path, ...schemaPaths(child, path))
  }
  if (node.items !== undefined) out.push(...schemaPaths(node.items, `${prefix}[]`))
  if (typeof node.additionalProperties === 'object') {
    for (const entry of [node.additionalProperties, ...(node.additionalProperties.anyOf ?? [])]) out.push(...schemaPaths(entry, `${prefix}.<name>`))
  }
  return out
}

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? markdownFiles(p) : p.endsWith('.md') ? [p] : []
  })
}

describe('the generated reference', () => {
  for (const [path, text] of docs) {
    test(`${path} is what npm run docs writes`, () => {
      const file = join(ROOT, path)
      assert.ok(existsSync(file), `${path} is missing: run npm run docs`)
      // Not deepEqual on the text: a diff of a long page is unreadable; the first differing line says enough.
      const committed = readFileSync(file, 'utf8')
      if (committed === text) return
      const a = committed.split('\n')
      const b = text.split('\n')
      const i = a.findIndex((line, n) => line !== b[n])
      const at = i < 0 ? a.length : i
      assert.fail(`${path} is stale: run npm run docs (line ${at + 1} is\n  ${a[at] ?? '(end of file)'}\nand should be\n  ${b[at] ?? '(end of file)'})`)
    })
  }

  const [keyPart, restartPart] = generated('docs/reference/configuration.md').split('\n## Settings that need a restart\n')

  test('the configuration reference has one row per key of src/config/schema.ts, and no other', () => {
    const rows = rowsByKey(keyPart!)
    const paths = schemaPaths(configSchema)
    assert.ok(paths.includes('issuers[].refresh.unknownKidCooldown') && paths.includes('tokens.from[].prefix') && paths.includes('identity.headers.<name>.arrays'), 'schema walk is broken')
    assert.deepEqual([...rows.keys()].sort(), paths.sort())
    // Spot checks of the columns: type, default, required, a computed default, a relinked link.
    assert.deepEqual(rows.get('issuers[].refresh.maxStale')?.slice(1, 3), ['duration', '`24h`'])
    assert.deepEqual(rows.get('issuers[].audiences')?.slice(1, 3), ['list of strings', '**required**'])
    assert.deepEqual(rows.get('upstream.xForwarded')?.slice(1, 3), ['`append`, `replace`', '`append`'])
    assert.equal(rows.get('tokens.from')?.[2], '`[{header: Authorization, prefix: "Bearer "}]`')
    assert.match(rows.get('routes[].caseSensitive')?.[2] ?? '', /`false` for `required`/)
    assert.match(rows.get('issuers[].keys')?.[3] ?? '', /\]\(\.\.\/keys\.md#static-keys\)/)
  })

  test('its restart-only list is src/config/restart-only.ts, whose entries are config keys', () => {
    assert.ok(restartPart !== undefined, 'the reference lost its "Settings that need a restart" section')
    const rows = rowsByKey(restartPart)
    assert.deepEqual([...rows.keys()], RESTART_ONLY.map((r) => r.path))
    const paths = schemaPaths(configSchema)
    for (const { path } of RESTART_ONLY) assert.ok(paths.includes(path), `${path} is no config key`)
  })

  test('the reasons reference has one row per reason, with its status, error, outcome and log level', () => {
    const rows = rowsByKey(generated('docs/reference/reasons.md'))
    const reasons = Object.keys(REASONS) as Reason[]
    assert.deepEqual([...rows.keys()], reasons)
    for (const reason of reasons) {
      const { status, error, outcome, log } = REASONS[reason]
      // The body's `error` falls back to invalid_token when the challenge has none (request/denials.ts).
      assert.deepEqual(rows.get(reason)?.slice(1, 3), [String(status), `\`${error ?? 'invalid_token'}\``], reason)
      assert.deepEqual(rows.get(reason)?.slice(4, 6), [`\`${outcome}\``, `\`${log}\``], reason)
    }
    assert.equal(rows.get('missing_token')?.[3], '`Bearer`, no `error`', 'RFC 6750 §3.1: no error attribute without a token')
    assert.equal(rows.get('dpop_replay')?.[3], '`DPoP`')
    assert.equal(rows.get('no_route')?.[3], '—')
  })

  test('the metrics reference has one row per metric of the registry, with its type and labels', async () => {
    const rows = rowsByKey(generated('docs/reference/metrics.md'))
    const own = await createMetrics().registry.getMetricsAsJSON()
    assert.deepEqual([...rows.keys()].sort(), own.map((m) => m.name).sort())
    for (const m of own) assert.equal(rows.get(m.name)?.[1], String(m.type), m.name)
    assert.equal(rows.get('jwt_sidecar_requests_total')?.[2], '`route`, `outcome`, `reason`')
  })

  test('README.md and the hand-written docs name only metrics that exist', async () => {
    const metrics = createMetrics()
    const known = new Set([...(await metrics.registry.getMetricsAsJSON()), ...(await metrics.processRegistry.getMetricsAsJSON())].map((m) => m.name))
    const pages = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))]
    const stale = pages.flatMap((page) =>
      [...readFileSync(page, 'utf8').matchAll(/`(jwt_sidecar_[a-z0-9_]+)`/g)].map((m) => m[1]!).filter((name) => !known.has(name)).map((name) => `${relative(ROOT, page)}: ${name}`),
    )
    assert.ok(pages.length > 3, 'no pages found')
    assert.deepEqual(stale, [], `these pages name metrics that do not exist: ${stale.join(', ')}`)
  })
})
