/**
 * docs/providers.md: every ```yaml block is a config fragment that the sidecar accepts. Each
 * block's top-level keys (issuers, identity, routes…) replace those of a minimal config, and
 * the result goes through parseConfig, the path `check-config` and the sidecar take.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { ConfigError, parseConfig } from '../../src/config/load.ts'

const DOC = readFileSync(fileURLToPath(new URL('../../docs/providers.md', import.meta.url)), 'utf8')
const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')

const BASE = {
  upstream: { url: 'http://127.0.0.1:3000' },
  issuers: [{ name: 'base', issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', audiences: ['api'] }],
  routes: [{ name: 'default', path: '/**' }],
}

/** The ```yaml blocks, each with the line it starts on (for the failure message). */
function yamlBlocks(text: string): { line: number; body: string }[] {
  const out: { line: number; body: string }[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```yaml') continue
    const end = lines.indexOf('```', i + 1)
    assert.ok(end > i, `docs/providers.md:${i + 1}: unclosed yaml block`)
    out.push({ line: i + 1, body: lines.slice(i + 1, end).join('\n') })
    i = end
  }
  return out
}

const blocks = yamlBlocks(DOC)

test('docs/providers.md has a yaml block for each provider the issue names', () => {
  for (const heading of ['Keycloak', 'Microsoft Entra ID', 'Azure AD B2C', 'Auth0', 'Okta', 'AWS Cognito', 'Google', 'Kubernetes service-account tokens', 'GitHub Actions OIDC', 'Dex']) {
    assert.ok(DOC.includes(`\n## ${heading}\n`), `no "## ${heading}" section`)
  }
  assert.ok(blocks.length >= 12, `only ${blocks.length} yaml blocks`)
  assert.ok(README.includes('(docs/providers.md)'), 'README.md does not link docs/providers.md')
})

for (const { line, body } of blocks) {
  test(`docs/providers.md:${line}: the block is a valid config fragment`, () => {
    const fragment: unknown = parse(body)
    assert.ok(typeof fragment === 'object' && fragment !== null && !Array.isArray(fragment), 'a map of top-level config keys')
    const text = stringify({ ...BASE, ...fragment })
    try {
      parseConfig(text, `docs/providers.md:${line}`, {})
    } catch (err) {
      if (err instanceof ConfigError) assert.fail(`docs/providers.md:${line}: the config is refused:\n${err.message}\n--- as loaded ---\n${text}`)
      throw err
    }
  })
}
