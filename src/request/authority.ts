/**
 * An HTTP/2 request's authority, made the `Host` every later step reads (the DPoP `htu`,
 * X-Forwarded-Host, the upstream request's own Host is ours anyway). HTTP/2 carries the
 * authority in the `:authority` pseudo-header, and a client may also send a `host` field
 * (RFC 9113 §8.3.1). Two places for one fact is the ambiguity a proxy must not resolve by
 * guessing, because the app behind it could pick the other one: so they must agree, or the
 * request is refused (§8.3.1: "A server SHOULD treat a request as malformed if it contains a
 * Host header field that identifies an entity that differs from the entity in the
 * :authority pseudo-header field"; we always do: fail closed).
 *
 * An intermediary that turns the request into HTTP/1.1 "MUST create a Host field if one is
 * not present in a request by copying the value of the :authority pseudo-header field"
 * (§8.3.1); the header object is given that `host`, so the rest of the request path, written
 * for HTTP/1.1, reads the same value it would have read there. The pseudo-headers themselves
 * are never copied upstream (http/header-names.ts `endToEndHeaders`).
 */

type MutableHeaders = Record<string, string | string[] | undefined>

/**
 * Checks an HTTP/2 request's `:authority` against its `host` fields and sets `headers.host`
 * to the one authority. Returns why the request is malformed, or undefined when it is not.
 * `rawHeaders` is Node's flat [name, value, …] list: a repeated `host`, which Node's header
 * object keeps only the first of, is seen there.
 *
 * @example
 * const why = http2Authority(req.headers, req.rawHeaders) // req.headers.host === req.headers[':authority']
 * if (why !== undefined) refuse(400, why)
 */
export function http2Authority(headers: MutableHeaders, rawHeaders: readonly string[]): string | undefined {
  const authority = headers[':authority']
  let host: string | undefined
  let hosts = 0
  // HTTP/2 field names are lower case (RFC 9113 §8.2.1; nghttp2 refuses others).
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i] !== 'host') continue
    hosts++
    host = rawHeaders[i + 1]
  }
  // RFC 9112 §3.2 says as much for HTTP/1.1: one Host, or 400.
  if (hosts > 1) return 'more than one host header'
  if (typeof authority !== 'string' || authority === '') {
    if (host === undefined || host === '') return 'HTTP/2 request without :authority or host'
    // §8.3.1: a request translated from HTTP/1.1 may carry host alone; it is the authority then.
    headers.host = host
    return undefined
  }
  // §8.3.1: no userinfo in an http(s) authority; it would also reach the DPoP htu.
  if (authority.includes('@')) return ':authority with userinfo (RFC 9113 §8.3.1)'
  // The authority's host is case-insensitive (RFC 3986 §3.2.2); anything else must be equal.
  if (host !== undefined && host.toLowerCase() !== authority.toLowerCase()) return 'host header differs from :authority (RFC 9113 §8.3.1)'
  headers.host = authority
  return undefined
}
