#!/usr/bin/env node
/**
 * argv → commands. Exit codes: 0 success, 1 the command failed (invalid config, a port in
 * use…), 2 usage error.
 *
 * For a person at a terminal (issue #14 §5): each command has its own help (`jwt-sidecar
 * verify --help`, `jwt-sidecar help verify`, src/cli/usage.ts); a wrong option is one line
 * naming the command's help; a start-up failure is one line naming the setting
 * (src/startup-error.ts), with its stack trace only under `--debug`.
 */
import { inspect } from 'node:util'
import { createApp } from './app.ts'
import type { App } from './app.ts'
import { createConfigReloader } from './reload.ts'
import { onStopSignals, processTerminal, stopPlan } from './stop-signals.ts'
import { ConfigError, resolveConfigPath } from './config/load.ts'
import { checkReport } from './config/report.ts'
import { resolveLogFormat } from './observe/log.ts'
import { StartupError } from './startup-error.ts'
import { packageVersion } from './package-root.ts'
import { UsageError, parseCommandArgs, positionalsOf, usageLine } from './cli/args.ts'
import { loadCommandConfig } from './cli/config-file.ts'
import { unreadableFile } from './cli/preflight.ts'
import { ALL_OPTIONS, COMMANDS, TOP_LEVEL_OPTIONS, commandOf, usage } from './cli/usage.ts'
import type { CommandName } from './cli/usage.ts'

const stderr = (text: string): void => void process.stderr.write(text)
const stdout = (text: string): void => void process.stdout.write(text)

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name)
}

async function main(argv: readonly string[]): Promise<number> {
  // `token` parses its own options (src/cli/token.ts), so they come after the command name.
  if (argv[0] === 'token') return token(argv.slice(1))
  // First pass: which command, with every option known so that a value is never taken for it.
  const [named, ...rest] = positionalsOf(argv, ALL_OPTIONS)
  if (named === undefined) {
    // No command: --help, --version, or `run` (the default), whose options these must be.
    // Named as `run` in messages: that is the command it would be.
    const top = parseCommandArgs('run', argv, { ...TOP_LEVEL_OPTIONS, ...COMMANDS.run.options }, ALL_OPTIONS, commandOf)
    if (top.values.help === true) return print(usage())
    if (top.values.version === true) return print(`${packageVersion()}\n`)
  }
  const command = named ?? 'run'
  if (command === 'help') return help(rest)
  if (command === 'token') throw new UsageError(usageLine('token', 'the options of token come after it: jwt-sidecar token --config FILE …'))
  if (!isCommand(command)) throw new UsageError(usageLine(undefined, `unknown command: ${command}`))
  const { values, positionals } = parseCommandArgs(command, argv, COMMANDS[command].options, ALL_OPTIONS, commandOf)
  if (values.help === true) return print(COMMANDS[command].help())
  const args = named === undefined ? positionals : positionals.slice(1)
  const config = values.config as string | undefined
  const debug = values.debug === true
  if (command === 'verify') {
    const { verifyCommand } = await import('./cli/verify.ts')
    return verifyCommand(values, args)
  }
  if (args.length > 0) throw new UsageError(usageLine(command, `unexpected argument ${JSON.stringify(args[0])} for ${command}`))
  switch (command) {
    case 'check-config': {
      const loaded = loadCommandConfig(config, process.env, stderr)
      if (loaded === undefined) return 1
      // Valid, so exit 0; a warning names something that is probably not what was meant.
      stdout(checkReport(loaded))
      return 0
    }
    case 'run':
      return run(config, debug)
    case 'demo':
      return demo(config, debug)
  }
}

function print(text: string): number {
  stdout(text)
  return 0
}

/** `jwt-sidecar help [COMMAND]`. */
async function help(topics: readonly string[]): Promise<number> {
  const [topic, extra] = topics
  if (extra !== undefined) throw new UsageError(usageLine(undefined, 'help takes one COMMAND'))
  if (topic === undefined || topic === 'help') return print(usage())
  if (topic === 'token') {
    const { tokenUsage } = await import('./cli/token.ts')
    return print(tokenUsage())
  }
  if (!isCommand(topic)) throw new UsageError(usageLine(undefined, `unknown command: ${topic}`))
  return print(COMMANDS[topic].help())
}

/**
 * A start-up failure: one line on stderr (the stack with --debug), and with JSON logs a
 * `server.failed` line for whatever reads them (a person at a terminal reads the first).
 */
function startFailed(app: App, err: unknown, debug: boolean, format: 'json' | 'pretty'): void {
  const known = err instanceof StartupError
  const line = known ? err.message : `could not start: ${err instanceof Error ? err.message : String(err)}`
  if (format === 'json') {
    app.log.fatal({ event: 'server.failed', ...(known ? { setting: err.setting, code: err.code } : {}), ...(debug ? { err } : {}) }, line)
  }
  stderr(`${line}\n`)
  if (debug) stderr(`${inspect(err)}\n`)
}

async function run(configFlag: string | undefined, debug: boolean): Promise<number> {
  const env = process.env
  const config = loadCommandConfig(configFlag, env, stderr)
  if (config === undefined) return 1
  const format = resolveLogFormat(config.log.format, process.stdout.isTTY === true)
  const app: App = createApp(config)
  try {
    const unreadable = unreadableFile(config)
    if (unreadable !== undefined) throw unreadable
    await app.start()
  } catch (err) {
    startFailed(app, err, debug, format)
    await app.close()
    return 1
  }
  const reloader = createConfigReloader(app, { path: resolveConfigPath(configFlag, env), env })
  // SIGHUP: reload even if the file text is the same (the environment may have changed).
  process.on('SIGHUP', () => reloader.reload('signal', true))
  // Ctrl-C at a terminal skips shutdown.delay; SIGTERM keeps it (src/stop-signals.ts).
  onStopSignals(async (signal) => {
    reloader.close()
    await app.shutdown(stopPlan(signal, processTerminal(), config.shutdown)) // restart-only: the values it started with
  })
  return -1 // keep running
}

async function demo(configFlag: string | undefined, debug: boolean): Promise<number> {
  // Loaded only here: the demo's issuer (jose's signing side) is no part of `run`'s start.
  const { demoConfigPath, runDemo } = await import('./demo/run.ts')
  let handle
  try {
    handle = await runDemo(configFlag ?? demoConfigPath(), process.env, (line) => stdout(`${line}\n`))
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StartupError) stderr(`${err.message}\n`)
    else stderr(`demo failed: ${(err as Error).message}\n`)
    if (debug) stderr(`${inspect(err)}\n`)
    return 1
  }
  onStopSignals(() => handle.stop())
  return -1
}

/** `jwt-sidecar token`: loaded only here (jose's signing side is no part of `run`). */
async function token(args: readonly string[]): Promise<number> {
  const { tokenCommand } = await import('./cli/token.ts')
  const outcome = await tokenCommand(args, { env: process.env, out: stdout, err: stderr })
  if ('code' in outcome) return outcome.code
  onStopSignals(() => outcome.serving.close())
  return -1
}

const argv = process.argv.slice(2)
main(argv).then(
  (code) => {
    if (code >= 0) process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      stderr(`${err.message}\n`)
      process.exitCode = 2
      return
    }
    // Not a failure we know how to put in words: its message, and the stack only when asked.
    stderr(argv.includes('--debug')
      ? `jwt-sidecar: ${inspect(err)}\n`
      : `jwt-sidecar: ${err instanceof Error ? err.message : String(err)} (--debug shows the stack trace)\n`)
    process.exitCode = 1
  },
)
