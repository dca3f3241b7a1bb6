/**
 * pino JSON logs. Secrets are redacted by path as a second line of defence; the first is
 * that no code path logs a token, a cookie or a claim set (only named claims' presence).
 */
import { pino } from 'pino'
import type { DestinationStream, Logger } from 'pino'
import type { LogConfig } from '../config/types.ts'
import type { KeyEvent } from '../keys/types.ts'

export type { Logger }

export const REDACT_PATHS = [
  'authorization', 'cookie', 'token',
  '*.authorization', '*.cookie', '*["set-cookie"]', '*.token',
  'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
]

/** Log bytes held in memory at most while stdout does not keep up; beyond it lines are dropped (and counted). */
export const LOG_BUFFER_MAX_BYTES = 16 * 2 ** 20

/** What the default destination reports: lines it had to drop because stdout did not keep up. */
export interface LogDrops {
  onDrop(listener: () => void): void
}

/**
 * stdout, written asynchronously (pino's `sync: false`): a request never waits for a write(2)
 * of its access line; lines written while one write is in flight go out together in the next.
 * Bounded: past LOG_BUFFER_MAX_BYTES unwritten, lines are dropped rather than memory growing or
 * the event loop stalling on a full pipe. Flushed synchronously at exit, so nothing logged
 * before a clean exit (or process.exit) is lost.
 */
export function stdoutDestination(): DestinationStream & LogDrops {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 0, maxLength: LOG_BUFFER_MAX_BYTES })
  process.once('exit', () => {
    try {
      dest.flushSync()
    } catch {
      // not open yet or already closed: nothing to flush
    }
  })
  return Object.assign(dest, { onDrop: (listener: () => void) => void dest.on('drop', listener) })
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
      base: { service: 'jwt-sidecar' },
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

/**
 * The logger for the per-request access line: the same stream, level, base and time format as
 * `log`, without redaction or serializers. The access line is a fixed set of fields that
 * server.ts writes (never a header, a query string or a claim), so the redaction pass that
 * guards every other line would only cost time on the one line written per request. Follows
 * `log`'s level when it changes (a reload).
 */
export function createAccessLogger(log: Logger): Logger {
  const stream = (log as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]
  const access = pino(
    {
      level: log.level,
      base: { service: 'jwt-sidecar' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  )
  log.on('level-change', (label) => {
    access.level = label
  })
  return access
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
  'jwks.expired': ['error', 'issuer keys expired (maxStale): tokens of this issuer get 503 keys_unavailable'],
}

export function logKeyEvent(log: Logger, e: KeyEvent): void {
  const how = KEY_EVENT_LOG[e.event]
  if (how !== undefined) log[how[0]](e, how[1])
}
