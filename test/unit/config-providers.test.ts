/**
 * Issue #12's issuer settings in the config: audienceClaim, the {tenantid} issuer template
 * with its tenants, and discoveryUrl. Each mistake is an error at its own line and path.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, parseConfig } from '../../src/config/load.ts'

const ENTRA = 'https://login.microsoftonline.com/{tenantid}/v2.0'
const T1 = '72f988bf-86f1-41af-91ab-2d7cd011db47'
const T2 = 'f8cdef31-a31e-4b4a-93e4-5f571e91255a'

/** An issuers list (from line 3), with the rest fixed. */
const config = (issuers: string): string => `upstream: { url: "http://127.0.0.1:3000" }
issuers:
${issuers}
routes:
  - { name: default, path: /** }
`

function errors(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml', {})
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.message.split('\n')
  }
  return assert.fail('expected the config to be rejected')
}

test('audienceClaim defaults to aud, and takes another claim name', () => {
  const plain = parseConfig(config(`  - { name: a, issuer: "https://a.example", jwksUri: "https://a.example/jwks", audiences: [x] }`), 'test.yaml', {})
  assert.equal(plain.issuers[0]?.audienceClaim, 'aud')
  assert.equal(plain.issuers[0]?.tenants, undefined)
  assert.equal(plain.issuers[0]?.discoveryUrl, undefined)
  const cognito = parseConfig(config(`  - { name: c, issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12", jwksUri: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12/.well-known/jwks.json", audiences: [1example23456789], audienceClaim: client_id }`), 'test.yaml', {})
  assert.equal(cognito.issuers[0]?.audienceClaim, 'client_id')
  assert.deepEqual(errors(config(`  - { name: c, issuer: "https://c.example", jwksUri: "https://c.example/jwks", audiences: [x], audienceClaim: "" }`)), [
    'test.yaml:3 issuers[0].audienceClaim: expected a claim name like aud or client_id',
  ])
})

test('a {tenantid} issuer with tenants and discoveryUrl is accepted; the template stays as written', () => {
  const c = parseConfig(config(`  - name: entra
    issuer: "${ENTRA}"
    tenants: ["${T1}", "${T2}"]
    discovery: true
    discoveryUrl: https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration
    audiences: [api://orders]`), 'test.yaml', {})
  const i = c.issuers[0]!
  assert.equal(i.issuer, ENTRA)
  assert.deepEqual(i.tenants, [T1, T2])
  assert.equal(i.discoveryUrl, 'https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration')
})

test('check-config refuses a {tenantid} issuer no token could match, and tenants without a template', () => {
  assert.deepEqual(errors(config(`  - { name: e, issuer: "${ENTRA}", jwksUri: "https://login.microsoftonline.com/common/discovery/v2.0/keys", audiences: [x] }`)), [
    'test.yaml:3 issuers[0].issuer: holds {tenantid}: list the accepted tenant ids in tenants: [...], or no token can match it',
  ])
  assert.deepEqual(errors(config(`  - { name: e, issuer: "https://login.microsoftonline.com/${T1}/v2.0", tenants: ["${T1}"], jwksUri: "https://login.microsoftonline.com/common/discovery/v2.0/keys", audiences: [x] }`)), [
    'test.yaml:3 issuers[0].tenants: needs an issuer with the {tenantid} placeholder, like https://login.microsoftonline.com/{tenantid}/v2.0',
  ])
  assert.deepEqual(errors(config(`  - { name: e, issuer: "https://login.microsoftonline.com/{tenant}/v2.0", jwksUri: "https://x.example/keys", audiences: [x] }`)), [
    'test.yaml:3 issuers[0].issuer: {tenant} is not a placeholder jwt-sidecar knows; the only one is {tenantid} (with tenants: [...])',
  ])
  assert.deepEqual(errors(config(`  - { name: e, issuer: "https://x.example/{tenantid}/{tenantid}", tenants: [a], jwksUri: "https://x.example/keys", audiences: [x] }`)), [
    'test.yaml:3 issuers[0].issuer: {tenantid} may appear only once',
  ])
  // A tenant id goes into a URL path segment: nothing that changes its shape.
  assert.deepEqual(errors(config(`  - { name: e, issuer: "${ENTRA}", tenants: ["a/b"], jwksUri: "https://x.example/keys", audiences: [x] }`)), [
    'test.yaml:3 issuers[0].tenants[0]: expected a tenant id (letters, digits, . _ -)',
  ])
})

test('a tenant whose iss another issuer already has is ambiguous', () => {
  assert.deepEqual(errors(config(`  - { name: single, issuer: "https://login.microsoftonline.com/${T1}/v2.0", jwksUri: "https://login.microsoftonline.com/${T1}/discovery/v2.0/keys", audiences: [x] }
  - { name: multi, issuer: "${ENTRA}", tenants: ["${T2}", "${T1}"], jwksUri: "https://login.microsoftonline.com/common/discovery/v2.0/keys", audiences: [x] }`)), [
    `test.yaml:4 issuers[1].issuer: issuer "https://login.microsoftonline.com/${T1}/v2.0" is also issuers[0].issuer; tokens with this iss would be ambiguous`,
  ])
})

test('discoveryUrl: turns discovery on, not with jwksUri, an http(s) URL, https unless loopback; a {tenantid} issuer with discovery needs it', () => {
  assert.deepEqual(errors(config(`  - { name: b, issuer: "https://b.example/t/v2.0/", jwksUri: "https://b.example/keys", discoveryUrl: "https://b.example/p/v2.0/.well-known/openid-configuration", audiences: [x] }`)), [
    'test.yaml:3 issuers[0].discoveryUrl: cannot be combined with jwksUri: choose one remote key source',
  ])
  // discoveryUrl alone turns discovery on.
  const alone = parseConfig(config(`  - { name: b, issuer: "https://b.example/t/v2.0/", discoveryUrl: "https://b.example/p/v2.0/.well-known/openid-configuration", audiences: [x] }`), 'test.yaml', {})
  assert.equal(alone.issuers[0]?.discovery, true)
  assert.deepEqual(errors(config(`  - { name: b, issuer: "https://b.example/t/v2.0/", discovery: true, discoveryUrl: "http://b.example/p/.well-known/openid-configuration", audiences: [x] }`)), [
    'test.yaml:3 issuers[0].discoveryUrl: https is required unless the host is loopback (127.0.0.0/8, ::1, localhost); set allowInsecureHttp: true to override',
  ])
  assert.deepEqual(errors(config(`  - { name: b, issuer: "https://b.example/t/v2.0/", discovery: true, discoveryUrl: "ftp://b.example/x", audiences: [x] }`)), [
    'test.yaml:3 issuers[0].discoveryUrl: expected an http:// or https:// URL',
  ])
  assert.deepEqual(errors(config(`  - { name: e, issuer: "${ENTRA}", tenants: ["${T1}"], discovery: true, audiences: [x] }`)), [
    "test.yaml:3 issuers[0].discoveryUrl: with discovery: true and a {tenantid} issuer, expected the discovery document's URL (e.g. https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration)",
  ])
  // With discoveryUrl, the issuer itself need not be a URL the document lives under.
  const ok = parseConfig(config(`  - { name: b, issuer: "https://b.example/t/v2.0/", discovery: true, discoveryUrl: "http://127.0.0.1:8080/p/.well-known/openid-configuration", audiences: [x] }`), 'test.yaml', {})
  assert.equal(ok.issuers[0]?.discoveryUrl, 'http://127.0.0.1:8080/p/.well-known/openid-configuration')
})
