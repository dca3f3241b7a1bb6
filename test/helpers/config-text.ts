/**
 * Config text for the config tests: a minimal valid file, and what an operator reads when a
 * file is refused (the ConfigError's lines).
 */
import assert from 'node:assert/strict'
import { ConfigError, parseConfig } from '../../src/config/load.ts'

/** Lines 1..10 of a valid config; tests append to it, so line numbers count from here. */
export const MINIMAL = `upstream:
  url: http://127.0.0.1:3000
issuers:
  - name: corp
    issuer: https://idp.example.com/realms/corp
    jwksUri: https://idp.example.com/realms/corp/protocol/openid-connect/certs
    audiences: [orders-api]
routes:
  - name: default
    path: /**
`

/** The ConfigError `text` (as test.yaml) is refused with; fails when it is accepted. */
export function configError(text: string, env: Record<string, string> = {}): ConfigError {
  try {
    parseConfig(text, 'test.yaml', env)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return err
  }
  assert.fail('expected the config to be rejected')
}

/** The formatted lines of the error, which is what an operator sees. */
export function configLines(text: string, env: Record<string, string> = {}): string[] {
  return configError(text, env).message.split('\n')
}
