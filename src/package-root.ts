/**
 * The installed package's root (where package.json and config/ live) and its version. The
 * same code runs from src/ (tests, via tsx) and from dist/src/ (the shipped build), so walk up
 * from this file to the package.json named jwt-sidecar. Read once, on first use, never at
 * import time.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let found: { readonly root: string; readonly version: string } | undefined

function find(): { readonly root: string; readonly version: string } {
  if (found !== undefined) return found
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown }
      if (pkg.name === 'jwt-sidecar' && typeof pkg.version === 'string') return (found = { root: dir, version: pkg.version })
    }
    const up = dirname(dir)
    if (up === dir) return (found = { root: process.cwd(), version: '0.0.0' })
    dir = up
  }
}

export const packageRoot = (): string => find().root
export const packageVersion = (): string => find().version
