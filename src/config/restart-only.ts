/**
 * The settings a live reload cannot apply (issue #14 §6): a reload reports them in
 * `config.restart_required` and keeps running with the values it started with. The generated
 * configuration reference lists them from here (scripts/docs/config-reference.ts), so the page
 * and the reload cannot disagree.
 */
import { isDeepStrictEqual } from 'node:util'
import type { SidecarConfig } from './types.ts'

interface RestartOnly {
  /** The config path, as `config.restart_required` names it. */
  readonly path: string
  /** Why a reload cannot apply it, for the reference page. */
  readonly why: string
  readonly get: (c: SidecarConfig) => unknown
}

export const RESTART_ONLY: readonly RestartOnly[] = [
  { path: 'listen', why: 'The proxy socket is bound once.', get: (c) => c.listen },
  { path: 'tls', why: 'The TLS server (which files, `minVersion`, `http2`, whether the port speaks TLS at all) is created once; the contents of the named files are reloaded live.', get: (c) => c.tls },
  { path: 'admin.listen', why: 'The admin socket is bound once.', get: (c) => c.admin.listen },
  { path: 'admin.maxEventLoopDelay', why: 'The event-loop monitor is started once.', get: (c) => c.admin.maxEventLoopDelay },
  { path: 'upstream.url', why: 'The proxy to the app (its connection pool and timeout) is set up once.', get: (c) => c.upstream.url },
  { path: 'upstream.timeout', why: 'The proxy to the app (its connection pool and timeout) is set up once.', get: (c) => c.upstream.timeout },
  { path: 'upstream.drainsBodies', why: 'The proxy to the app (its connection pool and timeout) is set up once.', get: (c) => c.upstream.drainsBodies },
  { path: 'requests.timeout', why: 'A server setting, applied when the server is created.', get: (c) => c.requests.timeout },
  // The pod's terminationGracePeriodSeconds was computed from the config the pod started with
  // (the chart derives it); a reloaded, longer drain would be cut by the kubelet's SIGKILL.
  { path: 'shutdown', why: "The pod's grace period was computed from the values it started with.", get: (c) => c.shutdown },
  { path: 'tokens.dpopReplayCache', why: 'One replay cache per process, so that a reload cannot forget the proofs it has seen (RFC 9449 §11.1).', get: (c) => c.tokens.dpopReplayCache },
  { path: 'log.format', why: 'The stdout writers are built once.', get: (c) => c.log.format },
]

/** The restart-only settings that differ between the running config and a reloaded one. */
export function restartRequired(running: SidecarConfig, next: SidecarConfig): string[] {
  return RESTART_ONLY.filter(({ get }) => !isDeepStrictEqual(get(next), get(running))).map(({ path }) => path)
}
