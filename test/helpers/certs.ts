/**
 * X.509 certificates made by the openssl CLI at test time: a CA, server and client
 * certificates it signs, and their RFC 8705 thumbprints as openssl computes them (never with
 * the code under test). A missing openssl fails the test, with the package to install.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCert {
  readonly crt: string
  readonly key: string
  /** The certificate, PEM. */
  readonly pem: string
  /** RFC 8705 `x5t#S256`: base64url SHA-256 of the DER, from openssl's fingerprint. */
  readonly x5t: string
  /** The same thumbprint in hex, lower case (Envoy's XFCC `Hash=`). */
  readonly hex: string
}

export interface TestCa extends TestCert {
  /** A certificate this CA signs: `server` gets subjectAltName IP:127.0.0.1. */
  issue(name: string, kind?: 'client' | 'server'): TestCert
}

function openssl(args: readonly string[]): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8' })
  assert.ok(r.error === undefined, 'the openssl CLI is not on PATH: install Debian\'s openssl package to run this test')
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

function read(crt: string, key: string): TestCert {
  const line = openssl(['x509', '-in', crt, '-noout', '-fingerprint', '-sha256']).trim()
  const hex = line.split('=')[1]!.replaceAll(':', '').toLowerCase()
  return { crt, key, pem: readFileSync(crt, 'utf8'), x5t: Buffer.from(hex, 'hex').toString('base64url'), hex }
}

/** A fresh CA (EC P-256) in its own temporary directory. */
export function makeCa(name = 'test-ca'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-certs-'))
  const crt = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-subj', `/CN=${name}`, '-days', '2'])
  const ca = read(crt, key)
  let serial = 1
  return {
    ...ca,
    issue(leaf, kind = 'client') {
      const lcrt = join(dir, `${leaf}.crt`)
      const lkey = join(dir, `${leaf}.key`)
      const csr = join(dir, `${leaf}.csr`)
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', lkey, '-out', csr, '-subj', `/CN=${leaf}`])
      const ext = join(dir, `${leaf}.ext`)
      writeFileSync(ext, kind === 'server' ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n')
      openssl(['x509', '-req', '-in', csr, '-CA', crt, '-CAkey', key, '-set_serial', String(serial++), '-out', lcrt, '-days', '2', '-extfile', ext])
      return read(lcrt, lkey)
    },
  }
}
