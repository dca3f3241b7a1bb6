/**
 * The schema of `tokens`: where tokens are read from, and the limits and caches applied
 * around their verification. Part of src/config/schema.ts; the descriptions are the
 * reference's "Meaning" column (docs/reference/configuration.md, scripts/gen-docs.ts).
 */
import { TOKEN_PATTERN } from '../../http/grammar.ts'
import { EXPECTED, duration, size, boolean, settings, doc, NON_EMPTY_STRING, HEADER_NAME } from '../schema-nodes.ts'
import type { SchemaNode } from '../schema-nodes.ts'

const tokenSource = {
  type: 'object',
  additionalProperties: false,
  // Exactly one of header / cookie / query: checked in checks/tokens.ts, with a clearer message than oneOf.
  properties: {
    header: doc('A header to read. It must be a valid HTTP header name (RFC 9110 token characters).', HEADER_NAME),
    // A prefix ends up compared against a header value, which cannot hold CR or LF (RFC 9110 §5.5).
    prefix: doc(
      'For a `header` source: the scheme prefix to remove, compared case-insensitively, on one line. A header that does not start with the prefix is ignored. The token is whatever follows the prefix, trimmed.',
      { type: 'string', pattern: '^[^\\r\\n]*$', [EXPECTED]: 'a prefix on one line, like "Bearer "' },
      '`""`',
    ),
    // RFC 6265 §4.1.1: a cookie-name is an RFC 9110 token.
    cookie: doc('A cookie to read (RFC 6265; a quoted value is unquoted).', { type: 'string', pattern: TOKEN_PATTERN, [EXPECTED]: 'a cookie name' }),
    query: doc(
      'A query parameter to read (percent-decoded). It is always removed from the URL before forwarding (RFC 6750 §2.3: URLs end up in logs).',
      { ...NON_EMPTY_STRING, [EXPECTED]: 'a query parameter name' },
    ),
  },
  [EXPECTED]: 'a token source: {header: Authorization, prefix: "Bearer "}, {cookie: name} or {query: name}',
} as const satisfies SchemaNode

/** `tokens`: every key optional. */
export const tokens = settings('a map with from, clockSkew, maxBytes, cache and dpopReplayCache', {
  from: doc(
    'A non-empty list of token sources, each exactly one of `header`, `cookie` or `query`; see [Token sources](docs/how-it-works.md#token-sources). Duplicates are an error.',
    {
      type: 'array',
      minItems: 1,
      items: tokenSource,
      // RFC 6750 §2.1: the bearer token travels in Authorization with the Bearer scheme.
      default: [{ header: 'Authorization', prefix: 'Bearer ' }],
      [EXPECTED]: 'a non-empty list of token sources',
    },
  ),
  clockSkew: doc('The tolerance on `exp`, `nbf` and `iat` (a token\'s and a DPoP proof\'s). At most `5m`.', duration('60s')),
  maxBytes: doc('A longer token is rejected as `malformed` before it is parsed. Must be > 0.', size('8KiB')),
  // The verified-token cache (verify/token-cache.ts): on by default, bounded both ways.
  cache: doc(
    'The verified-token cache; see [The verified-token cache](docs/how-it-works.md#the-verified-token-cache).',
    settings('a map with enabled, maxEntries and maxBytes', {
      enabled: doc(
        'Keep tokens that passed verification, so the same token is not verified again on every request; see [The verified-token cache](docs/how-it-works.md#the-verified-token-cache). `false` verifies every request in full.',
        boolean(true),
      ),
      maxEntries: doc(
        'At most this many tokens, a whole number from 1 to 1,000,000. The least recently used goes first.',
        { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000, [EXPECTED]: 'a whole number from 1 to 1000000' },
      ),
      maxBytes: doc('At most this many estimated bytes (token + claims + bookkeeping per entry). Must be > 0.', size('32MiB')),
    }),
  ),
  // The DPoP proof replay cache (verify/dpop-replay.ts), one per process: about 120 bytes
  // per proof, each kept proofMaxAge + clockSkew after its iat. Full refuses (fail closed).
  dpopReplayCache: doc(
    'The DPoP proof replay cache, one per process (see [Sender-constrained tokens](docs/how-it-works.md#sender-constrained-tokens-dpop)).',
    settings('a map with maxEntries', {
      maxEntries: doc(
        'At most this many proofs remembered (about 120 bytes each); when full, new proofs are refused, never a live one evicted. 1 to 10000000. A change takes effect at the next restart.',
        { type: 'integer', minimum: 1, maximum: 10_000_000, default: 100_000, [EXPECTED]: 'a whole number from 1 to 10000000' },
      ),
    }),
  ),
})
