/**
 * A bound on how deeply a key document (JWKS, OIDC discovery document, static JWK/JWKS file)
 * may nest, checked by one linear scan BEFORE `JSON.parse` sees the text.
 *
 * Why before: `JSON.parse` builds every level it reads. Issue #9 §8 measured a 400,000-deep
 * document (`[[[[…`, under the 1 MiB `fetch.maxBytes`) at a 346 MiB RSS peak and a 206 ms
 * blocked event loop; the byte cap alone does not stop it, because nesting costs far more per
 * byte than flat data. The scan below costs one pass over text we already hold, allocates
 * nothing, and stops at the first level past the bound (a 400,000-deep document is refused
 * after 33 characters).
 *
 * It only measures depth: it does not validate JSON. Malformed text that stays within the
 * bound is left to `JSON.parse` to refuse, as before.
 */

/**
 * Deepest nesting accepted, counting every object and array (`{}` is 1).
 *
 * Real key documents are shallow: a JWKS is 4 (`{"keys":[{"x5c":["…"]}]}`), an OIDC discovery
 * document 2 (`mtls_endpoint_aliases`, RFC 8705 §5). 32 leaves room for any vendor extension
 * member a provider may add (we must not break on decoration we ignore), and it is still far
 * from where nesting costs anything: the 346 MiB over 400,000 levels is under 1 KiB a
 * level, so 32 levels are nothing. Width stays bounded by `fetch.maxBytes` (and
 * MAX_KEY_FILE_BYTES for files); the number of keys by MAX_JWKS_KEYS (key-set.ts).
 */
export const MAX_JSON_DEPTH = 32

const QUOTE = 0x22 // "
const BACKSLASH = 0x5c // \
const OPEN_BRACE = 0x7b // {
const CLOSE_BRACE = 0x7d // }
const OPEN_BRACKET = 0x5b // [
const CLOSE_BRACKET = 0x5d // ]

/**
 * The index of the first `{` or `[` that opens level `maxDepth + 1` of `text`, or undefined
 * when `text` never nests deeper than `maxDepth`. Brackets inside strings do not count.
 *
 * Linear in `text.length`: each character is looked at a bounded number of times, and string
 * bodies are skipped with `indexOf` (a 1 MiB string costs microseconds, not a loop per char).
 *
 * @example
 * ```ts
 * jsonDepthExceededAt('{"keys":[{"x5c":["MII…"]}]}', 32) // undefined (depth 4)
 * jsonDepthExceededAt('[[[', 2)                          // 2 (the third '[')
 * jsonDepthExceededAt('{"a":"[[[[[[[[["}', 2)             // undefined: brackets in a string
 * ```
 */
export function jsonDepthExceededAt(text: string, maxDepth: number = MAX_JSON_DEPTH): number | undefined {
  let depth = 0
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      // RFC 8259 §7: inside a string, a quote preceded by an odd run of backslashes is escaped
      // (`\"`, `\\\"`); after an even run (`\\"`) it ends the string. Every other escape
      // (`\uXXXX`, `\n`, …) contains no quote, so only the quote positions need looking at.
      for (;;) {
        const close = text.indexOf('"', i + 1)
        // An unterminated string: nothing after it can open a level; JSON.parse refuses it.
        if (close === -1) return undefined
        let k = close - 1
        while (text.charCodeAt(k) === BACKSLASH) k--
        i = close
        if ((close - 1 - k) % 2 === 0) break
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return i
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      // Unbalanced closers make depth go below 0; JSON.parse refuses such text at that point,
      // before anything after it could nest, so the count need not be clamped.
      depth--
    }
  }
  return undefined
}
