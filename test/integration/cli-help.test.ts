/**
 * Help and usage errors as a person at a terminal meets them (issue #14 §5), on the built CLI:
 * each command's own help (`COMMAND --help`, `help COMMAND`), and a wrong option or argument
 * answered by one line that names the help to read, not by the whole usage.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')

interface Run { readonly code: number; readonly stdout: string; readonly stderr: string }

function jwtSidecar(args: readonly string[]): Promise<Run> {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

const COMMANDS = ['run', 'check-config', 'demo', 'verify', 'token'] as const

test('each command has its own help: COMMAND --help, COMMAND -h and help COMMAND print the same text, exit 0', async () => {
  const texts = new Set<string>()
  for (const command of COMMANDS) {
    const [long, short, viaHelp] = await Promise.all([jwtSidecar([command, '--help']), jwtSidecar([command, '-h']), jwtSidecar(['help', command])])
    for (const r of [long, short, viaHelp]) {
      assert.equal(r.code, 0, `${command}: ${r.stderr}`)
      assert.equal(r.stderr, '', command)
    }
    assert.equal(short.stdout, long.stdout, command)
    assert.equal(viaHelp.stdout, long.stdout, command)
    assert.match(long.stdout, new RegExp(`^Usage:\\s+jwt-sidecar ${command} `), command)
    texts.add(long.stdout)
  }
  assert.equal(texts.size, COMMANDS.length, 'five commands, five helps')
  // The verify help carries what only it needs: its options and an example.
  const verify = (await jwtSidecar(['verify', '--help'])).stdout
  for (const option of ['--path', '--url', '--method', '--json', '--dpop', '--dpop-file', '--client-cert', '--config', '--debug']) assert.ok(verify.includes(option), option)
  assert.match(verify, /Example:\n {2}jwt-sidecar verify --config/)
})

test('the general usage names the per-command help; help alone and --help print it', async () => {
  const [a, b] = await Promise.all([jwtSidecar(['--help']), jwtSidecar(['help'])])
  assert.equal(a.code, 0)
  assert.equal(b.stdout, a.stdout)
  assert.match(a.stdout, /jwt-sidecar help COMMAND +a command's options \(also: jwt-sidecar COMMAND --help\)/)
  assert.match(a.stdout, /--debug \(any command\): a failure prints its stack trace/)
})

test('a wrong option or argument is one line naming the help to read, exit 2, nothing on stdout', async () => {
  const cases: Array<[string[], string]> = [
    [['verify', '--foo'], 'unknown option --foo for verify; see jwt-sidecar verify --help'],
    [['verify', '-x', 'a.b.c'], 'unknown option -x for verify; see jwt-sidecar verify --help'],
    [['check-config', '--json'], '--json is an option of verify, not of check-config; see jwt-sidecar check-config --help'],
    [['run', '--sub', 'alice'], '--sub is an option of token, not of run; see jwt-sidecar run --help'],
    [['--path', '/x'], '--path is an option of verify, not of run; see jwt-sidecar run --help'],
    [['--frob'], 'unknown option --frob for run; see jwt-sidecar run --help'],
    [['demo', '--config'], 'option --config needs a value; see jwt-sidecar demo --help'],
    [['verify', '--json=yes', 'a.b.c'], 'option --json takes no value; see jwt-sidecar verify --help'],
    [['check-config', 'extra.yaml'], 'unexpected argument "extra.yaml" for check-config; see jwt-sidecar check-config --help'],
    [['verify', 'a.b.c', 'd.e.f'], 'verify takes one TOKEN (or - for stdin), got 2 arguments; see jwt-sidecar verify --help'],
    [['token', '--bogus'], 'unknown option --bogus for token; see jwt-sidecar token --help'],
    [['frobnicate'], 'unknown command: frobnicate; see jwt-sidecar --help'],
    [['help', 'frobnicate'], 'unknown command: frobnicate; see jwt-sidecar --help'],
    [['run', '--version'], 'unknown option --version for run; see jwt-sidecar run --help'],
  ]
  const runs = await Promise.all(cases.map(([args]) => jwtSidecar(args)))
  for (const [i, [args, line]] of cases.entries()) {
    const r = runs[i]!
    assert.equal(r.code, 2, args.join(' '))
    assert.equal(r.stdout, '', args.join(' '))
    assert.equal(r.stderr, `${line}\n`, args.join(' '))
    // The help it names exists.
    const named = /see (jwt-sidecar .*--help)$/.exec(line)![1]!.split(' ').slice(1)
    const help = await jwtSidecar(named)
    assert.equal(help.code, 0, named.join(' '))
    assert.match(help.stdout, /Usage:/)
  }
})

test('--version prints the version only', async () => {
  const r = await jwtSidecar(['--version'])
  assert.equal(r.code, 0)
  assert.match(r.stdout, /^\d+\.\d+\.\d+\S*\n$/)
})
