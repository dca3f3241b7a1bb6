/**
 * The request id (issue #14 §5): one value that ties a client's report, the sidecar's access
 * and event lines and the app's own logs to one request. It is fastify's `request.id`, so
 * every line server.ts logs for the request carries it as `reqId`; the upstream receives it as
 * `X-Request-Id` (upstream-headers.ts) and the client gets it back on the response, denials
 * included (server.ts, forward.ts).
 *
 * A client's (or an ingress's) `X-Request-Id` is kept when it is a plausible id: 1 to 128
 * characters of the RFC 9110 §5.6.2 `token` set (letters, digits and !#$%&'*+-.^_`|~; a UUID,
 * a ULID and nginx's $request_id all fit). Anything else (spaces, quotes, control bytes, two
 * headers joined by ", ", a kilobyte of text) is replaced rather than repaired, so a log line
 * never carries more than 128 plain bytes of client text in this field.
 *
 * A generated id is a random per-process prefix and a counter, `1f3a9c0b5e7d-2s`: unique
 * across processes and restarts without a random draw per request. The counter stays a small
 * integer (V8 SMI, as fastify's own default does); when it wraps, the prefix is drawn again.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** The longest client id kept. */
export const MAX_REQUEST_ID_LENGTH = 128

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Whether a client's `X-Request-Id` is kept as it is. */
export function isValidRequestId(value: string): boolean {
  return value.length > 0 && value.length <= MAX_REQUEST_ID_LENGTH && TOKEN.test(value)
}

export interface RequestIdOptions {
  /** The per-process prefix (default 12 random hex digits); drawn again when the counter wraps. */
  readonly randomPrefix?: () => string
  /** The counter's value before the first id (default 0); tests start near the wrap. */
  readonly counterStart?: number
}

/** The counter's last value before it wraps: the largest V8 small integer. */
export const MAX_COUNTER = 0x7fffffff

/**
 * fastify's `genReqId`: the client's valid `X-Request-Id`, else a new id.
 *
 * @example
 * fastify({ genReqId: createRequestIds() })
 */
export function createRequestIds(options: RequestIdOptions = {}): (req: IncomingMessage) => string {
  const randomPrefix = options.randomPrefix ?? (() => randomBytes(6).toString('hex'))
  let prefix = `${randomPrefix()}-`
  let n = options.counterStart ?? 0
  return (req) => {
    const given = req.headers['x-request-id']
    if (typeof given === 'string' && isValidRequestId(given)) return given
    if (n === MAX_COUNTER) {
      n = 0
      prefix = `${randomPrefix()}-`
    }
    n++
    return prefix + n.toString(36)
  }
}
