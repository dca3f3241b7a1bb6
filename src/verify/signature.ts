/**
 * Signature check with node:crypto and a KeyObject imported once per key-set fetch.
 * jose's jwtVerify goes through WebCrypto (≈10k RS256/s here); crypto.verify with a
 * prepared KeyObject does ≈38k/s, so the hot path uses it (bench/verify.bench.ts).
 */
import { constants, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { Algorithm } from '../config/types.ts'

const HASH: Record<Algorithm, string | null> = {
  RS256: 'sha256', RS384: 'sha384', RS512: 'sha512',
  PS256: 'sha256', PS384: 'sha384', PS512: 'sha512',
  ES256: 'sha256', ES384: 'sha384', ES512: 'sha512',
  EdDSA: null,
}

// RFC 7518 §3.4: ECDSA signatures are R || S, each exactly the curve's byte length.
const ECDSA_SIG_BYTES: Partial<Record<Algorithm, number>> = { ES256: 64, ES384: 96, ES512: 132 }

/**
 * The key type each algorithm needs. Checked on every call, not only at import: with a null
 * digest, crypto.verify falls back to SHA-256 for an RSA key, so an RS256 signature would pass
 * as "EdDSA" if a key ever reached here with the wrong algorithm (test/unit/verify-signature).
 */
const KEY_TYPE: Record<Algorithm, string> = {
  RS256: 'rsa', RS384: 'rsa', RS512: 'rsa',
  PS256: 'rsa', PS384: 'rsa', PS512: 'rsa',
  ES256: 'ec', ES384: 'ec', ES512: 'ec',
  EdDSA: 'ed25519',
}

/** True when `signature` is a valid `alg` signature of `data` under `key`. Never throws. */
export function verifySignature(alg: Algorithm, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    if (key.asymmetricKeyType !== KEY_TYPE[alg]) return false
    const hash = HASH[alg]
    const first = alg.charCodeAt(0)
    if (first === 82 /* R */) return verify(hash, data, key, signature)
    if (first === 80 /* P */) {
      // RFC 7518 §3.5: the salt is as long as the hash output.
      return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature)
    }
    if (first === 69 /* E */ && alg !== 'EdDSA') {
      if (signature.length !== ECDSA_SIG_BYTES[alg]) return false
      return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature)
    }
    return verify(null, data, key, signature)
  } catch {
    // A key/algorithm mismatch that slipped past the key set's checks is a failed verification.
    return false
  }
}
