/**
 * Live configuration reload (issue #5): on SIGHUP, and when the config file changes (a
 * ConfigMap update swaps a `..data` symlink), read and validate the file again. A valid file
 * is applied atomically (app.reload); an invalid one changes nothing, and every error is
 * logged as `config.rejected` and counted.
 *
 * Restoring the file in force after a rejected edit (a `kubectl rollout undo`, a reverted
 * ConfigMap) logs `config.restored` (issue #14 §6): the pod is back to a file it can start
 * with, which is what the JwtSidecarConfigReloadFailed runbook waits for. Nothing is applied
 * again, because nothing changed: `config.reloaded` would claim a swap that did not happen.
 */
import { readFileSync } from 'node:fs'
import type { App } from './app.ts'
import { ConfigError, parseConfig } from './config/load.ts'
import type { Env } from './config/interpolate.ts'
import { watchFiles } from './fs-watch.ts'
import type { FileWatcher, WatchOptions } from './fs-watch.ts'

export interface ConfigReloader {
  /** Reload now; `force` applies even when the file text is unchanged (SIGHUP). */
  reload(trigger: 'signal' | 'file', force?: boolean): void
  close(): void
}

/**
 * @example
 * const reloader = createConfigReloader(app, { path, env: process.env })
 * process.on('SIGHUP', () => reloader.reload('signal', true))
 */
export function createConfigReloader(app: App, options: { readonly path: string; readonly env: Env; readonly watch?: WatchOptions | false }): ConfigReloader {
  const { path, env } = options
  let lastText = readText()
  // The rejections since the file in force was last read: a restore reports what it undid.
  let rejectedSince = 0
  // The text last rejected: another event for the same file (a directory event, the poll)
  // would only report it again, and count one bad edit twice. SIGHUP still retries it.
  let rejectedText: string | undefined

  function readText(): string | undefined {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return undefined
    }
  }

  function reload(trigger: 'signal' | 'file', force = false): void {
    const text = readText()
    // A directory event for another file, or a swap to identical content: nothing to do,
    // unless an edit was rejected since: then the file in force is back, and that is news.
    if (!force && text !== undefined && text === lastText) {
      if (rejectedSince === 0) return
      app.metrics.configReload('success')
      app.log.info({ event: 'config.restored', trigger, file: path, rejected: rejectedSince }, 'configuration file restored to the one in force; nothing to apply')
      rejectedSince = 0
      rejectedText = undefined
      return
    }
    if (!force && text !== undefined && text === rejectedText) return
    try {
      if (text === undefined) throw new ConfigError([{ file: path, line: undefined, path: '', message: 'cannot read the file' }])
      const next = parseConfig(text, path, env)
      const result = app.reload(next)
      lastText = text
      rejectedSince = 0
      rejectedText = undefined
      app.metrics.configReload('success')
      app.log.info({ event: 'config.reloaded', trigger, file: path, issuers: result.issuers, restartRequired: result.restartRequired }, 'configuration reloaded')
      if (result.restartRequired.length > 0) {
        app.log.warn({ event: 'config.restart_required', file: path, settings: result.restartRequired }, `these settings changed and take effect only after a restart: ${result.restartRequired.join(', ')}`)
      }
    } catch (err) {
      app.metrics.configReload('error')
      rejectedSince++
      rejectedText = text
      const errors = err instanceof ConfigError ? err.message.split('\n') : [String(err)]
      app.log.error({ event: 'config.rejected', trigger, file: path, errors }, 'new configuration rejected; the running one stays')
    }
  }

  const watcher: FileWatcher | undefined = options.watch === false ? undefined : watchFiles([path], () => reload('file'), options.watch ?? {})
  return { reload, close: () => watcher?.close() }
}
