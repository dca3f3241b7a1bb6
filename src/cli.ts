#!/usr/bin/env node
/**
 * argv → commands. Exit codes: 0 success, 1 the command failed (invalid config, a port in
 * use…), 2 usage error.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { createApp } from './app.ts'
import { createConfigReloader } from './reload.ts'
import { onStopSignals, processTerminal, stopPlan } from './stop-signals.ts'
import type { App } from './app.ts'
import { ConfigError, loadConfig, resolveConfigPath } from './config/load.ts'
import { checkReport } from './config/report.ts'
import type { SidecarConfig } from './config/types.ts'
import { createKeyStore } from './keys/store.ts'
import type { KeyStore } from './keys/types.ts'
import type { Explanation } from './cli/explain.ts'
import { packageVersion } from './package-root.ts'

const usage = (): string => `jwt-sidecar ${packageVersion()}: verifies JWTs and forwards verified identity to the app behind it

Usage:
  jwt-sidecar run [--config FILE]            serve (the default command)
  jwt-sidecar check-config [--config FILE]   validate the config; print every error
  jwt-sidecar demo [--config FILE]           embedded issuer + echo upstream + sidecar on loopback
  jwt-sidecar verify [--config FILE] [--path P | --url URL] [--method M] [--json]
                     [--dpop PROOF | --dpop-file FILE] [--client-cert FILE] [TOKEN | -]
                                             explain what the sidecar would answer (default GET /);
                                             TOKEN: a JWS, "Bearer eyJ…" or "DPoP eyJ…"; - or none
                                             reads stdin; a DPoP proof needs --url (its htu);
                                             --client-cert: the request's client certificate (PEM)
  jwt-sidecar token [--config FILE] [--issuer NAME] [--sub S] [--scope S] [--claim P=V]... [--ttl 10m]
                                             mint a test token with this command's own key; refused
                                             unless the issuer trusts that key
  jwt-sidecar token --serve | --export-jwks FILE
                                             publish that key's JWKS (loopback) for a test config;
                                             jwt-sidecar token --help for every option
  jwt-sidecar --version | --help

The config file is --config FILE, else $JWT_SIDECAR_CONFIG, else config/sidecar.yaml.
`

function load(path: string, env: NodeJS.ProcessEnv): SidecarConfig | undefined {
  try {
    return loadConfig(path, env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n${err.issues.length} error(s) in ${path}\n`)
      return undefined
    }
    throw err
  }
}

async function main(argv: string[]): Promise<number> {
  // `token` parses its own options (src/cli/token.ts), so they come after the command name.
  if (argv[0] === 'token') return token(argv.slice(1))
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        // verify only
        path: { type: 'string' },
        method: { type: 'string' },
        json: { type: 'boolean' },
        url: { type: 'string' },
        dpop: { type: 'string' },
        'dpop-file': { type: 'string' },
        'client-cert': { type: 'string' },
      },
    })
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage()}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    process.stdout.write(usage())
    return 0
  }
  if (values.version === true) {
    process.stdout.write(`${packageVersion()}\n`)
    return 0
  }
  const [command = 'run', ...rest] = positionals
  if (command === 'token') {
    process.stderr.write(`the options of token come after it: jwt-sidecar token --config FILE …\n\n${usage()}`)
    return 2
  }
  if (command === 'verify') return verify(values, rest)
  if ([values.path, values.method, values.json, values.url, values.dpop, values['dpop-file'], values['client-cert']].some((v) => v !== undefined)) {
    process.stderr.write(`--path, --url, --method, --json, --dpop, --dpop-file and --client-cert are options of verify\n\n${usage()}`)
    return 2
  }
  if (rest.length > 0) {
    process.stderr.write(`unexpected argument: ${rest.join(' ')}\n\n${usage()}`)
    return 2
  }
  const env = process.env
  switch (command) {
    case 'check-config': {
      const config = load(resolveConfigPath(values.config, env), env)
      if (config === undefined) return 1
      // Valid, so exit 0; a warning names something that is probably not what was meant.
      process.stdout.write(checkReport(config))
      return 0
    }
    case 'run': {
      const config = load(resolveConfigPath(values.config, env), env)
      if (config === undefined) return 1
      const app: App = createApp(config)
      try {
        await app.start()
      } catch (err) {
        app.log.fatal({ event: 'server.failed', err }, 'could not start')
        await app.close()
        return 1
      }
      const reloader = createConfigReloader(app, { path: resolveConfigPath(values.config, env), env })
      // SIGHUP: reload even if the file text is the same (the environment may have changed).
      process.on('SIGHUP', () => reloader.reload('signal', true))
      // Ctrl-C at a terminal skips shutdown.delay; SIGTERM keeps it (src/stop-signals.ts).
      onStopSignals(async (signal) => {
        reloader.close()
        await app.shutdown(stopPlan(signal, processTerminal(), app.config().shutdown))
      })
      return -1 // keep running
    }
    case 'demo': {
      // Loaded only here: the demo's issuer (jose's signing side) is no part of `run`'s start.
      const { demoConfigPath, runDemo } = await import('./demo/run.ts')
      let handle
      try {
        handle = await runDemo(values.config ?? demoConfigPath(), env, (line) => process.stdout.write(`${line}\n`))
      } catch (err) {
        if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`)
        else process.stderr.write(`demo failed: ${(err as Error).message}\n`)
        return 1
      }
      onStopSignals(() => handle.stop())
      return -1
    }
    default:
      process.stderr.write(`unknown command: ${command}\n\n${usage()}`)
      return 2
  }
}

interface VerifyOptions {
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

/** `jwt-sidecar verify`: one request explained; exit 0 when it would be forwarded. */
async function verify(values: VerifyOptions, args: string[]): Promise<number> {
  const fail = (why: string): number => {
    process.stderr.write(`${why}\n\n${usage()}`)
    return 2
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

  const env = process.env
  const config = load(resolveConfigPath(values.config, env), env)
  if (config === undefined) return 1
  const { explainRequest, issuerForToken, tokenFromInput } = await import('./cli/explain.ts')
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

/** `jwt-sidecar token`: loaded only here (jose's signing side is no part of `run`). */
async function token(args: string[]): Promise<number> {
  const { tokenCommand } = await import('./cli/token.ts')
  const outcome = await tokenCommand(args, {
    env: process.env,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  })
  if ('code' in outcome) return outcome.code
  onStopSignals(() => outcome.serving.close())
  return -1
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`jwt-sidecar: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  },
)
