/**
 * The docs are a set of pages that link to each other (issue #14 §1): README.md is the front
 * page, docs/ holds one topic per page. A page that moves, a heading that is renamed or a file
 * that is deleted would leave a link pointing nowhere, and GitHub shows no error for that. So
 * every relative link of README.md and docs/**\/*.md must name a file or directory of the
 * repository, and every #anchor must be a heading of the page it points into (GitHub's slugs).
 * External links (http:, https:, mailto:) are not fetched.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { githubSlug, headingAnchors, markdownLinks } from '../helpers/markdown.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? markdownFiles(p) : p.endsWith('.md') ? [p] : []
  })
}

const PAGES = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))]
const anchorsOf = new Map<string, Set<string>>()
function anchors(file: string): Set<string> {
  let set = anchorsOf.get(file)
  if (set === undefined) {
    set = headingAnchors(readFileSync(file, 'utf8'))
    anchorsOf.set(file, set)
  }
  return set
}

describe('the markdown helpers read links and headings the way GitHub does', () => {
  test('slugs', () => {
    assert.equal(githubSlug('Header names with `_`'), 'header-names-with-_')
    assert.equal(githubSlug('Key-change events and `/keys`'), 'key-change-events-and-keys')
    assert.equal(githubSlug('Certificate-bound tokens (mTLS, RFC 8705)'), 'certificate-bound-tokens-mtls-rfc-8705')
    assert.equal(githubSlug('Explaining a decision: `jwt-sidecar verify`'), 'explaining-a-decision-jwt-sidecar-verify')
    assert.equal(githubSlug('HTTP/2'), 'http2')
    assert.equal(githubSlug('[A link](x.md) in a heading'), 'a-link-in-a-heading')
  })

  test('headings: fenced blocks are not headings, a repeated heading gets -1', () => {
    const set = headingAnchors('# Top\n\n```sh\n# not a heading\n```\n\n## Again\n\n### Again\n')
    assert.deepEqual([...set].sort(), ['again', 'again-1', 'top'])
  })

  test('links: inline links outside code, with the line of their target, wrapped ones too', () => {
    const text = 'See [a](a.md#x) and `[b](b.md)`.\n```md\n[c](c.md)\n```\n![img](i.png) [d](https://example.com) [e](<f g.md>)\nA [wrapped\nlink](w.md).\n'
    assert.deepEqual(markdownLinks(text), [
      { line: 1, target: 'a.md#x' },
      { line: 5, target: 'i.png' },
      { line: 5, target: 'https://example.com' },
      { line: 5, target: 'f g.md' },
      { line: 7, target: 'w.md' },
    ])
  })
})

describe('every relative link and #anchor in README.md and docs/ resolves', () => {
  test('the pages are found', () => {
    const names = PAGES.map((p) => relative(ROOT, p).split(sep).join('/'))
    for (const page of ['README.md', 'docs/how-it-works.md', 'docs/security.md', 'docs/configuration.md', 'docs/cli.md', 'docs/keys.md', 'docs/observability.md', 'docs/kubernetes.md', 'docs/development.md', 'docs/reference/configuration.md']) {
      assert.ok(names.includes(page), `${page} is missing`)
    }
  })

  for (const page of PAGES) {
    const name = relative(ROOT, page).split(sep).join('/')
    test(name, () => {
      const broken: string[] = []
      const links = markdownLinks(readFileSync(page, 'utf8'))
      for (const { line, target } of links) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // http:, https:, mailto:
        const hash = target.indexOf('#')
        const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash))
        const anchor = hash < 0 ? undefined : target.slice(hash + 1)
        const file = path === '' ? page : resolve(dirname(page), path)
        if (!file.startsWith(ROOT)) {
          broken.push(`${name}:${line}: ${target} leaves the repository`)
          continue
        }
        if (!existsSync(file)) {
          broken.push(`${name}:${line}: ${target}: no such file ${relative(ROOT, file)}`)
          continue
        }
        if (anchor === undefined) continue
        if (!file.endsWith('.md')) {
          broken.push(`${name}:${line}: ${target}: an anchor into a file that is not markdown`)
          continue
        }
        if (!anchors(file).has(anchor)) broken.push(`${name}:${line}: ${target}: ${relative(ROOT, file)} has no heading #${anchor}`)
      }
      assert.deepEqual(broken, [], `broken links:\n${broken.join('\n')}`)
    })
  }
})

/**
 * Code, the chart, the example configs and the scripts point people at the docs too: error
 * messages (`docs/kubernetes.md#image`), comments (`docs/keys.md#the-refresh-model`), the chart's
 * values.yaml. When the README was split (issue #14 §1), a dozen of them still named README
 * sections that had moved; nothing failed. Every `docs/….md` path they name must exist, and its
 * `#anchor` must be a heading there; and none may send a reader to a README section by name.
 */
describe('references to the docs from code, chart, configs and scripts resolve', () => {
  const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f !== '' && !f.endsWith('.md') && !f.startsWith('test/') && !f.endsWith('package-lock.json') && existsSync(join(ROOT, f)))
  const DOC_REF = /(?<![\w./-])(docs\/[\w./-]+?\.md)(?:#([\w-]+))?/g
  const README_SECTION = /README(?:'s)?[:,]?\s+(?:section\s+)?"([^"]+)"/g

  test('the files are read', () => {
    assert.ok(tracked.includes('helm/jwt-sidecar/values.yaml') && tracked.includes('src/config/types.ts'), tracked.slice(0, 5).join(' '))
  })

  test('every docs/….md path exists and every #anchor is a heading of it; no README section by name', () => {
    const broken: string[] = []
    let refs = 0
    for (const f of tracked) {
      const text = readFileSync(join(ROOT, f), 'utf8')
      if (text.includes('\0')) continue
      const lineOf = (index: number) => text.slice(0, index).split('\n').length
      for (const m of text.matchAll(DOC_REF)) {
        refs++
        const file = join(ROOT, m[1]!)
        if (!existsSync(file)) broken.push(`${f}:${lineOf(m.index)}: ${m[0]}: no such page`)
        else if (m[2] !== undefined && !anchors(file).has(m[2])) broken.push(`${f}:${lineOf(m.index)}: ${m[0]}: ${m[1]} has no heading #${m[2]}`)
      }
      for (const m of text.matchAll(README_SECTION)) {
        broken.push(`${f}:${lineOf(m.index)}: ${m[0]}: the README is a front page now; name the docs/ page and its #anchor`)
      }
    }
    assert.ok(refs >= 40, `only ${refs} references found: is the pattern still right?`)
    assert.deepEqual(broken, [], `broken references:\n${broken.join('\n')}`)
  })
})
