/**
 * LICENSE is the file package.json's `license` names (issue #14 §6): the Apache License 2.0 as
 * the ASF publishes it (https://www.apache.org/licenses/LICENSE-2.0.txt), unmodified, appendix
 * included. The digest is that file's; an edited copy fails.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

test('package.json names Apache-2.0 and LICENSE is its unmodified text', () => {
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { license?: string }
  assert.equal(pkg.license, 'Apache-2.0')
  const text = readFileSync(`${root}LICENSE`)
  assert.match(text.toString('utf8'), /^\s+Apache License\n\s+Version 2\.0, January 2004\n/)
  assert.match(text.toString('utf8'), /APPENDIX: How to apply the Apache License to your work\./)
  assert.equal(createHash('sha256').update(text).digest('hex'), 'cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30')
})
