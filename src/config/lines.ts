/**
 * From a path in the loaded data back to a line of the YAML file, so every issue reads
 * `file:line path: message` and the operator lands where the mistake is written.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Pair } from 'yaml'
import type { PathSegment } from './interpolate.ts'

/** The pair for `key` in a map, looking into `<<` merge sources the way yaml's toJS does. */
function findPair(doc: Document, map: unknown, key: string, depth = 0): Pair | undefined {
  const node = isAlias(map) ? map.resolve(doc) : map
  if (!isMap(node) || depth > 10) return undefined
  let merged: Pair | undefined
  for (const pair of node.items) {
    if (!isPair(pair)) continue
    const k = isScalar(pair.key) ? pair.key.value : pair.key
    if (String(k) === key) return pair
    if (k === '<<' && merged === undefined) {
      const sources = isSeq(pair.value) ? pair.value.items : [pair.value]
      for (const source of sources) {
        merged ??= findPair(doc, source, key, depth + 1)
      }
    }
  }
  return merged
}

function startLine(lineCounter: LineCounter, node: unknown): number | undefined {
  const range = (node as { range?: readonly number[] | null } | null)?.range
  const start = range?.[0]
  return start === undefined ? undefined : lineCounter.linePos(start).line
}

/**
 * The line of the deepest node along `path` that exists in the document. A map entry's
 * line is its key's (where `audiences:` is written, not where its first item is); a
 * sequence item's is the item's. A value that came from a default has no node, so its
 * nearest written ancestor is used.
 *
 * @example
 * lineOf(doc, lineCounter, ['issuers', 0, 'audiences']) // 14
 */
export function lineOf(doc: Document, lineCounter: LineCounter, path: readonly PathSegment[]): number | undefined {
  let node: unknown = doc.contents
  let line = startLine(lineCounter, node)
  for (const seg of path) {
    const current = isAlias(node) ? node.resolve(doc) : node
    if (isSeq(current)) {
      const item: unknown = current.items[Number(seg)]
      if (item === undefined || item === null) return line
      line = startLine(lineCounter, item) ?? line
      node = item
    } else {
      const pair = findPair(doc, current, String(seg))
      if (pair === undefined) return line
      line = startLine(lineCounter, pair.key) ?? line
      node = pair.value
    }
  }
  return line
}
