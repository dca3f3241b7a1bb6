/**
 * docs/architecture.md stays true: every file it names exists, and every file in src/ is named
 * in it, so a file that moves, or a new one, has to find its place on the page.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
const page = readFileSync(join(root, 'docs/architecture.md'), 'utf8')

/** Repository paths the page names: `src/…`, `test/…` etc. with an extension, and top-level config files. */
function namedPaths(text: string): string[] {
  const nested = text.match(/\b(?:src|test|bench|scripts|docs|helm|config)\/[\w./-]*\.(?:ts|mjs|js|json|jsonc|yaml|md)\b/g) ?? []
  const top = text.match(/\b(?:eslint\.config\.js|knip\.jsonc|package\.json|tsconfig(?:\.test)?\.json)\b/g) ?? []
  return [...new Set([...nested, ...top])].sort()
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

test('every file docs/architecture.md names exists', () => {
  const named = namedPaths(page)
  assert.ok(named.length > 40, `only ${named.length} paths found: the pattern no longer reads the page`)
  const missing = named.filter((p) => !existsSync(join(root, p)))
  assert.deepEqual(missing, [], `docs/architecture.md names files that do not exist: ${missing.join(', ')}`)
})

test('every file in src/ is named in docs/architecture.md', () => {
  const named = new Set(namedPaths(page))
  const files = walk(join(root, 'src')).map((f) => relative(root, f).split('\\').join('/')).filter((f) => f.endsWith('.ts'))
  assert.ok(files.length > 40)
  const unnamed = files.filter((f) => !named.has(f))
  assert.deepEqual(unnamed, [], `src/ files missing from docs/architecture.md: ${unnamed.join(', ')}`)
})

test('no file in src/ is over 400 lines, as docs/architecture.md says (generated files excepted)', () => {
  assert.match(page, /no file in `src\/` over\s+400 lines/, 'the page no longer states the rule this test holds')
  const files = walk(join(root, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.generated.ts'))
  const long = files.map((f) => [relative(root, f), readFileSync(f, 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > 400)
  assert.deepEqual(long, [], `split these files by concept: ${long.map(([f, n]) => `${f} (${n})`).join(', ')}`)
})
