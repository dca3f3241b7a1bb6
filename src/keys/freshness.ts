/**
 * When to fetch keys again: the cache lifetime a response announces, the jittered refresh
 * delay derived from it, and the backoff after failures. Pure functions: no clock, no timers,
 * no I/O (the caller passes `now` and, in tests, `random`).
 *
 * The numbers follow Envoy's jwks_async_fetcher (a good refetch and a failed refetch have
 * different periods) and jose's remote JWKS (a cooldown floor, a max-age ceiling), with the
 * response's own HTTP caching headers (RFC 9111) choosing where between the two we land.
 */
import type { RefreshSettings } from '../config/types.ts'

/** A response header map as undici and node:http hand it over (lower-case names). */
export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>

/**
 * RFC 9111 §1.2.2: a delta-seconds value too large to represent is taken as 2^31 seconds
 * (about 68 years). The refresh clamp makes anything this large `maxInterval` anyway.
 */
const MAX_DELTA_SECONDS = 2_147_483_648

/** First failure waits about this long; every further failure doubles it (until minInterval). */
const BACKOFF_BASE_MS = 1_000

/**
 * Remaining cache lifetime of a response, from its headers (RFC 9111 §4.2.1), in ms:
 *
 * 1. `Cache-Control: no-store` or an unqualified `no-cache` → 0 (refresh as soon as allowed);
 * 2. `Cache-Control: max-age=N` → N s (`max-age=0` and an invalid value → 0);
 * 3. else `Expires` minus `Date` (minus `nowMs` when Date is absent or invalid); an invalid
 *    Expires, `0` included, means "already expired" → 0 (RFC 9111 §5.3);
 * 4. else undefined: the response says nothing, the caller uses its configured interval.
 *
 * `s-maxage` is ignored (RFC 9111 §5.2.2.10: it is for shared caches; we are a private one).
 * An `Age` header (a CDN or proxy cache served the response) is subtracted (RFC 9111 §4.2.3):
 * `max-age=3600` with `Age: 3500` leaves 100 s. The apparent age (`nowMs` minus `Date`) is not,
 * because it measures clock skew between us and the provider as much as it measures age.
 *
 * @example
 * ```ts
 * cacheLifetimeMs({ 'cache-control': 'public, max-age=300' }, Date.now()) // 300_000
 * cacheLifetimeMs({ 'cache-control': 'no-store' }, Date.now())           // 0
 * cacheLifetimeMs({}, Date.now())                                         // undefined
 * ```
 */
export function cacheLifetimeMs(headers: ResponseHeaders, nowMs: number): number | undefined {
  const lifetime = freshnessLifetimeMs(headers, nowMs)
  if (lifetime === undefined) return undefined
  const age = parseDeltaSeconds(first(headers['age']))
  return Math.max(0, lifetime - (age ?? 0) * 1000)
}

function freshnessLifetimeMs(headers: ResponseHeaders, nowMs: number): number | undefined {
  const directives = parseCacheControl(headers['cache-control'])
  // RFC 9111 §4.2.1: when directives conflict, the most restrictive is honoured.
  if (directives.has('no-store')) return 0
  // RFC 9111 §5.2.2.4: the qualified form `no-cache="field"` only forbids reusing the named
  // fields without revalidation; the rest of the response (the JWKS) may be cached.
  if (directives.has('no-cache') && directives.get('no-cache') === undefined) return 0
  if (directives.has('max-age')) {
    const seconds = parseDeltaSeconds(directives.get('max-age'))
    // A max-age we cannot read is treated as stale, like an invalid Expires (RFC 9111 §5.3).
    return seconds === undefined ? 0 : seconds * 1000
  }

  const expiresRaw = first(headers['expires'])
  if (expiresRaw === undefined) return undefined
  const expires = parseHttpDate(expiresRaw, nowMs)
  // RFC 9111 §5.3: "A cache recipient MUST interpret invalid date formats, especially the
  // value "0", as representing a time in the past (i.e., "already expired")."
  if (expires === undefined) return 0
  const dateRaw = first(headers['date'])
  const date = dateRaw === undefined ? undefined : parseHttpDate(dateRaw, nowMs)
  // RFC 9111 §4.2.1: freshness_lifetime = Expires - Date; with no usable Date, our own clock
  // stands in (RFC 9110 §6.6.1 lets a recipient assign one on receipt).
  return Math.max(0, expires - (date ?? nowMs))
}

/**
 * `clamp(lifetimeMs ?? refresh.interval, minInterval, maxInterval)`, times a random factor in
 * [0.8, 1.0]: a fleet of sidecars started together (a Deployment rollout) spreads its refreshes
 * instead of hitting the provider in lockstep, and the jitter only ever refreshes early, never
 * past the lifetime the provider announced.
 *
 * @example
 * ```ts
 * const refresh = { interval: 600_000, minInterval: 30_000, maxInterval: 86_400_000 } as RefreshSettings
 * nextRefreshDelay(300_000, refresh)   // 240_000 … 300_000
 * nextRefreshDelay(0, refresh)         // 24_000 … 30_000 (no-store: as often as allowed)
 * nextRefreshDelay(undefined, refresh) // 480_000 … 600_000
 * ```
 */
export function nextRefreshDelay(lifetimeMs: number | undefined, refresh: RefreshSettings, random: () => number = Math.random): number {
  const wanted = lifetimeMs !== undefined && Number.isFinite(lifetimeMs) ? lifetimeMs : refresh.interval
  const base = Math.min(refresh.maxInterval, Math.max(refresh.minInterval, wanted))
  return Math.round(base * (0.8 + 0.2 * unit(random)))
}

/**
 * Delay before retrying after the `failures`-th consecutive failure (1 for the first):
 * 1 s, 2 s, 4 s, … capped at `refresh.minInterval` (a failing provider is never polled faster
 * than a healthy one allows), with "equal jitter": `base / 2 + random × base / 2`, so retries
 * from many sidecars spread out but none comes sooner than half the nominal delay.
 *
 * @example
 * ```ts
 * backoffDelay(1, refresh) // 500 … 1_000
 * backoffDelay(3, refresh) // 2_000 … 4_000
 * backoffDelay(99, refresh) // minInterval / 2 … minInterval
 * ```
 */
export function backoffDelay(failures: number, refresh: RefreshSettings, random: () => number = Math.random): number {
  const n = Number.isFinite(failures) ? Math.max(1, Math.floor(failures)) : 1
  // 2 ** 1100 is Infinity, which Math.min turns into the cap: no overflow handling needed.
  const base = Math.min(refresh.minInterval, BACKOFF_BASE_MS * 2 ** (n - 1))
  return Math.round(base / 2 + (unit(random) * base) / 2)
}

/** An injected random source is trusted to return [0, 1); clamp anyway so a bad one cannot widen the bounds. */
function unit(random: () => number): number {
  const r = random()
  return Number.isNaN(r) ? 0 : Math.min(1, Math.max(0, r))
}

function first(value: string | readonly string[] | undefined): string | undefined {
  // RFC 9111 §4.2.1: with more than one Expires (or Age, or Date), use the first.
  return typeof value === 'string' ? value : value?.[0]
}

/**
 * Cache-Control directives (RFC 9111 §5.2): `name[=token|"quoted"]`, comma-separated, names
 * case-insensitive; the first occurrence of a directive wins. A value-less directive maps to
 * undefined. Commas inside quoted strings (`no-cache="a, b"`) do not split.
 */
function parseCacheControl(value: string | readonly string[] | undefined): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>()
  if (value === undefined) return out
  const text = typeof value === 'string' ? value : value.join(',')
  let i = 0
  while (i < text.length) {
    let j = i
    let inQuotes = false
    for (; j < text.length; j++) {
      const c = text[j]
      if (inQuotes && c === '\\') j++
      else if (c === '"') inQuotes = !inQuotes
      else if (c === ',' && !inQuotes) break
    }
    const part = text.slice(i, j).trim()
    i = j + 1
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    if (out.has(name)) continue
    let arg = eq === -1 ? undefined : part.slice(eq + 1).trim()
    // RFC 9111 §5.2: recipients accept the quoted-string form of an argument, too.
    if (arg !== undefined && arg.length >= 2 && arg.startsWith('"') && arg.endsWith('"')) {
      arg = arg.slice(1, -1).replace(/\\(.)/g, '$1')
    }
    out.set(name, arg)
  }
  return out
}

/** RFC 9111 §1.2.2 delta-seconds: `1*DIGIT`, saturating at 2^31. Anything else is undefined. */
function parseDeltaSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (!/^\d+$/.test(trimmed)) return undefined
  return Math.min(Number(trimmed), MAX_DELTA_SECONDS)
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']
// RFC 9110 §5.6.7: IMF-fixdate is what senders generate; recipients must also accept the
// obsolete RFC 850 and asctime forms. `Date.parse` is not used: it accepts "0" (as the year
// 2000) and many other strings an HTTP cache must treat as invalid.
const IMF_FIXDATE = /^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const RFC850_DATE = /^[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const ASCTIME_DATE = /^[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/** An HTTP-date (RFC 9110 §5.6.7) as epoch ms, or undefined when it is not one. */
export function parseHttpDate(value: string, nowMs: number): number | undefined {
  const text = value.trim()
  let m = IMF_FIXDATE.exec(text)
  if (m !== null) return utc(m[3], m[2], m[1], m[4], m[5], m[6])
  m = RFC850_DATE.exec(text)
  if (m !== null) {
    // RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in the future is
    // the most recent past year with the same last two digits.
    const yy = Number(m[3])
    const thisYear = new Date(nowMs).getUTCFullYear()
    let year = Math.floor(thisYear / 100) * 100 + yy
    if (year > thisYear + 50) year -= 100
    return utc(String(year), m[2], m[1], m[4], m[5], m[6])
  }
  m = ASCTIME_DATE.exec(text)
  if (m !== null) return utc(m[6], m[1], m[2]?.trim(), m[3], m[4], m[5])
  return undefined
}

function utc(
  year: string | undefined, month: string | undefined, day: string | undefined,
  hour: string | undefined, minute: string | undefined, second: string | undefined,
): number | undefined {
  const mon = MONTHS.indexOf((month ?? '').toLowerCase())
  const [y, d, h, mi, s] = [year, day, hour, minute, second].map(Number) as [number, number, number, number, number]
  if (mon === -1 || h > 23 || mi > 59 || s > 60) return undefined
  // RFC 9110 §5.6.7 allows a leap second (60); Date has none, so it becomes :59.
  const ms = Date.UTC(y, mon, d, h, mi, Math.min(s, 59))
  // Date.UTC rolls 31 Feb over into March; a date that does not round-trip is invalid.
  if (!Number.isFinite(ms) || new Date(ms).getUTCDate() !== d || new Date(ms).getUTCMonth() !== mon) return undefined
  return ms
}
