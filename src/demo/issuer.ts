/**
 * The demo's embedded issuer: a fresh ES256 key pair and its JWKS served on loopback.
 * It exists so `jwt-sidecar demo` runs on a machine with no identity provider at all.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'

export interface DemoIssuer {
  /** The `iss` value and base URL. */
  readonly issuer: string
  readonly jwksUri: string
  sign(claims: Record<string, unknown>, audience: string, lifetimeSeconds: number): Promise<string>
  close(): Promise<void>
}

export async function startDemoIssuer(): Promise<DemoIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const kid = `demo-${Date.now().toString(36)}`
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }
  const body = JSON.stringify({ keys: [jwk] })
  const server = createServer((req, res) => {
    if (req.url === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' }).end(body)
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    sign: (claims, audience, lifetimeSeconds) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(`${lifetimeSeconds}s`)
        .sign(privateKey),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
