/**
 * Which header names the config may set: shared by the issuers' fetch headers, the token
 * sources and the identity headers.
 */
import { isToken } from '../../http/grammar.ts'
import { FRAMING, HOP_BY_HOP } from '../../http/header-names.ts'

/**
 * Headers an identity header must never be: hop-by-hop ones are removed by every proxy on
 * the way (RFC 9110 §7.6.1), and Host and the framing headers would corrupt the forwarded
 * request (RFC 9112 §6).
 */
const RESERVED_HEADERS: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...FRAMING])

export const INVALID_HEADER_NAME = "is not a valid HTTP header name (RFC 9110 §5.6.2: letters, digits and !#$%&'*+-.^_`|~)"

/** Why the sidecar cannot set a header of this name, or undefined when it can. */
export function headerNameProblem(name: string): string | undefined {
  if (!isToken(name)) return INVALID_HEADER_NAME
  if (RESERVED_HEADERS.has(name.toLowerCase())) {
    return 'cannot be used: hop-by-hop and framing headers (Connection, Host, Content-Length, Transfer-Encoding, ...) are not forwarded as set'
  }
  return undefined
}
