/**
 * The config file of a command: which one (`--config`, `$JWT_SIDECAR_CONFIG`, the default),
 * and, when it cannot be read, one line that says where that name came from (issue #14 §5): a
 * forgotten `--config` shows up as the default path, which is worth saying.
 */
import { closeSync, openSync } from 'node:fs'
import { ConfigError, loadConfig, resolveConfigPath } from '../config/load.ts'
import type { SidecarConfig } from '../config/types.ts'
import { fileError } from '../startup-error.ts'

/** The setting that named the file, and what to do when it is the default that is missing. */
function origin(flag: string | undefined, env: NodeJS.ProcessEnv): { readonly setting: string; readonly hint?: string } {
  if (flag !== undefined && flag !== '') return { setting: '--config' }
  const fromEnv = env['JWT_SIDECAR_CONFIG']
  if (fromEnv !== undefined && fromEnv !== '') return { setting: 'JWT_SIDECAR_CONFIG' }
  return { setting: 'config file', hint: 'the default, relative to the working directory: give --config FILE or set JWT_SIDECAR_CONFIG' }
}

/**
 * Loads the command's config, or writes why not to `err` and returns undefined: one line when
 * the file cannot be read, else every error (`FILE:LINE PATH: …`) and their count.
 *
 * @example
 * const config = loadCommandConfig(values.config, process.env, (t) => process.stderr.write(t))
 * if (config === undefined) return 1
 */
export function loadCommandConfig(flag: string | undefined, env: NodeJS.ProcessEnv, err: (text: string) => void): SidecarConfig | undefined {
  const path = resolveConfigPath(flag, env)
  try {
    closeSync(openSync(path, 'r'))
  } catch (e) {
    const { setting, hint } = origin(flag, env)
    err(`${fileError(e, setting, path, hint).message}\n`)
    return undefined
  }
  try {
    return loadConfig(path, env)
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`${e.message}\n${e.issues.length} error(s) in ${path}\n`)
      return undefined
    }
    throw e
  }
}
