/**
 * The data-plane listener's certificate: load and check the pair, then keep it current.
 * RFC 6750 §5.3: a bearer token must only travel over TLS. cert-manager renews a certificate
 * by rewriting the Secret (tls.crt and tls.key together, Kubernetes' `..data` swap), so the
 * files are watched (src/fs-watch.ts, as for static keys) and the new pair is swapped in with
 * `setSecureContext`: new handshakes get it, open connections keep theirs, none is dropped.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext } from 'node:tls'
import type { SecureContextOptions, Server as TlsServer } from 'node:tls'
import type { TlsConfig } from '../config/types.ts'
import { watchFiles } from '../fs-watch.ts'
import type { FileWatcher, WatchOptions } from '../fs-watch.ts'

/** A pair that passed every check, ready for `setSecureContext`. */
interface TlsPair {
  readonly options: SecureContextOptions
  /** SHA-256 of the files' bytes: a reload that finds the same files changes nothing. */
  readonly digest: string
  /** The leaf certificate's notAfter, epoch seconds. */
  readonly notAfter: number
  /** SHA-256 fingerprint of the leaf (colon-separated hex, as node:tls' peer certificate shows it). */
  readonly fingerprint256: string
}

export type TlsEvent =
  | { readonly kind: 'tls.reloaded'; readonly initial: boolean; readonly notAfter: number; readonly fingerprint256: string }
  | { readonly kind: 'tls.reload_failed'; readonly why: string }

/**
 * Reads and checks the configured pair: PEM certificate(s), a private key that matches the
 * leaf (the first certificate), and the client CA bundle. Throws an Error saying what is wrong,
 * never with key material in it.
 *
 * @example
 * const pair = await loadTlsPair({ certFile: 'tls.crt', keyFile: 'tls.key', clientCaFile: undefined, minVersion: 'TLSv1.2' })
 */
async function loadTlsPair(config: TlsConfig): Promise<TlsPair> {
  const [cert, key, ca] = await Promise.all([
    read(config.certFile, 'certFile'),
    read(config.keyFile, 'keyFile'),
    config.clientCaFile === undefined ? undefined : read(config.clientCaFile, 'clientCaFile'),
  ])
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(cert)
  } catch {
    throw new Error(`certFile ${config.certFile}: not a PEM certificate`)
  }
  let matches: boolean
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(key))
  } catch {
    throw new Error(`keyFile ${config.keyFile}: not a PEM private key (an encrypted key is not supported)`)
  }
  // cert-manager writes tls.crt and tls.key one after the other: between the two writes the
  // files are a mismatched pair. Refused here, the debounced reload after the second write succeeds.
  if (!matches) throw new Error(`keyFile ${config.keyFile} does not match the certificate in ${config.certFile}`)
  const options: SecureContextOptions = {
    cert,
    key,
    minVersion: config.minVersion,
    ...(ca === undefined ? {} : { ca }),
  }
  try {
    // Node's own checks (the chain's PEM blocks, the CA bundle) before the server sees it.
    createSecureContext(options)
  } catch (err) {
    throw new Error(`the TLS pair was refused by OpenSSL: ${(err as Error).message}`, { cause: err })
  }
  const digest = createHash('sha256').update(cert).update('\0').update(key).update('\0').update(ca ?? '').digest('hex')
  return { options, digest, notAfter: Math.floor(Date.parse(leaf.validTo) / 1000), fingerprint256: leaf.fingerprint256 }
}

async function read(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    throw new Error(`${what} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err })
  }
}

export interface TlsReloaderDeps {
  /** Every load, the first one included; a failed reload keeps the pair in use. */
  readonly onEvent: (event: TlsEvent) => void
  readonly watch?: WatchOptions
}

export interface TlsReloader {
  /** Loads the pair (throws if it is broken: the sidecar does not start without one) and starts watching. */
  start(): Promise<void>
  /** Looks at the files again now (what a file change triggers). Resolves when applied or refused. */
  reload(): Promise<void>
  close(): void
}

/**
 * @example
 * const reloader = createTlsReloader(proxy.server as tls.Server, config.tls, { onEvent })
 * await reloader.start() // before listen()
 */
export function createTlsReloader(server: TlsServer, config: TlsConfig, deps: TlsReloaderDeps): TlsReloader {
  let watcher: FileWatcher | undefined
  let current: string | undefined
  // One load at a time; a change during a load runs one more after it.
  let running: Promise<void> | undefined
  let again = false

  async function loadOnce(initial: boolean): Promise<void> {
    let pair: TlsPair
    try {
      pair = await loadTlsPair(config)
    } catch (err) {
      if (initial) throw err
      deps.onEvent({ kind: 'tls.reload_failed', why: (err as Error).message })
      return
    }
    if (pair.digest === current) return // a touch, or another file in the directory: nothing new
    server.setSecureContext(pair.options)
    current = pair.digest
    deps.onEvent({ kind: 'tls.reloaded', initial, notAfter: pair.notAfter, fingerprint256: pair.fingerprint256 })
  }

  function reload(): Promise<void> {
    if (running !== undefined) {
      again = true
      return running
    }
    running = (async () => {
      try {
        do {
          again = false
          await loadOnce(false)
        } while (again)
      } finally {
        running = undefined
      }
    })()
    return running
  }

  return {
    async start() {
      await loadOnce(true)
      const files = [config.certFile, config.keyFile, ...(config.clientCaFile === undefined ? [] : [config.clientCaFile])]
      watcher = watchFiles(files, () => void reload(), deps.watch)
    },
    reload,
    close() {
      watcher?.close()
    },
  }
}
