/**
 * The HTTP and bearer-token grammar, in one place: every unit that checks a header name, a
 * method, a credential or optional whitespace asks this module, so the config loader, the key
 * fetcher and the request path can never disagree about what is valid (issue #9 §5).
 */

/** RFC 9110 §5.6.2 tchar, as the body of a character class (also a JSON Schema `pattern` body). */
const TCHAR_CLASS = "!#$%&'*+\\-.^_`|~0-9A-Za-z"

/** RFC 9110 §5.6.2 `token = 1*tchar`: field names, methods, auth-schemes, cookie names (RFC 6265 §4.1.1). */
export const TOKEN_PATTERN = `^[${TCHAR_CLASS}]+$`
const TOKEN = new RegExp(TOKEN_PATTERN)

/**
 * RFC 6750 §2.1 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`:
 * what a bearer credential may be. A compact JWS (base64url and dots) is one.
 */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

/** True for an RFC 9110 token (a valid header field name, method or auth-scheme). */
export function isToken(s: string): boolean {
  return TOKEN.test(s)
}

/** True for an RFC 6750 b64token: nothing else may stand where a bearer token is read. */
export function isB64Token(s: string): boolean {
  return B64TOKEN.test(s)
}

/**
 * RFC 9110 §5.6.3: optional whitespace is SP and HTAB only. String.prototype.trim() also
 * removes U+00A0, U+FEFF and the other Unicode spaces, so a credential followed by a 0xA0
 * byte would be read as valid by us and as something else by the app (issue #9 §3).
 */
export function trimOws(s: string): string {
  let start = 0
  let end = s.length
  while (start < end && isOwsChar(s.charCodeAt(start))) start++
  while (end > start && isOwsChar(s.charCodeAt(end - 1))) end--
  return start === 0 && end === s.length ? s : s.slice(start, end)
}

function isOwsChar(c: number): boolean {
  return c === 0x20 || c === 0x09
}
