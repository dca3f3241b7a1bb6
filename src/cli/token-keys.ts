/**
 * `jwt-sidecar token`'s own signing keys: one private key per algorithm in a directory the
 * command owns (`<alg>.jwk`, a private JWK), generated on first use. Only this command holds
 * them; their public halves are what `--serve` and `--export-jwks` publish, and the refusal
 * check (token.ts) compares RFC 7638 thumbprints against them.
 *
 * The directory is created 0700 and each key file 0600 (as ssh does for ~/.ssh), and a key
 * file or directory other users can read is refused rather than used: a test signing key that
 * leaks is a token factory for every sidecar configured to trust it.
 */
import { createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto'
import type { JsonWebKey, KeyObject } from 'node:crypto'
import { mkdir, open, readFile, readdir, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { calculateJwkThumbprint } from 'jose'
import { SUPPORTED_ALGORITHMS } from '../config/types.ts'
import type { Algorithm } from '../config/types.ts'

/** One signing key: the private half stays in this process; `jwk` is the public half only. */
export interface SigningKey {
  readonly alg: Algorithm
  readonly privateKey: KeyObject
  /** Public JWK with `kid` (the thumbprint), `alg` and `use: sig`, as --serve publishes it. */
  readonly jwk: Readonly<Record<string, unknown>>
  /** RFC 7638 thumbprint (SHA-256, base64url), the same the sidecar computes for /keys. */
  readonly thumbprint: string
}

/** A key directory or file another user could read, or a file that is not one of our keys. */
export class KeyDirError extends Error {}

/**
 * The default key directory: `$XDG_STATE_HOME/jwt-sidecar/token-keys`, else
 * `~/.local/state/jwt-sidecar/token-keys` (XDG Base Directory spec: state that should persist
 * between runs but is not worth backing up). Not the working directory: a private key there
 * is one `git add .` away from being committed.
 */
export function defaultKeyDir(env: NodeJS.ProcessEnv): string {
  const state = env.XDG_STATE_HOME
  // XDG: a relative path in the variable is invalid and must be ignored.
  const base = state !== undefined && state.startsWith('/') ? state : join(homedir(), '.local', 'state')
  return join(base, 'jwt-sidecar', 'token-keys')
}

const generate = promisify(generateKeyPair)

/** The key type each algorithm needs; RSA keys are 2048 bits (the sidecar's minimum, RFC 7518 §3.3). */
async function newKeyPair(alg: Algorithm): Promise<KeyObject> {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return (await generate('rsa', { modulusLength: 2048 })).privateKey
  if (alg === 'ES256') return (await generate('ec', { namedCurve: 'P-256' })).privateKey
  if (alg === 'ES384') return (await generate('ec', { namedCurve: 'P-384' })).privateKey
  if (alg === 'ES512') return (await generate('ec', { namedCurve: 'P-521' })).privateKey
  return (await generate('ed25519')).privateKey
}

/** Refuses a path other users can read or write (POSIX modes only). */
async function assertPrivate(path: string, what: string, fix: string): Promise<void> {
  if (process.platform === 'win32') return
  const mode = (await stat(path)).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new KeyDirError(`${what} ${path} is accessible to other users (mode ${mode.toString(8).padStart(4, '0')}); run: chmod ${fix} ${path}`)
  }
}

async function publicHalf(alg: Algorithm, privateKey: KeyObject): Promise<SigningKey> {
  const pub = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, unknown>
  const thumbprint = await calculateJwkThumbprint(pub)
  return { alg, privateKey, thumbprint, jwk: Object.freeze({ ...pub, kid: thumbprint, alg, use: 'sig' }) }
}

async function readKey(path: string, alg: Algorithm): Promise<SigningKey> {
  await assertPrivate(path, 'the key file', '600')
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: JSON.parse(await readFile(path, 'utf8')) as JsonWebKey, format: 'jwk' })
  } catch (err) {
    throw new KeyDirError(`${path} is not a private JWK written by jwt-sidecar token (${(err as Error).message}); remove it to generate a new key`)
  }
  return publicHalf(alg, privateKey)
}

/**
 * The directory's key for `alg`, generated (and written 0600) when there is none yet.
 *
 * @example
 * const { key, created } = await signingKey(defaultKeyDir(process.env), 'ES256')
 */
export async function signingKey(dir: string, alg: Algorithm): Promise<{ readonly key: SigningKey; readonly created: boolean }> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await assertPrivate(dir, 'the key directory', '700')
  const path = join(dir, `${alg}.jwk`)
  try {
    return { key: await readKey(path, alg), created: false }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const privateKey = await newKeyPair(alg)
  const text = `${JSON.stringify({ ...privateKey.export({ format: 'jwk' }), alg })}\n`
  let file
  try {
    // 'wx': never overwrite a key another run wrote meanwhile; its tokens must stay valid.
    file = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { key: await readKey(path, alg), created: false }
    throw err
  }
  try {
    await file.writeFile(text)
  } finally {
    await file.close()
  }
  return { key: await publicHalf(alg, privateKey), created: true }
}

/** Every key in the directory (public halves, in algorithm order); none when it does not exist. */
export async function allKeys(dir: string): Promise<SigningKey[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  await assertPrivate(dir, 'the key directory', '700')
  const keys: SigningKey[] = []
  for (const alg of SUPPORTED_ALGORITHMS) {
    if (names.includes(`${alg}.jwk`)) keys.push(await readKey(join(dir, `${alg}.jwk`), alg))
  }
  return keys
}

/** The public JWKS of these keys (RFC 7517 §5): no private member ever leaves signingKey. */
export function publicJwks(keys: readonly SigningKey[]): { keys: Array<Readonly<Record<string, unknown>>> } {
  return { keys: keys.map((k) => k.jwk) }
}
