/**
 * A DPoP client for tests (RFC 9449): an ES256 key made at test time, its RFC 7638
 * thumbprint (what an issuer puts in `cnf.jkt`), and proofs signed with jose, each claim
 * overridable so a test can get every check wrong in its own way.
 *
 * @example
 * const client = await dpopClient()
 * const token = await idp.sign({ sub: 'alice', cnf: { jkt: client.jkt } })
 * const headers = { authorization: `DPoP ${token}`, dpop: await dpopProof(client, token, url) }
 */
import { createHash, randomUUID } from 'node:crypto'
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey']

export interface DpopClient {
  readonly key: PrivateKey
  readonly jwk: JWK
  /** base64url SHA-256 thumbprint of `jwk`. */
  readonly jkt: string
}

export async function dpopClient(): Promise<DpopClient> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = await exportJWK(publicKey)
  return { key: privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) }
}

/** Overrides of a proof's claims and header; the defaults make a good proof for a GET of `url`. */
export interface ProofParts { htm?: string; htu?: string; iat?: number; jti?: string; ath?: string; typ?: string; jwk?: JWK }

export async function dpopProof(client: Pick<DpopClient, 'key' | 'jwk'>, token: string, url: string, o: ProofParts = {}): Promise<string> {
  return new SignJWT({
    htm: o.htm ?? 'GET',
    htu: o.htu ?? url,
    iat: o.iat ?? Math.floor(Date.now() / 1000),
    jti: o.jti ?? randomUUID(),
    ath: o.ath ?? createHash('sha256').update(token).digest('base64url'),
  })
    .setProtectedHeader({ alg: 'ES256', typ: o.typ ?? 'dpop+jwt', jwk: o.jwk ?? client.jwk })
    .sign(client.key)
}
