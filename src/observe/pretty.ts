/**
 * `log.format: pretty` (issue #14 §5): pino's JSON lines, as pino wrote them (its redaction
 * already applied), turned into one readable line each for a person at a terminal:
 *
 *   14:03:07.512 INFO  http.access  GET /orders/42 200 forwarded 1.3ms  route=default issuer=demo clientIp=127.0.0.1 reqId=4f1c2a9b-1
 *   14:03:09.020 WARN  jwks.refresh_failed  key refresh failed  issuer=corp error="fetch failed: ECONNREFUSED"
 *
 * A formatter over the JSON rather than a second logger, so both formats carry the same fields
 * and the same redaction: what JSON would show as "[redacted]" shows so here. (pino-pretty does
 * this job for pino, and is not one of our dependencies; the few lines below are all we need.)
 *
 * Client text (a path, a method, a request id) reaches the terminal: every value is escaped so
 * that it cannot move the cursor, recolour, or reorder the line (C0 and C1 controls, line and
 * paragraph separators, bidi overrides: CVE-2021-42574's "Trojan Source").
 */
import type { DestinationStream } from 'pino'

export interface PrettyOptions {
  /** ANSI colour for the level (a terminal that did not set NO_COLOR). */
  readonly color: boolean
}

/** Lines dropped by the destination underneath (observe/log.ts LogDrops). */
interface Drops {
  onDrop(listener: () => void): void
}

/** Fields every line has, shown in their own places rather than as key=value. */
const PLACED = new Set(['level', 'time', 'service', 'event', 'msg'])
/** The access line's own fields, shown as its sentence. */
const ACCESS_PLACED = new Set([...PLACED, 'method', 'path', 'status', 'outcome', 'reason', 'durationMs'])

const LEVEL_COLOUR: Readonly<Record<string, string>> = { fatal: '35', error: '31', warn: '33', info: '32', debug: '90', trace: '90' }

// C0 (but tab, newline: JSON.stringify escapes those), DEL, C1, ALM, LRM/RLM, LS/PS and the bidi embeddings, overrides and isolates.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g
const escapeUnsafe = (s: string): string => s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

/** A value as `key=value` shows it: bare when that is unambiguous, else JSON with the unsafe escaped. */
function show(value: unknown): string {
  if (typeof value === 'string') {
    const quoted = escapeUnsafe(JSON.stringify(value))
    return value !== '' && quoted.slice(1, -1) === value && !/[\s"=]/.test(value) ? value : quoted
  }
  if (typeof value === 'object' && value !== null && 'message' in value && 'type' in value) {
    // A serialised error: its type and message (the JSON format carries the stack).
    const e = value
    return show(`${String(e.type)}: ${String(e.message)}`)
  }
  return escapeUnsafe(JSON.stringify(value) ?? String(value))
}

/** `HH:MM:SS.mmm`, local time: the date and zone are in the JSON format, a terminal is now. */
function clock(time: unknown): string {
  const d = new Date(typeof time === 'string' || typeof time === 'number' ? time : Date.now())
  if (Number.isNaN(d.getTime())) return '--:--:--.---'
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

/**
 * One JSON log line as one readable line (without its newline). A line that is not a JSON
 * object is shown as it is, escaped.
 *
 * @example
 * prettyLine('{"level":"info","time":"2025-01-01T12:00:00.000Z","event":"server.started","proxy":"http://127.0.0.1:8080","msg":"jwt-sidecar started"}', { color: false })
 * // '12:00:00.000 INFO  server.started  jwt-sidecar started  proxy=http://127.0.0.1:8080' (in UTC)
 */
export function prettyLine(json: string, options: PrettyOptions): string {
  let o: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(json)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return escapeUnsafe(json)
    o = parsed as Record<string, unknown>
  } catch {
    return escapeUnsafe(json)
  }
  const levelName = typeof o.level === 'string' ? o.level : 'info'
  const label = levelName.toUpperCase().padEnd(5)
  const colour = LEVEL_COLOUR[levelName]
  const level = options.color && colour !== undefined ? `\u001b[${colour}m${label}\u001b[39m` : label
  const access = o.event === 'http.access'
  // Two spaces between the sections: event, what happened, the other fields.
  const sections: string[] = []
  if (typeof o.event === 'string') sections.push(show(o.event))
  if (access) {
    const reason = o.reason === undefined || o.reason === 'none' ? '' : ` ${show(o.reason)}`
    sections.push(`${show(o.method)} ${show(o.path)} ${show(o.status)} ${show(o.outcome)}${reason} ${show(o.durationMs)}ms`)
  } else if (o.msg !== undefined) {
    sections.push(typeof o.msg === 'string' ? escapeUnsafe(o.msg) : show(o.msg))
  }
  const placed = access ? ACCESS_PLACED : PLACED
  const fields: string[] = []
  for (const [key, value] of Object.entries(o)) {
    if (placed.has(key) || value === undefined) continue
    fields.push(`${escapeUnsafe(key)}=${show(value)}`)
  }
  if (fields.length > 0) sections.push(fields.join(' '))
  return `${clock(o.time)} ${level} ${sections.join('  ')}`
}

/**
 * A destination that writes `inner` the readable form of each JSON line written to it.
 *
 * @example
 * const log = createLogger({ level: 'info' }, prettyDestination(stdoutDestination(), { color: process.stdout.isTTY }))
 */
export function prettyDestination<D extends DestinationStream & Drops>(inner: D, options: PrettyOptions): DestinationStream & Drops {
  return {
    write(chunk: string): void {
      let out = ''
      for (const line of chunk.split('\n')) if (line !== '') out += `${prettyLine(line, options)}\n`
      if (out !== '') inner.write(out)
    },
    onDrop: (listener) => inner.onDrop(listener),
  }
}
