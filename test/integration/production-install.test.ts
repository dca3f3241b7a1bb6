/**
 * The production install, done the way the Dockerfile does it, so that a runtime dependency
 * missing from `dependencies` (or only in devDependencies) fails CI even though no image is
 * built here (there is no Docker engine on the CI machine).
 *
 * The steps are read from the Dockerfile rather than restated: the deps stage's `npm ci`
 * flags, the runtime stage's COPY lines, WORKDIR, ENV, USER, ENTRYPOINT and CMD. A runtime
 * COPY this file does not know how to reproduce fails the first test, so the image and this
 * test cannot drift apart silently.
 *
 * In a temp dir: `deps/` gets package.json and package-lock.json and runs the deps stage's
 * `npm ci --omit=dev --ignore-scripts …` (plus --prefer-offline); `app/` gets what the runtime
 * stage copies (deps' node_modules, package.json, config/*.yaml, the built dist/src without
 * source maps). Then `app/` is made read-only and the entrypoint is started exactly as the
 * image starts it (`node app/dist/src/cli.js run`, cwd app/, the image's ENV with
 * JWT_SIDECAR_CONFIG pointing at a loopback config, and uid:gid 65532 when the test runs as
 * root), and must serve, authenticate, shut down on SIGTERM with exit 0, and leave app/
 * byte-for-byte unchanged.
 */
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix, relative } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { waitFor } from '../../src/wait-for.ts'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const builtSrc = join(root, 'dist', 'src')

// ---------------------------------------------------------------------------------------------
// Reading the Dockerfile
// ---------------------------------------------------------------------------------------------

interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY… */
  readonly cmd: string
  /** The arguments, continuation lines joined and runs of whitespace collapsed. */
  readonly args: string
}

interface Stage {
  readonly image: string
  readonly name: string | undefined
  readonly body: readonly Instruction[]
}

/** Instructions grouped by stage. Comment lines are skipped, also inside continuations, as Docker does. */
function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = []
  let pending = ''
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `
      continue
    }
    const full = `${pending}${line}`.replace(/\s+/g, ' ').trim()
    pending = ''
    const space = full.indexOf(' ')
    instructions.push({ cmd: (space < 0 ? full : full.slice(0, space)).toUpperCase(), args: space < 0 ? '' : full.slice(space + 1) })
  }
  const stages: Array<{ image: string; name: string | undefined; body: Instruction[] }> = []
  for (const i of instructions) {
    if (i.cmd === 'FROM') {
      const [image = '', as, name] = i.args.split(' ')
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, body: [] })
    } else {
      stages.at(-1)?.body.push(i) // ARGs before the first FROM belong to no stage
    }
  }
  return stages
}

interface Image {
  readonly stages: readonly Stage[]
  readonly runtime: Stage
  /** `npm ci` and its flags, from the deps stage. */
  readonly depsInstall: readonly string[]
  readonly workdir: string
  readonly env: Readonly<Record<string, string>>
  readonly user: { readonly uid: number; readonly gid: number }
  readonly entrypoint: readonly string[]
  readonly cmd: readonly string[]
  readonly expose: readonly number[]
}

function only(stage: Stage, cmd: string): string {
  const found = stage.body.filter((i) => i.cmd === cmd)
  assert.equal(found.length, 1, `Dockerfile: the ${stage.name ?? stage.image} stage should have exactly one ${cmd}, has ${found.length}`)
  return found[0]!.args
}

function readImage(): Image {
  const file = join(root, 'Dockerfile')
  assert.ok(existsSync(file), `${file} is missing`)
  const stages = parseDockerfile(readFileSync(file, 'utf8'))
  const runtime = stages.at(-1)
  assert.ok(runtime !== undefined, 'Dockerfile: no FROM')
  const deps = stages.find((s) => s.name === 'deps')
  assert.ok(deps !== undefined, 'Dockerfile: no `deps` stage (the production node_modules)')
  const installs = deps.body.filter((i) => i.cmd === 'RUN' && /^npm ci\b/.test(i.args))
  assert.equal(installs.length, 1, 'Dockerfile: the deps stage should run `npm ci` exactly once')
  const env: Record<string, string> = {}
  for (const args of runtime.body.filter((i) => i.cmd === 'ENV').map((i) => i.args)) {
    for (const pair of args.split(' ')) {
      const eq = pair.indexOf('=')
      assert.ok(eq > 0, `Dockerfile: write ENV as KEY=value (got ${pair})`)
      env[pair.slice(0, eq)] = pair.slice(eq + 1)
    }
  }
  const [uid, gid] = only(runtime, 'USER').split(':').map(Number)
  assert.ok(Number.isInteger(uid) && Number.isInteger(gid), 'Dockerfile: USER should be numeric uid:gid (Kubernetes runAsNonRoot needs a number)')
  const execForm = (cmd: string): string[] => {
    const args = only(runtime, cmd)
    assert.ok(args.startsWith('['), `Dockerfile: ${cmd} should be in exec form (JSON array) so that signals reach node`)
    return JSON.parse(args) as string[]
  }
  return {
    stages,
    runtime,
    depsInstall: installs[0]!.args.split(' '),
    workdir: only(runtime, 'WORKDIR'),
    env,
    user: { uid: uid!, gid: gid! },
    entrypoint: execForm('ENTRYPOINT'),
    cmd: execForm('CMD'),
    expose: only(runtime, 'EXPOSE').split(' ').map((p) => Number.parseInt(p, 10)),
  }
}

/** The paths a COPY without --from takes from the build context (its sources). */
function contextSources(stages: readonly Stage[]): string[] {
  return stages.flatMap((s) => s.body.filter((i) => i.cmd === 'COPY' && !i.args.includes('--from=')))
    .flatMap((i) => i.args.split(' ').filter((w) => !w.startsWith('--')).slice(0, -1))
}

/**
 * Whether `.dockerignore` keeps `path` (relative, `/`-separated) out of the build context:
 * Docker's rules (the last matching line wins, `!` re-includes, `**` spans directories, a
 * matched directory excludes everything below it).
 */
function dockerignored(patterns: readonly string[], path: string): boolean {
  let excluded = false
  for (const line of patterns) {
    const negate = line.startsWith('!')
    const pattern = posix.normalize((negate ? line.slice(1) : line).trim()).replace(/^\/+|\/+$/g, '')
    let re = ''
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i]!
      if (pattern.startsWith('**/', i)) {
        re += '(?:.*/)?'
        i += 2
      } else if (pattern.startsWith('**', i)) {
        re += '.*'
        i += 1
      } else if (c === '*') re += '[^/]*'
      else if (c === '?') re += '[^/]'
      else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
    }
    if (new RegExp(`^${re}(?:/.*)?$`).test(path)) excluded = !negate
  }
  return excluded
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    const st = lstatSync(p)
    return st.isDirectory() ? [p, ...walk(p)] : [p]
  })
}

/** Every entry under `dir` with what a write would change: type, mode, size, mtime. */
function snapshot(dir: string): Map<string, string> {
  return new Map(walk(dir).map((p) => {
    const st = lstatSync(p)
    return [relative(dir, p), `${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f'} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.mtimeMs}`]
  }))
}

/**
 * `chmod -R a-w` that keeps the tree readable and searchable by everyone (the runtime user
 * is not the owner, as in the image). `writable: true` gives the owner write back.
 */
function setWritable(dir: string, writable: boolean): void {
  for (const p of [dir, ...walk(dir)]) {
    const st = lstatSync(p)
    if (st.isSymbolicLink()) continue // chmod would follow it
    const readable = st.isDirectory() ? 0o555 : (st.mode & 0o111) !== 0 ? 0o555 : 0o444
    chmodSync(p, writable ? readable | 0o200 : readable)
  }
}

/**
 * `npm` with the caller's npm_* variables removed: the image's npm ci runs with none. Killed
 * after 110 s so that a slow install fails with npm's own output: under Node 20, the
 * runner's `--test-timeout=120000` (scripts/test.mjs) caps this whole file, whatever the
 * test's own 180 s says (Node 24 honours the 180 s).
 */
function npm(args: readonly string[], cwd: string): Promise<{ code: number; output: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))
  return new Promise((resolve) => {
    execFile('npm', [...args], { cwd, env, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, output: `${stdout}${stderr}${err !== null && typeof err.code !== 'number' ? `\n${err.message}` : ''}` })
    })
  })
}

/** The package a bare import specifier names: `@scope/name` or `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
}

/** Bare specifiers of every static and literal dynamic import in the .js files under `dir`. */
function bareImports(dir: string): Set<string> {
  const found = new Set<string>()
  const patterns = [
    /^\s*(?:import|export)\s[^'"\n]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  for (const file of walk(dir).filter((p) => p.endsWith('.js'))) {
    const text = readFileSync(file, 'utf8')
    for (const re of patterns) {
      for (const m of text.matchAll(re)) {
        const spec = m[1]!
        if (!spec.startsWith('.') && !spec.startsWith('/') && !spec.startsWith('node:')) found.add(packageOf(spec))
      }
    }
  }
  return found
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/** Each runtime-stage COPY (as written in the Dockerfile) and how this test does the same into app/. */
const RUNTIME_COPIES: Readonly<Record<string, (dirs: { readonly deps: string; readonly app: string }) => void>> = {
  '--from=deps /src/node_modules ./node_modules': ({ deps, app }) => renameSync(join(deps, 'node_modules'), join(app, 'node_modules')),
  'package.json ./': ({ app }) => cpSync(join(root, 'package.json'), join(app, 'package.json')),
  'config/sidecar.yaml config/demo.yaml ./config/': ({ app }) => {
    mkdirSync(join(app, 'config'))
    for (const f of ['sidecar.yaml', 'demo.yaml']) cpSync(join(root, 'config', f), join(app, 'config', f))
  },
  // The image's build runs `npm run build -- --sourceMap false`; the dist/ here has maps.
  '--from=build /src/dist/src ./dist/src': ({ app }) => cpSync(builtSrc, join(app, 'dist', 'src'), { recursive: true, filter: (src) => !src.endsWith('.map') }),
}

test('Dockerfile: the runtime stage is what this test reproduces, and .dockerignore keeps its sources in the context', () => {
  const image = readImage()
  const runtime = image.runtime
  assert.equal(runtime.image, 'gcr.io/distroless/nodejs24-debian13:nonroot')
  for (const s of image.stages.slice(0, -1)) assert.match(s.image, /^node:24[-.]/, `build stages use Node 24 like the runtime (${s.image})`)
  assert.deepEqual(
    runtime.body.filter((i) => i.cmd === 'COPY').map((i) => i.args).sort(),
    Object.keys(RUNTIME_COPIES).sort(),
    'the runtime stage COPYs something this test does not reproduce (or no longer COPYs something it does): update RUNTIME_COPIES',
  )
  assert.ok(image.depsInstall.includes('--omit=dev') && image.depsInstall.includes('--ignore-scripts'), `deps stage: ${image.depsInstall.join(' ')}`)
  const build = image.stages.find((s) => s.name === 'build')
  assert.ok(build?.body.some((i) => i.cmd === 'RUN' && /^npm run build -- --sourceMap false$/.test(i.args)), 'build stage: `npm run build -- --sourceMap false` (RUNTIME_COPIES leaves out .map files to match)')
  assert.equal(image.workdir, '/app')
  assert.deepEqual(image.user, { uid: 65532, gid: 65532 })
  assert.deepEqual(image.entrypoint, ['/nodejs/bin/node', '/app/dist/src/cli.js'])
  assert.deepEqual(image.cmd, ['run'])
  assert.equal(image.env.NODE_ENV, 'production')
  assert.equal(image.env.JWT_SIDECAR_CONFIG, '/etc/jwt-sidecar/sidecar.yaml', 'where the Helm chart mounts the config')

  // The ports the default config listens on are the ones the image exposes.
  const defaults = parseYaml(readFileSync(join(root, 'config', 'sidecar.yaml'), 'utf8')) as { listen: string; admin: { listen: string } }
  const port = (hostPort: string): number => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))
  assert.deepEqual(image.expose, [port(defaults.listen), port(defaults.admin.listen)])

  // .dockerignore: every context file a COPY names is sent; host build output and the rest are not.
  const ignoreFile = join(root, '.dockerignore')
  assert.ok(existsSync(ignoreFile), `${ignoreFile} is missing`)
  const patterns = readFileSync(ignoreFile, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const sources = contextSources(image.stages)
  assert.ok(sources.length > 0)
  for (const source of sources) {
    const abs = join(root, source)
    assert.ok(existsSync(abs), `Dockerfile copies ${source}, which does not exist`)
    for (const p of lstatSync(abs).isDirectory() ? walk(abs).filter((f) => !lstatSync(f).isDirectory()) : [abs]) {
      const rel = relative(root, p).split('\\').join('/')
      assert.ok(!dockerignored(patterns, rel), `.dockerignore excludes ${rel}, which the Dockerfile copies`)
    }
  }
  for (const rel of ['node_modules/fastify/package.json', 'dist/src/cli.js', '.git/HEAD', 'test/unit/x.test.ts', 'coverage/lcov.info', 'bench/run.ts', 'helm/Chart.yaml', 'npm-debug.log', 'src/x.log']) {
    assert.ok(dockerignored(patterns, rel), `.dockerignore should exclude ${rel}`)
  }
})

let tmp: string | undefined
after(() => {
  if (tmp === undefined) return
  setWritable(tmp, true)
  rmSync(tmp, { recursive: true, force: true })
})

test('production install: npm ci --omit=dev of the lockfile runs the built sidecar from a read-only directory with the image\'s entrypoint, env and user', { timeout: 180_000 }, async (t: TestContext) => {
  assert.ok(existsSync(join(builtSrc, 'cli.js')), `${join(builtSrc, 'cli.js')} is missing: run \`npm run build\` first (npm test does)`)
  const image = readImage()
  tmp = mkdtempSync(join(tmpdir(), 'jwt-sidecar-prod-'))
  const deps = join(tmp, 'deps')
  const app = join(tmp, 'app')
  mkdirSync(deps)
  mkdirSync(app)

  // deps stage: the lockfile's production dependencies, with the Dockerfile's own flags.
  cpSync(join(root, 'package.json'), join(deps, 'package.json'))
  cpSync(join(root, 'package-lock.json'), join(deps, 'package-lock.json'))
  const [npmCmd, ...npmArgs] = image.depsInstall
  assert.equal(npmCmd, 'npm')
  const t0 = performance.now()
  const install = await npm([...npmArgs, '--prefer-offline'], deps)
  const installSeconds = (performance.now() - t0) / 1000
  assert.equal(install.code, 0, `npm ${npmArgs.join(' ')} --prefer-offline failed:\n${install.output}`)
  t.diagnostic(`npm ${npmArgs.join(' ')} --prefer-offline: ${installSeconds.toFixed(1)} s`)

  // No dev dependency was installed: not one package the lockfile marks dev-only.
  const lock = JSON.parse(readFileSync(join(deps, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  const devOnly = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev === true).map(([path]) => path)
  assert.ok(devOnly.length > 0, 'the lockfile marks no package dev-only: is it a v2/v3 lockfile?')
  assert.deepEqual(devOnly.filter((path) => existsSync(join(deps, path))), [], 'dev-only packages in the production node_modules')
  for (const name of ['typescript', 'eslint', 'tsx', 'dockerfilelint', '@types/node']) {
    assert.ok(!existsSync(join(deps, 'node_modules', name)), `${name} is a dev dependency and must not be installed`)
  }

  // runtime stage: exactly what the Dockerfile COPYs, in its order.
  for (const copy of image.runtime.body.filter((i) => i.cmd === 'COPY')) {
    const reproduce = RUNTIME_COPIES[copy.args]
    assert.ok(reproduce !== undefined, `no way to reproduce COPY ${copy.args}`)
    reproduce({ deps, app })
  }
  assert.ok(!walk(join(app, 'dist')).some((p) => p.endsWith('.map')), 'no source maps of ours in the image')

  // Every package the compiled code imports is a production dependency, and installed; this
  // also covers modules a run would not load.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  for (const name of bareImports(join(app, 'dist', 'src'))) {
    assert.ok(pkg.dependencies?.[name] !== undefined, `dist/src imports ${name}, which is not in package.json dependencies (a devDependency is not installed in the image)`)
    assert.ok(existsSync(join(app, 'node_modules', name, 'package.json')), `dist/src imports ${name}, which npm ci --omit=dev did not install`)
  }

  // The config the chart would mount at $JWT_SIDECAR_CONFIG: a loopback issuer and upstream.
  const idp = await startTestIssuer()
  t.after(() => idp.close())
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const configDir = join(tmp, 'etc-jwt-sidecar')
  mkdirSync(configDir)
  const configFile = join(configDir, 'sidecar.yaml')
  writeFileSync(configFile, `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: ${upstream.url} }
shutdown: { delay: 100ms, timeout: 5s }
issuers:
  - name: test
    issuer: ${idp.issuer}
    jwksUri: ${idp.jwksUri}
    audiences: [test-api]
identity:
  headers: { X-Auth-Subject: sub }
routes:
  - name: default
    path: /**
    auth: required
log: { level: info, access: false }
`)

  // Read-only, like the image's root filesystem (and the app is not owned by the runtime user).
  setWritable(app, false)
  setWritable(configDir, false)
  chmodSync(tmp, 0o755)
  const before = snapshot(app)

  // The entrypoint exactly as the image runs it: /nodejs/bin/node is this node, /app is app/.
  const inApp = (p: string): string => (p === image.workdir || p.startsWith(`${image.workdir}/`) ? join(app, p.slice(image.workdir.length)) : p)
  const [, ...entryArgs] = image.entrypoint
  const argv = [...entryArgs.map(inApp), ...image.cmd]
  const env = { PATH: process.env.PATH ?? '', ...image.env, JWT_SIDECAR_CONFIG: configFile }
  // As root, run as the image's USER too, so the read-only mode is enforced and not just set
  // (root ignores it). That needs this node binary to be executable by that user.
  let ids: { uid: number; gid: number } | undefined
  if (process.getuid?.() === 0) {
    const probe = spawnSync(process.execPath, ['-e', 'require("node:fs").readFileSync(process.argv[1])', argv[0]!], { cwd: app, env, ...image.user })
    if (probe.status === 0) ids = image.user
    else t.diagnostic(`running as root: ${process.execPath} cannot run as uid ${image.user.uid} here (${probe.error?.message ?? probe.stderr.toString().trim()}); the unchanged-files check still holds`)
  }
  t.diagnostic(`start: ${[process.execPath, ...argv].join(' ')} (cwd ${app}, uid ${ids?.uid ?? process.getuid?.()}, env ${Object.keys(env).join(' ')})`)

  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, argv, { cwd: app, env, ...ids })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })

  const logs = (): Array<Record<string, unknown>> => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  const started = await waitFor(() => {
    assert.ok(child.exitCode === null, `the sidecar did not start (exit ${child.exitCode}):\n${out}\n${err}`)
    return logs().find((l) => l.event === 'server.started')
  }, { what: () => `the sidecar to start:\n${out}\n${err}`, timeoutMs: 15_000 })
  const proxy = String(started.proxy)
  const admin = String(started.admin)
  await waitFor(async () => (await fetch(`${admin}/readyz`).then(async (r) => { await r.arrayBuffer(); return r.status }, () => 0)) === 200,
    { what: () => `/readyz to answer 200:\n${out}\n${err}`, timeoutMs: 10_000, intervalMs: 25 })

  const token = await idp.sign({ sub: 'alice' })
  const ok = await fetch(`${proxy}/orders/42`, { headers: { authorization: `Bearer ${token}` } })
  await ok.arrayBuffer()
  assert.equal(ok.status, 200)
  assert.equal(upstream.last()?.headers['x-auth-subject'], 'alice')
  const seen = upstream.requests()
  const denied = await fetch(`${proxy}/orders/42`)
  await denied.arrayBuffer()
  assert.equal(denied.status, 401)
  assert.equal(upstream.requests(), seen, 'a request without a token never reaches the upstream')

  child.kill('SIGTERM')
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000).unref())])
  assert.equal(code, 0, `exit after SIGTERM:\n${err}`)
  assert.ok(logs().some((l) => l.event === 'shutdown.completed'), out)

  assert.deepEqual(snapshot(app), before, 'the sidecar wrote to its (read-only) app directory')
})
