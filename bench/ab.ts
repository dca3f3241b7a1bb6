/**
 * Interleaved A/B of jwt-sidecar builds or configs against the bare @fastify/http-proxy, for a
 * machine whose speed drifts between rounds (this one's bare proxy swings up to 2× between
 * ../shared/bench rounds, which swamps a 10 % change). Every contender is started once, pinned
 * to CPU 0 and idle unless loaded; then, ROUNDS times, for each variant: S seconds of load on
 * bare, immediately followed by S seconds on the variant, and the ratio of the two. Adjacent
 * slices see the same machine; the median and quartiles of the ratios are reported, and each
 * variant's median req/s and CPU µs per request (the proxy saturates its one pinned core, so
 * 10⁶ / req/s is its time per request), and, per round, every other variant against the first.
 * Run after `npm run build`:
 *
 *   V='[{"name":"before","cli":"/tmp/prev/dist/src/cli.js"},{"name":"after"}]' node --import tsx bench/ab.ts
 *
 * The cost of a DPoP check per request (issue #13): the same token, as plain Bearer and as a
 * DPoP-bound token with a fresh proof per request, in one run:
 *
 *   V='[{"name":"bearer"},{"name":"dpop","scen":"dpop"}]' ROUNDS=6 node --import tsx bench/ab.ts
 *
 * V: JSON list of variants: `name`; `cli` (another build's cli.js, e.g. a `git worktree` of the
 * previous commit; default this build); `accessLog` (default true); `cache` (default true);
 * `scen` (same | unique | bad | none | dpop; default same); `env` (extra environment for the
 * process). `dpop`: the issuer requires DPoP; one access token bound to an ES256 key, every
 * request with its own proof (bench/dpop-load.ts), signed before the slice that sends it.
 * ROUNDS (12), S (2), ALG (RS256: the access tokens' algorithm).
 */
import { createDpopLoad } from './dpop-load.ts'
import type { DpopLoad } from './dpop-load.ts'
import { median, sidecarYaml, startBare, startRig, startSidecar, stop, wrk } from './rig.ts'
import type { BenchAlg } from './rig.ts'

interface Variant {
  readonly name: string
  readonly cli?: string
  readonly accessLog?: boolean
  readonly cache?: boolean
  readonly scen?: 'same' | 'unique' | 'bad' | 'none' | 'dpop'
  readonly env?: Readonly<Record<string, string>>
}

const SECONDS = Number(process.env.S ?? 2)
const ROUNDS = Number(process.env.ROUNDS ?? 12)
const ALG = (process.env.ALG ?? 'RS256') as BenchAlg
const variants = JSON.parse(process.env.V ?? '[{"name":"this build"}]') as Variant[]
/** Proofs for the DPoP warm-up slice (3 s): more than the sidecar can check in that time on this machine. */
const DPOP_WARMUP_PROOFS = 40_000

const quartile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
const quartiles = (list: readonly number[], digits: number): string => {
  const sorted = [...list].sort((a, b) => a - b)
  return `${quartile(sorted, 0.25).toFixed(digits)}–${quartile(sorted, 0.75).toFixed(digits)}`
}
const rig = await startRig()
const ratios = new Map<string, number[]>(variants.map((v) => [v.name, []]))
const rates = new Map<string, number[]>(variants.map((v) => [v.name, []]))
const bareRps: number[] = []
const processes = []

/** The requests of one slice: a token file, or for DPoP a new file of fresh proofs, enough for `seconds` at the last rate seen (a shortfall replays proofs: 401s, and the run stops). */
interface Load { readonly v: Variant; readonly port: number; readonly expect: number; next(seconds: number): string; lastRps: number }

try {
  const bare = await startBare(rig)
  processes.push(bare.process)
  const started: Load[] = []
  for (const v of variants) {
    for (const [k, x] of Object.entries(v.env ?? {})) process.env[k] = x
    const scen = v.scen ?? 'same'
    const s = await startSidecar(rig, `ab-${v.name.replace(/\W+/g, '-')}`, sidecarYaml(rig, { accessLog: v.accessLog ?? true, cache: v.cache ?? true, dpop: scen === 'dpop' }), [], v.cli)
    for (const k of Object.keys(v.env ?? {})) delete process.env[k]
    processes.push(s.process)
    const dpop: DpopLoad | undefined = scen === 'dpop' ? createDpopLoad(rig, ALG) : undefined
    const tokens = scen === 'none' ? 'none' : scen === 'dpop' ? '' : rig.tokens(ALG, scen)
    const load: Load = {
      v,
      port: s.port,
      expect: scen === 'bad' ? 401 : 200,
      lastRps: 0,
      next: (seconds) => (dpop === undefined ? tokens : dpop.proofs(s.port, load.lastRps === 0 ? DPOP_WARMUP_PROOFS : Math.ceil(load.lastRps * seconds * 1.5) + 2000)),
    }
    const warm = await wrk(rig, s.port, load.next(3), 3, load.expect)
    if (warm.wrong > 0) throw new Error(`${v.name}: ${warm.wrong} answers other than ${load.expect} in the warm-up`)
    load.lastRps = warm.rps
    started.push(load)
  }
  await wrk(rig, bare.port, rig.tokens(ALG, 'same'), 3, 200)
  for (let r = 0; r < ROUNDS; r++) {
    const line: string[] = []
    for (const load of started) {
      // Made before the bare slice, so the variant's slice still follows bare's at once.
      const requests = load.next(SECONDS)
      const b = await wrk(rig, bare.port, rig.tokens(ALG, 'same'), SECONDS, 200)
      const x = await wrk(rig, load.port, requests, SECONDS, load.expect)
      if (x.wrong > 0) throw new Error(`${load.v.name}: ${x.wrong} answers other than ${load.expect}${load.v.scen === 'dpop' ? ' (DPoP: too few proofs for the slice, or a refused proof: see the sidecar log in the rig directory)' : ''}`)
      load.lastRps = x.rps
      bareRps.push(b.rps)
      ratios.get(load.v.name)!.push(x.rps / b.rps)
      rates.get(load.v.name)!.push(x.rps)
      line.push(`${load.v.name} ${Math.round(x.rps)} req/s ${(x.rps / b.rps).toFixed(2)}×`)
    }
    console.log(`round ${r + 1}/${ROUNDS}: ${line.join('  ')}`)
  }
} finally {
  for (const p of processes) await stop(p)
  rig.close()
}
console.log(`\n${ALG}, ${SECONDS} s slices, ${ROUNDS} rounds; bare median ${Math.round(median(bareRps))} req/s`)
for (const [name, list] of ratios) {
  const rps = median(rates.get(name)!)
  console.log(`  ${name.padEnd(24)} ${median(list).toFixed(2)}× bare   (quartiles ${quartiles(list, 2)})   ${Math.round(rps)} req/s median = ${(1e6 / rps).toFixed(1)} µs/request`)
}
// Round by round, against the first variant: the ratio of the two bare-relative ratios (drift cancelled), and the time per request added.
const [first, ...others] = variants
for (const v of others) {
  const a = ratios.get(first!.name)!
  const b = ratios.get(v.name)!
  const rel = b.map((x, i) => x / a[i]!)
  const ra = rates.get(first!.name)!
  const added = rates.get(v.name)!.map((x, i) => 1e6 / x - 1e6 / ra[i]!)
  console.log(`  ${v.name} vs ${first!.name}: ${median(rel).toFixed(2)}× (rounds' quartiles ${quartiles(rel, 2)}); ${median(added) >= 0 ? '+' : ''}${median(added).toFixed(1)} µs/request (quartiles ${quartiles(added, 1)})`)
}
