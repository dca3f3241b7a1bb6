/**
 * The files a config names, checked before `run` binds a port (issue #14 §5): a key file, a CA
 * bundle, a token file or a TLS pair that cannot be read is a typo or a volume that is not
 * mounted, and in Kubernetes a container that exits with that one line says so sooner than one
 * that runs and answers 503 for ever. (After the start, the same files may come and go: the
 * key store keeps its last good keys and reports a failed reload, src/keys/static-source.ts.)
 *
 * Not checked: `issuers[].snapshot.file` (written by the sidecar, absent on a first start).
 */
import { closeSync, fstatSync, openSync } from 'node:fs'
import type { SidecarConfig } from '../config/types.ts'
import { StartupError, fileError } from '../startup-error.ts'

/** Each file setting of `config` with its path, in the order of the file. */
function namedFiles(config: SidecarConfig): Array<{ readonly setting: string; readonly file: string }> {
  const out: Array<{ setting: string; file: string }> = []
  config.issuers.forEach((issuer, i) => {
    issuer.keys.forEach((k, j) => out.push({ setting: `issuers[${i}].keys[${j}].file`, file: k.file }))
    if (issuer.fetch.caFile !== undefined) out.push({ setting: `issuers[${i}].fetch.caFile`, file: issuer.fetch.caFile })
    if (issuer.fetch.bearerTokenFile !== undefined) out.push({ setting: `issuers[${i}].fetch.bearerTokenFile`, file: issuer.fetch.bearerTokenFile })
  })
  if (config.tls !== undefined) {
    out.push({ setting: 'tls.certFile', file: config.tls.certFile }, { setting: 'tls.keyFile', file: config.tls.keyFile })
    if (config.tls.clientCaFile !== undefined) out.push({ setting: 'tls.clientCaFile', file: config.tls.clientCaFile })
  }
  return out
}

/**
 * The first file of `config` that cannot be opened for reading as a regular file, as a
 * {@link StartupError} naming its setting; undefined when all can.
 *
 * @example
 * const bad = unreadableFile(config)
 * if (bad !== undefined) { process.stderr.write(`${bad.message}\n`); return 1 }
 */
export function unreadableFile(config: SidecarConfig): StartupError | undefined {
  for (const { setting, file } of namedFiles(config)) {
    let fd: number | undefined
    try {
      fd = openSync(file, 'r')
      if (!fstatSync(fd).isFile()) return new StartupError({ setting, value: file, problem: 'not a regular file' })
    } catch (err) {
      return fileError(err, setting, file)
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
  }
  return undefined
}
