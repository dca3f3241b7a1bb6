/**
 * What `jwt-sidecar check-config` prints for a valid file: one line per warning, in the shape
 * of an error line (`file:line path: warning: …`), then the one-line summary.
 */
import type { SidecarConfig } from './types.ts'

function formatAddress(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

/**
 * @example
 * process.stdout.write(checkReport(loadConfig(path)))
 */
export function checkReport(c: SidecarConfig): string {
  const warnings = c.warnings.map((w) => `${w.line === undefined ? w.file : `${w.file}:${w.line}`} ${w.path}: warning: ${w.message}\n`).join('')
  const issuers = c.issuers.map((i) => i.name).join(', ')
  const count = c.warnings.length === 0 ? '' : `, ${c.warnings.length} warning(s)`
  return `${warnings}${c.source}: OK: ${c.issuers.length} issuer(s) (${issuers}), ${c.routes.length} route(s), listen ${formatAddress(c.listen)} -> ${c.upstream.url}, admin ${formatAddress(c.admin.listen)}${count}\n`
}
