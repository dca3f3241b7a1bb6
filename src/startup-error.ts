/**
 * A start-up failure in words a person at a terminal can act on (issue #14 §5): the setting
 * that caused it, its value, what went wrong with the system's error code, and what to try.
 *
 *   listen 0.0.0.0:8080: address already in use (EADDRINUSE); is another jwt-sidecar running?
 *
 * The CLI prints `message` as the one line on stderr (the stack only with `--debug`); `run`
 * also logs it as `server.failed` with `setting` and `code`.
 */
import type { ListenAddress } from './config/types.ts'

export interface StartupErrorParts {
  /** The config path (`listen`, `admin.listen`, `issuers[0].keys[1].file`, `tls`) or the option (`--config`). */
  readonly setting: string
  /** What the setting says (an address, a file name), when it helps. */
  readonly value?: string | undefined
  readonly problem: string
  /** The system's error code (EADDRINUSE, ENOENT…), when there is one. */
  readonly code?: string | undefined
  /** What to try. */
  readonly hint?: string | undefined
  readonly cause?: unknown
}

export class StartupError extends Error {
  override readonly name = 'StartupError'
  // Private, so that a logged error (pino's err serializer) shows its message, not its parts twice.
  readonly #parts: StartupErrorParts

  constructor(parts: StartupErrorParts) {
    const what = `${parts.setting}${parts.value === undefined ? '' : ` ${parts.value}`}: ${parts.problem}${parts.code === undefined ? '' : ` (${parts.code})`}`
    super(parts.hint === undefined ? what : `${what}; ${parts.hint}`, parts.cause === undefined ? undefined : { cause: parts.cause })
    this.#parts = parts
  }

  get setting(): string {
    return this.#parts.setting
  }

  get code(): string | undefined {
    return this.#parts.code
  }

  /** The same failure with another hint (the demo names DEMO_PORT rather than another sidecar). */
  withHint(hint: string): StartupError {
    return new StartupError({ ...this.#parts, hint })
  }
}

/** The errno codes a person meets when a socket or a file cannot be used, in words (libc's strerror). */
const ERRNO: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this host',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a component of the path is not a directory',
  EISDIR: 'is a directory',
  ELOOP: 'too many symbolic links',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed for now',
}

/** `err`'s errno code and its words: `{ code: 'ENOENT', words: 'no such file or directory' }`. */
function errnoWords(err: unknown): { readonly code: string | undefined; readonly words: string } {
  const code = (err as NodeJS.ErrnoException | null)?.code
  if (typeof code !== 'string') return { code: undefined, words: err instanceof Error ? err.message : String(err) }
  return { code, words: ERRNO[code] ?? 'system error' }
}

/** `0.0.0.0:8080`, `[::1]:9901`. */
function formatAddress(a: ListenAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`
}

const LISTEN_HINTS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'is another jwt-sidecar running?',
  EACCES: 'a port below 1024 needs root or CAP_NET_BIND_SERVICE: pick a port of 1024 or above',
  EADDRNOTAVAIL: 'no network interface of this host has that address: use 0.0.0.0, 127.0.0.1 or one of its own',
}

/**
 * A listener could not bind: the setting that names it, and what to try.
 *
 * @example
 * listenError(err, 'listen', { host: '0.0.0.0', port: 8080 }).message
 * // 'listen 0.0.0.0:8080: address already in use (EADDRINUSE); is another jwt-sidecar running?'
 */
export function listenError(err: unknown, setting: string, address: ListenAddress): StartupError {
  const { code, words } = errnoWords(err)
  return new StartupError({ setting, value: formatAddress(address), problem: words, code, hint: code === undefined ? undefined : LISTEN_HINTS[code], cause: err })
}

/**
 * A file named by `setting` could not be read.
 *
 * @example
 * fileError(err, 'issuers[0].keys[0].file', '/keys/a.pem').message
 * // 'issuers[0].keys[0].file /keys/a.pem: cannot read the file: no such file or directory (ENOENT)'
 */
export function fileError(err: unknown, setting: string, file: string, hint?: string): StartupError {
  const { code, words } = errnoWords(err)
  return new StartupError({ setting, value: file, problem: `cannot read the file: ${words}`, code, hint, cause: err })
}
