/**
 * The measuring rig shared by `npm run bench` (run.ts) and the profiler (profile.ts), set up the
 * way ../shared/bench sets up its runs, so that our own numbers are comparable with its ratios:
 * the proxy under test pinned to CPU 0 (one process, its helper threads included), wrk and an
 * nginx upstream (a fixed 200 with a 30-byte JSON body, the JWKS served as a static file) pinned
 * to CPU 1, everything on 127.0.0.1. Needs wrk, nginx and taskset (apt-get install wrk
 * nginx-light util-linux). Never run in CI: only ratios measured in one run mean anything.
 */
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { waitFor } from '../src/wait-for.ts'

export const root = fileURLToPath(new URL('..', import.meta.url))
export const PROXY_CPU = Number(process.env.PROXY_CPU ?? 0)
export const LOAD_CPU = Number(process.env.LOAD_CPU ?? 1)
const run = promisify(execFile)

export type BenchAlg = 'RS256' | 'ES256'

export interface Rig {
  readonly dir: string
  readonly upstreamUrl: string
  readonly jwksUrl: string
  readonly issuer: string
  readonly audience: string
  /** A file of distinct valid tokens, one per line, per alg; `same` has one token. */
  tokens(alg: BenchAlg, kind: 'unique' | 'same' | 'bad'): string
  /** A valid token like the others, bound to a DPoP key by its RFC 7638 thumbprint (`cnf.jkt`, RFC 9449 §6.1). */
  boundToken(alg: BenchAlg, jkt: string): string
  close(): void
}

const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

/** Resolves once `url` answers HTTP at all (any status). */
export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<number> {
  const started = Date.now()
  await waitFor(() => fetch(url).then(async (r) => { await r.arrayBuffer(); return true }, () => false), { what: `an HTTP answer at ${url}`, timeoutMs })
  return Date.now() - started
}

/** `cmd args` pinned to `cpu`, killed when this process exits. */
export function pinned(cpu: number, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv, log?: string): ChildProcess {
  const out = log === undefined ? 'ignore' : 'pipe'
  const c = spawn('taskset', ['-c', String(cpu), cmd, ...args], { stdio: ['ignore', out, out], env: env ?? process.env })
  if (log !== undefined) {
    const chunks: Buffer[] = []
    c.stdout?.on('data', (d: Buffer) => chunks.push(d))
    c.stderr?.on('data', (d: Buffer) => chunks.push(d))
    c.on('exit', () => writeFileSync(log, Buffer.concat(chunks)))
  }
  children.add(c)
  c.on('exit', () => children.delete(c))
  return c
}

export async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  const exited = new Promise<void>((r) => c.once('exit', () => r()))
  c.kill('SIGTERM')
  const t = setTimeout(() => c.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(t)
}

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url')
}

/** A compact JWS signed with node:crypto directly (10,000 RSA signatures take ~6 s). */
function signToken(alg: BenchAlg, key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const input = `${b64url({ alg, typ: 'JWT', kid })}.${b64url(claims)}`
  const sig = alg === 'RS256' ? sign('sha256', Buffer.from(input), key) : sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${sig.toString('base64url')}`
}

/**
 * nginx (one worker, CPU 1) as the upstream and the JWKS server; keys and tokens made here.
 * Tokens carry what a typical access token carries (≈ 700–800 bytes for RS256), all valid for
 * two hours, each with its own `jti`.
 */
export async function startRig(options: { readonly uniqueTokens?: number } = {}): Promise<Rig> {
  const n = options.uniqueTokens ?? 10_000
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-bench-'))
  const upstreamPort = await freePort()
  const jwksPort = await freePort()
  const issuer = `http://127.0.0.1:${jwksPort}/bench`
  const audience = 'https://api.bench.example'
  mkdirSync(join(dir, 'www/.well-known'), { recursive: true })
  mkdirSync(join(dir, 'tmp'), { recursive: true })

  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = (k: KeyObject, kid: string, alg: BenchAlg) => ({ ...k.export({ format: 'jwk' }), kid, alg, use: 'sig' })
  writeFileSync(join(dir, 'www/.well-known/jwks.json'), JSON.stringify({ keys: [jwk(rsa.publicKey, 'bench-rs', 'RS256'), jwk(ec.publicKey, 'bench-es', 'ES256')] }))
  writeFileSync(join(dir, 'rs256.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }))
  writeFileSync(join(dir, 'es256.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }))

  const now = Math.floor(Date.now() / 1000)
  const files = new Map<string, string>()
  const rsaPrivate = createPrivateKey(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const signer = (alg: BenchAlg): { key: KeyObject; kid: string } => (alg === 'RS256' ? { key: rsaPrivate, kid: 'bench-rs' } : { key: ec.privateKey, kid: 'bench-es' })
  const claims = (alg: BenchAlg, i: number | string): Record<string, unknown> => ({
    iss: issuer, aud: audience, sub: `user-${i}`, scope: 'openid profile orders:read orders:write',
    email: `user-${i}@bench.example`, name: `Bench User ${i}`, iat: now, nbf: now, exp: now + 7200, jti: `bench-${alg}-${i}-${now}`,
    client_id: 'bench-client', azp: 'bench-client',
  })
  for (const alg of ['RS256', 'ES256'] as const) {
    const { key, kid } = signer(alg)
    const lines: string[] = []
    for (let i = 0; i < n; i++) lines.push(signToken(alg, key, kid, claims(alg, i)))
    const unique = join(dir, `${alg}-unique.txt`)
    writeFileSync(unique, `${lines.join('\n')}\n`)
    files.set(`${alg}-unique`, unique)
    const same = join(dir, `${alg}-same.txt`)
    writeFileSync(same, `${lines[0]}\n`)
    files.set(`${alg}-same`, same)
    // One signature character changed: a full verification, then 401.
    const bad = join(dir, `${alg}-bad.txt`)
    writeFileSync(bad, `${lines.map((t) => t.slice(0, -6) + (t.at(-6) === 'A' ? 'B' : 'A') + t.slice(-5)).join('\n')}\n`)
    files.set(`${alg}-bad`, bad)
  }

  writeFileSync(join(dir, 'nginx.conf'), `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err warn;
events { worker_connections 16384; }
http { access_log off; client_body_temp_path ${dir}/tmp/b; proxy_temp_path ${dir}/tmp/p; fastcgi_temp_path ${dir}/tmp/f; uwsgi_temp_path ${dir}/tmp/u; scgi_temp_path ${dir}/tmp/s;
  keepalive_requests 100000000; keepalive_timeout 300s; server_tokens off;
  server { listen 127.0.0.1:${upstreamPort} backlog=4096; location / { default_type application/json; return 200 '{"ok":true,"from":"upstream"}\\n'; } }
  server { listen 127.0.0.1:${jwksPort}; root ${dir}/www;
    location = /bench/.well-known/jwks.json { default_type application/json; rewrite ^ /.well-known/jwks.json break; }
    location = /.well-known/jwks.json { default_type application/json; } } }
`)
  const nginx = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx'
  pinned(LOAD_CPU, nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'nginx.start.err')])
  await waitForHttp(`http://127.0.0.1:${upstreamPort}/`)

  writeFileSync(join(dir, 'load.lua'), WRK_LUA)
  return {
    dir,
    upstreamUrl: `http://127.0.0.1:${upstreamPort}`,
    jwksUrl: `http://127.0.0.1:${jwksPort}/bench/.well-known/jwks.json`,
    issuer,
    audience,
    tokens: (alg, kind) => files.get(`${alg}-${kind}`)!,
    boundToken: (alg, jkt) => signToken(alg, signer(alg).key, signer(alg).kid, { ...claims(alg, 'dpop'), cnf: { jkt } }),
    close() {
      for (const c of children) c.kill('SIGKILL')
    },
  }
}

// Requests are pre-built in init(): the per-request Lua cost is one table lookup. "none" sends
// no Authorization header. "dpop:FILE" (bench/dpop-load.ts): the first line is a DPoP-bound
// token, each other line a proof, one request per proof (never reused: the sidecar refuses a
// replayed proof, and a refusal is counted as a wrong answer). Each status is counted, so a
// wrong answer cannot pass as speed.
const WRK_LUA = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
local reqs, n, idx = {}, 0, 0
codes = {}
function init(args)
  local src = args[1] or "none"
  if src == "none" then reqs[1] = wrk.format("GET", "/api/orders"); n = 1
  elseif src:sub(1, 5) == "dpop:" then
    local token
    for line in io.lines(src:sub(6)) do
      if #line > 0 then
        if token == nil then token = line
        else n = n + 1; reqs[n] = wrk.format("GET", "/api/orders", { ["Authorization"] = "DPoP " .. token, ["DPoP"] = line }) end
      end
    end
  else for line in io.lines(src) do if #line > 0 then n = n + 1; reqs[n] = wrk.format("GET", "/api/orders", { ["Authorization"] = "Bearer " .. line }) end end end
end
function request() idx = idx + 1; if idx > n then idx = 1 end; return reqs[idx] end
function response(status) codes[status] = (codes[status] or 0) + 1 end
function done(summary)
  local parts = {}
  for _, t in ipairs(threads) do for k, v in pairs(t:get("codes") or {}) do table.insert(parts, string.format('"%s":%d', k, v)) end end
  local e = summary.errors
  io.write(string.format('CODES {%s} ERRORS %d\\n', table.concat(parts, ","), e.connect + e.read + e.write + e.timeout))
end
`

export interface WrkResult {
  readonly rps: number
  /** Responses other than `expect`, plus socket errors. */
  readonly wrong: number
}

/** wrk (one thread, CPU 1) against `port` for `seconds`; `tokens` is a token file, 'dpop:' and a proof file, or 'none'. */
export async function wrk(rig: Rig, port: number, tokens: string, seconds: number, expect: number, conns = 64): Promise<WrkResult> {
  const { stdout } = await run('taskset', ['-c', String(LOAD_CPU), 'wrk', '-t1', `-c${conns}`, `-d${seconds}s`, '--timeout', '5s', '-s', join(rig.dir, 'load.lua'), `http://127.0.0.1:${port}/api/orders`, '--', tokens], { maxBuffer: 1 << 20 })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN)
  const m = /CODES (\{.*\}) ERRORS (\d+)/.exec(stdout)
  if (m === null) throw new Error(`wrk printed no status counts:\n${stdout}`)
  const codes = JSON.parse(m[1]!) as Record<string, number>
  let wrong = Number(m[2])
  for (const [code, count] of Object.entries(codes)) if (Number(code) !== expect) wrong += count
  return { rps, wrong }
}

export interface Sidecar {
  readonly port: number
  readonly adminPort: number
  readonly process: ChildProcess
  /** ms from spawn to the first HTTP answer. */
  readonly startMs: number
}

/**
 * The sidecar config for the rig: one issuer (RS256 and ES256), a bearer header, one route over
 * everything. `dpop`: the issuer requires DPoP (bench/dpop-load.ts), with a proof window of
 * 10 s and a clock skew of 5 s, so the replay cache (100 000 proofs, each kept until iat +
 * proofMaxAge + clockSkew ≈ 15 s) never fills at the rig's rate; with the defaults (60 s,
 * 60 s) it would, past ≈ 830 DPoP requests/s, and refuse proofs.
 */
export function sidecarYaml(rig: Rig, options: { readonly accessLog: boolean; readonly cache: boolean | undefined; readonly dpop?: boolean }) {
  return (port: number, adminPort: number): string => `listen: 127.0.0.1:${port}
admin: { listen: 127.0.0.1:${adminPort} }
upstream: { url: ${rig.upstreamUrl} }
issuers:
  - name: bench
    issuer: ${rig.issuer}
    jwksUri: ${rig.jwksUrl}
    audiences: [ "${rig.audience}" ]
    algorithms: [RS256, ES256]
${options.dpop === true ? '    dpop: { mode: required, proofMaxAge: 10s }\n' : ''}tokens:
  from: [ { header: Authorization, prefix: "Bearer " } ]
${options.dpop === true ? '  clockSkew: 5s\n' : ''}${options.cache === undefined ? '' : `  cache: { enabled: ${options.cache} }\n`}identity:
  headers: { X-Auth-Subject: sub }
  strip: ["X-Auth-*"]
routes:
  - { name: all, path: /**, auth: required }
log: { level: info, access: ${options.accessLog} }
`
}

/**
 * The built CLI (`dist/src/cli.js run`) pinned to CPU 0 with `yaml` as its config. `cli`: another
 * build's cli.js, to compare two builds in one run (e.g. a `git worktree` of the previous commit).
 */
export async function startSidecar(rig: Rig, name: string, yaml: (port: number, adminPort: number) => string, nodeArgs: readonly string[] = [], cli = join(root, 'dist/src/cli.js')): Promise<Sidecar> {
  const port = await freePort()
  const adminPort = await freePort()
  const file = join(rig.dir, `${name}.yaml`)
  writeFileSync(file, yaml(port, adminPort))
  const started = Date.now()
  const child = pinned(PROXY_CPU, process.execPath, [...nodeArgs, cli, 'run', '--config', file], undefined, join(rig.dir, `${name}.log`))
  await waitForHttp(`http://127.0.0.1:${adminPort}/readyz`)
  // Ready means keys loaded: wait for /readyz to say 200.
  await waitFor(() => fetch(`http://127.0.0.1:${adminPort}/readyz`).then(async (r) => { await r.arrayBuffer(); return r.status === 200 }, () => false), { what: `${name}: /readyz 200`, timeoutMs: 10_000 })
  return { port, adminPort, process: child, startMs: Date.now() - started }
}

/**
 * fastify + @fastify/http-proxy with defaults only, exactly as ../shared/bench's peer registers
 * it; `script: 'bench/tuned-proxy.mjs'` for the same with jwt-sidecar's forward as its handler.
 */
export async function startBare(rig: Rig, nodeArgs: readonly string[] = [], script = 'bench/bare-proxy.mjs'): Promise<{ port: number; process: ChildProcess }> {
  const port = await freePort()
  const child = pinned(PROXY_CPU, process.execPath, [...nodeArgs, join(root, script)], { ...process.env, PORT: String(port), UPSTREAM_URL: rig.upstreamUrl })
  await waitForHttp(`http://127.0.0.1:${port}/`)
  return { port, process: child }
}

/** Resident set of a process, from /proc (bytes). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) * 1024
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
