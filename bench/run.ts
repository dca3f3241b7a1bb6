/**
 * `npm run bench`: the speed and memory targets of issue #10, checked here rather than by timed
 * tests, in the setup of ../shared/bench (bench/rig.ts: the proxy pinned to CPU 0; wrk, nginx
 * as upstream and JWKS server on CPU 1; 64 connections). In one run, side by side:
 *
 * - a bare fastify + @fastify/http-proxy with defaults only (bench/bare-proxy.mjs, no auth),
 *   started by this script and sent the same valid token per alg (as ../shared/bench does): the
 *   reference every ratio is taken against, round by round;
 * - the same bare proxy with jwt-sidecar's forward (src/proxy/forward.ts) as http-proxy's
 *   `handler` (bench/tuned-proxy.mjs, no auth): the forward alone against the default one,
 *   RS256 same token, as information;
 * - jwt-sidecar with the default config (token cache on, access log on), for `same-token`,
 *   `unique-tokens` (10,000 tokens round-robin: they all fit in the cache, as in
 *   ../shared/bench, whose targets these are), `invalid-signature` and `no-token`, RS256 and
 *   ES256;
 * - jwt-sidecar with `tokens.cache.enabled: false` for `unique-tokens`, as information: every
 *   request pays a full verification, shown with its ceiling (the signature check alone on
 *   top of a forward as cheap as bare's, from the verifications/s measured first).
 *
 * Each cell: 1 s unrecorded, then BENCH_SECONDS (4) of bare (the same alg), then 1 s
 * unrecorded and BENCH_SECONDS of the cell; the ratio of the two adjacent slices, the median
 * over ROUNDS (3) rounds. Memory: RSS of a fresh sidecar 2 s after it is ready (idle),
 * and of a fresh sidecar after 10,000 distinct tokens each sent once, minus a control process
 * sent as many requests with one token (what the cache holds, and nothing else).
 * Exit code 1 when a target is missed. Only ratios within this run mean anything.
 */
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { benchVerify } from './verify.bench.ts'
import { median, rssBytes, sidecarYaml, startBare, startRig, startSidecar, stop, wrk } from './rig.ts'
import type { BenchAlg, Rig, Sidecar } from './rig.ts'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4)
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const MiB = 2 ** 20
const failures: string[] = []
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

function target(ok: boolean, text: string): void {
  console.log(`  ${ok ? 'ok  ' : 'MISS'} ${text}`)
  if (!ok) failures.push(text)
}

interface Cell {
  readonly name: string
  /** The bare proxy's cell this one is compared with (bare forwards the same token header, unverified). */
  readonly alg: BenchAlg
  readonly proxy: 'default' | 'nocache'
  readonly tokens: (rig: Rig) => string
  readonly expect: number
  /** The lowest acceptable median ratio to bare, or undefined to report only. */
  readonly min: number | undefined
}

const cells: Cell[] = []
for (const alg of ['RS256', 'ES256'] as const satisfies readonly BenchAlg[]) {
  cells.push(
    { name: `${alg} same-token (cache on)`, alg, proxy: 'default', tokens: (r) => r.tokens(alg, 'same'), expect: 200, min: 0.95 },
    // As ../shared/bench runs it: the default config, 10,000 tokens round-robin (they all fit
    // in the cache, so after the first pass these are hits).
    { name: `${alg} unique-tokens (cache on)`, alg, proxy: 'default', tokens: (r) => r.tokens(alg, 'unique'), expect: 200, min: alg === 'RS256' ? 0.85 : 0.6 },
    // Every request verified in full: bounded by the signature check itself (see `ceiling`).
    { name: `${alg} unique-tokens (cache off)`, alg, proxy: 'nocache', tokens: (r) => r.tokens(alg, 'unique'), expect: 200, min: undefined },
    // Regression floors. ES256's signature check alone costs about what the whole bare forward
    // does here, so that cell cannot go much above ≈0.55 whatever the rest costs.
    { name: `${alg} invalid-signature`, alg, proxy: 'default', tokens: (r) => r.tokens(alg, 'bad'), expect: 401, min: alg === 'RS256' ? 0.6 : 0.4 },
  )
}
cells.push({ name: 'no-token', alg: 'RS256', proxy: 'default', tokens: () => 'none', expect: 401, min: 1.5 })

console.log(`node ${process.version}; proxy on CPU 0, load and upstream on CPU 1; 64 connections; ${ROUNDS} rounds of ${SECONDS} s\n`)
console.log('Token verification, single core (tokens/s):')
console.log('  alg     ours (node:crypto)   jose jwtVerify   ratio')
const verifyPerSec = new Map<string, number>()
for (const alg of ['RS256', 'ES256', 'PS256', 'EdDSA'] as const) {
  const r = await benchVerify(alg, 20_000)
  verifyPerSec.set(alg, r.oursPerSec)
  console.log(`  ${alg.padEnd(7)} ${fmt(r.oursPerSec).padStart(18)} ${fmt(r.josePerSec).padStart(16)} ${(r.oursPerSec / r.josePerSec).toFixed(1).padStart(6)}x`)
  if (alg === 'RS256' || alg === 'ES256') target(r.oursPerSec >= 1.5 * r.josePerSec, `${alg}: our verifier at least 1.5x jose's jwtVerify`)
}

const rig = await startRig()
try {
  // --- memory first, on fresh processes, before the machine has been busy
  console.log('\nMemory (RSS of fresh processes):')
  const idle = await startSidecar(rig, 'idle', sidecarYaml(rig, { accessLog: true, cache: undefined }))
  await new Promise((r) => setTimeout(r, 2000))
  const idleRss = rssBytes(idle.process.pid!)
  await stop(idle.process)
  console.log(`  idle, 2 s after ready (started in ${idle.startMs} ms): ${(idleRss / MiB).toFixed(1)} MiB`)
  target(idleRss <= 80 * MiB, `idle RSS at most 80 MiB (${(idleRss / MiB).toFixed(1)} MiB)`)

  const unique = readFileSync(rig.tokens('RS256', 'unique'), 'utf8').trim().split('\n')
  const [distinct, control] = await Promise.all([
    startSidecar(rig, 'mem-distinct', sidecarYaml(rig, { accessLog: false, cache: undefined })),
    startSidecar(rig, 'mem-control', sidecarYaml(rig, { accessLog: false, cache: undefined })),
  ])
  await send(distinct, unique)
  await send(control, unique.map(() => unique[0]!))
  await new Promise((r) => setTimeout(r, 1000))
  const cacheGauge = await gauge(distinct, 'jwt_sidecar_token_cache_bytes')
  const entries = await gauge(distinct, 'jwt_sidecar_token_cache_entries')
  const delta = rssBytes(distinct.process.pid!) - rssBytes(control.process.pid!)
  await Promise.all([stop(distinct.process), stop(control.process)])
  console.log(`  ${fmt(unique.length)} distinct RS256 tokens of ${unique[0]!.length} bytes, each sent once: ${fmt(entries)} cached, ${(delta / MiB).toFixed(1)} MiB more RSS than the control (one token as often); the cache's own estimate: ${(cacheGauge / MiB).toFixed(1)} MiB`)
  target(entries === unique.length, `every distinct token cached (${fmt(entries)} of ${fmt(unique.length)})`)
  target(delta <= 32 * MiB, `10,000 cached tokens add at most 32 MiB RSS (${(delta / MiB).toFixed(1)} MiB)`)
  target(cacheGauge >= delta, `the byte bound over-estimates what RSS shows (estimate ${(cacheGauge / MiB).toFixed(1)} MiB >= ${(delta / MiB).toFixed(1)} MiB)`)

  // --- throughput
  const bare = await startBare(rig)
  const tuned = await startBare(rig, [], 'bench/tuned-proxy.mjs')
  const proxies: Record<Cell['proxy'], Sidecar> = {
    default: await startSidecar(rig, 'default', sidecarYaml(rig, { accessLog: true, cache: undefined })),
    nocache: await startSidecar(rig, 'nocache', sidecarYaml(rig, { accessLog: true, cache: false })),
  }
  const algs = ['RS256', 'ES256'] as const
  // JIT warm-up of every code path before anything is recorded (and the cache filled).
  for (const alg of algs) await wrk(rig, bare.port, rig.tokens(alg, 'same'), 3, 200)
  await wrk(rig, tuned.port, rig.tokens('RS256', 'same'), 3, 200)
  for (const c of cells) await wrk(rig, proxies[c.proxy].port, c.tokens(rig), 2, c.expect)

  const bareRps = new Map<BenchAlg, number[]>(algs.map((a) => [a, []]))
  const rps = new Map<string, number[]>(cells.map((c) => [c.name, []]))
  const ratios = new Map<string, number[]>(cells.map((c) => [c.name, []]))
  const wrong = new Map<string, number>(cells.map((c) => [c.name, 0]))
  const tunedRps: number[] = []
  const tunedRatios: number[] = []
  /**
   * One slice of bare (the cell's alg) right before the cell's own: this machine's speed
   * drifts by up to 2× within minutes, so each ratio compares two adjacent slices (as
   * bench/ab.ts does) rather than the cell with a bare measured minutes earlier.
   */
  async function adjacent(alg: BenchAlg, port: number, tokens: string, expect: number): Promise<{ bare: number; rps: number; wrong: number }> {
    await wrk(rig, bare.port, rig.tokens(alg, 'same'), 1, 200)
    const b = await wrk(rig, bare.port, rig.tokens(alg, 'same'), SECONDS, 200)
    await wrk(rig, port, tokens, 1, expect)
    const r = await wrk(rig, port, tokens, SECONDS, expect)
    bareRps.get(alg)!.push(b.rps)
    return { bare: b.rps, rps: r.rps, wrong: r.wrong }
  }
  for (let round = 1; round <= ROUNDS; round++) {
    // The forward alone: the same bare proxy with jwt-sidecar's forward as its handler.
    const t = await adjacent('RS256', tuned.port, rig.tokens('RS256', 'same'), 200)
    tunedRps.push(t.rps)
    tunedRatios.push(t.rps / t.bare)
    for (const c of cells) {
      const r = await adjacent(c.alg, proxies[c.proxy].port, c.tokens(rig), c.expect)
      rps.get(c.name)!.push(r.rps)
      ratios.get(c.name)!.push(r.rps / r.bare)
      wrong.set(c.name, wrong.get(c.name)! + r.wrong)
    }
    process.stdout.write(`  round ${round}/${ROUNDS} done\n`)
  }
  await Promise.all([stop(bare.process), stop(tuned.process), stop(proxies.default.process), stop(proxies.nocache.process)])

  console.log(`\nThrough the proxy (req/s, median of ${ROUNDS} rounds; × bare = median of the per-round ratios):`)
  for (const alg of algs) {
    const xs = bareRps.get(alg)!
    console.log(`  ${`bare @fastify/http-proxy, ${alg} token unverified`.padEnd(48)} ${fmt(median(xs)).padStart(7)}   1.00×   [${xs.map(fmt).join(' ')}]`)
  }
  console.log(`  ${'bare, with jwt-sidecar\'s forward as handler'.padEnd(48)} ${fmt(median(tunedRps)).padStart(7)}   ${median(tunedRatios).toFixed(2)}×   [${tunedRatios.map((x) => x.toFixed(2)).join(' ')}]   (information: the forward alone)`)
  for (const c of cells) {
    const r = median(ratios.get(c.name)!)
    // Full verification per request can at best cost the signature check on top of a forward
    // as cheap as bare's: 1 / (1 + bare req/s ÷ verifications/s).
    const ceiling = c.proxy === 'nocache' ? `   (ceiling with the signature check alone: ${(1 / (1 + median(bareRps.get(c.alg)!) / verifyPerSec.get(c.alg)!)).toFixed(2)}×)` : ''
    console.log(`  ${`jwt-sidecar ${c.name}`.padEnd(48)} ${fmt(median(rps.get(c.name)!)).padStart(7)}   ${r.toFixed(2)}×   [${ratios.get(c.name)!.map((x) => x.toFixed(2)).join(' ')}]${ceiling}`)
  }
  console.log('')
  for (const c of cells) {
    const r = median(ratios.get(c.name)!)
    if (c.min !== undefined) target(r >= c.min, `${c.name}: at least ${c.min}× bare (${r.toFixed(2)}×)`)
    target(wrong.get(c.name) === 0, `${c.name}: every answer ${c.expect} (${wrong.get(c.name)} other)`)
  }
} finally {
  rig.close()
}

if (failures.length > 0) {
  console.log(`\n${failures.length} target(s) missed`)
  process.exitCode = 1
} else {
  console.log('\nall targets met')
}
process.exit()

/** Sends each token once, 16 requests at a time; every answer must be 200. */
async function send(s: Sidecar, tokens: readonly string[]): Promise<void> {
  let next = 0
  let bad = 0
  async function worker(): Promise<void> {
    while (next < tokens.length) {
      const t = tokens[next++]!
      const r = await request(`http://127.0.0.1:${s.port}/api/orders`, { headers: { authorization: `Bearer ${t}` } })
      await r.body.dump()
      if (r.statusCode !== 200) bad++
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  if (bad > 0) throw new Error(`${bad} of ${tokens.length} requests were not 200`)
}

async function gauge(s: Sidecar, name: string): Promise<number> {
  const text = await (await request(`http://127.0.0.1:${s.adminPort}/metrics`)).body.text()
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text)
  if (m === null) throw new Error(`${name} not in /metrics`)
  return Number(m[1])
}
