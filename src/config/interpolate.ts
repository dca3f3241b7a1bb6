/**
 * `${VAR}` interpolation in the scalar values of a parsed YAML document.
 *
 * Syntax, a strict subset of POSIX shell parameter expansion (and of Docker Compose's):
 * - `${NAME}`: the variable's value; an unset variable is an error (an empty one is "").
 * - `${NAME:-default}`: the default when NAME is unset or empty.
 * - `$${` is a literal `${`; any other `$` is literal.
 * Anything else after `${` (`${1X}`, `${X-y}`, `${X:?msg}`, an unterminated `${X`, a nested
 * `${A:-${B}}`) is an error rather than text that happens to pass through: a config that
 * silently contains `${TYPO}` would point the sidecar at a nonsense URL.
 *
 * It works on the yaml Document, after parsing, so a value can never inject YAML syntax
 * and every error is tied to the node it came from (load.ts turns that into a line).
 * Keys are never interpolated. The environment is a parameter: nothing here reads process.env.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type Scalar } from 'yaml'

/** The environment to read variables from; `process.env` fits. */
export type Env = Readonly<Record<string, string | undefined>>

/** A path into the document: map keys and sequence indexes. */
export type PathSegment = string | number

/** One scalar whose interpolation failed; the scalar keeps its original text. */
export interface InterpolationIssue {
  readonly path: readonly PathSegment[]
  readonly node: Scalar
  readonly message: string
}

export type InterpolationResult =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly messages: readonly string[] }

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const SYNTAX = 'expected ${NAME} or ${NAME:-default}; write $${ for a literal ${'

/**
 * Interpolates one string. Every problem in it is reported, not only the first.
 *
 * @example
 * interpolateString('http://${HOST:-127.0.0.1}:3000', {}) // { ok: true, value: 'http://127.0.0.1:3000' }
 */
export function interpolateString(text: string, env: Env): InterpolationResult {
  let out = ''
  const messages: string[] = []
  let i = 0
  while (i < text.length) {
    const dollar = text.indexOf('$', i)
    if (dollar < 0) {
      out += text.slice(i)
      break
    }
    out += text.slice(i, dollar)
    if (text.startsWith('$${', dollar)) {
      out += '${'
      i = dollar + 3
      continue
    }
    if (!text.startsWith('${', dollar)) {
      out += '$'
      i = dollar + 1
      continue
    }
    const close = text.indexOf('}', dollar + 2)
    if (close < 0) {
      messages.push(`unterminated variable reference ${JSON.stringify(text.slice(dollar))} (${SYNTAX})`)
      break
    }
    const ref = text.slice(dollar, close + 1)
    const body = text.slice(dollar + 2, close)
    i = close + 1
    const sep = body.indexOf(':-')
    const name = sep < 0 ? body : body.slice(0, sep)
    const fallback = sep < 0 ? undefined : body.slice(sep + 2)
    if (!NAME.test(name) || fallback?.includes('${') === true) {
      messages.push(`malformed variable reference ${JSON.stringify(ref)} (${SYNTAX})`)
      continue
    }
    const value = env[name]
    if (fallback !== undefined) {
      out += value === undefined || value === '' ? fallback : value
    } else if (value === undefined) {
      messages.push(`environment variable ${name} is not set (write \${${name}:-value} to give a default)`)
    } else {
      out += value
    }
  }
  return messages.length === 0 ? { ok: true, value: out } : { ok: false, messages }
}

/**
 * Interpolates every string scalar value of `doc` in place and returns the failures.
 *
 * A plain (unquoted) scalar that interpolates to exactly `true` or `false` becomes a
 * boolean, as if the text had been substituted before parsing, so
 * `allowInsecureHttp: ${INSECURE:-false}` works; quote it to keep a string.
 * Aliases are skipped: the anchored node is interpolated once where it is defined.
 */
export function interpolateDocument(doc: Document, env: Env): InterpolationIssue[] {
  const issues: InterpolationIssue[] = []
  const visit = (node: unknown, path: PathSegment[]): void => {
    if (isAlias(node)) return
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        visit(pair.value, [...path, key])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => {
        visit(item, [...path, index])
      })
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      const result = interpolateString(node.value, env)
      if (!result.ok) {
        issues.push({ path, node, message: result.messages.join('; ') })
      } else if (node.type === 'PLAIN' && (result.value === 'true' || result.value === 'false')) {
        node.value = result.value === 'true'
      } else {
        node.value = result.value
      }
    }
  }
  visit(doc.contents, [])
  return issues
}
