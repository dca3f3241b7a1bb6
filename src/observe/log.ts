/**
 * pino JSON logs. Secrets are redacted by path as a second line of defence; the first is
 * that no code path logs a token, a cookie or a claim set (only named claims' presence).
 */
import { fstatSync } from 'node:fs'
import { pino } from 'pino'
import type { DestinationStream, Logger } from 'pino'
import type { LogConfig } from '../config/types.ts'
import type { KeyEvent } from '../keys/types.ts'
import { prettyDestination } from './pretty.ts'

export type { Logger }

const SERVICE = 'jwt-sidecar'

const REDACT_PATHS = [
  'authorization', 'cookie', 'token',
  '*.authorization', '*.cookie', '*["set-cookie"]', '*.token',
  'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
]

/** Log bytes held in memory at most while stdout does not keep up; beyond it lines are dropped (and counted). */
const LOG_BUFFER_MAX_BYTES = 16 * 2 ** 20

/** What the default destination reports: lines it had to drop because stdout did not keep up. */
export interface LogDrops {
  onDrop(listener: () => void): void
}

/**
 * PIPE_BUF on Linux: a write of at most this many bytes to a pipe is never interleaved with
 * another writer's (POSIX write(2)). The two destinations below share fd 1, so neither writes more.
 */
const PIPE_BUF = 4096
/** Access lines are written once this many bytes are buffered (about 14 lines)… */
export const ACCESS_BATCH_BYTES = 3584
/** …or at this interval, whichever comes first (Envoy's access log flush interval is 1 s too). */
const ACCESS_FLUSH_MS = 1000

/**
 * stdout, never making a request wait. Two of these share fd 1, each writing whole lines, at
 * most PIPE_BUF bytes at a time:
 * - the default one writes each line as soon as no write is in flight (lines logged during a
 *   write go out together in the next), so security events and errors are not held back;
 * - `{ batch: true }`, for the per-request access line, writes ACCESS_BATCH_BYTES at a time, or
 *   every ACCESS_FLUSH_MS: a write per line cost more than the rest of the line.
 * A pipe, socket or terminal (Kubernetes gives a container a pipe) can block a writer until its
 * reader catches up, so it is written asynchronously (pino's `sync: false`: a libuv thread-pool
 * write); a regular file cannot (the page cache takes 4 KiB in about 5 µs), so it is written
 * synchronously, without the thread-pool round trip and its two context switches on the
 * sidecar's one core. Bounded: past LOG_BUFFER_MAX_BYTES unwritten, lines are dropped rather
 * than memory growing or the event loop stalling on a full pipe. Flushed synchronously at exit,
 * so nothing logged before a clean exit (or process.exit, or an uncaught exception) is lost; a
 * SIGKILL can lose the last second of access lines.
 */
export function stdoutDestination(options: { readonly batch?: boolean } = {}, fd = 1): DestinationStream & LogDrops {
  const batch = options.batch === true ? { minLength: ACCESS_BATCH_BYTES, periodicFlush: ACCESS_FLUSH_MS } : { minLength: 0 }
  const dest = pino.destination({ dest: fd, sync: isRegularFile(fd), maxWrite: PIPE_BUF, maxLength: LOG_BUFFER_MAX_BYTES, ...batch })
  process.once('exit', () => {
    try {
      dest.flushSync()
    } catch {
      // not open yet or already closed: nothing to flush
    }
  })
  return Object.assign(dest, { onDrop: (listener: () => void) => void dest.on('drop', listener) })
}

export type LogFormat = NonNullable<LogConfig['format']>

/**
 * `log.format`, or when the config does not say: readable lines for a person at a terminal,
 * JSON for everything else (a pipe, a file, a container runtime: Kubernetes gives a pipe).
 */
export function resolveLogFormat(configured: LogFormat | undefined, stdoutIsTTY: boolean): LogFormat {
  return configured ?? (stdoutIsTTY ? 'pretty' : 'json')
}

/**
 * The two stdout destinations of a sidecar: JSON lines with the access lines in batches of
 * their own; or, `pretty`, one stream of readable lines, each written at once (a person
 * watching a terminal wants the line when the request is answered, and is not 10k req/s).
 * Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
 */
export function stdoutDestinations(format: LogFormat, env: NodeJS.ProcessEnv = process.env, stdoutIsTTY = process.stdout.isTTY === true): { readonly main: DestinationStream & LogDrops; readonly access: DestinationStream & LogDrops } {
  if (format === 'json') return { main: stdoutDestination(), access: stdoutDestination({ batch: true }) }
  const noColor = env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== ''
  const main = prettyDestination(stdoutDestination(), { color: stdoutIsTTY && !noColor })
  return { main, access: main }
}

/**
 * @example
 * const log = createLogger({ level: 'info', access: true })
 * log.info({ event: 'jwks.key_added', issuer: 'corp', kid: 'k1' }, 'key added')
 */
export function createLogger(config: Pick<LogConfig, 'level'>, destination: DestinationStream = stdoutDestination()): Logger {
  return pino(
    {
      level: config.level,
      base: { service: SERVICE },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // fastify's own error logs pass `req` and `res`: keep only what is safe, never the
      // headers (tokens, cookies) or the query string (a token may ride in it).
      serializers: { req: serializeRequest, res: serializeResponse, err: pino.stdSerializers.err },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile()
  } catch {
    return false
  }
}

/** One access line: the request's fields that server.ts logs, never a header, query or claim. */
export interface AccessEntry {
  readonly reqId: string
  readonly method: string
  /** The path without its query string (a token may ride in the query). */
  readonly path: string
  readonly route: string
  readonly outcome: string
  readonly reason: string
  readonly issuer: string | undefined
  readonly status: number
  /** ms from the request's arrival to the response's end (fastify's elapsedTime), in whole µs. */
  readonly durationMs: number
  /** The peer's address (the socket's; never X-Forwarded-For, which a client writes). */
  readonly clientIp: string | undefined
}

export interface AccessLogger {
  write(entry: AccessEntry): void
}

/**
 * The per-request access line, written into `stream` (default: `log`'s) at `log`'s info level as the same JSON a
 * pino `log.info({ event: 'http.access', … }, 'request')` would give (fields in that order,
 * `issuer` and `clientIp` left out when unknown), without pino's generic path: the line has a fixed set of
 * fields, so it is formatted directly, and the ISO timestamp is formatted once per millisecond
 * rather than once per line. Client text (method, path, request id) goes through
 * JSON.stringify. Follows `log`'s level when it changes (a reload).
 */
export function createAccessLogger(log: Logger, stream?: DestinationStream): AccessLogger {
  const out = stream ?? (log as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!
  let enabled = log.isLevelEnabled('info')
  log.on('level-change', () => {
    enabled = log.isLevelEnabled('info')
  })
  let lastMs = -1
  let head = ''
  return {
    write(e) {
      if (!enabled) return
      const now = Date.now()
      if (now !== lastMs) {
        lastMs = now
        head = `{"level":"info","time":"${new Date(now).toISOString()}","service":"${SERVICE}","event":"http.access","reqId":`
      }
      const issuer = e.issuer === undefined ? '' : `,"issuer":${JSON.stringify(e.issuer)}`
      // The socket's address is Node's text of an IP address: nothing in it needs escaping.
      const client = e.clientIp === undefined ? '' : `,"clientIp":"${e.clientIp}"`
      out.write(`${head}${JSON.stringify(e.reqId)},"method":${JSON.stringify(e.method)},"path":${JSON.stringify(e.path)},"route":${JSON.stringify(e.route)},"outcome":"${e.outcome}","reason":"${e.reason}"${issuer},"status":${e.status},"durationMs":${e.durationMs}${client},"msg":"request"}\n`)
    },
  }
}

interface RequestLike {
  readonly id?: unknown
  readonly method?: unknown
  readonly url?: unknown
}

function serializeRequest(req: RequestLike): Record<string, unknown> {
  const url = typeof req.url === 'string' ? req.url : ''
  const q = url.indexOf('?')
  return { id: req.id, method: req.method, path: q < 0 ? url : url.slice(0, q) }
}

function serializeResponse(res: { readonly statusCode?: unknown }): Record<string, unknown> {
  return { statusCode: res.statusCode }
}

/**
 * Key-set changes are security events: a stable `event` name, issuer, kid, kty, alg and
 * thumbprint, never key material. What an operator must look at is warn or error. The
 * Record type makes every event name choose a level: a new event cannot go unlogged by accident.
 */
const KEY_EVENT_LOG: Readonly<Record<KeyEvent['event'], readonly ['debug' | 'info' | 'warn' | 'error', string] | undefined>> = {
  'jwks.refreshed': ['debug', 'jwks refreshed'],
  // Counted in jwt_sidecar_unknown_kid_total; a line per request would let a flood flood the logs.
  'jwks.unknown_kid': undefined,
  'jwks.key_added': ['info', 'key added to issuer key set'],
  'jwks.key_removed': ['info', 'key removed from issuer key set'],
  'jwks.discovered': ['info', 'jwks_uri discovered'],
  'jwks.recovered': ['info', 'issuer keys recovered'],
  'jwks.key_changed': ['warn', 'key material changed under the same kid'],
  'jwks.keyset_replaced': ['warn', 'key set replaced: no key in common with the previous set'],
  'jwks.key_rejected': ['warn', 'key rejected'],
  'jwks.refresh_failed': ['warn', 'key refresh failed'],
  'jwks.stale': ['warn', 'issuer keys are stale: serving the last-known-good set'],
  // Issue #13 §3: a snapshot read at start, or why not; its writes (one per refresh) are debug.
  'jwks.snapshot_loaded': ['warn', 'issuer keys loaded from the snapshot (stale until a refresh succeeds)'],
  'jwks.snapshot_ignored': ['warn', 'key snapshot not used'],
  'jwks.snapshot_written': ['debug', 'key snapshot written'],
  'jwks.snapshot_write_failed': ['warn', 'key snapshot could not be written (the keys in use are unaffected)'],
  'jwks.expired': ['error', 'issuer keys expired (maxStale): tokens of this issuer get 503 keys_unavailable'],
}

export function logKeyEvent(log: Logger, e: KeyEvent): void {
  const how = KEY_EVENT_LOG[e.event]
  if (how !== undefined) log[how[0]](e, how[1])
}
