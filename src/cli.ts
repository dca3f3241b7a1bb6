#!/usr/bin/env node
/**
 * argv → commands. Exit codes: 0 success, 1 the command failed (invalid config, a port in
 * use…), 2 usage error.
 */
import { parseArgs } from 'node:util'
import { createApp } from './app.ts'
import type { App } from './app.ts'
import { ConfigError, loadConfig, resolveConfigPath } from './config/load.ts'
import type { SidecarConfig } from './config/types.ts'
import { demoConfigPath, runDemo } from './demo/run.ts'
import { packageVersion } from './package-root.ts'

const usage = (): string => `jwt-sidecar ${packageVersion()}: verifies JWTs and forwards verified identity to the app behind it

Usage:
  jwt-sidecar run [--config FILE]            serve (the default command)
  jwt-sidecar check-config [--config FILE]   validate the config; print every error
  jwt-sidecar demo [--config FILE]           embedded issuer + echo upstream + sidecar on loopback
  jwt-sidecar --version | --help

The config file is --config FILE, else $JWT_SIDECAR_CONFIG, else config/sidecar.yaml.
`

function formatAddress(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

function summary(c: SidecarConfig): string {
  const issuers = c.issuers.map((i) => i.name).join(', ')
  return `${c.source}: OK: ${c.issuers.length} issuer(s) (${issuers}), ${c.routes.length} route(s), listen ${formatAddress(c.listen)} -> ${c.upstream.url}, admin ${formatAddress(c.admin.listen)}`
}

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

/** SIGTERM/SIGINT close the servers and exit 0; a second signal exits at once. */
function onSignals(stop: () => Promise<void>): void {
  let stopping = false
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130)
    stopping = true
    process.stderr.write(`${signal}: shutting down\n`)
    stop().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
}

async function main(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
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
  if (rest.length > 0) {
    process.stderr.write(`unexpected argument: ${rest.join(' ')}\n\n${usage()}`)
    return 2
  }
  const env = process.env
  switch (command) {
    case 'check-config': {
      const config = load(resolveConfigPath(values.config, env), env)
      if (config === undefined) return 1
      process.stdout.write(`${summary(config)}\n`)
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
      onSignals(() => app.close())
      return -1 // keep running
    }
    case 'demo': {
      let handle
      try {
        handle = await runDemo(values.config ?? demoConfigPath(), env, (line) => process.stdout.write(`${line}\n`))
      } catch (err) {
        if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`)
        else process.stderr.write(`demo failed: ${(err as Error).message}\n`)
        return 1
      }
      onSignals(() => handle.stop())
      return -1
    }
    default:
      process.stderr.write(`unknown command: ${command}\n\n${usage()}`)
      return 2
  }
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
