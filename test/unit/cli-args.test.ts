/**
 * A command's options (src/cli/args.ts) and its help (src/cli/usage.ts): one line per usage
 * error, naming the command's help; and a help that names every option the command accepts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { UsageError, parseCommandArgs, positionalsOf } from '../../src/cli/args.ts'
import { ALL_OPTIONS, COMMANDS, TOKEN_OPTIONS, commandOf } from '../../src/cli/usage.ts'
import { tokenUsage } from '../../src/cli/token.ts'

const refused = (args: string[], command = 'verify'): string => {
  try {
    parseCommandArgs(command, args, COMMANDS.verify.options, ALL_OPTIONS, commandOf)
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err))
    return err.message
  }
  assert.fail(`${args.join(' ')} was accepted`)
}

test('an unknown option is one line naming the command and its help', () => {
  assert.equal(refused(['--foo']), 'unknown option --foo for verify; see jwt-sidecar verify --help')
  assert.equal(refused(['-x', 'a.b.c']), 'unknown option -x for verify; see jwt-sidecar verify --help')
  assert.equal(refused(['--sub', 'alice']), '--sub is an option of token, not of verify; see jwt-sidecar verify --help')
})

test('an option of another command says whose it is', () => {
  const r = (args: string[]): string => {
    try {
      parseCommandArgs('run', args, COMMANDS.run.options, ALL_OPTIONS, commandOf)
    } catch (err) {
      return (err as Error).message
    }
    return 'accepted'
  }
  assert.equal(r(['--path', '/x']), '--path is an option of verify, not of run; see jwt-sidecar run --help')
  assert.equal(r(['--json']), '--json is an option of verify, not of run; see jwt-sidecar run --help')
  assert.equal(r(['--config', 'a.yaml', '--debug']), 'accepted')
})

test('a string option needs a value, and does not take the next option for one; a boolean takes none', () => {
  assert.equal(refused(['--config']), 'option --config needs a value; see jwt-sidecar verify --help')
  assert.equal(refused(['--config', '--json']), 'option --config needs a value; see jwt-sidecar verify --help')
  assert.equal(refused(['--json=yes']), 'option --json takes no value; see jwt-sidecar verify --help')
  // An inline value may start with a dash, and "-" alone is a value (stdin, stdout).
  const { values } = parseCommandArgs('verify', ['--path=-x', '--dpop-file', '-'], COMMANDS.verify.options)
  assert.deepEqual({ path: values.path, file: values['dpop-file'] }, { path: '-x', file: '-' })
})

test('the command is the first positional, whatever options come first', () => {
  assert.deepEqual(positionalsOf(['--config', 'x.yaml', 'check-config'], ALL_OPTIONS), ['check-config'])
  assert.deepEqual(positionalsOf(['-c', 'x.yaml', 'verify', '--path', '/a', 'tok'], ALL_OPTIONS), ['verify', 'tok'])
  assert.deepEqual(positionalsOf([], ALL_OPTIONS), [])
})

test("each command's help names every option it accepts, and token's too", () => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    const help = command.help()
    assert.match(help, new RegExp(`^Usage: jwt-sidecar ${name} `), name)
    for (const option of Object.keys(command.options)) assert.ok(help.includes(`--${option}`), `${name} --help does not mention --${option}`)
  }
  const help = tokenUsage()
  for (const option of Object.keys(TOKEN_OPTIONS)) {
    if (option === 'help' || option === 'debug') continue
    assert.ok(help.includes(`--${option}`), `token --help does not mention --${option}`)
  }
})
