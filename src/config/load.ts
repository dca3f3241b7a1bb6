/**
 * Loads the YAML config file into a validated, defaulted, unit-converted, deep-frozen
 * {@link SidecarConfig}, or throws one {@link ConfigError} listing every problem with its
 * file, line and path (fastify's `lib/initial-config-validation.js` is the model: validate
 * once at the boundary, report everything, then freeze).
 *
 * Pipeline, each stage collecting all of its issues before the next one runs:
 * 1. `yaml.parseDocument`: syntax errors and duplicate keys (nothing else runs if any);
 * 2. `${VAR}` interpolation of scalar values (interpolate.ts);
 * 3. JSON Schema validation with defaults (schema.ts, schema-issues.ts), ajv errors mapped
 *    back to YAML lines (lines.ts) and rewritten with the schema's `x-expected` phrases;
 * 4. semantic checks JSON Schema cannot express, one function per section (checks/);
 * 5. unit conversion and deep-freeze (convert.ts).
 * An issue at a path hides later issues at the same path or below it, so one mistake is
 * reported once (an unset `${VAR}` is not also reported as "expected a URL").
 *
 * This file is the config module's entry point: what callers need is exported from here.
 */
import { LineCounter, parseDocument } from 'yaml'
import { semanticIssues } from './checks/semantic.ts'
import { convert, deepFreeze } from './convert.ts'
import { interpolateDocument, type Env } from './interpolate.ts'
import { ConfigError, dedupe, formatPath, type FoundIssue } from './issues.ts'
import { lineOf } from './lines.ts'
import { readConfigFile } from './locate.ts'
import type { RawConfig } from './schema.ts'
import { schemaIssues } from './schema-issues.ts'
import type { SidecarConfig } from './types.ts'
import { findFallThroughs } from '../policy/fallthrough.ts'

export { ConfigError, type ConfigIssue } from './issues.ts'
export { resolveConfigPath } from './locate.ts'

/**
 * Reads and parses the config file at `path` (see {@link parseConfig}).
 *
 * @throws {ConfigError} when the file cannot be read or is invalid.
 * @example
 * const config = loadConfig(resolveConfigPath(args.config, process.env))
 */
export function loadConfig(path: string, env: Env = process.env): SidecarConfig {
  return parseConfig(readConfigFile(path), path, env)
}

/**
 * Parses config text. Pure: `source` only names the file in messages and in
 * `SidecarConfig.source`, and variables come from `env` alone.
 *
 * @throws {ConfigError} listing every problem found.
 * @example
 * const config = parseConfig(text, 'inline.yaml', { UPSTREAM_URL: 'http://127.0.0.1:3000' })
 */
export function parseConfig(text: string, source: string, env: Env): SidecarConfig {
  const lineCounter = new LineCounter()
  // prettyErrors off: yaml would append a multi-line code frame; we want one line per issue.
  // merge on: `<<: *defaults` is the usual way to share issuer settings.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file: source,
        line: lineCounter.linePos(e.pos[0]).line,
        path: '(yaml)',
        message: e.message,
      })),
    )
  }

  const found: FoundIssue[] = []
  for (const issue of interpolateDocument(doc, env)) found.push({ path: issue.path, message: issue.message })

  let data: unknown
  try {
    // maxAliasCount bounds alias expansion ("billion laughs"); yaml throws beyond it.
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    throw new ConfigError([{ file: source, line: undefined, path: '(yaml)', message }])
  }
  found.push(...schemaIssues(data))
  found.push(...semanticIssues(data))

  const issues = dedupe(found)
  if (issues.length > 0) {
    const located = issues.map((f) => ({
      file: source,
      line: lineOf(doc, lineCounter, f.path),
      path: formatPath(f.path),
      message: f.message,
    }))
    // Stable sort: top to bottom as the operator reads the file; line-less issues first.
    located.sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
    throw new ConfigError(located)
  }
  const config = convert(data as RawConfig, source)
  // Valid but probably unintended: check-config prints these, `run` logs them.
  const warnings = findFallThroughs(config.routes).map((f) => ({
    file: source,
    line: lineOf(doc, lineCounter, ['routes', f.route]),
    path: formatPath(['routes', f.route]),
    message: f.message,
  }))
  return deepFreeze({ ...config, warnings })
}
