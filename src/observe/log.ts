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

/**
 * @example
 * const log = createLogger({ level: 'info', access: true })
 * log.info({ event: 'jwks.key_added', issuer: 'corp', kid: 'k1' }, 'key added')
 */
export function createLogger(config: Pick<LogConfig, 'level'>, destination?: DestinationStream): Logger {
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

/** Key-set changes are security events: a stable `event` name and no key material beyond the kid and thumbprint. */
export function logKeyEvent(log: Logger, e: KeyEvent): void {
  switch (e.event) {
    case 'jwks.fetch':
      if (e.result === 'success') log.debug(e, 'jwks fetched')
      else log.warn(e, 'jwks fetch failed')
      break
    case 'jwks.key_added':
      log.info(e, 'key added to issuer key set')
      break
    case 'jwks.key_removed':
      log.info(e, 'key removed from issuer key set')
      break
    case 'jwks.key_rejected':
      log.warn(e, 'key rejected')
      break
  }
}
