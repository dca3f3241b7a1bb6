/**
 * Parsers for the unit-bearing strings of the config file: durations, sizes and listen
 * addresses. They are pure, strict and exact: a value either converts to an integer in the
 * base unit (milliseconds, bytes) or throws a {@link UnitError} whose `reason` tells the
 * operator how to write it instead.
 *
 * Units are mandatory everywhere. A bare `60` could mean 60 ms or 60 s depending on which
 * library the reader last used; a typo there turns a one-minute clock skew into 60 ms
 * (every token rejected) or a 30 s timeout into 30 ms, so we refuse to guess.
 */
import { isIPv4, isIPv6 } from 'node:net'
import type { ListenAddress } from './types.ts'

/** Thrown by every parser in this file; `reason` is the explanation without the input. */
export class UnitError extends Error {
  /** The text that failed to parse. */
  readonly input: string
  /** Why it failed and what to write instead, e.g. `unknown unit "fortnight"; use ms, s, m, h or d`. */
  readonly reason: string

  constructor(kind: string, input: string, reason: string) {
    super(`invalid ${kind} ${JSON.stringify(input)}: ${reason}`)
    this.name = 'UnitError'
    this.input = input
    this.reason = reason
  }
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}
const DURATION_UNIT_LIST = 'ms, s, m, h or d'

/**
 * The longest delay Node.js timers support. A longer `setTimeout`/`setInterval` delay is
 * silently replaced by 1 ms (with a TimeoutOverflowWarning), which would turn a "once a
 * month" refresh into a busy loop, so such durations are refused at load time.
 * https://nodejs.org/api/timers.html#settimeoutcallback-delay-args
 */
export const MAX_DURATION_MS = 2 ** 31 - 1

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
}
const SIZE_UNIT_LIST = 'B, KB, MB, GB, KiB, MiB or GiB'

/** `12`, `1.5`: digits with an optional fraction; no sign, no exponent. */
const DECIMAL = /^(\d+)(?:\.(\d+))?$/

/**
 * `amount × factor` computed exactly, or undefined when the result is not an integer
 * (e.g. `0.5ms`). Plain floating point would make `1.1s` 1100.0000000000002 ms.
 */
function scale(amount: string, factor: number): number | undefined {
  const m = DECIMAL.exec(amount)
  if (m === null) return undefined
  const whole = Number(m[1]) * factor
  const fraction = m[2] ?? ''
  if (fraction === '') return whole
  const divisor = 10 ** fraction.length
  const scaled = Number(fraction) * factor
  if (!Number.isSafeInteger(scaled) || scaled % divisor !== 0) return undefined
  return whole + scaled / divisor
}

/**
 * Parses a duration into milliseconds.
 *
 * Accepts one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d`, largest
 * first and each at most once (`500ms`, `30s`, `1.5h`, `1h30m`, `1d12h`). The result must
 * be a whole number of milliseconds and at most {@link MAX_DURATION_MS}.
 *
 * @throws {UnitError} for a bare number (`60`), an unknown unit, spaces, a negative value,
 *   sub-millisecond precision or a too-long duration.
 * @example
 * parseDuration('30s')   // 30000
 * parseDuration('1h30m') // 5400000
 */
export function parseDuration(text: string): number {
  const fail = (reason: string): never => {
    throw new UnitError('duration', text, reason)
  }
  if (text.trim() === '') fail(`expected a number followed by a unit (${DURATION_UNIT_LIST}), like 30s`)
  if (DECIMAL.test(text.trim())) {
    const n = text.trim()
    fail(`a bare number has no unit; units are mandatory to avoid confusing milliseconds and seconds: write ${n}s or ${n}ms`)
  }
  // Tokenise leniently (signs, spaces, any letters) so the error can say precisely what is wrong.
  const part = /\s*(-?)(\d+(?:\.\d+)?)(\s*)([^\d\s.+-]*)\s*/y
  let total = 0
  let pos = 0
  let lastFactor = Infinity
  const seen = new Set<string>()
  while (pos < text.length) {
    part.lastIndex = pos
    const m = part.exec(text)
    if (m === null || m[0] === '') {
      return fail(`expected a number followed by a unit (${DURATION_UNIT_LIST}), like 30s or 1h30m`)
    }
    pos = part.lastIndex
    const [whole, sign = '', amount = '', gap = '', unit = ''] = m
    if (sign !== '') fail('a duration cannot be negative')
    if (unit === '') fail(`${amount} has no unit; units are mandatory: write ${amount}s or ${amount}ms`)
    const factor = DURATION_UNITS[unit]
    if (factor === undefined) {
      return fail(`unknown unit ${JSON.stringify(unit)}; use ${DURATION_UNIT_LIST}`)
    }
    if (gap !== '' || whole !== whole.trim()) fail(`remove the spaces: write ${text.replace(/\s+/g, '')}`)
    if (seen.has(unit) || factor > lastFactor) {
      fail('in a compound duration the units must go from largest to smallest, each at most once, like 1h30m')
    }
    seen.add(unit)
    lastFactor = factor
    const ms = scale(amount, factor)
    if (ms === undefined) return fail('durations are whole milliseconds; a finer fraction cannot be represented')
    total += ms
  }
  if (!Number.isSafeInteger(total) || total > MAX_DURATION_MS) {
    fail('longer than about 24.8 days (2^31-1 ms), the longest timer Node.js supports')
  }
  return total
}

/**
 * Parses a size into bytes.
 *
 * Accepts `<number><unit>` with decimal units `B`, `KB`, `MB`, `GB` (powers of 1000) or
 * binary units `KiB`, `MiB`, `GiB` (powers of 1024, IEC 80000-13). Units are
 * case-sensitive: `kb` or `Mb` could mean bits or bytes, so they are refused.
 *
 * @throws {UnitError} for a bare number, an unknown unit, spaces or a fractional byte count.
 * @example
 * parseSize('8KiB') // 8192
 * parseSize('1KB')  // 1000
 */
export function parseSize(text: string): number {
  const fail = (reason: string): never => {
    throw new UnitError('size', text, reason)
  }
  const t = text.trim()
  if (DECIMAL.test(t)) {
    fail(`a bare number has no unit; units are mandatory: write ${t}B for bytes, or use KiB or MiB`)
  }
  const m = /^(-?)(\d+(?:\.\d+)?)(\s*)([^\d\s.+-]*)$/.exec(t)
  if (m === null) return fail(`expected a number followed by a unit (${SIZE_UNIT_LIST}), like 512KiB`)
  const [, sign = '', amount = '', gap = '', unit = ''] = m
  if (sign !== '') fail('a size cannot be negative')
  const factor = SIZE_UNITS[unit]
  if (factor === undefined) {
    return fail(`unknown unit ${JSON.stringify(unit)}; use ${SIZE_UNIT_LIST} (units are case-sensitive)`)
  }
  if (gap !== '') fail(`remove the space: write ${amount}${unit}`)
  const bytes = scale(amount, factor)
  if (bytes === undefined) return fail('a size must be a whole number of bytes')
  if (!Number.isSafeInteger(bytes)) fail('too large')
  return bytes
}

/** RFC 1123 §2.1 host name: dot-separated labels of letters, digits and inner hyphens. */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

/**
 * Parses a listen address `host:port` into its parts.
 *
 * The host is an IPv4 address, a host name, or an IPv6 address in brackets (RFC 3986
 * §3.2.2, as in URLs); the returned host has no brackets. The port is 0..65535, 0 asking
 * the OS for a free port (tests use `127.0.0.1:0`).
 *
 * @throws {UnitError} when the host or port is missing or invalid.
 * @example
 * parseListen('0.0.0.0:8080') // { host: '0.0.0.0', port: 8080 }
 * parseListen('[::1]:8080')   // { host: '::1', port: 8080 }
 */
export function parseListen(text: string): ListenAddress {
  const fail = (reason: string): never => {
    throw new UnitError('listen address', text, reason)
  }
  const t = text.trim()
  let host: string
  let portText: string
  if (t.startsWith('[')) {
    const close = t.indexOf(']')
    if (close < 0) return fail('missing "]" after the IPv6 address, like [::1]:8080')
    host = t.slice(1, close)
    if (!isIPv6(host)) fail(`${JSON.stringify(host)} is not an IPv6 address`)
    const rest = t.slice(close + 1)
    if (!rest.startsWith(':')) return fail('missing the port after the address, like [::1]:8080')
    portText = rest.slice(1)
  } else {
    const colon = t.lastIndexOf(':')
    if (/^\d+$/.test(t)) {
      return fail(`a bare port is not enough: write 0.0.0.0:${t} for every interface or 127.0.0.1:${t} for loopback only`)
    }
    if (colon < 0) return fail(`missing the port, like ${t === '' ? '0.0.0.0' : t}:8080`)
    host = t.slice(0, colon)
    portText = t.slice(colon + 1)
    if (host.includes(':')) fail('an IPv6 address must be in brackets, like [::1]:8080')
    if (host === '') fail('missing the host; use 0.0.0.0 for every interface, like 0.0.0.0:8080')
    if (/^[\d.]+$/.test(host) ? !isIPv4(host) : !HOSTNAME.test(host)) {
      fail(`${JSON.stringify(host)} is not an IPv4 address or host name`)
    }
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    fail(`the port must be a number from 0 to 65535, got ${JSON.stringify(portText)}`)
  }
  return { host, port: Number(portText) }
}

/**
 * Why `text` does not parse with `parse`, or undefined when it does.
 *
 * @example
 * unitReason(parseDuration, '1 fortnight') // 'unknown unit "fortnight"; use ms, s, m, h or d'
 */
export function unitReason(parse: (text: string) => unknown, text: string): string | undefined {
  try {
    parse(text)
    return undefined
  } catch (err) {
    return err instanceof UnitError ? err.reason : String(err)
  }
}
