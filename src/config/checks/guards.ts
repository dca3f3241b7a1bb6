/**
 * Guarded reads for the semantic checks. The checks run on whatever the schema let through
 * (so that one run reports schema and semantic problems together), so every value may be
 * missing or of the wrong type: each reader answers `undefined` (or `[]`) instead of throwing,
 * and the schema has already reported the problem.
 */
import type { PathSegment } from '../interpolate.ts'
import { parseDuration, parseListen, parseSize, unitReason } from '../units.ts'

/** Records one issue at `path`; the checks report through this, in the order they find them. */
export type AddIssue = (path: readonly PathSegment[], message: string) => void

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
export function field(v: unknown, key: string): unknown {
  return isRecord(v) ? v[key] : undefined
}
export function text(v: unknown, key: string): string | undefined {
  const f = field(v, key)
  return typeof f === 'string' ? f : undefined
}
export function list(v: unknown, key: string): readonly unknown[] {
  const f = field(v, key)
  return Array.isArray(f) ? (f as unknown[]) : []
}
/** A duration in ms, when the value is a valid one (an invalid one is the schema's issue). */
export function ms(v: unknown, key: string): number | undefined {
  const t = text(v, key)
  return t === undefined || unitReason(parseDuration, t) !== undefined ? undefined : parseDuration(t)
}
/** A size in bytes, when the value is a valid one. */
export function bytes(v: unknown, key: string): number | undefined {
  const t = text(v, key)
  return t === undefined || unitReason(parseSize, t) !== undefined ? undefined : parseSize(t)
}
/** A listen address, when the value is a valid one. */
export function address(v: unknown, key: string): { host: string; port: number } | undefined {
  const t = text(v, key)
  return t === undefined || unitReason(parseListen, t) !== undefined ? undefined : parseListen(t)
}

export function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}
