/**
 * The schema of the sections about the sidecar's own servers: `upstream`, `admin`,
 * `shutdown`, `requests` and `log`. Part of src/config/schema.ts; the descriptions are the
 * reference's "Meaning" column (docs/reference/configuration.md, scripts/gen-docs.ts).
 */
import { EXPECTED, duration, listen, boolean, oneOf, settings, doc, URL_STRING } from '../schema-nodes.ts'
import type { SchemaNode } from '../schema-nodes.ts'

export const upstream = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: doc("The app's base URL, `http://` or `https://`, with no query or fragment. The request path and query are appended to it.", URL_STRING),
    timeout: doc(
      "How long to wait for the upstream's response headers, and between body chunks. Must be > 0. Exceeding it gives `504 upstream_timeout`.",
      duration('30s'),
    ),
    xForwarded: doc('`append` or `replace`; see [X-Forwarded-\\*](docs/how-it-works.md#how-a-request-is-handled).', oneOf(['append', 'replace'], 'append')),
    drainsBodies: doc(
      '`true` declares that every handler of the app reads request bodies to the end, so an upstream connection that carried a body may be reused. With `false`, such a connection is closed after its response, so unread body bytes can never be parsed by the app as a request of their own (see [Request bodies](docs/how-it-works.md#how-a-request-is-handled)). Needs a restart.',
      boolean(false),
    ),
  },
  [EXPECTED]: 'a map with url, timeout, xForwarded and drainsBodies',
} as const satisfies SchemaNode

export const admin = settings('a map with listen and maxEventLoopDelay', {
  listen: doc("The admin port's address. It must not share `listen`'s port (on the same host or on a wildcard).", listen('0.0.0.0:9901')),
  maxEventLoopDelay: doc(
    '`/healthz` answers 503 while the event loop has been blocked longer than this within the last 10–20 s: a stuck process fails liveness instead of silently timing out requests.',
    duration('2s'),
  ),
})

export const shutdown = settings('a map with delay and timeout', {
  delay: doc('How long the sidecar keeps serving after SIGTERM, with `/readyz` failing, while endpoints update.', duration('5s')),
  timeout: doc('How long in-flight requests may take to finish after the listener closes; then connections are cut.', duration('25s')),
})

export const requests = settings('a map with methodOverride and timeout', {
  methodOverride: doc(
    '`strip` removes `X-HTTP-Method-Override`, `X-HTTP-Method` and `X-Method-Override` from every request. `honor` forwards them and matches a `POST` carrying one as the method it names. See [Method overrides](docs/how-it-works.md#header-names-with-_).',
    oneOf(['strip', 'honor'], 'strip'),
  ),
  timeout: doc(
    'The whole request, headers and body, must arrive within this; otherwise `408 request_timeout` and the connection is closed. Must be > 0. Raise it for slow uploads. Needs a restart.',
    duration('60s'),
  ),
})

export const log = settings('a map with level, access and format', {
  level: doc('One of `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.', oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info')),
  access: doc('One `http.access` line per proxied request, with its duration (`durationMs`), the client address (`clientIp`) and the request id (`reqId`, also sent upstream and returned as `X-Request-Id`).', boolean(true)),
  format: doc(
    '`json`: one JSON object per line, for a log pipeline. `pretty`: one readable line per event (time, level, event, message, the main fields), for a person at a terminal, with the same redaction. Needs a restart.',
    oneOf(['json', 'pretty']),
    '`pretty` when stdout is a terminal, else `json`',
  ),
})
