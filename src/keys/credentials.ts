/**
 * The local files one issuer's fetches authenticate with: the bearer token the provider
 * wants (`fetch.bearerTokenFile`) and the CA bundle its TLS certificate is checked against
 * (`fetch.caFile`). Both are read lazily by fetcher.ts and fail as `config` errors whose
 * messages name the file and the errno, never the content (a token, or a private key mounted
 * by mistake, must not reach a log).
 */
import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { isB64Token } from '../http/grammar.ts'
import { JwksFetchError } from './errors.ts'

/** A bearer token file larger than this is a misconfiguration (a Kubernetes token is ~1 KiB). */
const MAX_TOKEN_BYTES = 16 * 1024

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/**
 * The bearer token, read on EVERY fetch (Kubernetes rotates projected service-account tokens).
 * An abort (the fetch's signal) passes through as is, for the fetcher to classify.
 *
 * @example
 * ```ts
 * headers['authorization'] = `Bearer ${await readToken('/var/run/secrets/tokens/idp', signal)}`
 * ```
 */
export async function readToken(file: string, signal: AbortSignal): Promise<string> {
  let raw: string
  try {
    raw = await readFile(file, { encoding: 'utf8', signal })
  } catch (err) {
    if ((err as { name?: unknown } | null)?.name === 'AbortError') throw err
    throw new JwksFetchError('config', `bearerTokenFile ${file}: ${errnoOf(err)}`, { cause: err })
  }
  const token = raw.trim()
  if (token === '') throw new JwksFetchError('config', `bearerTokenFile ${file} is empty`)
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) {
    throw new JwksFetchError('config', `bearerTokenFile ${file} is larger than ${MAX_TOKEN_BYTES} bytes`)
  }
  // Also the guard against header injection: a token with CR/LF inside never reaches the wire.
  if (!isB64Token(token)) throw new JwksFetchError('config', `bearerTokenFile ${file} does not hold one RFC 6750 bearer token`)
  return token
}

/**
 * The PEM certificates of a CA bundle, each checked to parse (Node silently ignores garbage in `ca`).
 *
 * @example
 * ```ts
 * const agent = new Agent({ connect: { ca: await loadCa('/etc/idp-ca/ca.crt') } })
 * ```
 */
export async function loadCa(file: string): Promise<string[]> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    throw new JwksFetchError('config', `caFile ${file}: ${errnoOf(err)}`, { cause: err })
  }
  const certs = pem.match(PEM_CERTIFICATE) ?? []
  if (certs.length === 0) throw new JwksFetchError('config', `caFile ${file} holds no PEM certificate`)
  certs.forEach((cert, i) => {
    try {
      new X509Certificate(cert)
    } catch (err) {
      throw new JwksFetchError('config', `caFile ${file}: certificate #${i + 1} does not parse`, { cause: err })
    }
  })
  return certs
}

/** The errno code (ENOENT, EACCES…): the message repeats the path and may differ across Node versions. */
function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'unreadable'
}
