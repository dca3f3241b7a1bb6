/**
 * `jwt-sidecar verify` as a user runs it: the built CLI (dist/, npm test builds first) in a
 * real process, against a loopback issuer serving its JWKS from this test process.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createPublicKey } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { calculateJwkThumbprint } from 'jose'
import { startTestIssuer } from '../helpers/issuer.ts'
import type { TestIssuer } from '../helpers/issuer.ts'
import { loadConfig } from '../../src/config/load.ts'
import { createKeyStore } from '../../src/keys/store.ts'
import type { IssuerKeys, KeyResult, KeyStore } from '../../src/keys/types.ts'
import { explainRequest } from '../../src/cli/explain.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')

let idp: TestIssuer
let dir: string
let config: string

before(async () => {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  idp = await startTestIssuer({ alg: 'RS256', kids: ['k1'] })
  dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-verify-'))
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
    'routes:',
    '  - name: public',
    '    path: /public/**',
    '    auth: none',
    '  - name: admin',
    '    path: /admin/**',
    '    auth: required',
    '    require:',
    '      scopes: [admin]',
    '  - name: internal',
    '    path: /internal/**',
    '    auth: deny',
    '  - name: default',
    '    path: /**',
    '    auth: required',
    'log:',
    '  level: info',
    '',
  ].join('\n'))
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

/** Runs `jwt-sidecar verify --config <file> ...args`, with `stdin` piped in (empty by default). */
function verify(args: readonly string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [cli, 'verify', '--config', config, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') return reject(new Error(`verify did not run: ${err.message}`))
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr })
    })
    child.stdin?.end(stdin)
  })
}

/** The token, and its signature segment, never appear in anything the CLI prints. */
function assertNoTokenMaterial(r: Run, token: string): void {
  const out = r.stdout + r.stderr
  const signature = token.slice(token.lastIndexOf('.') + 1)
  assert.ok(signature.length > 100, 'an RS256 signature segment')
  assert.ok(!out.includes(signature), 'the signature segment is printed')
  assert.ok(!out.includes(token), 'the whole token is printed')
}

/** The text line of step `name` (`✔ name  detail`), asserting it exists. */
function line(r: Run, name: string, mark?: '✔' | '✘' | '·'): string {
  const found = r.stdout.split('\n').find((l) => new RegExp(`^[✔✘·] ${name} `).test(l))
  assert.ok(found !== undefined, `no "${name}" step in:\n${r.stdout}`)
  if (mark !== undefined) assert.ok(found.startsWith(mark), `expected ${mark}: ${found}`)
  return found
}

const now = (): number => Math.floor(Date.now() / 1000)

test('a valid token on /x: every step is shown, outcome forwarded, exit 0', async () => {
  const token = await idp.sign({ sub: 'alice', scope: 'read', email: 'alice@corp.example' })
  const r = await verify(['--path', '/x', token])
  assertNoTokenMaterial(r, token)
  assert.equal(r.code, 0, r.stdout + r.stderr)
  const thumbprint = await calculateJwkThumbprint(idp.keys()[0]!.jwk)
  assert.match(line(r, 'path', '✔'), /GET \/x → \/x/)
  assert.match(line(r, 'route', '✔'), /default \(path \/\*\*\): auth required/)
  assert.match(line(r, 'source', '✔'), /raw token \(command line\)/)
  const tokenLine = line(r, 'token', '✔')
  assert.match(tokenLine, /alg "RS256", kid "k1", typ "JWT"/)
  assert.match(tokenLine, /claims \[iss, aud, iat, exp, sub, scope, email\]/)
  assert.match(tokenLine, /sub="alice" aud="test-api" exp=\d+ iat=\d+ scope="read"/)
  assert.ok(!r.stdout.includes('alice@corp.example'), 'values of other claims are never shown')
  assert.match(line(r, 'issuer', '✔'), new RegExp(`iss "${idp.issuer}" → corp`))
  assert.match(line(r, 'algorithm', '✔'), /RS256 allowed for corp/)
  assert.match(line(r, 'key', '✔'), new RegExp(`kid "k1": found; kty RSA, alg RS256, thumbprint ${thumbprint}, source jwks ${idp.jwksUri}`))
  assert.match(line(r, 'signature', '✔'), /RS256 signature verifies/)
  assert.match(line(r, 'exp', '✔'), /exp \d+ \(.+\) must be after now \d+ \(.+\) minus skew 60s/)
  assert.match(line(r, 'aud', '✔'), /aud "test-api" must contain one of \["test-api"\]/)
  assert.match(r.stdout, /^✔ authorization +route default admits the token$/m)
  assert.match(r.stdout, /\noutcome: forwarded\n$/)
  assert.ok(!r.stdout.includes('consistency'), r.stdout)
  // The order is the sidecar's.
  const order = r.stdout.split('\n').filter((l) => /^[✔✘·] /.test(l)).map((l) => l.slice(2).split(' ')[0])
  assert.deepEqual(order, ['path', 'route', 'source', 'token', 'issuer', 'algorithm', 'key', 'signature', 'types', 'exp', 'nbf', 'iat', 'aud', 'authorization', 'authorization'])
})

test('an expired token: denied 401 expired, and the exp line shows the values compared', async () => {
  const exp = now() - 3600
  const token = await idp.sign({ sub: 'alice', exp, iat: exp - 300 })
  const r = await verify(['--path', '/x', token])
  assertNoTokenMaterial(r, token)
  assert.equal(r.code, 1)
  assert.match(line(r, 'exp', '✘'), new RegExp(`exp ${exp} \\(.+\\) must be after now \\d+ \\(.+\\) minus skew 60s → 401 expired`))
  assert.ok(!/^[✔✘·] aud /m.test(r.stdout), 'the steps stop where the sidecar stops')
  assert.match(r.stdout, /\noutcome: denied 401 expired\n$/)
})

test('a valid token without the admin scope on /admin/x: denied 403 insufficient_scope, with required and granted scopes', async () => {
  const token = await idp.sign({ sub: 'alice', scope: 'read write' })
  const r = await verify(['--path', '/admin/x', token])
  assertNoTokenMaterial(r, token)
  assert.equal(r.code, 1)
  assert.match(line(r, 'route', '✔'), /admin \(path \/admin\/\*\*\): .*require scopes \["admin"\]/)
  assert.match(r.stdout, /^✘ authorization +scopes required \["admin"\], granted \["read","write"\]: MISSING admin$/m)
  assert.match(r.stdout, /\noutcome: denied 403 insufficient_scope\n$/)
})

test('an unknown kid: the key step says the JWKS was fetched again and the kid not found, unknown_kid', async () => {
  const token = await idp.sign({ sub: 'alice' }, { kid: 'k9' })
  const fetches = idp.fetchCount()
  const r = await verify(['--path', '/x', token])
  assertNoTokenMaterial(r, token)
  assert.equal(r.code, 1)
  assert.match(line(r, 'key', '✘'), new RegExp(`kid "k9": not found; not in the cached set, so ${idp.jwksUri} was fetched again \\(unknown-kid refresh\\); known kids: "k1" → 401 unknown_kid`))
  assert.equal(idp.fetchCount() - fetches, 2, 'the start-up fetch and one unknown-kid refetch')
  assert.match(r.stdout, /\noutcome: denied 401 unknown_kid\n$/)
})

test('--path /public/../admin/x is normalised, and matched as /admin/x', async () => {
  const token = await idp.sign({ sub: 'root', scope: 'admin' })
  const r = await verify(['--path', '/public/../admin/x', token])
  assertNoTokenMaterial(r, token)
  assert.equal(r.code, 0, r.stdout)
  assert.match(line(r, 'path', '✔'), /GET \/public\/\.\.\/admin\/x → \/admin\/x \(normalised\)/)
  assert.match(line(r, 'route', '✔'), /^✔ route +admin /)
  assert.match(r.stdout, /^✔ authorization +scopes required \["admin"\], granted \["admin"\]$/m)
  assert.match(r.stdout, /\noutcome: forwarded\n$/)
})

test('a full header value is recognised as the Authorization header source (prefix compared case-insensitively)', async () => {
  const token = await idp.sign({ sub: 'alice' })
  for (const value of [`Bearer ${token}`, `bearer ${token}`]) {
    const r = await verify(['--path', '/x', value])
    assertNoTokenMaterial(r, token)
    assert.equal(r.code, 0, r.stdout)
    assert.match(line(r, 'source', '✔'), /Authorization header \(prefix "Bearer "\)/)
  }
})

test('the token from stdin: with -, and with no TOKEN at all (trimmed)', async () => {
  const token = await idp.sign({ sub: 'alice' })
  for (const args of [['--path', '/x', '-'], ['--path', '/x']]) {
    const r = await verify(args, `\n  ${token}\n`)
    assertNoTokenMaterial(r, token)
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(line(r, 'source', '✔'), /raw token \(stdin\)/)
  }
  const r = await verify(['--method', 'post', '-'], `Bearer ${token}\n`)
  assertNoTokenMaterial(r, token)
  assert.match(line(r, 'path', '✔'), /^✔ path +POST \/ → \//)
  assert.match(line(r, 'source', '✔'), /Authorization header/)
})

test('--json prints the Explanation, matching the text run', async () => {
  const token = await idp.sign({ sub: 'alice', scope: 'read' })
  const ok = await verify(['--json', '--path', '/x', token])
  assertNoTokenMaterial(ok, token)
  assert.equal(ok.code, 0)
  const e = JSON.parse(ok.stdout) as { steps: { step: string; ok: boolean | null; detail: string }[]; forwarded: boolean; status: number; reason: string }
  assert.deepEqual({ forwarded: e.forwarded, status: e.status, reason: e.reason }, { forwarded: true, status: 200, reason: 'none' })
  assert.deepEqual(e.steps.map((s) => s.step), ['path', 'route', 'source', 'token', 'issuer', 'algorithm', 'key', 'signature', 'types', 'exp', 'nbf', 'iat', 'aud', 'authorization', 'authorization'])
  // Every step passed, except the informational `issuers: any` line (nothing to pass: no `ok`).
  assert.ok(e.steps.every((s) => (s.ok === true || (s.ok === undefined && s.detail === 'issuers: any')) && typeof s.detail === 'string'))
  const text = await verify(['--path', '/x', token])
  for (const s of e.steps) if (!['exp', 'iat'].includes(s.step)) assert.ok(text.stdout.includes(s.detail), `text lacks: ${s.detail}`)

  const denied = await verify(['--json', '--path', '/admin/x', token])
  assertNoTokenMaterial(denied, token)
  assert.equal(denied.code, 1)
  const d = JSON.parse(denied.stdout) as typeof e
  assert.deepEqual({ forwarded: d.forwarded, status: d.status, reason: d.reason }, { forwarded: false, status: 403, reason: 'insufficient_scope' })
  assert.equal(d.steps.at(-1)?.ok, false)
})

test('the steps stop where the sidecar stops: an encoded slash is 400, no token 401, a foreign iss 401; auth none needs no token', async () => {
  const bad = await verify(['--path', '/a%2Fb', 'x.y.z'])
  assert.equal(bad.code, 1)
  assert.match(line(bad, 'path', '✘'), /refused: .* → 400 invalid_request/)
  assert.match(bad.stdout, /\noutcome: denied 400 invalid_request\n$/)

  const none = await verify(['--path', '/x', '-'], '')
  assert.equal(none.code, 1)
  assert.match(line(none, 'source', '✘'), /no token .* → 401 missing_token/)

  const pub = await verify(['--path', '/public/a'], '')
  assert.equal(pub.code, 0)
  assert.match(line(pub, 'source', '·'), /not read: route public has auth none/)

  const foreign = await idp.sign({ iss: 'https://elsewhere.example' })
  const r = await verify(['--path', '/x', foreign])
  assertNoTokenMaterial(r, foreign)
  assert.equal(r.code, 1)
  assert.match(line(r, 'issuer', '✘'), /iss "https:\/\/elsewhere\.example" matches no configured issuer .* → 401 unknown_issuer/)
})

test('issue #9: a registered claim of the wrong type, an auth: deny route and a fragment, each where the sidecar stops', async () => {
  const typed = await idp.sign({ sub: { id: 'admin' } })
  const t = await verify(['--path', '/x', typed])
  assertNoTokenMaterial(t, typed)
  assert.equal(t.code, 1)
  assert.match(line(t, 'types', '✘'), /^✘ types +sub \{"id":"admin"\} must be a string \(RFC 7519 §4\.1\) → 401 bad_claim_type$/)
  assert.match(t.stdout, /outcome: denied 401 bad_claim_type\n$/)

  const good = await idp.sign({ sub: 'alice' })
  const d = await verify(['--path', '/INTERNAL/x', good])
  assert.equal(d.code, 1)
  assert.match(line(d, 'route', '✘'), /internal \(path \/internal\/\*\*\): auth deny.*→ 403 route_denied$/)
  assert.match(d.stdout, /outcome: denied 403 route_denied\n$/)

  const f = await verify(['--path', '/admin#x', good])
  assert.equal(f.code, 1)
  assert.match(line(f, 'path', '✘'), /fragment/)
  assert.match(f.stdout, /outcome: denied 400 invalid_request\n$/)
  assert.doesNotMatch(t.stdout + d.stdout + f.stdout, /consistency/)
})

test('usage errors exit 2; a bad config exits 1 as run does', async () => {
  const two = await verify(['a.b.c', 'd.e.f'])
  assert.equal(two.code, 2)
  assert.match(two.stderr, /verify takes one TOKEN/)
  const r = await new Promise<Run>((resolve) => {
    execFile(process.execPath, [cli, 'verify', '--config', join(dir, 'missing.yaml'), 'a.b.c'], { cwd: root }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr })
    })
  })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /missing\.yaml: cannot read the file/)
})

test('explainRequest: the steps are the decision\'s own trace, taken once: a key that disappears after the lookup cannot make them disagree', async () => {
  const cfg = loadConfig(config, {})
  const token = await idp.sign({ sub: 'alice' })
  const real = createKeyStore(cfg.issuers)
  real.start()
  try {
    await real.settled()
    const base = { token, source: 'raw token (test)', path: '/x', method: 'GET' }
    const agreed = await explainRequest(cfg, real, base)
    assert.deepEqual({ forwarded: agreed.forwarded, status: agreed.status, reason: agreed.reason }, { forwarded: true, status: 200, reason: 'none' })
    assert.ok(!agreed.steps.some((s) => s.step === 'consistency'))

    // `now` is passed to the steps and to the verifier alike.
    const later = await explainRequest(cfg, real, { ...base, now: () => Date.now() + 3_600_000 })
    assert.equal(later.reason, 'expired')
    assert.equal(later.steps.at(-1)?.step, 'exp')

    // A key store whose key disappears after the first lookup (a rotation at the wrong moment).
    // Issue #11: the explanation is the trace of the one decision, so the key is looked up
    // once and the steps and the answer agree; a second walk could have disagreed.
    const jwk = idp.keys()[0]!.jwk
    const found: KeyResult = {
      ok: true,
      key: { kid: 'k1', thumbprint: await calculateJwkThumbprint(jwk), kty: 'RSA', alg: 'RS256', algorithms: new Set(['RS256'] as const), key: createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }), source: 'jwks' },
    }
    let calls = 0
    const corp = real.issuer('corp')!
    const flaky: IssuerKeys = { ...corp, name: 'corp', status: () => corp.status(), ready: () => true, getKey: () => (calls++ === 0 ? found : { ok: false, reason: 'keys_unavailable' }) }
    const store: KeyStore = { ...real, issuer: (name) => (name === 'corp' ? flaky : undefined) }
    const e = await explainRequest(cfg, store, base)
    assert.equal(calls, 1, 'one key lookup: the decision\'s')
    assert.deepEqual({ forwarded: e.forwarded, status: e.status, reason: e.reason }, { forwarded: true, status: 200, reason: 'none' })
    assert.equal(e.steps.find((s) => s.step === 'key')?.ok, true)
    assert.ok(!e.steps.some((s) => s.step === 'consistency'))

    // The second lookup is refused: that request's steps stop at the key, with the 503.
    const gone = await explainRequest(cfg, store, base)
    assert.deepEqual({ forwarded: gone.forwarded, status: gone.status, reason: gone.reason }, { forwarded: false, status: 503, reason: 'keys_unavailable' })
    const last = gone.steps.at(-1)!
    assert.equal(last.step, 'key')
    assert.equal(last.ok, false)
    assert.match(last.detail, /corp has no usable keys .* → 503 keys_unavailable$/)
  } finally {
    await real.stop()
  }
})

test('docs/cli.md "Explaining a decision": the first example is this config\'s real output, line for line', async () => {
  const page = readFileSync(join(root, 'docs/cli.md'), 'utf8')
  const start = page.indexOf('### Explaining a decision')
  assert.ok(start >= 0, 'docs/cli.md lost its "Explaining a decision" section')
  const block = /```console\n([\s\S]*?)```/.exec(page.slice(start))?.[1]
  assert.ok(block !== undefined, 'no ```console block in "Explaining a decision"')
  const [command, ...rest] = block.trimEnd().split('\n')
  const m = /^\$ jwt-sidecar verify --config sidecar\.yaml --path (\S+) "Bearer eyJ…"$/.exec(command!)
  assert.ok(m !== null, `the docs/cli.md command changed shape: ${command!}`)
  assert.deepEqual(rest.slice(-2), ['$ echo $?', '1'], 'the example ends with its exit status')
  const pasted = rest.slice(0, -2)

  // The token the example shows: scopes read and write, an email claim (whose value is never shown).
  const token = await idp.sign({ sub: 'alice', scope: 'read write', email: 'alice@corp.example' })
  const r = await verify(['--path', m[1]!, `Bearer ${token}`])
  assertNoTokenMaterial(r, token)
  assert.equal(r.code, 1, r.stdout + r.stderr)
  // What varies per run (ports, times, the key's thumbprint) is masked; the rest must be equal.
  const mask = (l: string): string => l.replace(/[A-Za-z0-9_-]{43}/g, '<thumbprint>').replace(/\d+/g, '<n>').replace(/ +/g, ' ')
  assert.deepEqual(pasted.map(mask), r.stdout.trimEnd().split('\n').map(mask), `docs/cli.md's example is not the real output; the real one:\n${r.stdout}`)
})
