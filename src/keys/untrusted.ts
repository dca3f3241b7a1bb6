/**
 * Values from a provider's JWKS or an operator's key file end up in log lines and error
 * texts: quote them and keep them short, so a hostile document cannot flood or forge a log.
 */

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** `text` cut to `max` characters, with an ellipsis when cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`
}

/** A JSON-quoted, short rendering of an untrusted value. */
export function show(v: unknown): string {
  return clip(JSON.stringify(v) ?? String(v), 40)
}
