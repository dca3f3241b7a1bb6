/**
 * What the config loader reports: one {@link ConfigIssue} per problem, formatted as
 * `file:line path: message`, thrown together as one {@link ConfigError}.
 *
 * Each stage (interpolation, schema, semantic checks) first finds {@link FoundIssue}s, a
 * path into the data and a message; load.ts then gives each a line (lines.ts) and a
 * printable path ({@link formatPath}).
 */
import type { PathSegment } from './interpolate.ts'

/** One problem in a config file. `path` is `a.b[0].c`, `(root)`, `(yaml)`, or '' for the file itself. */
export interface ConfigIssue {
  readonly file: string
  /** 1-based; undefined when the problem has no place in the file (e.g. it cannot be read). */
  readonly line: number | undefined
  readonly path: string
  readonly message: string
}

/** `config/sidecar.yaml:14 issuers[0].audiences: expected a non-empty list of strings` */
function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`
  return issue.path === '' ? `${where}: ${issue.message}` : `${where} ${issue.path}: ${issue.message}`
}

/** Every problem found in a config file; `message` has one formatted issue per line. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[]

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'))
    this.name = 'ConfigError'
    this.issues = Object.freeze([...issues])
  }
}

/** An issue before it gets a line: where in the data, and what is wrong there. */
export interface FoundIssue {
  readonly path: readonly PathSegment[]
  readonly message: string
}

function isPrefix(prefix: readonly PathSegment[], path: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => String(seg) === String(path[i]))
}

/**
 * Keeps the first issue of each path and drops those below a path that already failed, so
 * one mistake is reported once (an unset `${VAR}` is not also reported as "expected a URL").
 */
export function dedupe(found: readonly FoundIssue[]): FoundIssue[] {
  const kept: FoundIssue[] = []
  for (const f of found) {
    if (!kept.some((k) => isPrefix(k.path, f.path))) kept.push(f)
  }
  return kept
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/

/** `['issuers', 0, 'audiences']` → `issuers[0].audiences`; odd keys are quoted: `headers["a.b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return '(root)'
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (!IDENTIFIER.test(seg)) out += `[${JSON.stringify(seg)}]`
    else out += out === '' ? seg : `.${seg}`
  }
  return out
}
