/**
 * `jwt-sidecar verify` explaining a DPoP request (issue #13 §2, RFC 9449), as a user runs it:
 * the built CLI (dist/, npm test builds first) in a real process, against a loopback issuer
 * whose tokens are bound to a client key made here; proofs signed here with jose. Each proof
 * check is a step of its own, the explanation stops where the sidecar stops, and the exit
 * status follows the decision.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { dpopClient, dpopProof } from '../helpers/dpop.ts'
import type { DpopClient } from '../helpers/dpop.ts'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer } from '../helpers/issuer.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')
const URL_ = 'http://api.example:8080/orders/1'
/** Every proof check, in the order verify/dpop.ts runs them. */
const CHECKS = ['jws', 'typ', 'alg', 'jwk', 'signature', 'jti', 'htm', 'htu', 'iat', 'ath', 'jkt', 'replay']

let idp: TestIssuer
let dir: string
let config: string
let client: DpopClient
let bound: string

before(async () => {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  idp = await startTestIssuer({ alg: 'RS256', kids: ['k1'] })
  dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-verify-dpop-'))
  config = join(dir, 'sidecar.yaml')
  writeFileSync(config, [
    'listen: 127.0.0.1:0',
    'upstream:',
    '  url: http://127.0.0.1:9',
    'admin:',
    '  listen: 127.0.0.1:0',
    'issuers:',
    '  - name: corp',
    `    issuer: ${idp.issuer}`,
    `    jwksUri: ${idp.jwksUri}`,
    '    audiences: [test-api]',
    '    dpop:',
    '      mode: allowed',
    '      proofMaxAge: 60s',
    'tokens:',
    '  clockSkew: 30s',
    'routes:',
    '  - name: default',
    '    path: /**',
    '    auth: required',
    '',
  ].join('\n'))
  client = await dpopClient()
  bound = await idp.sign({ sub: 'alice', cnf: { jkt: client.jkt } })
})

after(async () => {
  await idp.close()
  rmSync(dir, { recursive: true, force: true })
})

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

function verify(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [cli, 'verify', '--config', config, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') return reject(new Error(`verify did not run: ${err.message}`))
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr })
    })
    child.stdin?.end('')
  })
}

/** The step names in order (`✔ dpop.htu  …` → `dpop.htu`). */
const steps = (r: Run): string[] => r.stdout.split('\n').filter((l) => /^[✔✘·] /.test(l)).map((l) => l.slice(2).split(' ')[0]!)

function line(r: Run, name: string, mark: '✔' | '✘' | '·'): string {
  const found = r.stdout.split('\n').find((l) => l.startsWith(`${mark} ${name} `))
  assert.ok(found !== undefined, `no "${mark} ${name}" step in:\n${r.stdout}`)
  return found
}

/** Neither the token, the proof nor a signature segment of either is ever printed. */
function assertNoSecrets(r: Run, ...secrets: string[]): void {
  const out = r.stdout + r.stderr
  for (const s of secrets) {
    assert.ok(!out.includes(s), 'a token or proof is printed')
    const sig = s.slice(s.lastIndexOf('.') + 1)
    assert.ok(sig.length > 60 && !out.includes(sig), 'a signature segment is printed')
  }
}

test('a bound token with a good proof: every proof check shown and passed, the binding proven, forwarded, exit 0', async () => {
  const proof = await dpopProof(client, bound, URL_)
  const r = await verify(['--url', URL_, '--dpop', proof, `DPoP ${bound}`])
  assertNoSecrets(r, bound, proof)
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(line(r, 'source', '✔'), /Authorization header, DPoP scheme \(RFC 9449 §7\.1\)/)
  assert.deepEqual(steps(r), ['path', 'route', 'source', 'token', 'issuer', 'algorithm', 'key', 'signature', 'types', 'exp', 'nbf', 'iat', 'aud',
    ...CHECKS.map((c) => `dpop.${c}`), 'binding', 'authorization', 'authorization'])
  for (const c of CHECKS) line(r, `dpop.${c}`, '✔')
  assert.match(line(r, 'dpop.htm', '✔'), /htm "GET" is the request method/)
  assert.match(line(r, 'dpop.htu', '✔'), /htu "http:\/\/api\.example:8080\/orders\/1" is the request URI "http:\/\/api\.example:8080\/orders\/1"/)
  assert.match(line(r, 'dpop.iat', '✔'), /within the window: now \d+ .*dpop\.proofMaxAge 60s, tokens\.clockSkew 30s/)
  assert.match(line(r, 'dpop.jkt', '✔'), new RegExp(`the proof key's thumbprint is the token's cnf\\.jkt ${client.jkt}`))
  // A one-shot CLI has its own, empty replay cache: it says so rather than pretend to know.
  assert.match(line(r, 'dpop.replay', '✔'), /remembered for \d+s more \(until iat \+ proofMaxAge \+ clockSkew\); .*starts with an empty replay cache, so it cannot tell whether a running sidecar has seen this proof/)
  assert.match(line(r, 'binding', '✔'), new RegExp(`DPoP scheme, dpop.mode allowed: DPoP proof verifies, key thumbprint ${client.jkt}`))
  assert.match(r.stdout, /\noutcome: forwarded\n$/)

  // The same proof again, in a new process: admitted again, since each run starts with an empty replay cache (docs/cli.md says so).
  const again = await verify(['--url', URL_, '--dpop', proof, `DPoP ${bound}`])
  assert.equal(again.code, 0, again.stdout)

  // From a file, with a raw token: a proof given makes it the DPoP scheme; --json carries the same steps.
  const file = join(dir, 'proof.jwt')
  writeFileSync(file, `${await dpopProof(client, bound, URL_)}\n`)
  const j = await verify(['--json', '--url', URL_, '--dpop-file', file, bound])
  assert.equal(j.code, 0, j.stdout + j.stderr)
  const e = JSON.parse(j.stdout) as { steps: { step: string; ok?: boolean; detail: string }[]; forwarded: boolean; status: number; reason: string }
  assert.deepEqual([e.forwarded, e.status, e.reason], [true, 200, 'none'])
  assert.match(e.steps.find((s) => s.step === 'source')!.detail, /raw token \(command line\), sent as Authorization: DPoP since a proof comes with it/)
  assert.deepEqual(e.steps.filter((s) => s.step.startsWith('dpop.')).map((s) => [s.step, s.ok]), CHECKS.map((c) => [`dpop.${c}`, true]))
})

test('a proof for another URI: the htu step names both URIs, the checks stop there, 401 invalid_dpop_proof, exit 1', async () => {
  const proof = await dpopProof(client, bound, 'http://api.example:8080/orders/2')
  const r = await verify(['--url', URL_, '--dpop', proof, `DPoP ${bound}`])
  assertNoSecrets(r, bound, proof)
  assert.equal(r.code, 1, r.stdout)
  assert.deepEqual(steps(r).filter((s) => s.startsWith('dpop.')), CHECKS.slice(0, CHECKS.indexOf('htu') + 1).map((c) => `dpop.${c}`))
  assert.match(line(r, 'dpop.htu', '✘'), /htu "http:\/\/api\.example:8080\/orders\/2" is not the request URI "http:\/\/api\.example:8080\/orders\/1"/)
  assert.match(line(r, 'binding', '✘'), /DPoP scheme, dpop\.mode allowed: htu does not match the request URI → 401 invalid_dpop_proof$/)
  assert.ok(!/^[✔✘·] authorization /m.test(r.stdout), 'the steps stop where the sidecar stops')
  assert.match(r.stdout, /\noutcome: denied 401 invalid_dpop_proof\n$/)

  // An https URL where the listener is plain http (no tls): said first; the sidecar builds its htu with http.
  const https = 'https://api.example/orders/1'
  const s = await verify(['--url', https, '--dpop', await dpopProof(client, bound, https), `DPoP ${bound}`])
  assert.equal(s.code, 1)
  assert.match(line(s, 'url', '·'), /the URL is https but the listener is http \(no tls\): the sidecar sees http:\/\/api\.example/)
  assert.match(line(s, 'dpop.htu', '✘'), /htu "https:\/\/api\.example\/orders\/1" is not the request URI "http:\/\/api\.example\/orders\/1"/)
})

test('a proof whose ath is another token\'s hash: the ath step fails, 401 invalid_dpop_proof, exit 1', async () => {
  const other = createHash('sha256').update('another access token').digest('base64url')
  const proof = await dpopProof(client, bound, URL_, { ath: other })
  const r = await verify(['--url', URL_, '--dpop', proof, `DPoP ${bound}`])
  assertNoSecrets(r, bound, proof)
  assert.equal(r.code, 1, r.stdout)
  assert.equal(steps(r).filter((s) => s.startsWith('dpop.')).at(-1), 'dpop.ath')
  for (const c of CHECKS.slice(0, CHECKS.indexOf('ath'))) line(r, `dpop.${c}`, '✔')
  assert.match(line(r, 'dpop.ath', '✘'), new RegExp(`ath "${other}" is not base64url\\(SHA-256\\(the access token\\)\\) ${createHash('sha256').update(bound).digest('base64url')}`))
  assert.match(line(r, 'binding', '✘'), /ath does not match the access token → 401 invalid_dpop_proof$/)
  assert.match(r.stdout, /\noutcome: denied 401 invalid_dpop_proof\n$/)
})

test('a bound token given as plain Bearer: refused at the binding step as token_bound, with or without a proof alongside, exit 1', async () => {
  for (const args of [[`Bearer ${bound}`], ['--url', URL_, '--dpop', await dpopProof(client, bound, URL_), `Bearer ${bound}`]]) {
    const r = await verify(args)
    assertNoSecrets(r, bound)
    assert.equal(r.code, 1, r.stdout)
    assert.match(line(r, 'source', '✔'), /Authorization header \(prefix "Bearer "\)/)
    assert.ok(!steps(r).some((s) => s.startsWith('dpop.')), 'no proof is checked for a Bearer token')
    assert.match(line(r, 'binding', '✘'), /^✘ binding +Bearer scheme, dpop\.mode allowed.*: a token bound to a DPoP key \(cnf\.jkt\) was presented as a plain bearer token → 401 token_bound$/)
    if (args.length > 1) assert.match(line(r, 'binding', '✘'), /\(the DPoP header is not read with the Bearer scheme\)/)
    assert.match(r.stdout, /\noutcome: denied 401 token_bound\n$/)
  }
  // The DPoP scheme without a proof: refused before any proof check.
  const none = await verify(['--url', URL_, `DPoP ${bound}`])
  assert.equal(none.code, 1)
  assert.match(line(none, 'binding', '✘'), /no DPoP proof header → 401 invalid_dpop_proof$/)
})

test('usage: a proof without --url, --path with --url, --dpop with --dpop-file, a URL that is not http(s) exit 2; an unreadable --dpop-file exits 1', async () => {
  for (const [args, message] of [
    [['--dpop', 'a.b.c', 'x.y.z'], /a DPoP proof needs --url/],
    [['--url', URL_, '--path', '/x', 'x.y.z'], /--path and --url both name the request target/],
    [['--url', URL_, '--dpop', 'a.b.c', '--dpop-file', 'f', 'x.y.z'], /--dpop and --dpop-file both give the proof/],
    [['--url', 'ftp://api.example/x', 'x.y.z'], /is not an http\(s\):\/\/host\/path URL/],
  ] as const) {
    const r = await verify(args)
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.match(r.stderr, message)
  }
  const r = await verify(['--url', URL_, '--dpop-file', join(dir, 'missing.jwt'), 'x.y.z'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /missing\.jwt: cannot read the file: ENOENT/)
})

test('docs/cli.md "Explaining a decision": the DPoP example runs as written against config/examples/dpop.yaml, and prints the pasted steps', async () => {
  const page = readFileSync(join(root, 'docs/cli.md'), 'utf8')
  const start = page.indexOf('**A DPoP request**')
  assert.ok(start >= 0, 'docs/cli.md lost its "A DPoP request" paragraph')
  const block = /```console\n([\s\S]*?)```/.exec(page.slice(start))?.[1]
  assert.ok(block !== undefined, 'no ```console block after "A DPoP request"')
  const [first, second, ...pasted] = block.trimEnd().split('\n')
  const command = `${first!.replace(/ \\$/, '')} ${second!.trim()}`
  const m = /^\$ jwt-sidecar verify --config (\S+) --url (\S+) --dpop "\$PROOF" "DPoP \$TOKEN"$/.exec(command)
  assert.ok(m !== null, `the docs/cli.md command changed shape: ${command}`)
  const [, file, url] = m as unknown as [string, string, string]

  // The example's proof names /orders/2 while the request goes to /orders/1.
  const local = await startTestIssuer({ alg: 'RS256' })
  try {
    const token = await local.sign({ sub: 'alice', aud: 'orders-api', cnf: { jkt: client.jkt } })
    const proof = await dpopProof(client, token, url.replace('/orders/1', '/orders/2'))
    const r = await new Promise<Run>((resolve, reject) => {
      execFile(process.execPath, [cli, 'verify', '--config', file, '--url', url, '--dpop', proof, `DPoP ${token}`], { cwd: root, env: { PATH: process.env.PATH ?? '', IDP_URL: local.issuer }, timeout: 30_000 }, (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') return reject(new Error(`verify did not run: ${err.message}`))
        resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr })
      })
    })
    assertNoSecrets(r, token, proof)
    assert.equal(r.code, 1, r.stdout + r.stderr)
    // Every pasted line is a real one, in order, up to what varies per run (numbers, thumbprints).
    const mask = (l: string): string => l.replace(/[A-Za-z0-9_-]{43}/g, '<thumbprint>').replace(/\d+/g, '<n>').replace(/ +/g, ' ')
    const real = r.stdout.trimEnd().split('\n').map(mask)
    let at = 0
    for (const l of pasted.filter((p) => p !== '…').map(mask)) {
      const found = real.indexOf(l, at)
      assert.ok(found >= 0, `docs/cli.md line not in the real output (in order):\n${l}\n--- real:\n${real.join('\n')}`)
      at = found + 1
    }
  } finally {
    await local.close()
  }
})
