/**
 * `jwt-sidecar verify`: one request explained (src/cli/explain.ts), exit 0 when it would be
 * forwarded, 1 when denied, 2 for a usage error.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { SidecarConfig } from '../config/types.ts'
import { createKeyStore } from '../keys/store.ts'
import type { KeyStore } from '../keys/types.ts'
import { UsageError, usageLine } from './args.ts'
import { loadCommandConfig } from './config-file.ts'
import type { Explanation } from './explain.ts'

export interface VerifyOptions {
  config?: string
  path?: string
  url?: string
  method?: string
  json?: boolean
  dpop?: string
  'dpop-file'?: string
  'client-cert'?: string
}

/**
 * `--url scheme://host[:port]/path?query`: the Host header and the request target, split by
 * hand so the path stays as given (WHATWG URL would resolve its dot segments before the sidecar
 * normalises them, policy/normalize.ts).
 */
function splitUrl(url: string): { scheme: 'http' | 'https'; host: string; path: string } | undefined {
  const m = /^(https?):\/\/([^/?#\s]+)(.*)$/i.exec(url)
  if (m === null) return undefined
  const rest = m[3]!
  return { scheme: m[1]!.toLowerCase() as 'http' | 'https', host: m[2]!, path: rest === '' || !rest.startsWith('/') ? `/${rest}` : rest }
}

/**
 * `jwt-sidecar verify`: one request explained; exit 0 when it would be forwarded.
 *
 * @example
 * process.exitCode = await verifyCommand({ config: 'sidecar.yaml', path: '/orders/42' }, [token])
 */
export async function verifyCommand(values: VerifyOptions, args: readonly string[]): Promise<number> {
  const fail = (why: string): never => {
    throw new UsageError(usageLine('verify', why))
  }
  if (args.length > 1) return fail(`verify takes one TOKEN (or - for stdin), got ${args.length} arguments`)
  if (values.path !== undefined && values.url !== undefined) return fail('--path and --url both name the request target: give one')
  if (values.dpop !== undefined && values['dpop-file'] !== undefined) return fail('--dpop and --dpop-file both give the proof: give one')
  const target = values.url === undefined ? undefined : splitUrl(values.url)
  if (values.url !== undefined && target === undefined) return fail(`--url ${JSON.stringify(values.url)} is not an http(s)://host/path URL`)
  const proofGiven = values.dpop !== undefined || values['dpop-file'] !== undefined
  // RFC 9449 §4.3: the proof's htu names scheme, host and path; without a URL there is no Host to check it against.
  if (proofGiven && target === undefined) return fail('a DPoP proof needs --url: its htu is checked against the Host and path the request is sent to')
  let proof: string | undefined
  if (values['dpop-file'] !== undefined) {
    try {
      proof = readFileSync(values['dpop-file'], 'utf8').trim()
    } catch (err) {
      process.stderr.write(`--dpop-file ${values['dpop-file']}: cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`)
      return 1
    }
  } else if (values.dpop !== undefined) proof = values.dpop.trim()
  let clientCertificate: X509Certificate | undefined
  if (values['client-cert'] !== undefined) {
    const file = values['client-cert']
    try {
      clientCertificate = new X509Certificate(readFileSync(file))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      process.stderr.write(`--client-cert ${file}: ${code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' ? `cannot read the file: ${code}` : 'not a PEM or DER X.509 certificate'}\n`)
      return 1
    }
  }

  const config: SidecarConfig | undefined = loadCommandConfig(values.config, process.env, (text) => process.stderr.write(text))
  if (config === undefined) return 1
  const { explainRequest, issuerForToken, tokenFromInput } = await import('./explain.ts')
  const arg = args[0]
  const fromStdin = arg === undefined || arg === '-'
  if (fromStdin && process.stdin.isTTY) process.stderr.write('reading the token from stdin (end with Ctrl-D)\n')
  const raw = (fromStdin ? await readStdin() : arg).trim()
  const { token, source, scheme } = tokenFromInput(config.tokens.from, raw, fromStdin ? 'stdin' : 'command line', { proof: proof !== undefined })

  // Key events are never written to stdout; at debug they go to stderr (they carry no token material).
  const debug = config.log.level === 'debug' || config.log.level === 'trace'
  // A snapshot is read, as a sidecar starting now would, but never written: not this tool's file.
  const keys: KeyStore = createKeyStore(config.issuers, { snapshots: 'read-only', ...(debug ? { onEvent: (e) => process.stderr.write(`${JSON.stringify(e)}\n`) } : {}) })
  let explanation: Explanation
  try {
    keys.start()
    // Wait for the keys of the issuer the token names, and no other: until its first load
    // attempt is over, with keys or failed (the sidecar would answer 503 now too); each fetch
    // in it is bounded by fetch.timeout.
    const issuer = issuerForToken(config, token)
    if (issuer !== undefined) await keys.issuer(issuer.name)?.settled()
    explanation = await explainRequest(config, keys, {
      token,
      source,
      scheme,
      path: target?.path ?? values.path ?? '/',
      method: (values.method ?? 'GET').toUpperCase(),
      ...(proof === undefined ? {} : { proof }),
      ...(target === undefined ? {} : { authority: { scheme: target.scheme, host: target.host } }),
      ...(clientCertificate === undefined ? {} : { clientCertificate }),
    })
  } finally {
    await keys.stop()
  }
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(explanation, null, 2)}\n`)
  } else {
    const width = Math.max(...explanation.steps.map((s) => s.step.length))
    for (const s of explanation.steps) {
      process.stdout.write(`${s.ok === undefined ? '·' : s.ok ? '✔' : '✘'} ${s.step.padEnd(width)}  ${s.detail}\n`)
    }
    process.stdout.write(explanation.forwarded ? 'outcome: forwarded\n' : `outcome: denied ${explanation.status} ${explanation.reason}\n`)
  }
  return explanation.forwarded ? 0 : 1
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

