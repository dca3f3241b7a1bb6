/**
 * The cost of closing an upstream connection after every request that carries a body (issue #9
 * §7: `upstream.drainsBodies: false`, the default) against reusing it (`true`), on POST-heavy
 * traffic. Run from the project root after `npm run build`:
 *
 *   node --import tsx bench/bodies.ts          # ROUNDS=3 SECONDS=5 CONNS=64 BODY=1024
 *
 * The two sidecars (the built CLI, RS256 with a static key) run pinned to CPU 0, wrk and the
 * nginx upstream (which reads and discards bodies) to CPU 1, as in ../shared/bench. Cells
 * alternate their order every round; the ratio of each round is reported, then the median.
 * Needs wrk and nginx (apt-get install wrk nginx-light). Never run in CI.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SignJWT } from 'jose'
import { waitFor } from '../src/wait-for.ts'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const SECONDS = Number(process.env.SECONDS ?? 5)
const CONNS = Number(process.env.CONNS ?? 64)
const BODY = Number(process.env.BODY ?? 1024)
const root = fileURLToPath(new URL('..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-bodies-'))

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

async function listening(port: number): Promise<void> {
  await waitFor(() => fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false), { what: `an HTTP answer on port ${port}`, timeoutMs: 15_000, intervalMs: 50 })
}

const children: ChildProcess[] = []
function start(cpu: number, cmd: string, args: string[]): ChildProcess {
  const c = spawn('taskset', ['-c', String(cpu), cmd, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(c)
  return c
}
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

// nginx upstream: 200 for every method, the body read and discarded.
const upstreamPort = await freePort()
writeFileSync(join(dir, 'nginx.conf'), `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  keepalive_requests 100000;
  server { listen 127.0.0.1:${upstreamPort}; location / { return 200 'ok'; } } }
`)
start(1, '/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'nginx.start.err')])
await listening(upstreamPort)

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
writeFileSync(join(dir, 'key.pem'), publicKey.export({ type: 'spki', format: 'pem' }))
const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setIssuer('https://idp.bench').setAudience('api').setIssuedAt().setExpirationTime('2h').sign(privateKey)

async function sidecar(drainsBodies: boolean): Promise<number> {
  const port = await freePort()
  const file = join(dir, `sidecar-${drainsBodies}.yaml`)
  writeFileSync(file, `listen: 127.0.0.1:${port}
admin: { listen: 127.0.0.1:0 }
upstream: { url: http://127.0.0.1:${upstreamPort}, drainsBodies: ${drainsBodies} }
issuers: [{ name: corp, issuer: https://idp.bench, audiences: [api], keys: [{ file: ${join(dir, 'key.pem')}, alg: RS256, kid: k }] }]
identity: { headers: { X-Auth-Subject: sub } }
routes: [{ name: default, path: /**, auth: required }]
log: { level: warn, access: false }
`)
  start(0, process.execPath, [join(root, 'dist/src/cli.js'), 'run', '--config', file])
  await listening(port)
  return port
}
const ports = { close: await sidecar(false), reuse: await sidecar(true) }

const lua = join(dir, 'post.lua')
writeFileSync(lua, `wrk.method = os.getenv("METHOD")
wrk.headers["Authorization"] = "Bearer ${token}"
if wrk.method == "POST" then
  wrk.body = string.rep("x", ${BODY})
  wrk.headers["Content-Type"] = "application/octet-stream"
end
`)

function wrk(port: number, method: string, seconds: number): { rps: number; non2xx: number } {
  const out = execFileSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${CONNS}`, `-d${seconds}s`, '-s', lua, `http://127.0.0.1:${port}/api/orders`], { env: { ...process.env, METHOD: method }, encoding: 'utf8' })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  return { rps, non2xx }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(7)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log(`node ${process.version}, ${CONNS} connections, POST bodies of ${BODY} B, ${SECONDS}s per cell, ${ROUNDS} rounds; sidecars on CPU 0, wrk + nginx on CPU 1`)
for (const port of Object.values(ports)) for (const m of ['POST', 'GET']) wrk(port, m, 2) // warm-up
const ratios: Record<string, number[]> = { POST: [], GET: [] }
for (let round = 0; round < ROUNDS; round++) {
  for (const method of ['POST', 'GET']) {
    const order = round % 2 === 0 ? (['close', 'reuse'] as const) : (['reuse', 'close'] as const)
    const r: Record<string, { rps: number; non2xx: number }> = {}
    for (const k of order) r[k] = wrk(ports[k], method, SECONDS)
    const ratio = r.close!.rps / r.reuse!.rps
    ratios[method]!.push(ratio)
    console.log(`round ${round + 1} ${method.padEnd(4)} drainsBodies false ${fmt(r.close!.rps)} req/s   true ${fmt(r.reuse!.rps)} req/s   false/true ${ratio.toFixed(2)}   non-2xx ${r.close!.non2xx}/${r.reuse!.non2xx}`)
  }
}
console.log(`median false/true: POST ${median(ratios.POST!).toFixed(2)}, GET ${median(ratios.GET!).toFixed(2)}`)
process.exit(0)
