import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { interpolateString } from '../../src/config/interpolate.ts'
import { ConfigError, loadConfig, parseConfig, resolveConfigPath, type ConfigIssue } from '../../src/config/load.ts'
import { MINIMAL, configError, configLines as lines } from '../helpers/config-text.ts'
import type { SidecarConfig } from '../../src/config/types.ts'
import { MAX_DURATION_MS, parseDuration, parseListen, parseSize, UnitError } from '../../src/config/units.ts'

const EXAMPLE = fileURLToPath(new URL('../../config/sidecar.yaml', import.meta.url))

function assertDeepFrozen(value: unknown, path = 'config'): void {
  if (typeof value !== 'object' || value === null) return
  assert.ok(Object.isFrozen(value), `${path} is not frozen`)
  for (const [key, child] of Object.entries(value)) assertDeepFrozen(child, `${path}.${key}`)
}

void describe('parseConfig: a valid file', () => {
  void it('fills every default and converts units', () => {
    const config = parseConfig(MINIMAL, 'minimal.yaml', {})
    const expected: SidecarConfig = {
      source: 'minimal.yaml',
      listen: { host: '0.0.0.0', port: 8080 },
      upstream: { url: 'http://127.0.0.1:3000', timeout: 30_000, xForwarded: 'append', drainsBodies: false },
      admin: { listen: { host: '0.0.0.0', port: 9901 }, maxEventLoopDelay: 2000 },
      shutdown: { delay: 5000, timeout: 25_000 },
      issuers: [
        {
          name: 'corp',
          issuer: 'https://idp.example.com/realms/corp',
          jwksUri: 'https://idp.example.com/realms/corp/protocol/openid-connect/certs',
          audiences: ['orders-api'],
          algorithms: ['RS256'],
          requiredClaims: ['exp'],
          maxLifetime: undefined,
          typ: undefined,
          allowInsecureHttp: false,
          tenants: undefined,
          kidless: { maxCandidates: 1 }, dpop: { mode: 'off', proofMaxAge: 60_000 },
          discovery: false,
          discoveryUrl: undefined,
          audienceClaim: 'aud',
          keys: [],
          fetch: { timeout: 5000, maxBytes: 1024 * 1024, headers: {}, bearerTokenFile: undefined, caFile: undefined },
          refresh: {
            interval: 300_000, minInterval: 60_000, maxInterval: 3_600_000, unknownKidCooldown: 30_000,
            unknownKidWait: 2000, maxStale: 86_400_000, discoveryInterval: 86_400_000,
          },
        },
      ],
      tokens: { from: [{ kind: 'header', header: 'Authorization', prefix: 'Bearer ' }], clockSkew: 60_000, maxBytes: 8192, cache: { maxEntries: 10_000, maxBytes: 32 * 2 ** 20 }, dpopReplayCache: { maxEntries: 100_000 } },
      identity: { headers: {}, strip: [], forwardToken: true, arrays: 'join', maxValueBytes: 4096, claimsHeader: undefined, bindingHeader: undefined, underscoreHeaders: 'drop' },
      requests: { methodOverride: 'strip', timeout: 60_000 },
      routes: [{ name: 'default', path: '/**', methods: [], auth: 'required', caseSensitive: false, issuers: [], require: { scopes: [], claims: {} } }],
      log: { level: 'info', access: true },
      warnings: [],
    }
    assert.deepEqual(config, expected)
  })

  void it('resolves a full file with every key set', () => {
    const text = `listen: "[::1]:8443"
upstream:
  url: https://app.internal:8443/base
  timeout: 1m30s
  xForwarded: replace
admin:
  listen: 127.0.0.1:0
issuers:
  - name: corp
    issuer: https://idp.example.com/realms/corp
    jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs
    audiences: [orders-api, billing]
    algorithms: [RS256, ES256, EdDSA]
    allowInsecureHttp: true
    kidless:
      maxCandidates: 3
    keys:
      - file: keys/extra.pem
        alg: ES256
        kid: extra
    fetch:
      timeout: 2500ms
      maxBytes: 512KiB
      headers:
        X-Tenant: corp
      bearerTokenFile: /var/run/secrets/tokens/jwks
      caFile: ca.pem
    refresh:
      interval: 1h
      minInterval: 30s
      maxInterval: 6h
      unknownKidCooldown: 10s
      unknownKidWait: 500ms
      maxStale: 12h
      discoveryInterval: 6h
tokens:
  from:
    - header: Authorization
      prefix: "Bearer "
    - header: X-Token
  clockSkew: 30s
  maxBytes: 16KB
  cache:
    enabled: true
    maxEntries: 500
    maxBytes: 2MiB
identity:
  headers:
    X-Auth-Subject: sub
    X-Auth-Scopes: scope
  strip: ["X-Auth-*", X-User]
  forwardToken: false
routes:
  - name: health
    path: /healthz
    methods: [get, HEAD]
    auth: none
  - name: default
    path: /**
    auth: optional
log:
  level: debug
  access: false
`
    const config = parseConfig(text, '/etc/jwt-sidecar/full.yaml', {})
    assert.deepEqual(config.listen, { host: '::1', port: 8443 })
    assert.deepEqual(config.upstream, { url: 'https://app.internal:8443/base', timeout: 90_000, xForwarded: 'replace', drainsBodies: false })
    assert.deepEqual(config.admin, { listen: { host: '127.0.0.1', port: 0 }, maxEventLoopDelay: 2000 })
    assert.deepEqual(config.issuers[0], {
      name: 'corp',
      issuer: 'https://idp.example.com/realms/corp',
      jwksUri: 'https://idp.example.com/realms/corp/protocol/openid-connect/certs',
      audiences: ['orders-api', 'billing'],
      algorithms: ['RS256', 'ES256', 'EdDSA'],
      requiredClaims: ['exp'],
      maxLifetime: undefined,
      typ: undefined,
      kidless: { maxCandidates: 3 }, dpop: { mode: 'off', proofMaxAge: 60_000 },
      allowInsecureHttp: true,
      tenants: undefined,
      discovery: false,
      discoveryUrl: undefined,
      audienceClaim: 'aud',
      // Relative files are relative to the config file's directory.
      keys: [{ file: '/etc/jwt-sidecar/keys/extra.pem', alg: 'ES256', kid: 'extra' }],
      fetch: {
        timeout: 2500, maxBytes: 512 * 1024, headers: { 'X-Tenant': 'corp' },
        bearerTokenFile: '/var/run/secrets/tokens/jwks', caFile: '/etc/jwt-sidecar/ca.pem',
      },
      refresh: {
        interval: 3_600_000, minInterval: 30_000, maxInterval: 21_600_000, unknownKidCooldown: 10_000,
        unknownKidWait: 500, maxStale: 43_200_000, discoveryInterval: 21_600_000,
      },
    })
    assert.deepEqual(config.tokens, {
      from: [
        { kind: 'header', header: 'Authorization', prefix: 'Bearer ' },
        { kind: 'header', header: 'X-Token', prefix: '' },
      ],
      clockSkew: 30_000,
      maxBytes: 16_000,
      cache: { maxEntries: 500, maxBytes: 2 * 2 ** 20 },
      dpopReplayCache: { maxEntries: 100_000 },
    })
    assert.deepEqual(config.identity, {
      headers: { 'X-Auth-Subject': 'sub', 'X-Auth-Scopes': 'scope' },
      strip: ['X-Auth-*', 'X-User'],
      forwardToken: false,
      arrays: 'join',
      maxValueBytes: 4096,
      claimsHeader: undefined,
      bindingHeader: undefined,
      underscoreHeaders: 'drop',
    })
    const open = { issuers: [], require: { scopes: [], claims: {} } }
    assert.deepEqual(config.routes, [
      { name: 'health', path: '/healthz', methods: ['GET', 'HEAD'], auth: 'none', caseSensitive: true, ...open },
      { name: 'default', path: '/**', methods: [], auth: 'optional', caseSensitive: true, ...open },
    ])
    assert.deepEqual(config.log, { level: 'debug', access: false })
  })

  void it('is deeply frozen', () => {
    const config = parseConfig(MINIMAL, 'minimal.yaml', {})
    assertDeepFrozen(config)
    // ESM is strict mode: writing to a frozen object throws instead of being ignored.
    assert.throws(() => {
      ;(config.issuers[0]!.fetch as { timeout: number }).timeout = 1
    }, TypeError)
    assert.throws(() => {
      ;(config.routes as unknown[]).push({})
    }, TypeError)
  })

  void it('accepts YAML anchors, aliases and merge keys', () => {
    const text = `upstream:
  url: http://127.0.0.1:3000
x-defaults: &defaults
  jwksUri: https://idp.example.com/certs
  audiences: [orders-api]
issuers:
  - <<: *defaults
    name: a
    issuer: https://idp.example.com/a
  - <<: *defaults
    name: b
    issuer: https://idp.example.com/b
    audiences: [other]
routes:
  - name: default
    path: /**
`
    // x-defaults is not a setting: the schema rejects it like any unknown key (line 3).
    assert.deepEqual(lines(text), [
      'test.yaml:3 x-defaults: unknown key (expected one of: listen, upstream, admin, shutdown, issuers, tokens, identity, requests, routes, log, tls, clientCertificateHeader)',
    ])
    const anchored = `upstream:
  url: http://127.0.0.1:3000
issuers:
  - &corp
    name: a
    issuer: https://idp.example.com/a
    jwksUri: https://idp.example.com/certs
    audiences: &auds [orders-api]
  - <<: *corp
    name: b
    issuer: https://idp.example.com/b
    audiences: *auds
routes:
  - name: default
    path: /**
`
    const config = parseConfig(anchored, 'test.yaml', {})
    assert.deepEqual(
      config.issuers.map((i) => [i.name, i.issuer, i.jwksUri, i.audiences]),
      [
        ['a', 'https://idp.example.com/a', 'https://idp.example.com/certs', ['orders-api']],
        ['b', 'https://idp.example.com/b', 'https://idp.example.com/certs', ['orders-api']],
      ],
    )
  })

  void it('accepts a plain-http jwksUri on loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '[::1]']) {
      const text = MINIMAL.replace(
        'jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs',
        `jwksUri: http://${host}:8081/certs`,
      )
      assert.equal(parseConfig(text, 'test.yaml', {}).issuers[0]!.jwksUri, `http://${host}:8081/certs`)
    }
  })

  void it('accepts a non-loopback plain-http jwksUri with allowInsecureHttp: true', () => {
    const text = MINIMAL.replace(
      'jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs',
      'jwksUri: http://idp.example.com/certs\n    allowInsecureHttp: true',
    )
    assert.equal(parseConfig(text, 'test.yaml', {}).issuers[0]!.allowInsecureHttp, true)
  })
})

void describe('parseConfig: errors carry file, line and path', () => {
  void it('rejects an unknown key at the key\'s own line, listing the known keys', () => {
    const text = MINIMAL.replace('    audiences: [orders-api]', '    audiences: [orders-api]\n    audience: orders-api')
    const err = configError(text)
    assert.equal(
      err.message,
      'test.yaml:8 issuers[0].audience: unknown key (expected one of: name, issuer, tenants, jwksUri, discovery, discoveryUrl, keys, audiences, audienceClaim, algorithms, requiredClaims, maxLifetime, typ, allowInsecureHttp, kidless, dpop, fetch, refresh, snapshot)',
      'test.yaml:8 issuers[0].audience: unknown key (expected one of: name, issuer, tenants, jwksUri, discovery, discoveryUrl, keys, audiences, audienceClaim, algorithms, requiredClaims, maxLifetime, typ, allowInsecureHttp, kidless, dpop, fetch, refresh, snapshot)',
    )
    assert.deepEqual(err.issues, [
      {
        file: 'test.yaml',
        line: 8,
        path: 'issuers[0].audience',
        message: 'unknown key (expected one of: name, issuer, tenants, jwksUri, discovery, discoveryUrl, keys, audiences, audienceClaim, algorithms, requiredClaims, maxLifetime, typ, allowInsecureHttp, kidless, dpop, fetch, refresh, snapshot)',
      } satisfies ConfigIssue,
    ])
  })

  void it('bounds tokens.cache: whole entries from 1 to 1,000,000, bytes above 0, enabled a boolean; enabled: false turns it off', () => {
    for (const [yaml, message] of [
      ['maxEntries: 1.5', 'tokens.cache.maxEntries: expected a whole number from 1 to 1000000'],
      ['maxEntries: 0', 'tokens.cache.maxEntries: expected a whole number from 1 to 1000000'],
      ['maxEntries: 2000000', 'tokens.cache.maxEntries: expected a whole number from 1 to 1000000'],
      ['maxEntries: "10"', 'tokens.cache.maxEntries: expected a whole number from 1 to 1000000'],
      ['maxBytes: 0B', 'tokens.cache.maxBytes: must be greater than 0B (to turn the cache off, set tokens.cache.enabled: false)'],
      ['enabled: yes', 'tokens.cache.enabled: expected true or false'],
    ]) {
      assert.deepEqual(lines(`${MINIMAL}tokens:\n  cache:\n    ${yaml}\n`).map((l) => l.replace(/^test\.yaml:\d+ /, '')), [message], yaml)
    }
    assert.equal(parseConfig(`${MINIMAL}tokens:\n  cache:\n    enabled: false\n`, 'test.yaml', {}).tokens.cache, undefined)
  })

  void it('bounds tokens.dpopReplayCache.maxEntries to a whole number from 1 to 10,000,000; default 100,000', () => {
    for (const v of ['0', '10000001', '2.5', '"9"']) {
      assert.deepEqual(lines(`${MINIMAL}tokens:\n  dpopReplayCache:\n    maxEntries: ${v}\n`), ['test.yaml:13 tokens.dpopReplayCache.maxEntries: expected a whole number from 1 to 10000000'], v)
    }
    assert.equal(parseConfig(MINIMAL, 'test.yaml', {}).tokens.dpopReplayCache.maxEntries, 100_000)
    assert.equal(parseConfig(`${MINIMAL}tokens:\n  dpopReplayCache:\n    maxEntries: 500000\n`, 'test.yaml', {}).tokens.dpopReplayCache.maxEntries, 500_000)
  })

  void it('bounds issuers[].kidless.maxCandidates to a whole number from 1 to 5 (each is a signature check a forged token costs); default 1', () => {
    const kidless = (v: string) => MINIMAL.replace('    audiences: [orders-api]\n', `    audiences: [orders-api]\n    kidless:\n      maxCandidates: ${v}\n`)
    for (const v of ['0', '6', '2.5', '"2"']) {
      assert.deepEqual(lines(kidless(v)).map((l) => l.replace(/^test\.yaml:\d+ /, '')), ['issuers[0].kidless.maxCandidates: expected a whole number from 1 to 5'], v)
    }
    assert.equal(parseConfig(kidless('5'), 'test.yaml', {}).issuers[0]!.kidless.maxCandidates, 5)
    assert.equal(parseConfig(MINIMAL, 'test.yaml', {}).issuers[0]!.kidless.maxCandidates, 1)
  })

  void it('rejects a duration without a unit, saying units are mandatory', () => {
    assert.deepEqual(lines(`${MINIMAL}tokens:\n  clockSkew: 60\n`), [
      'test.yaml:12 tokens.clockSkew: expected a duration like 30s, 10m or 24h (a bare number has no unit; units are mandatory to avoid confusing milliseconds and seconds: write 60s or 60ms)',
    ])
  })

  void it('rejects a duration with an unknown unit', () => {
    assert.deepEqual(lines(`${MINIMAL}tokens:\n  clockSkew: 1 fortnight\n`), [
      'test.yaml:12 tokens.clockSkew: expected a duration like 30s, 10m or 24h (unknown unit "fortnight"; use ms, s, m, h or d)',
    ])
  })

  void it('rejects a size without a unit', () => {
    assert.deepEqual(lines(`${MINIMAL}tokens:\n  maxBytes: 8192\n`), [
      'test.yaml:12 tokens.maxBytes: expected a size like 512KiB or 1MiB (a bare number has no unit; units are mandatory: write 8192B for bytes, or use KiB or MiB)',
    ])
  })

  void it('rejects a missing issuer list and an empty one', () => {
    const withoutIssuers = `upstream:\n  url: http://127.0.0.1:3000\nroutes:\n  - name: default\n    path: /**\n`
    assert.deepEqual(lines(withoutIssuers), ['test.yaml:1 issuers: required key is missing (expected at least one issuer)'])
    const emptyIssuers = `upstream:\n  url: http://127.0.0.1:3000\nissuers: []\nroutes:\n  - name: default\n    path: /**\n`
    assert.deepEqual(lines(emptyIssuers), ['test.yaml:3 issuers: expected at least one issuer'])
    const nullIssuers = `upstream:\n  url: http://127.0.0.1:3000\nissuers:\nroutes:\n  - name: default\n    path: /**\n`
    assert.deepEqual(lines(nullIssuers), ['test.yaml:3 issuers: expected at least one issuer'])
  })

  void it('rejects a missing required key in an issuer at the issuer\'s line', () => {
    const text = MINIMAL.replace('    audiences: [orders-api]\n', '')
    assert.deepEqual(lines(text), ['test.yaml:4 issuers[0].audiences: required key is missing (expected a non-empty list of strings)'])
  })

  void it('an issuer needs a key source: jwksUri, discovery or static keys, and not both remote kinds', () => {
    const none = MINIMAL.replace('    jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs\n', '')
    assert.deepEqual(lines(none), ['test.yaml:4 issuers[0]: expected a key source: jwksUri, discovery: true, or keys (static files)'])
    const both = MINIMAL.replace('    audiences: [orders-api]', '    audiences: [orders-api]\n    discovery: true')
    assert.deepEqual(lines(both), ['test.yaml:8 issuers[0].discovery: cannot be combined with jwksUri: choose one remote key source'])
    const discovery = none.replace('    audiences: [orders-api]', '    audiences: [orders-api]\n    discovery: true')
    assert.equal(parseConfig(discovery, 'test.yaml', {}).issuers[0]!.discovery, true)
    const staticOnly = none.replace('    audiences: [orders-api]', '    audiences: [orders-api]\n    keys:\n      - {file: /keys/a.pem, alg: RS256}')
    const cfg = parseConfig(staticOnly, 'test.yaml', {})
    assert.equal(cfg.issuers[0]!.jwksUri, undefined)
    assert.deepEqual(cfg.issuers[0]!.keys, [{ file: '/keys/a.pem', alg: 'RS256', kid: undefined }])
  })

  void it('discovery needs an https issuer URL unless loopback', () => {
    const base = MINIMAL.replace('    jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs\n', '    discovery: true\n')
    assert.deepEqual(lines(base.replace('https://idp.example.com/realms/corp', 'http://idp.example.com/realms/corp')), [
      'test.yaml:5 issuers[0].issuer: with discovery: true, https is required unless the host is loopback; set allowInsecureHttp: true to override',
    ])
    assert.doesNotThrow(() => parseConfig(base.replace('https://idp.example.com/realms/corp', 'http://127.0.0.1:8081/realms/corp'), 't.yaml', {}))
  })

  void it('refresh bounds are consistent: minInterval <= interval <= maxInterval <= maxStale', () => {
    const withRefresh = (r: string) => MINIMAL.replace('    audiences: [orders-api]', `    audiences: [orders-api]\n    refresh:\n${r}`)
    assert.deepEqual(lines(withRefresh('      minInterval: 10m\n      maxInterval: 5m')), [
      'test.yaml:9 issuers[0].refresh.minInterval: must not be greater than maxInterval',
    ])
    assert.deepEqual(lines(withRefresh('      interval: 2h')), [
      'test.yaml:9 issuers[0].refresh.interval: must lie between minInterval and maxInterval',
    ])
    assert.deepEqual(lines(withRefresh('      maxStale: 30m')), [
      'test.yaml:9 issuers[0].refresh.maxStale: must be at least maxInterval, or keys would expire between two scheduled refreshes',
    ])
    assert.deepEqual(lines(withRefresh('      minInterval: 500ms')), [
      'test.yaml:9 issuers[0].refresh.minInterval: must be at least 1s; refreshing faster would hammer the identity provider',
    ])
  })

  void it('token sources, route requirements and identity options resolve; their mistakes are reported', () => {
    const text = MINIMAL.replace('routes:\n  - name: default\n    path: /**\n', `tokens:
  from:
    - header: Authorization
      prefix: "Bearer "
    - cookie: session_jwt
    - query: access_token
identity:
  headers: { X-Auth-Roles: realm_access.roles }
  arrays: json
  maxValueBytes: 1KiB
  claimsHeader: X-Auth-Claims
routes:
  - name: admin
    path: /admin/**
    issuers: [corp]
    require:
      scopes: [admin]
      claims: { realm_access.roles: [admin], email_verified: [true] }
  - name: default
    path: /**
`)
    const c = parseConfig(text, 't.yaml', {})
    assert.deepEqual(c.tokens.from, [
      { kind: 'header', header: 'Authorization', prefix: 'Bearer ' },
      { kind: 'cookie', cookie: 'session_jwt' },
      { kind: 'query', query: 'access_token' },
    ])
    assert.deepEqual(c.routes[0], { name: 'admin', path: '/admin/**', methods: [], auth: 'required', caseSensitive: false, issuers: ['corp'], require: { scopes: ['admin'], claims: { 'realm_access.roles': ['admin'], email_verified: [true] } } })
    assert.equal(c.identity.arrays, 'json')
    assert.equal(c.identity.maxValueBytes, 1024)
    assert.equal(c.identity.claimsHeader, 'X-Auth-Claims')
    const bad = text.replace('    - cookie: session_jwt', '    - cookie: session_jwt\n      query: t').replace('issuers: [corp]', 'issuers: [nope]')
    const out = lines(bad)
    assert.ok(out.some((l) => /tokens\.from\[1\]: expected exactly one of header, cookie or query \(found cookie and query\)/.test(l)), out.join('\n'))
    assert.ok(out.some((l) => /routes\[0\]\.issuers\[0\]: "nope" is not a configured issuer/.test(l)), out.join('\n'))
  })

  void it('route requirements need auth: required (optional or none would let a tokenless request bypass them)', () => {
    for (const auth of ['optional', 'none']) {
      const text = MINIMAL.replace('    path: /**\n', `    path: /**\n    auth: ${auth}\n    require: { scopes: [admin] }\n`)
      assert.match(lines(text).join('\n'), new RegExp(`routes\\[0\\]\\.auth: is ${auth}, so `))
    }
  })

  void it('fetch headers must be valid names and single-line values', () => {
    const text = MINIMAL.replace('    audiences: [orders-api]', '    audiences: [orders-api]\n    fetch:\n      headers:\n        "Bad Name": x')
    assert.match(lines(text)[0]!, /^test\.yaml:10 issuers\[0\]\.fetch\.headers\["Bad Name"\]: /)
  })

  void it('uses the x-expected phrase, not ajv\'s English', () => {
    const text = MINIMAL.replace('audiences: [orders-api]', 'audiences: []')
    assert.deepEqual(lines(text), ['test.yaml:7 issuers[0].audiences: expected a non-empty list of strings'])
    const algs = MINIMAL.replace('audiences: [orders-api]', 'audiences: [a]\n    algorithms: [RS256, HS256, RS256]')
    assert.deepEqual(lines(algs), [
      'test.yaml:8 issuers[0].algorithms[1]: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA',
      'test.yaml:8 issuers[0].algorithms[2]: duplicate of item [0] (expected a non-empty list of distinct algorithms)',
    ])
  })

  void it('rejects an empty file as a whole', () => {
    assert.deepEqual(lines(''), [
      'test.yaml (root): expected a map of settings (listen, upstream, admin, shutdown, issuers, tokens, identity, requests, routes, log, tls, clientCertificateHeader)',
    ])
  })

  void it('reports several errors at once, each with its line, top to bottom', () => {
    const text = `listen: 8080
upstream:
  url: http://127.0.0.1:3000
  timeout: 30
issuers:
  - name: Corp
    issuer: https://idp.example.com/realms/corp
    jwksUri: https://idp.example.com/certs
    audiences: [orders-api]
    fetch:
      maxBytes: 1 MiB
routes:
  - name: default
    path: /**
    auth: maybe
log:
  level: verbose
`
    const err = configError(text)
    assert.equal(err.issues.length, 6)
    assert.deepEqual(
      err.issues.map((i) => [i.line, i.path]),
      [
        [1, 'listen'],
        [4, 'upstream.timeout'],
        [6, 'issuers[0].name'],
        [11, 'issuers[0].fetch.maxBytes'],
        [15, 'routes[0].auth'],
        [17, 'log.level'],
      ],
    )
    assert.deepEqual(err.message.split('\n'), [
      'test.yaml:1 listen: expected a listen address like 0.0.0.0:8080 or [::1]:8080 (a bare port is not enough: write 0.0.0.0:8080 for every interface or 127.0.0.1:8080 for loopback only)',
      'test.yaml:4 upstream.timeout: expected a duration like 30s, 10m or 24h (a bare number has no unit; units are mandatory to avoid confusing milliseconds and seconds: write 30s or 30ms)',
      'test.yaml:6 issuers[0].name: expected a name of lower-case letters, digits, _ and - (like corp)',
      'test.yaml:11 issuers[0].fetch.maxBytes: expected a size like 512KiB or 1MiB (remove the space: write 1MiB)',
      'test.yaml:15 routes[0].auth: expected one of required, optional, none, deny',
      'test.yaml:17 log.level: expected one of fatal, error, warn, info, debug, trace, silent',
    ])
  })

  void it('reports YAML syntax errors with their lines and nothing else', () => {
    assert.deepEqual(lines('upstream:\n  url: [http://127.0.0.1:3000\nissuers: 1\n'), [
      'test.yaml:3 (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]',
    ])
    assert.deepEqual(lines('upstream:\n  url: x\n  url: y\nlog: {level: info}\nlog: {}\n'), [
      'test.yaml:3 (yaml): Map keys must be unique',
      'test.yaml:5 (yaml): Map keys must be unique',
    ])
  })

  void it('refuses an alias bomb instead of expanding it', () => {
    const text = `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
`
    assert.deepEqual(lines(text), ['test.yaml (yaml): Excessive alias count indicates a resource exhaustion attack'])
  })

  void it('rejects duplicate keys as a YAML error', () => {
    const text = MINIMAL.replace('    audiences: [orders-api]', '    audiences: [orders-api]\n    audiences: [other]')
    assert.deepEqual(lines(text), ['test.yaml:8 (yaml): Map keys must be unique'])
  })

  void it('rejects a duplicate issuer name and a duplicate iss', () => {
    const text = `${MINIMAL.replace('routes:\n  - name: default\n    path: /**\n', '')}  - name: corp
    issuer: https://idp.example.com/realms/corp
    jwksUri: https://other.example.com/certs
    audiences: [orders-api]
routes:
  - name: default
    path: /**
`
    assert.deepEqual(lines(text), [
      'test.yaml:8 issuers[1].name: duplicate issuer name "corp" (also issuers[0].name)',
      'test.yaml:9 issuers[1].issuer: issuer "https://idp.example.com/realms/corp" is also issuers[0].issuer; tokens with this iss would be ambiguous',
    ])
  })

  void it('rejects a plain-http jwksUri on a non-loopback host', () => {
    const text = MINIMAL.replace(
      'jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs',
      'jwksUri: http://idp.example.com/realms/corp/protocol/openid-connect/certs',
    )
    assert.deepEqual(lines(text), [
      'test.yaml:6 issuers[0].jwksUri: https is required unless the host is loopback (127.0.0.0/8, ::1, localhost); set allowInsecureHttp: true to override',
    ])
    const notHttp = MINIMAL.replace(
      'jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs',
      'jwksUri: file:///etc/jwks.json',
    )
    assert.deepEqual(lines(notHttp), ['test.yaml:6 issuers[0].jwksUri: expected an http:// or https:// URL'])
  })

  void it('checks routes: path shape, methods, names and unreachable rules', () => {
    const text = MINIMAL.replace(
      'routes:\n  - name: default\n    path: /**\n',
      `routes:
  - name: api
    path: /api/**/items
  - name: glob
    path: /api**
  - name: rel
    path: api
  - name: verbs
    path: /x
    methods: [GET, fetch, get]
  - name: default
    path: /**
  - name: default
    path: /late
`,
    )
    assert.deepEqual(lines(text), [
      'test.yaml:10 routes[0].path: ** is only allowed as the whole last segment, like /api/**',
      'test.yaml:12 routes[1].path: ** is only allowed as the whole last segment, like /api/**',
      'test.yaml:14 routes[2].path: must start with /',
      'test.yaml:17 routes[3].methods[1]: "fetch" is not an HTTP method (expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)',
      'test.yaml:17 routes[3].methods[2]: GET is listed twice',
      'test.yaml:20 routes[5].name: duplicate route name "default" (also routes[4].name)',
      'test.yaml:20 routes[5]: unreachable: routes[4] (default) matches all of its requests first (the first matching route wins)',
    ])
  })

  void it('a catch-all limited to some methods does not shadow later routes', () => {
    const text = MINIMAL.replace(
      'routes:\n  - name: default\n    path: /**\n',
      'routes:\n  - name: items\n    path: /api/v*/items/*\n  - name: reads\n    path: /**\n    methods: [GET]\n    auth: optional\n  - name: writes\n    path: /**\n',
    )
    assert.deepEqual(
      parseConfig(text, 'test.yaml', {}).routes.map((r) => [r.name, r.path]),
      [
        ['items', '/api/v*/items/*'],
        ['reads', '/**'],
        ['writes', '/**'],
      ],
    )
    const shadowed = MINIMAL.replace(
      'routes:\n  - name: default\n    path: /**\n',
      'routes:\n  - name: reads\n    path: /**\n    methods: [GET, HEAD]\n  - name: head\n    path: /x\n    methods: [HEAD]\n',
    )
    assert.deepEqual(lines(shadowed), [
      'test.yaml:12 routes[1]: unreachable: routes[0] (reads) matches all of its requests first (the first matching route wins)',
    ])
  })

  void it('checks identity headers and strip patterns against the token sources', () => {
    const text = `${MINIMAL}identity:
  headers:
    X-Auth-Subject: sub
    x-auth-subject: sub
    Host: iss
    "X Bad": sub
    Authorization: sub
  strip: ["X-Auth-*", "Auth*", "bad pattern"]
`
    assert.deepEqual(lines(text), [
      'test.yaml:14 identity.headers.x-auth-subject: "x-auth-subject" is the same header as "X-Auth-Subject" (header names are case-insensitive)',
      'test.yaml:15 identity.headers.Host: "Host" cannot be used: hop-by-hop and framing headers (Connection, Host, Content-Length, Transfer-Encoding, ...) are not forwarded as set',
      'test.yaml:16 identity.headers["X Bad"]: "X Bad" is not a valid HTTP header name (RFC 9110 §5.6.2: letters, digits and !#$%&\'*+-.^_`|~)',
      'test.yaml:17 identity.headers.Authorization: "Authorization" is a token source in tokens.from and would overwrite the token',
      'test.yaml:18 identity.strip[1]: "Auth*" would remove the token header Authorization before it is read',
      'test.yaml:18 identity.strip[2]: "bad pattern" is not a header name or a pattern with * (RFC 9110 §5.6.2)',
    ])
  })

  void it('checks the limits an operator would expect', () => {
    const text = `listen: 0.0.0.0:9000
${MINIMAL.replace('url: http://127.0.0.1:3000', 'url: http://127.0.0.1:3000/?debug=1').replace(
  '    audiences: [orders-api]\n',
  '    audiences: [orders-api]\n    refresh:\n      interval: 500ms\n',
)}admin:
  listen: 127.0.0.1:9000
tokens:
  clockSkew: 6m
  from: []
`
    assert.deepEqual(lines(text), [
      'test.yaml:3 upstream.url: must not have a query or fragment: request paths and queries are appended to it',
      'test.yaml:10 issuers[0].refresh.interval: must be at least 1s; refreshing faster would hammer the identity provider',
      'test.yaml:15 admin.listen: port 9000 is already used by listen',
      'test.yaml:17 tokens.clockSkew: must be at most 5m; a larger skew keeps expired tokens valid and is almost certainly a mistake',
      'test.yaml:18 tokens.from: expected a non-empty list of token sources',
    ])
  })
})

void describe('parseConfig: ${VAR} interpolation', () => {
  void it('reports an unset variable at its line, and nothing else about that value', () => {
    const text = MINIMAL.replace('url: http://127.0.0.1:3000', 'url: ${UPSTREAM_URL}')
    assert.deepEqual(lines(text), [
      'test.yaml:2 upstream.url: environment variable UPSTREAM_URL is not set (write ${UPSTREAM_URL:-value} to give a default)',
    ])
  })

  void it('reports malformed references', () => {
    const text = MINIMAL.replace('url: http://127.0.0.1:3000', 'url: http://${1X}:3000').replace(
      'audiences: [orders-api]',
      'audiences: ["${AUD"]',
    )
    assert.deepEqual(lines(text), [
      'test.yaml:2 upstream.url: malformed variable reference "${1X}" (expected ${NAME} or ${NAME:-default}; write $${ for a literal ${)',
      'test.yaml:7 issuers[0].audiences[0]: unterminated variable reference "${AUD" (expected ${NAME} or ${NAME:-default}; write $${ for a literal ${)',
    ])
  })

  void it('uses ${VAR:-default} when the variable is unset or empty, and the variable otherwise', () => {
    const text = MINIMAL.replace('url: http://127.0.0.1:3000', 'url: ${UPSTREAM_URL:-http://127.0.0.1:3000}')
    assert.equal(parseConfig(text, 'test.yaml', {}).upstream.url, 'http://127.0.0.1:3000')
    assert.equal(parseConfig(text, 'test.yaml', { UPSTREAM_URL: '' }).upstream.url, 'http://127.0.0.1:3000')
    assert.equal(parseConfig(text, 'test.yaml', { UPSTREAM_URL: 'http://app:80' }).upstream.url, 'http://app:80')
  })

  void it('unescapes $${ to a literal ${ and leaves other $ alone', () => {
    // A replacer function: in a replacement string, String#replace itself treats $$ as $.
    const text = MINIMAL.replace('audiences: [orders-api]', () => 'audiences: ["$${NOT_A_VAR}", "a$b", "$$x"]')
    assert.deepEqual(parseConfig(text, 'test.yaml', {}).issuers[0]!.audiences, ['${NOT_A_VAR}', 'a$b', '$$x'])
  })

  void it('turns a plain scalar that interpolates to true/false into a boolean', () => {
    const text = MINIMAL.replace(
      'jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs',
      'jwksUri: http://idp.example.com/certs\n    allowInsecureHttp: ${INSECURE:-false}',
    )
    assert.equal(parseConfig(text, 'test.yaml', { INSECURE: 'true' }).issuers[0]!.allowInsecureHttp, true)
    assert.deepEqual(lines(text), [
      'test.yaml:6 issuers[0].jwksUri: https is required unless the host is loopback (127.0.0.0/8, ::1, localhost); set allowInsecureHttp: true to override',
    ])
  })

  void it('never interpolates keys', () => {
    assert.deepEqual(lines(`${MINIMAL}\${X}: 1\n`, { X: 'log' }), [
      'test.yaml:11 ["${X}"]: unknown key (expected one of: listen, upstream, admin, shutdown, issuers, tokens, identity, requests, routes, log, tls, clientCertificateHeader)',
    ])
  })

  void it('interpolateString reports every problem in one value', () => {
    assert.deepEqual(interpolateString('${A}-${B:-b}-${C}', { A: 'a' }), {
      ok: false,
      messages: [
        'environment variable C is not set (write ${C:-value} to give a default)',
      ],
    })
    assert.deepEqual(interpolateString('${A}${B:-}${C:-x:-y}', { A: '', B: 'ignored' }), { ok: true, value: 'ignoredx:-y' })
    assert.equal(interpolateString('${A:-${B}}', {}).ok, false)
    assert.equal(interpolateString('${}', {}).ok, false)
    assert.equal(interpolateString('${X-y}', {}).ok, false)
    assert.equal(interpolateString('${X:?y}', {}).ok, false)
  })
})

void describe('loadConfig and resolveConfigPath', () => {
  void it('loads the shipped config/sidecar.yaml', () => {
    const config = loadConfig(EXAMPLE, {})
    assert.equal(config.source, EXAMPLE)
    assert.equal(config.upstream.url, 'http://127.0.0.1:3000')
    assert.deepEqual(config.issuers.map((i) => i.name), ['corp'])
    assert.equal(config.issuers[0]!.issuer, 'https://idp.example.com/realms/corp')
    assert.deepEqual(config.issuers[0]!.algorithms, ['RS256', 'ES256'])
    assert.deepEqual(config.routes.map((r) => [r.name, r.auth]), [
      ['health', 'none'],
      ['default', 'required'],
    ])
    assert.equal(config.log.level, 'info')
    assertDeepFrozen(config)
    assert.equal(loadConfig(EXAMPLE, { UPSTREAM_URL: 'http://app:8000' }).upstream.url, 'http://app:8000')
  })

  void it('reports an unreadable file as one issue', () => {
    const err = (() => {
      try {
        loadConfig('config/does-not-exist.yaml', {})
      } catch (e) {
        return e
      }
      return undefined
    })()
    assert.ok(err instanceof ConfigError)
    assert.equal(err.message, 'config/does-not-exist.yaml: cannot read the file (ENOENT)')
    assert.deepEqual(err.issues, [
      { file: 'config/does-not-exist.yaml', line: undefined, path: '', message: 'cannot read the file (ENOENT)' },
    ])
  })

  void it('resolveConfigPath: --config, then JWT_SIDECAR_CONFIG, then config/sidecar.yaml', () => {
    const env = { JWT_SIDECAR_CONFIG: '/etc/from-env.yaml' }
    assert.equal(resolveConfigPath('cli.yaml', env), 'cli.yaml')
    assert.equal(resolveConfigPath(undefined, env), '/etc/from-env.yaml')
    assert.equal(resolveConfigPath(undefined, {}), 'config/sidecar.yaml')
    assert.equal(resolveConfigPath('', { JWT_SIDECAR_CONFIG: '' }), 'config/sidecar.yaml')
  })
})

void describe('units', () => {
  void it('parseDuration: single and compound units', () => {
    const cases: [string, number][] = [
      ['500ms', 500],
      ['0s', 0],
      ['30s', 30_000],
      ['10m', 600_000],
      ['24h', 86_400_000],
      ['1d', 86_400_000],
      ['1h30m', 5_400_000],
      ['1m30s500ms', 90_500],
      ['1.5s', 1500],
      ['1.1s', 1100],
      ['0.25h', 900_000],
    ]
    for (const [input, ms] of cases) assert.equal(parseDuration(input), ms, input)
  })

  void it('parseDuration: errors say what to write instead', () => {
    const reasons: [string, string][] = [
      ['60', 'a bare number has no unit; units are mandatory to avoid confusing milliseconds and seconds: write 60s or 60ms'],
      ['1 fortnight', 'unknown unit "fortnight"; use ms, s, m, h or d'],
      ['30 s', 'remove the spaces: write 30s'],
      ['1h 30m', 'remove the spaces: write 1h30m'],
      ['-5s', 'a duration cannot be negative'],
      ['30m1h', 'in a compound duration the units must go from largest to smallest, each at most once, like 1h30m'],
      ['1h1h', 'in a compound duration the units must go from largest to smallest, each at most once, like 1h30m'],
      ['1h30', '30 has no unit; units are mandatory: write 30s or 30ms'],
      ['0.5ms', 'durations are whole milliseconds; a finer fraction cannot be represented'],
      ['25d', 'longer than about 24.8 days (2^31-1 ms), the longest timer Node.js supports'],
      ['30S', 'unknown unit "S"; use ms, s, m, h or d'],
      ['', 'expected a number followed by a unit (ms, s, m, h or d), like 30s'],
      ['ms', 'expected a number followed by a unit (ms, s, m, h or d), like 30s or 1h30m'],
    ]
    for (const [input, reason] of reasons) {
      assert.throws(() => parseDuration(input), (err: unknown) => {
        assert.ok(err instanceof UnitError)
        assert.equal(err.reason, reason, input)
        assert.equal(err.message, `invalid duration ${JSON.stringify(input)}: ${reason}`)
        return true
      })
    }
    assert.equal(parseDuration(`${MAX_DURATION_MS}ms`), MAX_DURATION_MS)
  })

  void it('parseSize: binary and decimal units', () => {
    const cases: [string, number][] = [
      ['100B', 100],
      ['0B', 0],
      ['1KB', 1000],
      ['1MB', 1_000_000],
      ['1GB', 1_000_000_000],
      ['8KiB', 8192],
      ['512KiB', 524_288],
      ['1MiB', 1_048_576],
      ['1GiB', 1_073_741_824],
      ['1.5KiB', 1536],
    ]
    for (const [input, bytes] of cases) assert.equal(parseSize(input), bytes, input)
  })

  void it('parseSize: errors', () => {
    const reasons: [string, string][] = [
      ['1024', 'a bare number has no unit; units are mandatory: write 1024B for bytes, or use KiB or MiB'],
      ['1kb', 'unknown unit "kb"; use B, KB, MB, GB, KiB, MiB or GiB (units are case-sensitive)'],
      ['1K', 'unknown unit "K"; use B, KB, MB, GB, KiB, MiB or GiB (units are case-sensitive)'],
      ['1 MiB', 'remove the space: write 1MiB'],
      ['0.5B', 'a size must be a whole number of bytes'],
      ['-1B', 'a size cannot be negative'],
      ['MiB', 'expected a number followed by a unit (B, KB, MB, GB, KiB, MiB or GiB), like 512KiB'],
    ]
    for (const [input, reason] of reasons) {
      assert.throws(() => parseSize(input), (err: unknown) => err instanceof UnitError && err.reason === reason, input)
    }
  })

  void it('parseListen: IPv4, IPv6 in brackets, host names, port 0', () => {
    assert.deepEqual(parseListen('0.0.0.0:8080'), { host: '0.0.0.0', port: 8080 })
    assert.deepEqual(parseListen('[::1]:8080'), { host: '::1', port: 8080 })
    assert.deepEqual(parseListen('[::]:65535'), { host: '::', port: 65535 })
    assert.deepEqual(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 })
    assert.deepEqual(parseListen('localhost:80'), { host: 'localhost', port: 80 })
  })

  void it('parseListen: errors', () => {
    const reasons: [string, string][] = [
      ['8080', 'a bare port is not enough: write 0.0.0.0:8080 for every interface or 127.0.0.1:8080 for loopback only'],
      ['::1:8080', 'an IPv6 address must be in brackets, like [::1]:8080'],
      ['[::1]', 'missing the port after the address, like [::1]:8080'],
      ['[::1:8080', 'missing "]" after the IPv6 address, like [::1]:8080'],
      ['[1.2.3.4]:80', '"1.2.3.4" is not an IPv6 address'],
      ['1.2.3.4:65536', 'the port must be a number from 0 to 65535, got "65536"'],
      ['1.2.3.4:', 'the port must be a number from 0 to 65535, got ""'],
      ['1.2.3.4:-1', 'the port must be a number from 0 to 65535, got "-1"'],
      ['300.1.1.1:80', '"300.1.1.1" is not an IPv4 address or host name'],
      ['bad_host:80', '"bad_host" is not an IPv4 address or host name'],
      [':80', 'missing the host; use 0.0.0.0 for every interface, like 0.0.0.0:8080'],
      ['localhost', 'missing the port, like localhost:8080'],
    ]
    for (const [input, reason] of reasons) {
      assert.throws(
        () => parseListen(input),
        (err: unknown) => {
          assert.ok(err instanceof UnitError)
          assert.equal(err.reason, reason, input)
          return true
        },
      )
    }
  })
})

it('identity.headers: a claim, or {claim, arrays} with its own array form; arrays: space (issue #12 §7)', () => {
  const text = `${MINIMAL}identity:
  arrays: space
  headers:
    X-Auth-Groups: { claim: groups, arrays: join }
    X-Auth-Scopes: scp
    X-Auth-Roles: { claim: realm_access.roles }
`
  const c = parseConfig(text, 'test.yaml', {})
  assert.equal(c.identity.arrays, 'space')
  assert.deepEqual(c.identity.headers, { 'X-Auth-Groups': { claim: 'groups', arrays: 'join' }, 'X-Auth-Scopes': 'scp', 'X-Auth-Roles': { claim: 'realm_access.roles' } })
  assertDeepFrozen(c)
  for (const bad of ['{ claim: scp, arrays: spaces }', '{ arrays: space }', '{ claim: scp, sep: " " }', '{ claim: "" }', '[scp]']) {
    const out = lines(`${MINIMAL}identity:\n  headers:\n    X-Auth-Scopes: ${bad}\n`)
    assert.deepEqual(out.slice(0, 1), ['test.yaml:13 identity.headers.X-Auth-Scopes: expected a claim name like sub, a dotted path like realm_access.roles, or {claim: scp, arrays: space}'], bad)
  }
})
