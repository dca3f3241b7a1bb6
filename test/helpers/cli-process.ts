/**
 * The built CLI (`node dist/src/cli.js run`) as a real process, for the tests whose subject is
 * the process itself: its stdout, its signals, its exit.
 *
 * @example
 * const p = await startCliRun(config, (out) => /"event":"server.started"/.test(out) ? true : undefined)
 * p.child.kill('SIGTERM')
 * const { code } = await p.exited()
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../../src/wait-for.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')

export interface CliRun<T> {
  readonly child: ChildProcessWithoutNullStreams
  /** What `started` returned once the process had started. */
  readonly started: T
  /** Everything written to stdout so far. */
  readonly out: () => string
  /** `atMs`: performance.now() when the process exited. */
  readonly exited: () => Promise<{ code: number | null; atMs: number }>
}

/**
 * Spawns `jwt-sidecar run --config <config>` with a bare environment (PATH only), stdout and
 * stderr pipes; resolves once `started(stdout)` returns a value, fails if the process exits first.
 */
export async function startCliRun<T>(config: string, started: (out: string) => T | undefined): Promise<CliRun<T>> {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  const child = spawn(process.execPath, [cli, 'run', '--config', config], { cwd: root, env: { PATH: process.env.PATH ?? '' } })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exit = new Promise<{ code: number | null; atMs: number }>((resolve) => child.on('exit', (code) => resolve({ code, atMs: performance.now() })))
  const value = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`sidecar exited before it started:\n${out}\n${err}`)
    return started(out)
  }, { what: () => `the sidecar to start:\n${out}\n${err}`, timeoutMs: 15_000 })
  return { child, started: value, out: () => out, exited: () => exit }
}
