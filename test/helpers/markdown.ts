/**
 * Reading the docs' markdown the way GitHub renders it, for the tests that keep the docs true:
 * their links (test/unit/docs-links.test.ts), their sections and fenced blocks (the README's
 * walk-through, the pasted outputs, the Kubernetes commands). Only what these pages use:
 * ATX headings, fenced blocks, inline links and code spans.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** A repository file's text, by its path from the repository root (`docs/keys.md`). */
export function readDoc(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8')
}

/** Each line, with whether it is inside a fenced block (the fence lines themselves count as inside). */
function linesWithFences(text: string): { line: string; fenced: boolean }[] {
  let open: string | undefined
  return text.split('\n').map((line) => {
    const fence = /^\s*(`{3,}|~{3,})/.exec(line)?.[1]
    if (open === undefined && fence !== undefined) {
      open = fence
      return { line, fenced: true }
    }
    if (open !== undefined) {
      if (fence !== undefined && fence[0] === open[0] && fence.length >= open.length && line.trim() === fence) open = undefined
      return { line, fenced: true }
    }
    return { line, fenced: false }
  })
}

/** A heading's text as GitHub shows it: code spans unwrapped, links reduced to their text. */
function headingText(heading: string): string {
  return heading.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`+([^`]*)`+/g, '$1')
}

/** GitHub's anchor for a heading (github-slugger): lower case, punctuation dropped, spaces to hyphens. */
export function githubSlug(heading: string): string {
  return headingText(heading).trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\s-]/gu, '').replace(/\s/g, '-')
}

/** Every heading's anchor, a repeated one with -1, -2… as GitHub numbers them. */
export function headingAnchors(text: string): Set<string> {
  const out = new Set<string>()
  const seen = new Map<string, number>()
  for (const { line, fenced } of linesWithFences(text)) {
    const m = fenced ? null : /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line)
    if (m === null) continue
    const slug = githubSlug(m[1]!)
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    out.add(n === 0 ? slug : `${slug}-${n}`)
  }
  return out
}

/** The inline links and images outside fenced blocks and code spans: their target and line (1-based). */
export function markdownLinks(text: string): { line: number; target: string }[] {
  // Fenced lines blanked and code spans masked, keeping every offset, so that a link whose text
  // wraps onto the next line is still one match.
  const prose = linesWithFences(text)
    .map(({ line, fenced }) => (fenced ? ' '.repeat(line.length) : line))
    .join('\n')
    .replace(/(`+)[^`]*?\1/g, (span) => span.replace(/[^\n]/g, ' '))
  const out: { line: number; target: string }[] = []
  for (const m of prose.matchAll(/!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+"[^"]*")?\s*\)/g)) {
    const target = m[1]!
    const line = prose.slice(0, m.index).split('\n').length + m[0].slice(0, m[0].lastIndexOf('](')).split('\n').length - 1
    out.push({ line, target: target.startsWith('<') ? target.slice(1, -1) : target })
  }
  return out
}

/**
 * The text of the section that starts at this heading line (`## Title`), up to the next heading
 * of the same or a higher level; fails naming the page when the heading is gone.
 */
export function section(text: string, heading: string, page: string): string {
  const level = /^#+/.exec(heading)?.[0].length ?? 0
  assert.ok(level > 0, `not a heading: ${heading}`)
  const lines = linesWithFences(text)
  const start = lines.findIndex((l) => !l.fenced && l.line === heading)
  assert.ok(start >= 0, `${page} has no "${heading}" heading`)
  let end = lines.length
  for (let i = start + 1; i < lines.length; i++) {
    const m = lines[i]!.fenced ? null : /^(#+)\s/.exec(lines[i]!.line)
    if (m !== null && m[1]!.length <= level) {
      end = i
      break
    }
  }
  return lines.slice(start, end).map((l) => l.line).join('\n') + '\n'
}

/** The bodies of the fenced blocks whose info string is exactly `info`, in order. */
export function fencedBlocks(text: string, info: string): string[] {
  const esc = info.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return [...text.matchAll(new RegExp(`^\`\`\`${esc}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1]!)
}
