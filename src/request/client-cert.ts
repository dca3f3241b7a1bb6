/**
 * The client certificate a certificate-bound token is checked against (RFC 8705 §3): its
 * SHA-256 thumbprint, base64url, the form of `cnf["x5t#S256"]`. Two sources, one per config:
 *
 * - the TLS listener with `tls.clientCaFile`: the certificate the client presented in the
 *   handshake (node:tls, already verified against the CA, or the handshake failed);
 * - `clientCertificateHeader`: TLS is terminated by a trusted ingress in front of the pod,
 *   which passes the client certificate in a header (Envoy's `x-forwarded-client-cert`,
 *   nginx's `$ssl_client_escaped_cert`). A header is client text: it is read only when the
 *   connection comes from an address the operator listed in `trustedPeers`, and it is never
 *   forwarded to the app (proxy/upstream-headers.ts), so an app cannot be fooled by it either.
 *
 * Read only for a token that carries `cnf["x5t#S256"]`: the common request pays nothing.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { BlockList, isIP } from 'node:net'
import type { ClientCertificateHeaderConfig, SidecarConfig } from '../config/types.ts'
import { headerCount } from '../http/header-names.ts'

type Headers = Readonly<Record<string, string | string[] | undefined>>

/**
 * The connection a request came in on, as far as the decision needs it. node:net's Socket
 * and node:tls's TLSSocket fit it as they are; `jwt-sidecar verify` builds one by hand.
 */
export interface Connection {
  readonly remoteAddress?: string | undefined
  /** node:tls: the verified client certificate, when the listener asked for one. */
  getPeerX509Certificate?(): { readonly raw: Uint8Array } | undefined
}

/** The request as this module reads it. */
export interface CertificateRequest {
  readonly headers: Headers
  readonly rawHeaders: readonly string[]
  readonly connection?: Connection | undefined
}

/** A thumbprint, or why there is none (for logs: never the certificate itself). */
export type CertificateRead = { readonly ok: true; readonly thumbprint: string } | { readonly ok: false; readonly why: string }

export interface ClientCertificates {
  /** Where certificates come from: `none` when the config has no source at all. */
  readonly source: 'tls' | 'header' | 'none'
  read(req: CertificateRequest): CertificateRead
}

const NONE: ClientCertificates = {
  source: 'none',
  read: () => ({ ok: false, why: 'no client certificate source is configured (tls.clientCaFile or clientCertificateHeader)' }),
}

/**
 * @example
 * const certs = createClientCertificates(config)
 * const c = certs.read({ headers, rawHeaders, connection: socket })
 * if (c.ok && c.thumbprint === cnf['x5t#S256']) // bound to this certificate
 */
export function createClientCertificates(config: Pick<SidecarConfig, 'tls' | 'clientCertificateHeader'>): ClientCertificates {
  const header = config.clientCertificateHeader
  if (header !== undefined) return fromHeader(header)
  if (config.tls?.clientCaFile !== undefined) return FROM_TLS
  return NONE
}

const FROM_TLS: ClientCertificates = {
  source: 'tls',
  read(req) {
    const cert = req.connection?.getPeerX509Certificate?.()
    if (cert === undefined) return { ok: false, why: 'the connection presented no client certificate' }
    return { ok: true, thumbprint: thumbprint(cert.raw) }
  },
}

function fromHeader(config: ClientCertificateHeaderConfig): ClientCertificates {
  const trusted = trustedPeers(config.trustedPeers)
  const name = config.name.toLowerCase()
  const parse = config.format === 'xfcc' ? fromXfcc : fromPem
  return {
    source: 'header',
    read(req) {
      const value = req.headers[name]
      if (value === undefined) return { ok: false, why: `no ${name} header` }
      const address = req.connection?.remoteAddress
      // A client that reaches the pod directly could write any certificate into the header.
      if (address === undefined || !trusted.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')) {
        return { ok: false, why: `${name} came from a peer not in clientCertificateHeader.trustedPeers` }
      }
      if (Array.isArray(value) || headerCount(req.rawHeaders, name) > 1) return { ok: false, why: `more than one ${name} header` }
      return parse(value)
    },
  }
}

/** `10.0.0.0/8`, `10.1.2.3`, `::1`, `fd00::/8` (checked by config/checks/server.ts). */
function trustedPeers(list: readonly string[]): BlockList {
  const b = new BlockList()
  for (const entry of list) {
    const [address = '', prefix] = entry.split('/')
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (prefix === undefined) b.addAddress(address, type)
    else b.addSubnet(address, Number(prefix), type)
  }
  return b
}

/** RFC 8705 §3.1 `x5t#S256`: base64url SHA-256 of the certificate's DER. */
export function thumbprint(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('base64url')
}


const HEX_SHA256 = /^[0-9a-fA-F]{64}$/

/**
 * Envoy's x-forwarded-client-cert: `By=…;Hash=<hex SHA-256 of the DER>;Cert="<URL-encoded
 * PEM>";Subject="…"`, one element per proxy that handled the request, comma-separated. More
 * than one element means certificates from several hops: which one the token's client holds
 * is ambiguous, so it is refused (configure the ingress to set, not append: Envoy's
 * `forward_client_cert_details: SANITIZE_SET`).
 */
function fromXfcc(value: string): CertificateRead {
  const pairs = splitOutsideQuotes(value, ',')
  if (pairs.length !== 1) return { ok: false, why: `x-forwarded-client-cert has ${pairs.length} elements; expected the client's only` }
  let hash: string | undefined
  let cert: string | undefined
  for (const pair of splitOutsideQuotes(pairs[0]!, ';')) {
    const eq = pair.indexOf('=')
    if (eq < 0) continue
    const key = pair.slice(0, eq).trim().toLowerCase()
    const raw = pair.slice(eq + 1).trim()
    const v = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1).replaceAll('\\"', '"') : raw
    // A key twice in one element is as ambiguous as two elements.
    if ((key === 'hash' && hash !== undefined) || (key === 'cert' && cert !== undefined)) return { ok: false, why: `x-forwarded-client-cert names ${key} twice` }
    if (key === 'hash') hash = v
    else if (key === 'cert') cert = v
  }
  if (hash !== undefined) {
    if (!HEX_SHA256.test(hash)) return { ok: false, why: 'x-forwarded-client-cert Hash is not a hex SHA-256' }
    return { ok: true, thumbprint: Buffer.from(hash, 'hex').toString('base64url') }
  }
  if (cert !== undefined) return fromPem(cert)
  return { ok: false, why: 'x-forwarded-client-cert has neither Hash nor Cert' }
}

/**
 * A URL-encoded PEM certificate (nginx `$ssl_client_escaped_cert`, AWS ALB
 * `X-Amzn-Mtls-Clientcert`), or its base64 DER body without the PEM lines (Traefik). The
 * first certificate is the client's (a chain lists the leaf first).
 */
function fromPem(value: string): CertificateRead {
  let text: string
  try {
    text = decodeURIComponent(value)
  } catch {
    return { ok: false, why: 'the client certificate header is not URL-encoded' }
  }
  const pem = text.includes('-----BEGIN') ? text : `-----BEGIN CERTIFICATE-----\n${text.replace(/\s+/g, '')}\n-----END CERTIFICATE-----\n`
  try {
    return { ok: true, thumbprint: thumbprint(new X509Certificate(pem).raw) }
  } catch {
    return { ok: false, why: 'the client certificate header does not hold a certificate' }
  }
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = []
  let start = 0
  let quoted = false
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === '\\' && quoted) i++
    else if (c === '"') quoted = !quoted
    else if (c === sep && !quoted) {
      out.push(s.slice(start, i))
      start = i + 1
    }
  }
  out.push(s.slice(start))
  return out
}
