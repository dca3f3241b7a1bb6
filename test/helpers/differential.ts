/**
 * The differential check of issue #9: for every request variant, what the sidecar decides and
 * what the real app behind it does with the request the sidecar would forward. A finding is a
 * variant the sidecar treats as unprotected (forwarded without the admin requirement) while the
 * app runs its admin handler: a way past a protected route.
 *
 * The sidecar side is its own request decision (`parseTarget`, the header policy, the route
 * matcher with the effective method), not a re-implementation; the app side is a real socket.
 *
 * @example
 * const findings = await findBypasses(apps, requestVariants(), (v) => viewOf(pipeline, v))
 * assert.deepEqual(findings, [])
 */
import { connect } from 'node:net'
import type { RealApp } from './apps.ts'

export interface Variant {
  readonly method: string
  /** The request-target, sent verbatim. */
  readonly target: string
  /** Extra request headers (name as sent: case and `_` kept). */
  readonly headers: Readonly<Record<string, string>>
}

/** What the sidecar does with a variant. */
export type SidecarView =
  | { readonly rejected: true; readonly why?: string }
  | {
      readonly rejected: false
      /** The route the sidecar matched demands the admin scope (or denies). */
      readonly protected: boolean
      readonly route?: string
      /**
       * The request the app would receive from the sidecar: normalised target, stripped headers.
       * Absent: the variant as sent.
       */
      readonly forwarded?: Variant
    }

export interface RawReply {
  readonly status: number
  readonly body: Record<string, unknown> | undefined
  /**
   * The handler that answered, from `body.handler` or, when the body is not JSON, from its
   * opening `{"handler": "..."`: nginx's `return` interpolates `$uri` unescaped, so a path with
   * `"` or `\` breaks its JSON while its admin location still ran.
   */
  readonly handler: 'admin' | 'echo' | undefined
  readonly raw: string
}

const PATHS = [
  // letter case and percent-encoded letters
  '/admin', '/ADMIN', '/Admin/x', '/aDmIn/users', '/%61dmin', '/%41DMIN/x', '/%61%64%6d%69%6e/x',
  // trailing slash, dot segments, repeated slashes
  '/admin/', '/admin/x/', '/x/../admin', '/./admin', '/public/../admin/x', '/public/%2e%2e/admin', '//admin', '//admin//x',
  // dot segments below /admin: express, koa, http.server and Flask route /admin/. and /admin/.. to admin; nginx resolves them
  '/admin/.', '/admin/..', '/ADMIN/./',
  // fragments
  '/admin#x', '/public#/../admin', '/public/x#/admin',
  // `;` parameters (Tomcat-style path parameters)
  '/admin;x', '/admin;/x', '/admin;jsessionid=1/x', '/public;/../admin',
  // encoded slash and backslash, control characters
  '/public/..%2fadmin', '/public%2f..%2fadmin', '/public/..%5cadmin', '/admin%00', '/admin%2f',
  // werkzeug strips leading slashes after wsgiref decodes %2F: Flask routes these to admin
  '/%2fadmin', '/%2Fadmin/x',
  // a quote in the path: nginx echoes $uri into its body unescaped (RawReply.handler copes)
  '/admin/%22',
  // absolute-form (RFC 9112 §3.2.2): express, koa and nginx route on its path
  'http://app/admin', 'HTTP://APP/ADMIN/x',
  // the query never takes part
  '/admin?x=1', '/public?/admin', '/public/x?../../admin',
  // near misses that must stay unprotected everywhere
  '/administrator', '/public/admin', '/x',
]

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const OVERRIDES = ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'X_HTTP_Method_Override']

/**
 * Every path variant with every method, plus POSTs carrying each method-override header. Data,
 * not code: add a row to PATHS, METHODS or OVERRIDES to extend it.
 */
export function requestVariants(): Variant[] {
  const out: Variant[] = []
  for (const target of PATHS) for (const method of METHODS) out.push({ method, target, headers: {} })
  for (const target of ['/admin', '/admin/x', '/public/x']) {
    for (const name of OVERRIDES) for (const m of ['DELETE', 'GET']) out.push({ method: 'POST', target, headers: { [name]: m } })
  }
  return out
}

/**
 * Sends `v` verbatim over a fresh socket (HTTP/1.1, Connection: close) and parses the answer.
 * `body` goes after the head as is, with its Content-Length; without one, a method that may
 * carry a body gets `Content-Length: 0`, so every server frames it the same way.
 */
export function sendRaw(url: string, v: Variant, extraHeaders: Readonly<Record<string, string>> = {}, body?: string): Promise<RawReply> {
  const { hostname, port } = new URL(url)
  const lines = [`${v.method} ${v.target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close']
  for (const [name, value] of Object.entries({ ...v.headers, ...extraHeaders })) lines.push(`${name}: ${value}`)
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  else if (!['GET', 'HEAD', 'OPTIONS', 'DELETE'].includes(v.method)) lines.push('Content-Length: 0')
  return new Promise((resolve) => {
    let raw = ''
    const sock = connect(Number(port), hostname, () => sock.write(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`))
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => { raw += d })
    sock.on('error', () => { /* a reset: close follows */ })
    sock.setTimeout(5_000, () => sock.destroy())
    sock.on('close', () => {
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0)
      const split = raw.indexOf('\r\n\r\n')
      const head = split < 0 ? raw : raw.slice(0, split)
      let text = split < 0 ? '' : raw.slice(split + 4)
      if (/^transfer-encoding:[ \t]*chunked[ \t]*$/im.test(head)) text = dechunk(text)
      let body: Record<string, unknown> | undefined
      try {
        const parsed: unknown = JSON.parse(text)
        body = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined
      } catch {
        body = undefined
      }
      const named = body === undefined ? /^\s*\{\s*"handler"\s*:\s*"(admin|echo)"/.exec(text)?.[1] : body['handler']
      resolve({ status, body, handler: named === 'admin' || named === 'echo' ? named : undefined, raw })
    })
  })
}

/** A chunked body's data (RFC 9112 §7.1), extensions and trailers dropped; a truncated one as far as it goes. */
function dechunk(text: string): string {
  let out = ''
  let at = 0
  for (;;) {
    const eol = text.indexOf('\r\n', at)
    if (eol < 0) return out
    const size = Number.parseInt(text.slice(at, eol).split(';')[0] ?? '', 16)
    if (!Number.isFinite(size) || size <= 0) return out
    out += text.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}

/**
 * Sends, for every app and variant the sidecar would forward, the forwarded request (the variant
 * itself when the view names none) straight to the app; reports each case where the app ran its
 * admin handler on a request the sidecar did not hold to the admin requirement. HEAD answers
 * have no body, so HEAD variants are judged by their GET twin's handler (the same route in every
 * framework tried).
 *
 * @example
 * // A view that protects nothing: every variant an app routes to admin is a finding.
 * await findBypasses([app], requestVariants(), () => ({ rejected: false, protected: false }))
 * // → ['express5: GET /ADMIN {} -> app served admin (as GET /ADMIN), sidecar route (none) unprotected', ...]
 */
export async function findBypasses(apps: readonly RealApp[], variants: readonly Variant[], sidecarView: (v: Variant) => SidecarView): Promise<string[]> {
  const findings: string[] = []
  for (const v of variants) {
    const view = sidecarView(v)
    if (view.rejected || view.protected) continue
    const forwarded = view.forwarded ?? v
    const probe = forwarded.method === 'HEAD' ? { ...forwarded, method: 'GET' } : forwarded
    for (const app of apps) {
      const r = await sendRaw(app.url, probe)
      if (r.handler === 'admin') {
        findings.push(`${app.kind}: ${v.method} ${v.target} ${JSON.stringify(v.headers)} -> app served admin (as ${probe.method} ${probe.target}), sidecar route ${view.route ?? '(none)'} unprotected`)
      }
    }
  }
  return findings
}
