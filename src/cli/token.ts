/**
 * `jwt-sidecar token`: mint a signed test token for a configured issuer, with a key this
 * command generated and holds, and serve or export that key's public JWKS for a test config.
 *
 * The safety property: before signing, the issuer's keys are loaded exactly as the sidecar
 * loads them (createKeyStore over that one issuer: its key files, jwksUri or discovery), and
 * the command refuses unless the key it is about to sign with is among them, compared by
 * RFC 7638 thumbprint. A production issuer never publishes our key, so the command cannot
 * mint a token that a sidecar trusting a production issuer would accept (issue #12, item 6).
 */
import { writeFile } from 'node:fs/promises'
import { CompactSign } from 'jose'
import { loadCommandConfig } from './config-file.ts'
import { SUPPORTED_ALGORITHMS } from '../config/types.ts'
import type { Algorithm, IssuerConfig, SidecarConfig } from '../config/types.ts'
import { parseDuration, parseListen, UnitError } from '../config/units.ts'
import { TENANT_PLACEHOLDER } from '../config/tenants.ts'
import { createKeyStore } from '../keys/store.ts'
import type { KeyInfo } from '../keys/types.ts'
import { buildPayload, ClaimError } from './token-claims.ts'
import { allKeys, defaultKeyDir, KeyDirError, publicJwks, signingKey } from './token-keys.ts'
import type { SigningKey } from './token-keys.ts'
import { isLoopbackListen, startTokenKeyServer } from './token-server.ts'
import { UsageError as ArgsError, parseCommandArgs, usageLine } from './args.ts'
import { TOKEN_OPTIONS, commandOf } from './usage.ts'
import type { TokenKeyServer } from './token-server.ts'

export const tokenUsage = (): string => `Usage:
  jwt-sidecar token [--config FILE] [--issuer NAME] [--sub S] [--scope "a b"] [--aud A]...
                    [--claim PATH=VALUE]... [--ttl 10m] [--alg ALG] [--kid K] [--tenant T] [--keys DIR]
      Prints a signed token for the configured issuer NAME (optional when the config has one
      issuer): iss = its issuer (a {tenantid} issuer: with --tenant, default its first tenant,
      and tid = that tenant), its audienceClaim (aud unless configured) = its first audience
      unless --aud, iat = now, exp = now +
      --ttl (default 10m), header typ = its typ or JWT. --claim sets a (dotted, nested) claim;
      VALUE is JSON when it parses, else a string. --alg defaults to ES256 when the issuer
      allows it, else its first algorithm; --kid overrides the header kid.
      Refused (exit 1) unless the issuer's keys, loaded as the sidecar loads them, include this
      command's key for that alg: it never signs for an issuer whose keys it does not hold.
  jwt-sidecar token --serve [--listen 127.0.0.1:0] [--alg ALG] [--keys DIR]
      Serves the public JWKS (/jwks) and an OIDC discovery document for the issuer
      http://<listen> on loopback only; prints the issuer, jwksUri and a config block; runs
      until SIGINT/SIGTERM.
  jwt-sidecar token --export-jwks FILE|- [--alg ALG] [--keys DIR]
      Writes the public JWKS to FILE (- for stdout), for an issuer's keys: [{file: FILE}].

  --keys DIR   the command's private keys (default $XDG_STATE_HOME/jwt-sidecar/token-keys, else
               ~/.local/state/jwt-sidecar/token-keys); created 0700, one <alg>.jwk file 0600 per
               algorithm, generated on first use. Private keys are never printed.
  Algorithms: ${SUPPORTED_ALGORITHMS.join(', ')}.
`

/** What the CLI does next: exit with `code`, or keep running until a signal closes `server`. */
export type TokenOutcome = { readonly code: number } | { readonly serving: TokenKeyServer }

interface Io {
  readonly env: NodeJS.ProcessEnv
  readonly out: (text: string) => void
  readonly err: (text: string) => void
}

class UsageError extends Error {}

const MINT_OPTIONS = ['config', 'issuer', 'sub', 'scope', 'aud', 'claim', 'ttl', 'kid', 'tenant'] as const

/**
 * `jwt-sidecar token …` (argv after `token`). Exit codes as the other commands: 0 ok,
 * 1 the command failed (a config error, a refusal, a port in use), 2 usage.
 *
 * @example
 * const r = await tokenCommand(['--config', 'sidecar.yaml', '--sub', 'alice'], { env: process.env, out, err })
 */
export async function tokenCommand(argv: readonly string[], io: Io): Promise<TokenOutcome> {
  let values: TokenValues
  try {
    values = parseCommandArgs('token', argv, TOKEN_OPTIONS, TOKEN_OPTIONS, commandOf).values
  } catch (err) {
    if (!(err instanceof ArgsError)) throw err
    io.err(`${err.message}\n`)
    return { code: 2 }
  }
  if (values.help === true) {
    io.out(tokenUsage())
    return { code: 0 }
  }
  const dir = values.keys ?? defaultKeyDir(io.env)
  try {
    const alg = values.alg === undefined ? undefined : algorithm(values.alg)
    const mode = values.serve === true ? '--serve' : values['export-jwks'] !== undefined ? '--export-jwks' : undefined
    if (values.serve === true && values['export-jwks'] !== undefined) throw new UsageError('--serve and --export-jwks are separate commands')
    if (mode !== undefined) {
      const misplaced = MINT_OPTIONS.filter((o) => values[o] !== undefined)
      if (misplaced.length > 0) throw new UsageError(`${misplaced.map((o) => `--${o}`).join(', ')}: not an option of token ${mode}`)
    } else if (values.listen !== undefined) {
      throw new UsageError('--listen is an option of token --serve')
    }
    if (values.serve === true) return await serve(dir, alg ?? 'ES256', values.listen ?? '127.0.0.1:0', io)
    const exportTo = values['export-jwks']
    if (exportTo !== undefined) return await exportJwks(dir, alg ?? 'ES256', exportTo, io)
    return await mint(dir, alg, values, io)
  } catch (err) {
    if (err instanceof UsageError || err instanceof ClaimError) {
      io.err(`${usageLine('token', err.message)}\n`)
      return { code: 2 }
    }
    if (err instanceof KeyDirError) {
      io.err(`jwt-sidecar token: ${err.message}\n`)
      return { code: 1 }
    }
    throw err
  }
}

function algorithm(text: string): Algorithm {
  const found = SUPPORTED_ALGORITHMS.find((a) => a === text)
  if (found === undefined) throw new UsageError(`--alg ${JSON.stringify(text)}: expected one of ${SUPPORTED_ALGORITHMS.join(', ')}`)
  return found
}

async function serve(dir: string, alg: Algorithm, listenText: string, io: Io): Promise<TokenOutcome> {
  let address
  try {
    address = parseListen(listenText)
  } catch (err) {
    throw new UsageError(`--listen: ${(err as Error).message}`)
  }
  if (!isLoopbackListen(address)) throw new UsageError(`--listen ${listenText}: the key server listens on loopback only (127.0.0.1, [::1] or localhost)`)
  await signingKey(dir, alg)
  let server: TokenKeyServer
  try {
    server = await startTokenKeyServer(dir, address)
  } catch (err) {
    io.err(`jwt-sidecar token --serve: cannot listen on ${listenText}: ${(err as Error).message}\n`)
    return { code: 1 }
  }
  const keys = await allKeys(dir)
  io.out([
    `issuer:  ${server.issuer}`,
    `jwksUri: ${server.jwksUri}`,
    ...keys.map((k) => `key:     ${k.alg} ${k.thumbprint}`),
    `keys in: ${dir}`,
    '',
    '# an issuer for a test config (or discovery: true instead of jwksUri):',
    'issuers:',
    '  - name: local-test',
    `    issuer: ${server.issuer}`,
    `    jwksUri: ${server.jwksUri}`,
    '    audiences: [test-api]',
    `    algorithms: [${keys.map((k) => k.alg).join(', ')}]`,
    '',
    'serving until SIGINT/SIGTERM',
    '',
  ].join('\n'))
  return { serving: server }
}

async function exportJwks(dir: string, alg: Algorithm, to: string, io: Io): Promise<TokenOutcome> {
  await signingKey(dir, alg)
  const keys = await allKeys(dir)
  const text = `${JSON.stringify(publicJwks(keys), null, 2)}\n`
  if (to === '-') {
    io.out(text)
  } else {
    await writeFile(to, text, { mode: 0o644 })
    io.err(`wrote ${keys.length} public key(s) (${keys.map((k) => k.alg).join(', ')}) to ${to}\n`)
  }
  return { code: 0 }
}

function pickIssuer(config: SidecarConfig, name: string | undefined): IssuerConfig {
  const names = config.issuers.map((i) => i.name).join(', ')
  if (name === undefined) {
    if (config.issuers.length === 1) return config.issuers[0]!
    throw new UsageError(`--issuer NAME is required: the config has ${config.issuers.length} issuers (${names})`)
  }
  const found = config.issuers.find((i) => i.name === name)
  if (found === undefined) throw new UsageError(`--issuer ${JSON.stringify(name)}: no such issuer in the config (${names})`)
  return found
}

/** A `{tenantid}` issuer's tenant: `--tenant`, one of `tenants` (default the first); none for a plain issuer. */
function pickTenant(issuer: IssuerConfig, requested: string | undefined): string | undefined {
  if (issuer.tenants === undefined) {
    if (requested !== undefined) throw new UsageError(`--tenant: issuer "${issuer.name}" has no {tenantid} placeholder`)
    return undefined
  }
  if (requested === undefined) return issuer.tenants[0]
  if (!issuer.tenants.includes(requested)) throw new UsageError(`--tenant ${JSON.stringify(requested)}: not in issuer "${issuer.name}"'s tenants (${issuer.tenants.join(', ')})`)
  return requested
}

interface TokenValues extends MintValues {
  readonly help?: boolean | undefined
  readonly alg?: string | undefined
  readonly keys?: string | undefined
  readonly serve?: boolean | undefined
  readonly listen?: string | undefined
  readonly 'export-jwks'?: string | undefined
}

interface MintValues {
  readonly config?: string | undefined
  readonly issuer?: string | undefined
  readonly sub?: string | undefined
  readonly scope?: string | undefined
  readonly aud?: string[] | undefined
  readonly claim?: string[] | undefined
  readonly ttl?: string | undefined
  readonly kid?: string | undefined
  readonly tenant?: string | undefined
}

async function mint(dir: string, requested: Algorithm | undefined, values: MintValues, io: Io): Promise<TokenOutcome> {
  let ttlMs
  try {
    ttlMs = parseDuration(values.ttl ?? '10m')
  } catch (err) {
    if (err instanceof UnitError) throw new UsageError(`--ttl: ${err.message}`)
    throw err
  }
  if (ttlMs < 1000) throw new UsageError(`--ttl ${values.ttl ?? ''}: at least 1s (exp is in whole seconds)`)
  const config = loadCommandConfig(values.config, io.env, io.err)
  if (config === undefined) return { code: 1 }
  const issuer = pickIssuer(config, values.issuer)
  // ES256 when the issuer allows it (small keys, fast to generate), else what it does allow.
  const alg = requested ?? (issuer.algorithms.includes('ES256') ? 'ES256' : issuer.algorithms[0]!)
  if (!issuer.algorithms.includes(alg)) {
    io.err(`jwt-sidecar token: issuer "${issuer.name}" accepts ${issuer.algorithms.join(', ')}; a ${alg} token would be refused (alg_not_allowed)\n`)
    return { code: 1 }
  }
  const tenant = pickTenant(issuer, values.tenant)
  const now = Math.floor(Date.now() / 1000)
  const payload = buildPayload({
    iss: tenant === undefined ? issuer.issuer : issuer.issuer.replace(TENANT_PLACEHOLDER, tenant),
    tid: tenant,
    aud: values.aud ?? issuer.audiences.slice(0, 1),
    audienceClaim: issuer.audienceClaim,
    now,
    ttl: Math.floor(ttlMs / 1000),
    sub: values.sub,
    scope: values.scope,
    claims: values.claim ?? [],
  })
  const { key, created } = await signingKey(dir, alg)
  const trusted = await trustedAs(issuer, key)
  if ('refused' in trusted) {
    const fresh = created ? ` (generated just now in ${dir})` : ''
    io.err(`jwt-sidecar token: refused: issuer "${issuer.name}" (${issuer.issuer}) does not trust this command's ${alg} key ${key.thumbprint}${fresh}: ${trusted.refused}. It signs only for an issuer whose keys it holds: point the issuer at \`jwt-sidecar token --serve\` or at a file from \`jwt-sidecar token --export-jwks FILE\`.\n`)
    return { code: 1 }
  }
  const kid = values.kid ?? trusted.kid
  const header = { alg, typ: issuer.typ ?? 'JWT', ...(kid === undefined ? {} : { kid }) }
  const token = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader(header).sign(key.privateKey)
  io.out(`${token}\n`)
  return { code: 0 }
}

/**
 * The issuer's keys as the sidecar loads them: the kid under which it holds our key, or why
 * it does not. Waits for the first load attempt only (bounded by the issuer's fetch.timeout).
 */
async function trustedAs(issuer: IssuerConfig, key: SigningKey): Promise<{ readonly kid: string | undefined } | { readonly refused: string }> {
  const store = createKeyStore([issuer], { snapshots: 'read-only' })
  let list: readonly KeyInfo[]
  let lastError: string | undefined
  try {
    store.start()
    await store.settled()
    const status = store.issuer(issuer.name)?.status()
    list = status?.keyList ?? []
    lastError = status?.lastError
  } finally {
    await store.stop()
  }
  const ours = list.find((k) => k.thumbprint === key.thumbprint && (k.alg === undefined || k.alg === key.alg))
  if (ours !== undefined) return { kid: ours.kid }
  if (list.length === 0) return { refused: `its keys did not load${lastError === undefined ? '' : ` (${lastError})`}` }
  return { refused: `it holds ${list.length} other key(s) (${list.map((k) => k.thumbprint).slice(0, 3).join(', ')}${list.length > 3 ? ', …' : ''})` }
}
