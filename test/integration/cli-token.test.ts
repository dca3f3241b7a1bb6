/**
 * `jwt-sidecar token` as a user runs it: the built CLI (dist/) in real processes. One
 * `token --serve` process publishes the command's key; tokens minted against a config that
 * points at it pass `jwt-sidecar verify` and a running sidecar; a config that points at any
 * other key set (a provider-shaped test issuer) is refused before anything is signed.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import type { TestIssuer, TestUpstream } from '../helpers/issuer.ts'
import { startTestOp } from '../helpers/oidc.ts'
import { startSidecar } from '../helpers/sidecar.ts'
import { waitFor } from '../../src/wait-for.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist', 'src', 'cli.js')

let dir: string
let keys: string
let serveProc: ChildProcess
let serveOut = ''
let issuer: string
let jwksUri: string
let idp: TestIssuer
let upstream: TestUpstream

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `jwt-sidecar ...args` with HOME in the test directory (the default key dir never touches the real home). */
function run(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') return reject(new Error(`the CLI did not run: ${err.message}`))
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr })
    })
  })
}

/** Writes a config with one issuer block (YAML lines under `- name: …`) and returns its path. */
function config(name: string, issuerLines: readonly string[], extraIssuers = ''): string {
  const path = join(dir, `${name}.yaml`)
  writeFileSync(path, [
    'listen: 127.0.0.1:0',
    'admin:',
    '  listen: 127.0.0.1:0',
    'upstream:',
    `  url: ${upstream.url}`,
    'issuers:',
    '  - name: local',
    ...issuerLines.map((l) => `    ${l}`),
    extraIssuers,
    'identity:',
    '  headers:',
    '    X-Auth-Subject: sub',
    '    X-Auth-Roles: realm_access.roles',
    '  strip: ["X-Auth-*"]',
    'routes:',
    '  - name: orders',
    '    path: /orders/**',
    '    require:',
    '      scopes: ["orders:read"]',
    '      claims:',
    '        realm_access.roles: [admin]',
    'log:',
    '  level: info',
    '',
  ].join('\n'))
  return path
}

const decode = (token: string, part: 0 | 1): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[part]!, 'base64url').toString('utf8')) as Record<string, unknown>

/** The private key members of every key the command holds: none may ever be printed. */
function privateMembers(): string[] {
  return readdirSync(keys).map((f) => (JSON.parse(readFileSync(join(keys, f), 'utf8')) as { d: string }).d)
}

function assertNoPrivateKey(r: Run): void {
  for (const d of privateMembers()) assert.ok(!(r.stdout + r.stderr).includes(d), 'a private key member is printed')
}

before(async () => {
  assert.ok(existsSync(cli), `${cli} is missing: run \`npm run build\` (npm test does it first)`)
  dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-token-'))
  keys = join(dir, 'keys')
  idp = await startTestIssuer({ alg: 'RS256', kids: ['k1', 'k2'] })
  upstream = await startUpstream()
  serveProc = spawn(process.execPath, [cli, 'token', '--serve', '--keys', keys], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] })
  serveProc.stdout!.on('data', (c: Buffer) => { serveOut += c.toString('utf8') })
  serveProc.stderr!.on('data', (c: Buffer) => { serveOut += c.toString('utf8') })
  await waitFor(() => /^jwksUri: (\S+)$/m.test(serveOut), { what: () => `token --serve output: ${serveOut}`, timeoutMs: 15_000, intervalMs: 20 })
  issuer = /^issuer: +(\S+)$/m.exec(serveOut)![1]!
  jwksUri = /^jwksUri: (\S+)$/m.exec(serveOut)![1]!
})

after(async () => {
  const exited = new Promise<number | null>((resolve) => serveProc.once('exit', (code) => resolve(code)))
  serveProc.kill('SIGTERM')
  assert.equal(await exited, 0, 'token --serve exits 0 on SIGTERM')
  await idp.close()
  await upstream.close()
  rmSync(dir, { recursive: true, force: true })
})

test('--serve: loopback JWKS and discovery, a ready-to-paste issuer block; keys 0700/0600, no private member served', async () => {
  assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/)
  assert.equal(jwksUri, `${issuer}/jwks`)
  assert.match(serveOut, new RegExp(`issuers:\\n  - name: local-test\\n    issuer: ${issuer}\\n    jwksUri: ${jwksUri}\\n    audiences: \\[test-api\\]\\n    algorithms: \\[ES256\\]`))
  assert.equal(statSync(keys).mode & 0o777, 0o700)
  assert.equal(statSync(join(keys, 'ES256.jwk')).mode & 0o777, 0o600)
  const jwks = await (await fetch(jwksUri)).json() as { keys: Array<Record<string, unknown>> }
  assert.equal(jwks.keys.length, 1)
  const [jwk] = jwks.keys
  assert.deepEqual(Object.keys(jwk!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'])
  assert.equal(jwk!.alg, 'ES256')
  assert.match(serveOut, new RegExp(`key: +ES256 ${String(jwk!.kid)}`), 'the kid is the printed RFC 7638 thumbprint')
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>
  assert.equal(discovery.issuer, issuer)
  assert.equal(discovery.jwks_uri, jwksUri)
  assert.equal((await fetch(`${issuer}/other`)).status, 404)
  assert.ok(!serveOut.includes(privateMembers()[0]!))
})

test('mint for an issuer at --serve\'s jwksUri: only the token on stdout; verify forwards it; a running sidecar admits it', async () => {
  const cfg = config('served', [`issuer: ${issuer}`, `jwksUri: ${jwksUri}`, 'audiences: [orders-api, other-api]', 'algorithms: [ES256]'])
  const r = await run(['token', '--config', cfg, '--issuer', 'local', '--keys', keys, '--sub', 'alice', '--scope', 'orders:read', '--claim', 'realm_access.roles=["admin"]', '--claim', 'tenant=acme', '--claim', 'level=3', '--ttl', '10m'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr, '')
  assertNoPrivateKey(r)
  assert.match(r.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'stdout is the token and a newline, nothing else')
  const token = r.stdout.trim()
  const jwks = await (await fetch(jwksUri)).json() as { keys: Array<{ kid: string }> }
  assert.deepEqual(decode(token, 0), { alg: 'ES256', typ: 'JWT', kid: jwks.keys[0]!.kid })
  const claims = decode(token, 1)
  assert.equal(claims.iss, issuer)
  assert.equal(claims.aud, 'orders-api', 'the first configured audience')
  assert.equal(claims.sub, 'alice')
  assert.equal(claims.scope, 'orders:read')
  assert.deepEqual(claims.realm_access, { roles: ['admin'] })
  assert.equal(claims.tenant, 'acme', 'not JSON: a string')
  assert.equal(claims.level, 3, 'JSON: a number')
  assert.equal((claims.exp as number) - (claims.iat as number), 600)
  assert.ok(Math.abs((claims.iat as number) - Date.now() / 1000) < 30)

  const v = await run(['verify', '--config', cfg, '--path', '/orders/1', token])
  assert.equal(v.code, 0, v.stdout + v.stderr)
  assert.match(v.stdout, /outcome: forwarded/)

  const sidecar = await startSidecar(readFileSync(cfg, 'utf8'))
  try {
    const res = await fetch(`${sidecar.proxyUrl}/orders/1`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(res.status, 200, await res.clone().text())
    const seen = await res.json() as { headers: Record<string, string> }
    assert.equal(seen.headers['x-auth-subject'], 'alice')
    assert.equal(seen.headers['x-auth-roles'], 'admin')
    // The same request without the role the route requires: 403, so the claims really count.
    const noRole = (await run(['token', '--config', cfg, '--keys', keys, '--sub', 'bob', '--scope', 'orders:read'])).stdout.trim()
    assert.equal((await fetch(`${sidecar.proxyUrl}/orders/1`, { headers: { authorization: `Bearer ${noRole}` } })).status, 403)
  } finally {
    await sidecar.close()
  }
})

test('issue #12: the audience goes in audienceClaim (Cognito), a {tenantid} issuer gets --tenant in iss and tid (Entra); verify forwards both', async () => {
  const cognito = config('cognito', [`issuer: ${issuer}`, `jwksUri: ${jwksUri}`, 'audiences: [app-client]', 'audienceClaim: client_id', 'algorithms: [ES256]'])
  const c = await run(['token', '--config', cognito, '--keys', keys, '--sub', 'alice', '--scope', 'orders:read', '--claim', 'realm_access.roles=["admin"]'])
  assert.equal(c.code, 0, c.stderr)
  const cc = decode(c.stdout.trim(), 1)
  assert.equal(cc.client_id, 'app-client')
  assert.equal(cc.aud, undefined)
  assert.equal((await run(['verify', '--config', cognito, '--path', '/orders/1', c.stdout.trim()])).code, 0)

  const entra = config('entra', [`issuer: "${issuer}/{tenantid}/v2.0"`, 'tenants: [t-one, t-two]', `jwksUri: ${jwksUri}`, 'audiences: [api]', 'algorithms: [ES256]'])
  const e = await run(['token', '--config', entra, '--keys', keys, '--tenant', 't-two', '--sub', 'alice', '--scope', 'orders:read', '--claim', 'realm_access.roles=["admin"]'])
  assert.equal(e.code, 0, e.stderr)
  const ec = decode(e.stdout.trim(), 1)
  assert.deepEqual([ec.iss, ec.tid], [`${issuer}/t-two/v2.0`, 't-two'])
  const v = await run(['verify', '--config', entra, '--path', '/orders/1', e.stdout.trim()])
  assert.equal(v.code, 0, v.stdout + v.stderr)
  assert.match(v.stdout, /✔ tid +tid "t-two" must equal the tenant in iss, "t-two"/)
  // Default: the first tenant. A tenant not listed, or --tenant for a plain issuer, is a usage error.
  assert.equal(decode((await run(['token', '--config', entra, '--keys', keys])).stdout.trim(), 1).tid, 't-one')
  const other = await run(['token', '--config', entra, '--keys', keys, '--tenant', 't-three'])
  assert.equal(other.code, 2)
  assert.match(other.stderr, /--tenant "t-three": not in issuer "local"'s tenants \(t-one, t-two\)/)
  assert.equal((await run(['token', '--config', cognito, '--keys', keys, '--tenant', 'x'])).code, 2)
})

test('mint for a discovery issuer (--serve\'s issuer URL): --aud, the issuer\'s typ, a second algorithm generated and published on the fly', async () => {
  const cfg = config('discovered', [`issuer: ${issuer}`, 'discovery: true', 'audiences: [orders-api]', 'algorithms: [RS256]', 'typ: at+jwt'])
  const r = await run(['token', '--config', cfg, '--keys', keys, '--sub', 'alice', '--aud', 'a2', '--aud', 'orders-api'])
  assert.equal(r.code, 0, r.stderr)
  const token = r.stdout.trim()
  const header = decode(token, 0)
  assert.equal(header.alg, 'RS256', 'ES256 is not allowed by this issuer: its first algorithm')
  assert.equal(header.typ, 'at+jwt')
  assert.deepEqual(decode(token, 1).aud, ['a2', 'orders-api'])
  assert.equal(statSync(join(keys, 'RS256.jwk')).mode & 0o777, 0o600)
  const jwks = await (await fetch(jwksUri)).json() as { keys: Array<{ alg: string }> }
  assert.deepEqual(jwks.keys.map((k) => k.alg), ['RS256', 'ES256'])
  const v = await run(['verify', '--config', cfg, '--path', '/orders/1', token])
  assert.match(v.stdout, /✔ signature +RS256 signature verifies/)
  assert.match(v.stdout, /✔ typ +typ "at\+jwt" must be at\+jwt/)
  assert.match(v.stdout, /✔ aud /)
  assert.match(v.stdout, /outcome: denied 403 insufficient_scope/, 'verified; only the route\'s scope refuses it')
})

test('refused: an issuer whose JWKS (a provider-shaped set) does not hold the command\'s key; exit 1, one line, nothing on stdout', async () => {
  const cfg = config('provider', [`issuer: ${idp.issuer}`, `jwksUri: ${idp.jwksUri}`, 'audiences: [orders-api]', 'algorithms: [RS256, ES256]'])
  const r = await run(['token', '--config', cfg, '--keys', keys, '--sub', 'alice'])
  assert.equal(r.code, 1)
  assert.equal(r.stdout, '')
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  assert.match(r.stderr, /^jwt-sidecar token: refused: issuer "local" \(http:\/\/127\.0\.0\.1:\d+\) does not trust this command's ES256 key [\w-]{43}: it holds 2 other key\(s\)/)
  assertNoPrivateKey(r)
})

test('refused: the provider publishes a key under the command\'s kid (the thumbprint), but other key material', async () => {
  const jwks = await (await fetch(jwksUri)).json() as { keys: Array<{ kid: string; alg: string }> }
  const ourKid = jwks.keys.find((k) => k.alg === 'ES256')!.kid
  await idp.addKey(ourKid, 'ES256')
  try {
    const cfg = config('collision', [`issuer: ${idp.issuer}`, `jwksUri: ${idp.jwksUri}`, 'audiences: [orders-api]', 'algorithms: [ES256]'])
    const r = await run(['token', '--config', cfg, '--keys', keys])
    assert.equal(r.code, 1, r.stdout)
    assert.match(r.stderr, /refused: .* it holds 1 other key\(s\)/)
  } finally {
    idp.removeKey(ourKid)
  }
})

test('refused: a real OpenID Provider (npm oidc-provider, discovery) never holds the command\'s key, though its own tokens verify', async () => {
  const op = await startTestOp({ algs: ['RS256', 'ES256'] })
  try {
    const cfg = config('real-op', [`issuer: ${op.issuer}`, 'discovery: true', `audiences: [${op.audience}]`, 'algorithms: [RS256, ES256]', 'typ: at+jwt'])
    for (const alg of ['ES256', 'RS256']) {
      const r = await run(['token', '--config', cfg, '--keys', keys, '--alg', alg, '--sub', 'alice'])
      assert.equal(r.code, 1, `${alg}: ${r.stdout}`)
      assert.equal(r.stdout, '')
      assert.match(r.stderr, new RegExp(`refused: issuer "local" \\(${op.issuer}\\) does not trust this command's ${alg} key .*: it holds 2 other key\\(s\\)`))
    }
    // The same config does load the provider's keys: its own token passes signature and claims.
    const v = await run(['verify', '--config', cfg, '--path', '/orders/1', await op.token('ES256', 'orders:read')])
    assert.match(v.stdout, /✔ signature +ES256 signature verifies/)
    assert.match(v.stdout, /✔ aud /)
  } finally {
    await op.close()
  }
})

test('refused: an issuer whose keys do not load names why', async () => {
  const cfg = config('down', ['issuer: https://idp.example', 'jwksUri: http://127.0.0.1:9/jwks', 'audiences: [orders-api]', 'algorithms: [ES256]', 'fetch:', '  timeout: 2s'])
  const r = await run(['token', '--config', cfg, '--keys', keys])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /refused: issuer "local" \(https:\/\/idp\.example\) .*: its keys did not load \(.+\)\./)
})

test('an overridden iss does not escape the check: a sidecar trusting the named issuer refuses the token', async () => {
  const ours = config('ours', [`issuer: ${issuer}`, `jwksUri: ${jwksUri}`, 'audiences: [orders-api]', 'algorithms: [ES256]'])
  const r = await run(['token', '--config', ours, '--keys', keys, '--claim', `iss=${idp.issuer}`])
  assert.equal(r.code, 0, r.stderr)
  const theirs = config('theirs', [`issuer: ${idp.issuer}`, `jwksUri: ${idp.jwksUri}`, 'audiences: [orders-api]', 'algorithms: [ES256, RS256]'])
  const v = await run(['verify', '--config', theirs, '--path', '/orders/1', r.stdout.trim()])
  assert.equal(v.code, 1)
  assert.match(v.stdout, /outcome: denied 401 (unknown_kid|bad_signature)/)
})

test('--export-jwks FILE: a static-key issuer trusts it; the token verifies with no server involved', async () => {
  const file = join(dir, 'token-jwks.json')
  const e = await run(['token', '--export-jwks', file, '--keys', keys])
  assert.equal(e.code, 0, e.stderr)
  assert.equal(e.stdout, '')
  assert.match(e.stderr, /wrote 2 public key\(s\) \(RS256, ES256\)/)
  assertNoPrivateKey({ ...e, stdout: readFileSync(file, 'utf8') })
  const cfg = config('static', ['issuer: https://local-test.invalid', 'keys:', `  - file: ${file}`, 'audiences: [orders-api]', 'algorithms: [ES256]'])
  const r = await run(['token', '--config', cfg, '--keys', keys, '--sub', 'alice', '--scope', 'orders:read', '--claim', 'realm_access.roles=["admin"]'])
  assert.equal(r.code, 0, r.stderr)
  const v = await run(['verify', '--config', cfg, '--path', '/orders/1', r.stdout.trim()])
  assert.equal(v.code, 0, v.stdout)
  // A fresh key directory holds another key: refused against the same file.
  const other = await run(['token', '--config', cfg, '--keys', join(dir, 'other-keys')])
  assert.equal(other.code, 1)
  assert.match(other.stderr, /refused: .*\(generated just now in .*other-keys\)/)
})

test('the default key directory is $XDG_STATE_HOME/jwt-sidecar/token-keys, else ~/.local/state/…', async () => {
  const e = await run(['token', '--export-jwks', '-'], { XDG_STATE_HOME: join(dir, 'state') })
  assert.equal(e.code, 0, e.stderr)
  assert.ok(existsSync(join(dir, 'state', 'jwt-sidecar', 'token-keys', 'ES256.jwk')))
  assert.equal((JSON.parse(e.stdout) as { keys: unknown[] }).keys.length, 1)
  const h = await run(['token', '--export-jwks', '-'])
  assert.equal(h.code, 0, h.stderr)
  assert.ok(existsSync(join(dir, '.local', 'state', 'jwt-sidecar', 'token-keys', 'ES256.jwk')))
})

test('a key directory or key file other users can read is refused, with the chmod that fixes it', async () => {
  const loose = join(dir, 'loose-keys')
  assert.equal((await run(['token', '--export-jwks', '-', '--keys', loose])).code, 0)
  chmodSync(join(loose, 'ES256.jwk'), 0o644)
  const f = await run(['token', '--export-jwks', '-', '--keys', loose])
  assert.equal(f.code, 1)
  assert.match(f.stderr, /the key file .*ES256\.jwk is accessible to other users \(mode 0644\); run: chmod 600 /)
  chmodSync(join(loose, 'ES256.jwk'), 0o600)
  chmodSync(loose, 0o755)
  const d = await run(['token', '--export-jwks', '-', '--keys', loose])
  assert.equal(d.code, 1)
  assert.match(d.stderr, /the key directory .*loose-keys is accessible to other users \(mode 0755\); run: chmod 700 /)
})

test('failures and usage errors: exit 1 for what the config refuses, 2 for the arguments', async () => {
  const cfg = config('usage', [`issuer: ${issuer}`, `jwksUri: ${jwksUri}`, 'audiences: [orders-api]', 'algorithms: [ES256]'], [
    '  - name: second',
    `    issuer: ${issuer}/second`,
    `    jwksUri: ${jwksUri}`,
    '    audiences: [orders-api]',
  ].join('\n'))
  const cases: Array<[string[], number, RegExp]> = [
    [['--issuer', 'local', '--alg', 'RS256'], 1, /issuer "local" accepts ES256; a RS256 token would be refused \(alg_not_allowed\)/],
    [[], 2, /--issuer NAME is required: the config has 2 issuers \(local, second\)/],
    [['--issuer', 'nope'], 2, /--issuer "nope": no such issuer in the config \(local, second\)/],
    [['--issuer', 'local', '--alg', 'HS256'], 2, /--alg "HS256": expected one of RS256/],
    [['--issuer', 'local', '--claim', 'novalue'], 2, /--claim "novalue": expected path=value/],
    [['--issuer', 'local', '--claim', 'a..b=1'], 2, /a claim path is names joined by dots/],
    [['--issuer', 'local', '--claim', 'a=1', '--claim', 'a.b=2'], 2, /a is already set to a value that is not an object/],
    [['--issuer', 'local', '--claim', '__proto__.x=1'], 2, /"__proto__" is not allowed/],
    [['--issuer', 'local', '--ttl', '600'], 2, /--ttl: .*a bare number has no unit/],
    [['--issuer', 'local', '--bogus'], 2, /^unknown option --bogus for token; see jwt-sidecar token --help\n$/],
    [['--issuer', 'local', '--path', '/x'], 2, /^--path is an option of verify, not of token; see jwt-sidecar token --help\n$/],
  ]
  for (const [args, code, message] of cases) {
    const r = await run(['token', '--config', cfg, '--keys', keys, ...args])
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`)
    assert.equal(r.stdout, '', args.join(' '))
    assert.match(r.stderr, message, args.join(' '))
  }
  const bad = [
    [['token', '--serve', '--listen', '0.0.0.0:0', '--keys', keys], /--listen 0\.0\.0\.0:0: the key server listens on loopback only/],
    [['token', '--serve', '--sub', 'x', '--keys', keys], /--sub: not an option of token --serve/],
    [['token', '--listen', '127.0.0.1:0', '--keys', keys], /--listen is an option of token --serve/],
    [['--config', cfg, 'token'], /the options of token come after it/],
  ] as const
  for (const [args, message] of bad) {
    const r = await run(args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, message)
  }
  const help = await run(['token', '--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /jwt-sidecar token --serve \[--listen 127\.0\.0\.1:0\]/)
  assert.match((await run(['--help'])).stdout, /jwt-sidecar token \[--config FILE\] \[--issuer NAME\]/)
})
