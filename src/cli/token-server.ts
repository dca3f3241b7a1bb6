/**
 * `jwt-sidecar token --serve`: the key directory's public JWKS, and an OIDC discovery document
 * for the issuer `http://<loopback>:<port>`, served on a loopback address only, so a test
 * config can use either `jwksUri` or `discovery: true` (plain http is allowed for loopback
 * hosts without `allowInsecureHttp`, src/http/transport.ts).
 *
 * The directory is read on every request: a key the mint command generates later (another
 * `--alg`) is published at once, and the sidecar's unknown-kid refresh picks it up.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ListenAddress } from '../config/types.ts'
import { isLoopbackHost } from '../http/transport.ts'
import { allKeys, publicJwks } from './token-keys.ts'

export interface TokenKeyServer {
  /** `http://127.0.0.1:<port>`: the `iss` of the tokens and the base of discovery. */
  readonly issuer: string
  readonly jwksUri: string
  close(): Promise<void>
}

/** The loopback rule of the sidecar's own fetcher: a test key server is never reachable from the network. */
export function isLoopbackListen(address: ListenAddress): boolean {
  return isLoopbackHost(address.host)
}

/**
 * @example
 * const server = await startTokenKeyServer(defaultKeyDir(process.env), { host: '127.0.0.1', port: 0 })
 * console.log(server.jwksUri) // http://127.0.0.1:40123/jwks
 */
export async function startTokenKeyServer(dir: string, address: ListenAddress): Promise<TokenKeyServer> {
  if (!isLoopbackListen(address)) throw new Error(`--listen ${address.host} is not a loopback address`)
  let base = ''
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    const send = (body: unknown): void => {
      // A short max-age: the sidecar refetches within a minute, sooner on an unknown kid.
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' }).end(JSON.stringify(body))
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
    } else if (path === '/jwks') {
      allKeys(dir).then((keys) => send(publicJwks(keys)), (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`)
      })
    } else if (path === '/.well-known/openid-configuration') {
      // OpenID Connect Discovery 1.0 §3: the members the sidecar reads are issuer and jwks_uri.
      allKeys(dir).then((keys) => send({
        issuer: base,
        jwks_uri: `${base}/jwks`,
        id_token_signing_alg_values_supported: keys.map((k) => k.alg),
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
      }), (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`)
      })
    } else {
      res.writeHead(404).end()
    }
  })
  server.keepAliveTimeout = 1_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(address.port, address.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const host = address.host.includes(':') ? `[${address.host}]` : address.host
  base = `http://${host}:${port}`
  return {
    issuer: base,
    jwksUri: `${base}/jwks`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
