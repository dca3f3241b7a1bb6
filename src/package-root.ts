/**
 * The installed package's root (where package.json and config/ live). The same code runs
 * from src/ (tests, via tsx) and from dist/src/ (the shipped build), so walk up to it.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function find(): { root: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'jwt-sidecar') return { root: dir, version: pkg.version ?? '0.0.0' }
    }
    const up = dirname(dir)
    if (up === dir) return { root: process.cwd(), version: '0.0.0' }
    dir = up
  }
}

const found = find()
export const PACKAGE_ROOT = found.root
export const VERSION = found.version
