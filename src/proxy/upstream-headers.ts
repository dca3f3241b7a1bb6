/**
 * The headers an admitted request carries upstream, beyond its own end-to-end ones: the
 * sidecar's X-Forwarded-* view of the connection and the verified identity (claims → headers,
 * request/headers.ts), with the token itself removed unless `identity.forwardToken`. The HTTP
 * forward and the websocket client apply the same rewrite.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { SidecarConfig } from '../config/types.ts'
import type { Logger } from '../observe/log.ts'
import type { Pipeline } from '../request/pipeline.ts'
import type { Claims } from '../verify/verifier.ts'
import type { BoundTo } from '../request/binding.ts'
import { withoutCookies } from '../verify/extract.ts'

/** The parts of a request the upstream-bound header rewrites read (HTTP and websocket alike). */
export interface UpstreamBoundRequest {
  /** The request id (request-id.ts): sent on as X-Request-Id, and on this request's log lines. */
  readonly id: string
  readonly headers: IncomingHttpHeaders
  readonly socket: Socket
  readonly auth: { readonly route: string; readonly claims: Claims | undefined; readonly binding: BoundTo | undefined } | null
  readonly pipeline: Pipeline | null
}

type OutHeaders = Record<string, string | string[] | undefined>

/** Writes X-Forwarded-* and the identity headers into `out` (names unset are `undefined`). */
export type UpstreamHeaders = (request: UpstreamBoundRequest, out: OutHeaders) => void

export interface UpstreamHeadersDeps {
  readonly config: SidecarConfig
  /** The current pipeline, for a request that carries none. */
  readonly pipeline: () => Pipeline
  readonly log: Logger
}

/**
 * @example
 * const upstreamHeaders = createUpstreamHeaders({ config, pipeline: () => current, log })
 * upstreamHeaders(request, out)
 */
export function createUpstreamHeaders(deps: UpstreamHeadersDeps): UpstreamHeaders {
  const { config, log } = deps

  /**
   * X-Forwarded-* for the upstream request. Names the sidecar owns or must not pass on are
   * set to `undefined`, not deleted: undici skips undefined values (core/request.js
   * processHeader), and a `delete` would turn the header object into a slow dictionary that
   * undici then iterates (the websocket path, whose client refuses undefined, drops them).
   */
  function forwardedHeaders(request: UpstreamBoundRequest, out: OutHeaders): void {
    const peer = peerOf(request.socket)
    const inbound = request.headers
    const append = (request.pipeline?.config ?? config).upstream.xForwarded === 'append'
    const xff = append ? inbound['x-forwarded-for'] : undefined
    out['x-forwarded-for'] = xff === undefined || xff === '' ? peer.ip : `${String(xff)}, ${peer.ip}`
    out['x-forwarded-proto'] = append && inbound['x-forwarded-proto'] !== undefined ? inbound['x-forwarded-proto'] : peer.proto
    out['x-forwarded-host'] = append && inbound['x-forwarded-host'] !== undefined ? inbound['x-forwarded-host'] : inbound.host
    if (!append) {
      // `replace`: the upstream learns the sidecar's view only; the client's own claims about
      // the path it took (RFC 7239 Forwarded, X-Real-IP) would contradict it.
      if (out.forwarded !== undefined) out.forwarded = undefined
      if (out['x-real-ip'] !== undefined) out['x-real-ip'] = undefined
    }
  }

  function identityHeaders(request: UpstreamBoundRequest, out: OutHeaders): void {
    const p = request.pipeline ?? deps.pipeline()
    const claims = request.auth?.claims
    if (claims !== undefined) {
      const dropped = p.headers.setIdentity(out, claims, request.auth?.binding)
      if (dropped !== undefined) {
        for (const { header, cause, bytes } of dropped) {
          if (cause === 'too_long') log.warn({ event: 'identity.dropped', reqId: request.id, route: request.auth?.route, header, cause, bytes, maxValueBytes: p.config.identity.maxValueBytes }, 'identity header value too long: not sent')
          else log.warn({ event: 'identity.dropped', reqId: request.id, route: request.auth?.route, header, cause }, 'identity header array has an element that is not a scope token (arrays: space): not sent')
        }
      }
    }
    // RFC 9449: a DPoP proof is for this hop only; the app never receives it (issue #13 §2).
    if (out.dpop !== undefined) out.dpop = undefined
    // The trusted ingress's client certificate header is the sidecar's input, not the app's:
    // sent by anyone else it is a forgery, and the app learns the verified binding instead.
    const certHeader = p.certificateHeader
    if (certHeader !== undefined && out[certHeader] !== undefined) out[certHeader] = undefined
    if (!p.config.identity.forwardToken) {
      // The token is removed from wherever it could have come (the query already is).
      for (const h of p.tokenHeaders) if (out[h] !== undefined) out[h] = undefined
      const cookie = out.cookie
      if (p.tokenCookies.size > 0 && typeof cookie === 'string') out.cookie = withoutCookies(cookie, p.tokenCookies)
    }
  }

  return (request, out) => {
    forwardedHeaders(request, out)
    identityHeaders(request, out)
    // Last: the id the access line names is the one the app sees, whatever the client sent.
    out['x-request-id'] = request.id
  }
}

const kPeer = Symbol('jwt-sidecar.peer')

/**
 * The client address and scheme of a connection, read once per connection (a keep-alive
 * connection carries many requests; `remoteAddress` is a getter into the socket handle).
 */
export function peerOf(socket: Socket): { readonly ip: string; readonly proto: 'http' | 'https' } {
  const s = socket as Socket & { [kPeer]?: { readonly ip: string; readonly proto: 'http' | 'https' }; encrypted?: unknown }
  let peer = s[kPeer]
  if (peer === undefined) {
    peer = { ip: s.remoteAddress ?? '', proto: s.encrypted === true ? 'https' : 'http' }
    // Only once the address is known: a socket asked before it has one is asked again.
    if (peer.ip !== '') s[kPeer] = peer
  }
  return peer
}
