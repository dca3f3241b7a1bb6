/**
 * README.md is the front page (issue #14 §1): what the sidecar is, the trust assumption, the two
 * commands as its first lines, the ten-minute walk-through (run by
 * test/integration/walkthrough.test.ts) and links to the pages of docs/. It stays short, and every
 * page of docs/ is reachable from it. The pasted examples of the docs pages are checked by
 * test/unit/docs-examples.test.ts, every link by test/unit/docs-links.test.ts.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { fencedBlocks, markdownLinks, readDoc, section } from '../helpers/markdown.ts'

const README = readDoc('README.md')
/** Issue #14: "a front page of at most ~15 KB". */
const MAX_BYTES = 15_000

describe('README.md', () => {
  test('keeps its first lines: the demo and test commands', () => {
    const head = README.split('\n').slice(0, 6)
    assert.equal(head[0], '# jwt-sidecar')
    assert.ok(head.some((l) => l.includes('npm ci && npm run demo')), 'the first lines lost `npm ci && npm run demo`')
    assert.ok(head.some((l) => l.includes('npm ci && npm test')), 'the first lines lost `npm ci && npm test`')
  })

  test(`is a front page: at most ${MAX_BYTES} bytes`, () => {
    const bytes = Buffer.byteLength(README)
    assert.ok(bytes <= MAX_BYTES, `README.md is ${bytes} bytes: move the detail to a page of docs/ and link it`)
  })

  test('states the trust assumption: the app listens on 127.0.0.1 only, and the security model says the rest', () => {
    const intro = README.slice(0, README.indexOf('\n## '))
    assert.match(intro, /\*\*The trust assumption\.\*\*[^]*127\.0\.0\.1/)
    assert.ok(intro.includes('(docs/security.md)'), 'the trust assumption should link the security model')
  })

  test('has the ten-minute walk-through, in blocks the walk-through test runs', () => {
    const walk = section(README, '## Protect your app in ten minutes', 'README.md')
    const script = fencedBlocks(walk, 'sh walkthrough').join('')
    for (const command of ['jwt-sidecar token --serve', 'jwt-sidecar check-config', 'jwt-sidecar run', 'jwt-sidecar token --config', 'jwt-sidecar verify', 'curl ']) {
      assert.ok(script.includes(command), `the walk-through lost \`${command}\``)
    }
  })

  test('links every page of docs/ and the generated reference', () => {
    const linked = new Set(markdownLinks(README).map((l) => l.target.split('#')[0]))
    const dir = fileURLToPath(new URL('../../docs/', import.meta.url))
    const pages = [
      ...readdirSync(dir).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
      ...readdirSync(`${dir}reference`).filter((f) => f.endsWith('.md')).map((f) => `docs/reference/${f}`),
    ]
    assert.ok(pages.length >= 12, `only ${pages.length} pages found`)
    const orphans = pages.filter((p) => !linked.has(p))
    assert.deepEqual(orphans, [], `README.md does not link these pages: ${orphans.join(', ')}`)
  })
})
