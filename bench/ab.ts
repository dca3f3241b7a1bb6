/**
 * Interleaved A/B of jwt-sidecar builds or configs against the bare @fastify/http-proxy, for a
 * machine whose speed drifts between rounds (this one's bare proxy swings up to 2× between
 * ../shared/bench rounds, which swamps a 10 % change). Every contender is started once, pinned
 * to CPU 0 and idle unless loaded; then, ROUNDS times, for each variant: S seconds of load on
 * bare, immediately followed by S seconds on the variant, and the ratio of the two. Adjacent
 * slices see the same machine; the median and quartiles of the ratios are reported. Run after
 * `npm run build`:
 *
 *   V='[{"name":"before","cli":"/tmp/prev/dist/src/cli.js"},{"name":"after"}]' node --import tsx bench/ab.ts
 *
 * V: JSON list of variants: `name`; `cli` (another build's cli.js, e.g. a `git worktree` of the
 * previous commit; default this build); `accessLog` (default true); `cache` (default true);
 * `scen` (same | unique | bad | none; default same); `env` (extra environment for the process).
 * ROUNDS (12), S (2), ALG (RS256).
 */
import { median, sidecarYaml, startBare, startRig, startSidecar, stop, wrk } from './rig.ts'
import type { BenchAlg } from './rig.ts'

interface Variant {
  readonly name: string
  readonly cli?: string
  readonly accessLog?: boolean
  readonly cache?: boolean
  readonly scen?: 'same' | 'unique' | 'bad' | 'none'
  readonly env?: Readonly<Record<string, string>>
}

const SECONDS = Number(process.env.S ?? 2)
const ROUNDS = Number(process.env.ROUNDS ?? 12)
const ALG = (process.env.ALG ?? 'RS256') as BenchAlg
const variants = JSON.parse(process.env.V ?? '[{"name":"this build"}]') as Variant[]

const quartile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
const rig = await startRig()
const ratios = new Map<string, number[]>(variants.map((v) => [v.name, []]))
const bareRps: number[] = []
const processes = []
try {
  const bare = await startBare(rig)
  processes.push(bare.process)
  const started = []
  for (const v of variants) {
    for (const [k, x] of Object.entries(v.env ?? {})) process.env[k] = x
    const s = await startSidecar(rig, `ab-${v.name.replace(/\W+/g, '-')}`, sidecarYaml(rig, { accessLog: v.accessLog ?? true, cache: v.cache ?? true }), [], v.cli)
    for (const k of Object.keys(v.env ?? {})) delete process.env[k]
    processes.push(s.process)
    const scen = v.scen ?? 'same'
    const tokens = scen === 'none' ? 'none' : rig.tokens(ALG, scen)
    const expect = scen === 'same' || scen === 'unique' ? 200 : 401
    await wrk(rig, s.port, tokens, 3, expect)
    started.push({ v, port: s.port, tokens, expect })
  }
  await wrk(rig, bare.port, rig.tokens(ALG, 'same'), 3, 200)
  for (let r = 0; r < ROUNDS; r++) {
    const line: string[] = []
    for (const { v, port, tokens, expect } of started) {
      const b = await wrk(rig, bare.port, rig.tokens(ALG, 'same'), SECONDS, 200)
      const x = await wrk(rig, port, tokens, SECONDS, expect)
      if (x.wrong > 0) throw new Error(`${v.name}: ${x.wrong} answers other than ${expect}`)
      bareRps.push(b.rps)
      ratios.get(v.name)!.push(x.rps / b.rps)
      line.push(`${v.name} ${(x.rps / b.rps).toFixed(2)}×`)
    }
    console.log(`round ${r + 1}/${ROUNDS}: ${line.join('  ')}`)
  }
} finally {
  for (const p of processes) await stop(p)
  rig.close()
}
console.log(`\n${ALG}, ${SECONDS} s slices, ${ROUNDS} rounds; bare median ${Math.round(median(bareRps))} req/s`)
for (const [name, list] of ratios) {
  const sorted = [...list].sort((a, b) => a - b)
  console.log(`  ${name.padEnd(24)} ${median(list).toFixed(2)}× bare   (quartiles ${quartile(sorted, 0.25).toFixed(2)}–${quartile(sorted, 0.75).toFixed(2)})`)
}
