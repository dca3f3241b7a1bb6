/**
 * The schema of `identity`: what the upstream learns about the caller, and which inbound
 * headers are removed so it cannot be forged. Part of src/config/schema.ts; the descriptions
 * are the reference's "Meaning" column (docs/reference/configuration.md, scripts/gen-docs.ts).
 */
import { EXPECTED, size, boolean, oneOf, settings, doc, CLAIM_PATH, ARRAY_FORMS, HEADER_NAME } from '../schema-nodes.ts'

/** `identity`: every key optional. */
export const identity = settings('a map with headers, strip, forwardToken, arrays, maxValueBytes, claimsHeader, bindingHeader and underscoreHeaders', {
  headers: doc(
    'A map of upstream header name to claim name, or to `{claim: NAME, arrays: join|json|space}` for a header with its own array form, set only on verified requests (see [Identity headers](docs/how-it-works.md#identity-headers)). These names are always stripped from inbound requests. A name must be a valid header name, unique case-insensitively, and not a token-source header. It also cannot be a hop-by-hop or framing header (`Connection`, `Keep-Alive`, `Proxy-Authenticate`, `Proxy-Authorization`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Host`, `Content-Length`).',
    {
      type: 'object',
      // A claim, or a claim with its own array form: one config can forward `groups`
      // comma-joined and `scp` space-joined (issue #12 §7).
      additionalProperties: {
        anyOf: [
          CLAIM_PATH,
          {
            type: 'object',
            additionalProperties: false,
            required: ['claim'],
            properties: {
              claim: doc('The claim, a name like `sub` or a dotted path like `realm_access.roles`.', CLAIM_PATH),
              arrays: doc("This header's array form, in place of `identity.arrays`.", oneOf(ARRAY_FORMS)),
            },
            [EXPECTED]: 'a map with claim and arrays, like {claim: scp, arrays: space}',
          },
        ],
        [EXPECTED]: 'a claim name like sub, a dotted path like realm_access.roles, or {claim: scp, arrays: space}',
      },
      default: {},
      [EXPECTED]: 'a map of upstream header name to claim name',
    },
  ),
  strip: doc(
    'Header names or `*` patterns removed from every inbound request, case-insensitively. A pattern that would match a token-source header is an error.',
    {
      type: 'array',
      items: { type: 'string', minLength: 1, [EXPECTED]: 'a header name or a pattern with *' },
      default: [],
      [EXPECTED]: 'a list of header names or patterns with *',
    },
  ),
  forwardToken: doc(
    'Passes the token on to the upstream where it came from (header or cookie). When `false`, token-source headers and token cookies are removed from every forwarded request. A query token is removed either way.',
    boolean(true),
  ),
  arrays: doc(
    "Array claims become `a,b` (`join`), JSON `[\"a\",\"b\"]` (`json`) or `a b` (`space`, scope tokens only, else the header is not sent). A header's own `{claim, arrays}` overrides it.",
    oneOf(ARRAY_FORMS, 'join'),
  ),
  maxValueBytes: doc('A longer identity header value is not sent, and an `identity.dropped` warning is logged.', size('4KiB')),
  claimsHeader: doc(
    'A header carrying the whole verified payload as base64url JSON (for apps that need more than a few claims). Stripped from inbound requests like every identity header.',
    HEADER_NAME,
  ),
  // RFC 9449 / RFC 8705: what a sender-constrained token was proven with (request/binding.ts).
  bindingHeader: doc(
    'A header carrying what a sender-constrained token was proven with: `jkt=<thumbprint>` (DPoP, RFC 9449), `x5t#S256=<thumbprint>` (client certificate, RFC 8705), or both, comma-separated. Not sent for an unbound token. Stripped from inbound requests like every identity header.',
    HEADER_NAME,
  ),
  // nginx's default (underscores_in_headers off): behind CGI/WSGI/PHP a `_` name is a `-` name.
  underscoreHeaders: doc(
    'Inbound header names containing `_`: `drop` them, `reject` the request (`400 invalid_request`), or `allow` them. A `_` spelling of a protected or sidecar-owned name is removed in every mode. See [Header names with `_`](docs/how-it-works.md#header-names-with-_).',
    oneOf(['drop', 'reject', 'allow'], 'drop'),
  ),
})
