/**
 * DPoP load for the full-stack bench (bench/ab.ts `scen: "dpop"`, issue #13): one access token
 * bound to an ES256 client key (`cnf.jkt`), and for every request a fresh proof with its own
 * `jti` (RFC 9449 §4.2), as a real client sends them. The proofs are signed here, before the
 * slice that sends them, so the client's signing is never part of what is timed: wrk (rig.ts,
 * `dpop:FILE`) reads the file in its init() and sends one proof per request, none twice.
 *
 * Proofs are made per slice, not once per run: their `iat` must stay inside the sidecar's
 * window (rig.ts `sidecarYaml({ dpop: true })`: proofMaxAge 10 s ± clockSkew 5 s).
 */
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { jwkThumbprint } from '../src/verify/dpop.ts'
import type { BenchAlg, Rig } from './rig.ts'

export interface DpopLoad {
  /** The access token, bound to the proof key. */
  readonly token: string
  /**
   * Writes `count` proofs for GET http://127.0.0.1:`port`/api/orders (the Host wrk sends and
   * the path of rig.ts's load) after the token line; returns wrk's `dpop:FILE` argument.
   */
  proofs(port: number, count: number): string
}

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

/**
 * @example
 * const load = createDpopLoad(rig, 'RS256')
 * await wrk(rig, port, load.proofs(port, 20_000), 2, 200)
 */
export function createDpopLoad(rig: Rig, alg: BenchAlg): DpopLoad {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, unknown>
  const jkt = jwkThumbprint(jwk)
  if (jkt === undefined) throw new Error('no thumbprint for the proof key')
  const token = rig.boundToken(alg, jkt)
  // RFC 9449 §4.2: ath = base64url(SHA-256(the access token)).
  const ath = createHash('sha256').update(token).digest('base64url')
  const header = b64url({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } })
  let files = 0
  return {
    token,
    proofs(port, count) {
      const htu = `http://127.0.0.1:${port}/api/orders`
      const iat = Math.floor(Date.now() / 1000)
      const lines = [token]
      for (let i = 0; i < count; i++) {
        const input = `${header}.${b64url({ jti: randomUUID(), htm: 'GET', htu, iat, ath })}`
        lines.push(`${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`)
      }
      const file = join(rig.dir, `dpop-proofs-${files++ % 2}.txt`)
      writeFileSync(file, `${lines.join('\n')}\n`)
      return `dpop:${file}`
    },
  }
}
