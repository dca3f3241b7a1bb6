/**
 * What `jwt-sidecar --help`, `jwt-sidecar COMMAND --help` and `jwt-sidecar help COMMAND` print,
 * and each command's options: the help and the parser read the same table, so an option cannot
 * be documented and refused, or accepted and undocumented. (`token` keeps its own options and
 * help next to its code, src/cli/token.ts.)
 */
import { packageVersion } from '../package-root.ts'
import type { OptionSpecs } from './args.ts'

/** Accepted by every command: the help, and stack traces for failures (`--debug`). */
const COMMON = {
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
} as const

const CONFIG = { config: { type: 'string', short: 'c' } } as const

const VERIFY_OPTIONS = {
  ...COMMON,
  ...CONFIG,
  path: { type: 'string' },
  url: { type: 'string' },
  method: { type: 'string' },
  json: { type: 'boolean' },
  dpop: { type: 'string' },
  'dpop-file': { type: 'string' },
  'client-cert': { type: 'string' },
} as const satisfies OptionSpecs

/** `jwt-sidecar token`'s options (src/cli/token.ts parses them; here so the others can name them without loading it). */
export const TOKEN_OPTIONS = {
  ...COMMON,
  ...CONFIG,
  issuer: { type: 'string' },
  sub: { type: 'string' },
  scope: { type: 'string' },
  aud: { type: 'string', multiple: true },
  claim: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  kid: { type: 'string' },
  tenant: { type: 'string' },
  alg: { type: 'string' },
  keys: { type: 'string' },
  serve: { type: 'boolean' },
  listen: { type: 'string' },
  'export-jwks': { type: 'string' },
} as const satisfies OptionSpecs

/** The commands other than token: their options and their help. */
export const COMMANDS = {
  run: { options: { ...COMMON, ...CONFIG }, help: runHelp },
  'check-config': { options: { ...COMMON, ...CONFIG }, help: checkConfigHelp },
  demo: { options: { ...COMMON, ...CONFIG }, help: demoHelp },
  verify: { options: VERIFY_OPTIONS, help: verifyHelp },
} as const satisfies Readonly<Record<string, { readonly options: OptionSpecs; readonly help: () => string }>>

export type CommandName = keyof typeof COMMANDS

/** Options before the command name (`jwt-sidecar --config FILE check-config`), and the top level's own. */
export const TOP_LEVEL_OPTIONS = { ...COMMON, version: { type: 'boolean', short: 'v' } } as const satisfies OptionSpecs

/** Every option of every command: what the first pass parses with, so values are never taken for the command. */
export const ALL_OPTIONS: OptionSpecs = { ...TOP_LEVEL_OPTIONS, ...TOKEN_OPTIONS, ...VERIFY_OPTIONS }

/** The command an option belongs to, for `--path is an option of verify, not of run`. */
export function commandOf(option: string): string | undefined {
  if (Object.hasOwn(COMMANDS.run.options, option)) return undefined
  if (Object.hasOwn(VERIFY_OPTIONS, option)) return 'verify'
  if (Object.hasOwn(TOKEN_OPTIONS, option)) return 'token'
  return undefined
}

const CONFIG_LINE = `  -c, --config FILE   the config file (default $JWT_SIDECAR_CONFIG, else config/sidecar.yaml)`
const COMMON_LINES = `  --debug             a failure prints its stack trace
  -h, --help          this help`

export function usage(): string {
  return `jwt-sidecar ${packageVersion()}: verifies JWTs and forwards verified identity to the app behind it

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
                                             publish that key's JWKS (loopback) for a test config
  jwt-sidecar help COMMAND                   a command's options (also: jwt-sidecar COMMAND --help)
  jwt-sidecar --version | --help

The config file is --config FILE, else $JWT_SIDECAR_CONFIG, else config/sidecar.yaml.
--debug (any command): a failure prints its stack trace.
`
}

function runHelp(): string {
  return `Usage: jwt-sidecar run [--config FILE] [--debug]
  Serves: the proxy on \`listen\`, the admin port on \`admin.listen\` (/healthz, /readyz, /keys,
  /metrics; / lists them). Logs go to stdout: JSON, or one readable line per event when stdout
  is a terminal (log.format). \`run\` is the default command: \`jwt-sidecar\` alone runs it.

  Stops on SIGTERM after shutdown.delay (Kubernetes), at once on Ctrl-C at a terminal; SIGHUP
  or a change of the file reloads the config. A start-up failure (a port in use, a file that
  cannot be read) is one line on stderr naming the setting, and exit status 1.

${CONFIG_LINE}
${COMMON_LINES}
`
}

function checkConfigHelp(): string {
  return `Usage: jwt-sidecar check-config [--config FILE] [--debug]
  Validates the config without starting anything: every error, each as FILE:LINE PATH: what
  was expected; exit 1 if there is one. A valid config prints a one-line summary and its
  warnings (a route a method can walk around), exit 0.

${CONFIG_LINE}
${COMMON_LINES}
`
}

function demoHelp(): string {
  return `Usage: jwt-sidecar demo [--config FILE] [--debug]
  Starts an embedded issuer, an echo app and the sidecar on 127.0.0.1, prints curl commands
  that give 200, 401 and 401 and one that reads /keys, and shows the sidecar's access lines
  while you run them. Ctrl-C stops it.

  Ports: 8080 (proxy) and 9901 (admin); DEMO_PORT and DEMO_ADMIN_PORT move them (0 picks free
  ones). A busy port fails the demo at once, with that hint.

  -c, --config FILE   the demo's config (default: config/demo.yaml of the package)
${COMMON_LINES}
`
}

function verifyHelp(): string {
  return `Usage: jwt-sidecar verify [--config FILE] [--path P | --url URL] [--method M] [--json]
                          [--dpop PROOF | --dpop-file FILE] [--client-cert FILE] [TOKEN | -]
  Explains, step by step, what the sidecar with this config would answer to one request
  carrying TOKEN: the same decision the proxy makes, nothing sent anywhere but to the issuers'
  key endpoints. Exit 0 when the request would be forwarded, 1 when it would be denied.

  TOKEN               a JWS, "Bearer eyJ…" or "DPoP eyJ…"; - or none reads it from stdin
  --path P            the request path (default /)
  --url URL           the whole request URL (scheme, Host, path); needed with a DPoP proof
  --method M          the request method (default GET)
  --json              the explanation as JSON
  --dpop PROOF        a DPoP proof (RFC 9449) sent with the token
  --dpop-file FILE    the DPoP proof, read from FILE
  --client-cert FILE  the request's client certificate (PEM or DER), for certificate-bound tokens
${CONFIG_LINE}
${COMMON_LINES}

Example:
  jwt-sidecar verify --config sidecar.yaml --path /orders/42 "$(jwt-sidecar token --config sidecar.yaml --sub alice)"
`
}
