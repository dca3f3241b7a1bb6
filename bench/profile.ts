/**
 * Where an admitted request's CPU goes, in the setup of ../shared/bench: the sidecar (or the
 * bare @fastify/http-proxy it is built on) pinned to CPU 0 under wrk's `unique-tokens` load,
 * profiled with V8's sampling profiler (`--cpu-prof`), each sample attributed to one step of
 * the request path. Run from the project root after `npm run build`:
 *
 *   node --import tsx bench/profile.ts                      # SECONDS=10 ALGS="RS256 ES256"
 *   ACCESS_LOG=1 CACHE=1 node --import tsx bench/profile.ts # the access log on; the token cache on
 *   SCENARIO=same CACHE=1 node --import tsx bench/profile.ts # one token for every request (cache hits)
 *   SCENARIO=bad node --import tsx bench/profile.ts          # invalid signatures (the 401 path)
 *   node --import tsx bench/profile.ts report FILE.cpuprofile   # the breakdown of an existing profile
 *
 * Attribution walks each sample's stack from the leaf towards the root and takes the first frame
 * that belongs to a step (RULES, in order); Node internals that only pass calls along (events,
 * timers, streams plumbing, Buffer) are transparent. So `JSON.parse` called from verify/token.ts
 * counts as token parsing, and a `writev` reached from reply-from's pipe counts as socket writes.
 * Samples of start-up (module loading, key import before the load) count as `start-up`.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { PROXY_CPU, sidecarYaml, startBare, startRig, startSidecar, stop, wrk } from './rig.ts'
import type { BenchAlg } from './rig.ts'

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: readonly number[]
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export const STEPS = [
  'signature', 'token parsing', 'strip/normalise/route/extract', 'claims + policy', 'token cache', 'claims -> headers',
  'metrics', 'logging', 'fastify (+ our hooks)', 'forward: http-proxy/reply-from/undici', 'node http + socket I/O', 'GC', 'start-up', 'other',
] as const
export type Step = (typeof STEPS)[number]

/** First match wins; `null` marks a transparent frame (keep walking towards the root). */
const RULES: ReadonlyArray<readonly [(url: string, fn: string) => boolean, Step | null]> = [
  [(u, f) => u === '' && f === '(garbage collector)', 'GC'],
  [(u) => /\/(verify\/signature)\.js$/.test(u), 'signature'],
  [(u) => /\/verify\/(token|json)\.js$/.test(u), 'token parsing'],
  [(u) => /\/verify\/token-cache\.js$/.test(u), 'token cache'],
  [(u, f) => /\/proxy\/headers\.js$/.test(u) && /setIdentity|identity|claimValue|headerValue/i.test(f), 'claims -> headers'],
  [(u, f) => /\/proxy\/server\.js$/.test(u) && /identityHeaders|forwardedHeaders/.test(f), 'claims -> headers'],
  [(u) => /\/(proxy\/headers|policy\/normalize|policy\/routes|proxy\/decide|request\/[a-z-]+|verify\/extract|http\/[a-z-]+)\.js$/.test(u), 'strip/normalise/route/extract'],
  [(u) => /\/(verify\/claims|verify\/verifier|policy\/authorize)\.js$/.test(u), 'claims + policy'],
  [(u) => /\/node_modules\/prom-client\/|\/observe\/metrics\.js$/.test(u), 'metrics'],
  [(u) => /\/node_modules\/(pino|sonic-boom|fast-redact|pino-std-serializers|@pinojs|thread-stream|on-exit-leak-free|quick-format-unescaped|atomic-sleep|fast-safe-stringify|safe-stable-stringify)\/|\/observe\/(log|events)\.js$/.test(u), 'logging'],
  [(u) => /\/node_modules\/(@fastify\/(http-proxy|reply-from)|undici|toad-cache|fast-querystring)\/|\/proxy\/(upstream|forward)\.js$/.test(u), 'forward: http-proxy/reply-from/undici'],
  [(u) => /\/node_modules\/(fastify|find-my-way|avvio|@fastify\/[a-z-]+|fast-json-stringify|light-my-request|rfdc|abstract-logging|process-warning|fast-decode-uri-component|safe-regex2|ret|json-schema-ref-resolver|secure-json-parse|toad-cache)\/|\/proxy\/server\.js$/.test(u), 'fastify (+ our hooks)'],
  [(u) => /^node:(_http_|net$|internal\/stream_base_commons|internal\/http|internal\/net|internal\/js_stream_socket|_stream_wrap|internal\/dns)/.test(u), 'node http + socket I/O'],
  [(u) => /^node:internal\/(modules|process\/pre_execution|bootstrap|main)|^node:internal\/crypto\/keys/.test(u), 'start-up'],
  [(u, f) => u === '' && (f === '(program)' || f === '(root)'), 'other'],
]

export function stepOf(url: string, fn: string): Step | null {
  for (const [test, step] of RULES) if (test(url, fn)) return step
  return null
}

export interface Breakdown {
  /** Busy (non-idle) samples per step, in ms. */
  readonly steps: ReadonlyMap<Step, number>
  readonly busyMs: number
  /** Self time of the hottest frames (function · file), ms. */
  readonly top: ReadonlyArray<readonly [string, number]>
}

export function breakdown(profile: CpuProfile): Breakdown {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of profile.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const memo = new Map<number, Step>()
  function classify(id: number): Step {
    const hit = memo.get(id)
    if (hit !== undefined) return hit
    const n = byId.get(id)!
    const own = stepOf(n.callFrame.url, n.callFrame.functionName)
    const p = parent.get(id)
    const step = own ?? (p === undefined ? 'other' : classify(p))
    memo.set(id, step)
    return step
  }
  const steps = new Map<Step, number>()
  const self = new Map<string, number>()
  let busy = 0
  profile.samples.forEach((id, i) => {
    const n = byId.get(id)!
    if (n.callFrame.functionName === '(idle)') return
    const ms = (profile.timeDeltas[i] ?? 0) / 1000
    busy += ms
    const step = classify(id)
    steps.set(step, (steps.get(step) ?? 0) + ms)
    const file = n.callFrame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\/src\//, 'src/')
    const name = `${n.callFrame.functionName || '(anonymous)'} · ${file || 'native'}`
    self.set(name, (self.get(name) ?? 0) + ms)
  })
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)
  return { steps, busyMs: busy, top }
}

/** `requests`: how many the load completed, for a µs-per-request column (start-up excluded). */
export function printBreakdown(title: string, b: Breakdown, requests?: number): void {
  console.log(`\n${title}: ${(b.busyMs / 1000).toFixed(1)} s busy`)
  const perRequest = requests !== undefined && requests > 0
  console.log(perRequest ? '| step | share of busy time | µs per request |\n|---|---:|---:|' : '| step | share of busy time |\n|---|---:|')
  let total = 0
  for (const s of STEPS) {
    const ms = b.steps.get(s) ?? 0
    if (ms === 0) continue
    const us = (1000 * ms) / (requests ?? 1)
    if (s !== 'start-up') total += us
    console.log(`| ${s} | ${((100 * ms) / b.busyMs).toFixed(1)} % |${perRequest ? ` ${s === 'start-up' ? '–' : us.toFixed(1)} |` : ''}`)
  }
  if (perRequest) console.log(`| **all but start-up** | | **${total.toFixed(1)}** |`)
  console.log('\nhottest frames (self time):')
  for (const [name, ms] of b.top) console.log(`  ${((100 * ms) / b.busyMs).toFixed(1).padStart(5)} %  ${name}`)
}

function readProfile(dir: string): CpuProfile {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`)
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile
}

async function main(): Promise<void> {
  const seconds = Number(process.env.SECONDS ?? 10)
  const algs = (process.env.ALGS ?? 'RS256 ES256').split(/\s+/) as BenchAlg[]
  const accessLog = process.env.ACCESS_LOG === '1'
  const cache = process.env.CACHE === undefined ? undefined : process.env.CACHE === '1'
  const scenario = process.env.SCENARIO === 'same' || process.env.SCENARIO === 'bad' ? process.env.SCENARIO : 'unique'
  const rig = await startRig()
  console.log(`node ${process.version}; proxy on CPU ${PROXY_CPU}; ${scenario} tokens, 64 connections, ${seconds} s; access log ${accessLog ? 'on' : 'off'}; token cache ${cache === undefined ? 'default' : cache ? 'on' : 'off'}; profiles in ${rig.dir}`)
  try {
    const bareDir = join(rig.dir, 'prof-bare')
    const bare = await startBare(rig, ['--cpu-prof', `--cpu-prof-dir=${bareDir}`])
    const rb = await wrk(rig, bare.port, 'none', seconds, 200)
    await stop(bare.process)
    printBreakdown(`bare @fastify/http-proxy, no token: ${Math.round(rb.rps)} req/s, ${rb.wrong} wrong`, breakdown(readProfile(bareDir)), rb.rps * seconds)
    for (const alg of algs) {
      const dir = join(rig.dir, `prof-${alg}`)
      const s = await startSidecar(rig, `profile-${alg}`, sidecarYaml(rig, { accessLog, cache }), ['--cpu-prof', `--cpu-prof-dir=${dir}`])
      const r = await wrk(rig, s.port, rig.tokens(alg, scenario), seconds, scenario === 'bad' ? 401 : 200)
      await stop(s.process)
      printBreakdown(`jwt-sidecar ${alg} ${scenario} tokens: ${Math.round(r.rps)} req/s, ${r.wrong} wrong`, breakdown(readProfile(dir)), r.rps * seconds)
    }
  } finally {
    rig.close()
  }
}

if (process.argv[2] === 'report') {
  for (const f of process.argv.slice(3)) printBreakdown(f, breakdown(JSON.parse(readFileSync(f, 'utf8')) as CpuProfile))
} else if (import.meta.url === `file://${process.argv[1]}`) {
  await main()
  process.exit(0)
}
