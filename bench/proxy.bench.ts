/**
 * End-to-end throughput through the real sidecar process (the built CLI, as shipped), with a
 * loopback JWKS and upstream in this process and a bounded load loop of undici requests.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import { Pool } from 'undici'

export interface LoadResult {
  readonly name: string
  readonly perSec: number
  readonly p99ms: number
  readonly statuses: Readonly<Record<string, number>>
}

const root = fileURLToPath(new URL('..', import.meta.url))

async function listen(server: ReturnType<typeof createServer>): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** `connections` concurrent request loops for `seconds`; counts responses by status. */
export async function load(name: string, origin: string, path: string, headers: Record<string, string>, seconds: number, connections = 32): Promise<LoadResult> {
  const pool = new Pool(origin, { connections, pipelining: 1 })
  const statuses: Record<string, number> = {}
  const latencies: number[] = []
  const end = performance.now() + seconds * 1000
  let done = 0
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      const res = await pool.request({ path, method: 'GET', headers })
      await res.body.dump()
      latencies.push(performance.now() - t0)
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
      done++
    }
  }))
  await pool.close()
  latencies.sort((a, b) => a - b)
  return { name, perSec: done / seconds, p99ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0, statuses }
}

export interface ProxyBench {
  readonly results: LoadResult[]
  readonly rssBytes: number
}

export async function benchProxy(seconds: number): Promise<ProxyBench> {
  const upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'))
  })
  const upstreamUrl = await listen(upstream)
  const rsa = await generateKeyPair('RS256', { extractable: true })
  const ec = await generateKeyPair('ES256', { extractable: true })
  const jwks = JSON.stringify({ keys: [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec', alg: 'ES256', use: 'sig' },
  ] })
  const idp = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(jwks))
  const issuer = await listen(idp)
  const sign = (alg: 'RS256' | 'ES256') => new SignJWT({ sub: 'alice', scope: 'read write' })
    .setProtectedHeader({ alg, kid: alg === 'RS256' ? 'rsa' : 'ec' }).setIssuer(issuer).setAudience('api')
    .setIssuedAt().setExpirationTime('1h').sign(alg === 'RS256' ? rsa.privateKey : ec.privateKey)
  const [rsToken, esToken] = await Promise.all([sign('RS256'), sign('ES256')])

  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-bench-'))
  const configFile = join(dir, 'bench.yaml')
  writeFileSync(configFile, `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: ${upstreamUrl} }
issuers:
  - { name: bench, issuer: ${issuer}, jwksUri: ${issuer}/jwks, audiences: [api], algorithms: [RS256, ES256] }
identity:
  headers: { X-Auth-Subject: sub, X-Auth-Scopes: scope }
  strip: ["X-Auth-*"]
routes:
  - { name: open, path: /open/**, auth: none }
  - { name: api, path: /**, auth: required }
log: { level: warn, access: false }
`)
  // The sidecar logs its bound ports at info; run it at info only to read them, via a tiny wrapper.
  // BENCH_PROFILE=DIR writes a V8 CPU profile of the sidecar process there.
  const profile = process.env.BENCH_PROFILE === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
  const child = spawn(process.execPath, [...profile, '--input-type=module', '-e', `
    const { loadConfig } = await import(${JSON.stringify(join(root, 'dist/src/config/load.js'))})
    const { createApp } = await import(${JSON.stringify(join(root, 'dist/src/app.js'))})
    const app = createApp(loadConfig(${JSON.stringify(configFile)}, {}))
    const urls = await app.start()
    while (!app.keys.ready()) await new Promise((r) => setTimeout(r, 5))
    process.stdout.write(JSON.stringify(urls) + '\\n')
    process.on('SIGTERM', () => app.close().then(() => process.exit(0)))
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  const urls = await new Promise<{ proxyUrl: string; adminUrl: string }>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as { proxyUrl: string; adminUrl: string })
    })
    child.on('exit', (code) => reject(new Error(`sidecar exited ${code}`)))
  })

  const results: LoadResult[] = []
  try {
    const bad = rsToken.slice(0, -4) + (rsToken.endsWith('AAAA') ? 'BBBB' : 'AAAA')
    await load('warm-up', urls.proxyUrl, '/api', { authorization: `Bearer ${rsToken}` }, 1)
    results.push(await load('upstream directly (no sidecar)', upstreamUrl, '/api', {}, seconds))
    results.push(await load('sidecar, auth: none', urls.proxyUrl, '/open/x', {}, seconds))
    results.push(await load('sidecar, RS256 token verified', urls.proxyUrl, '/api', { authorization: `Bearer ${rsToken}` }, seconds))
    results.push(await load('sidecar, ES256 token verified', urls.proxyUrl, '/api', { authorization: `Bearer ${esToken}` }, seconds))
    results.push(await load('sidecar, bad signature -> 401', urls.proxyUrl, '/api', { authorization: `Bearer ${bad}` }, seconds))
    results.push(await load('sidecar, no token -> 401', urls.proxyUrl, '/api', {}, seconds))
    const metrics = await (await fetch(`${urls.adminUrl}/metrics`)).text()
    const rss = /^jwt_sidecar_process_resident_memory_bytes (\d+)/m.exec(metrics)
    return { results, rssBytes: rss === null ? 0 : Number(rss[1]) }
  } finally {
    child.kill('SIGTERM')
    upstream.close()
    idp.close()
  }
}
