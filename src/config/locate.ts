/**
 * Which config file to load, and reading it: the only file-system access of the loader
 * (parseConfig itself is pure).
 */
import { readFileSync } from 'node:fs'
import type { Env } from './interpolate.ts'
import { ConfigError } from './issues.ts'

/** The default config file, relative to the working directory. */
const DEFAULT_CONFIG_PATH = 'config/sidecar.yaml'

/**
 * Which file to load: the `--config FILE` value, else `JWT_SIDECAR_CONFIG`, else
 * {@link DEFAULT_CONFIG_PATH}. An empty value counts as absent (an unset-but-exported
 * variable in a shell script is a common accident). The path is returned as given, so
 * messages show what the operator wrote.
 *
 * @example
 * resolveConfigPath(undefined, { JWT_SIDECAR_CONFIG: '/etc/jwt-sidecar.yaml' }) // '/etc/jwt-sidecar.yaml'
 */
export function resolveConfigPath(flag: string | undefined, env: Env): string {
  if (flag !== undefined && flag !== '') return flag
  const fromEnv = env['JWT_SIDECAR_CONFIG']
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  return DEFAULT_CONFIG_PATH
}

/**
 * The text of the config file at `path`.
 *
 * @throws {ConfigError} with one line-less issue when the file cannot be read.
 * @example
 * const text = readConfigFile('config/sidecar.yaml')
 */
export function readConfigFile(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err))
    throw new ConfigError([{ file: path, line: undefined, path: '', message: `cannot read the file (${code})` }])
  }
}
