// A node:test reporter that writes one JSON line per skipped suite or test (issue #14 §6), for
// scripts/test.mjs to summarise at the end of the run: a skip is never silent. A skipped suite
// reports itself only (node:test does not report the tests inside it), so each line is one
// skip decision, with its reason (`skip: true` when none was given).
export default async function* skips(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue
    const { skip, name, file, details } = event.data
    if (skip === undefined || skip === false) continue
    // No line: under tsx the reported line is the transpiled file's, not the source's.
    yield `${JSON.stringify({ kind: details?.type === 'suite' ? 'suite' : 'test', file, name, reason: skip })}\n`
  }
}

/**
 * The end-of-run summary of the reporter's lines: "0 skipped", or the count and one line per
 * skip with its reason. A skip without a reason is named as such and makes `unexplained` > 0:
 * scripts/test.mjs fails the run for it.
 * @param {string} jsonLines what the reporter wrote
 * @param {string} root file paths are shown relative to it
 * @returns {{ text: string, skipped: number, unexplained: number }}
 */
export function summariseSkips(jsonLines, root) {
  const skips = jsonLines.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l))
  if (skips.length === 0) return { text: '0 skipped', skipped: 0, unexplained: 0 }
  const count = (kind) => skips.filter((s) => s.kind === kind).length
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`
  const where = (s) => (s.file?.startsWith(root) === true ? s.file.slice(root.length).replace(/^[\\/]/, '') : s.file)
  const lines = skips
    .map((s) => `  ${s.kind} ${where(s)} "${s.name}": ${typeof s.reason === 'string' && s.reason !== '' ? s.reason : 'NO REASON GIVEN (say why: { skip: "why" } or t.skip("why"))'}`)
    .sort()
  const unexplained = skips.filter((s) => typeof s.reason !== 'string' || s.reason === '').length
  return { text: `${skips.length} skipped (${plural(count('suite'), 'suite')}, ${plural(count('test'), 'test')}):\n${lines.join('\n')}`, skipped: skips.length, unexplained }
}
