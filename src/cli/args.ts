/**
 * A command's options, checked against that command's own list (issue #14 §5): a mistyped or
 * misplaced option is one line naming the command and where its help is, not the whole usage.
 *
 * node:util's parseArgs in strict mode throws on the first unknown option with a message meant
 * for programmers ("Unknown option '--foo'. To specify a positional argument starting with a
 * '-', …"), and a message is no thing to branch on. So it runs non-strict with `tokens`, and
 * each option token is checked here, against the command's list, by name.
 */
import { parseArgs } from 'node:util'

export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  readonly multiple?: boolean
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>

/** The arguments are wrong: exit 2, with this one line (it names the command's help). */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** `see jwt-sidecar verify --help`: the pointer every usage error of a command ends with. */
function seeHelp(command: string | undefined): string {
  return command === undefined ? 'see jwt-sidecar --help' : `see jwt-sidecar ${command} --help`
}

/** The one line for a usage error of `command`: `why; see jwt-sidecar COMMAND --help`. */
export function usageLine(command: string | undefined, why: string): string {
  return `${why}; ${seeHelp(command)}`
}

export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>
  readonly positionals: readonly string[]
}

/**
 * Parses `args` with every option of `known` (so that a string option before the command still
 * takes its value), then refuses, with a {@link UsageError}, any option that is not in `allowed`,
 * a string option without a value and a boolean option given one.
 *
 * @example
 * const { values, positionals } = parseCommandArgs('verify', argv, VERIFY_OPTIONS)
 * // argv ['--frob']: UsageError "unknown option --frob for verify; see jwt-sidecar verify --help"
 */
export function parseCommandArgs(command: string | undefined, args: readonly string[], allowed: OptionSpecs, known: OptionSpecs = allowed, elsewhere?: (name: string) => string | undefined): ParsedArgs {
  const { values, positionals, tokens } = parseArgs({ args: [...args], options: { ...known, ...allowed }, strict: false, allowPositionals: true, tokens: true })
  for (const t of tokens) {
    if (t.kind !== 'option') continue
    const spec = Object.hasOwn(allowed, t.name) ? allowed[t.name] : undefined
    const shown = t.rawName
    if (spec === undefined) {
      const other = elsewhere?.(t.name)
      throw new UsageError(usageLine(command, other === undefined
        ? `unknown option ${shown}${command === undefined ? '' : ` for ${command}`}`
        : `${shown} is an option of ${other}${command === undefined ? '' : `, not of ${command}`}`))
    }
    if (spec.type === 'string') {
      // parseArgs (non-strict) takes the next argument whatever it is: `--config --json` would
      // read a config file named "--json". Strict mode refuses that; so do we.
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-') && t.value !== '-')) {
        throw new UsageError(usageLine(command, `option ${shown} needs a value`))
      }
    } else if (t.value !== undefined) {
      throw new UsageError(usageLine(command, `option ${shown} takes no value`))
    }
  }
  return { values, positionals }
}

/**
 * The positional arguments of `args` (the first is the command), read with every option of
 * `known` so that `--config FILE check-config` does not take FILE for the command. Nothing is
 * refused here: the command's own {@link parseCommandArgs} does that, naming the command.
 */
export function positionalsOf(args: readonly string[], known: OptionSpecs): readonly string[] {
  return parseArgs({ args: [...args], options: { ...known }, strict: false, allowPositionals: true }).positionals
}
