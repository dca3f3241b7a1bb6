/**
 * Starts the real sidecar (createApp: fastify proxy + admin + key store) on loopback port 0
 * from YAML text, capturing its JSON log lines for assertions.
 */
import { Writable } from 'node:stream'
import { createApp } from '../../src/app.ts'
import type { App } from '../../src/app.ts'
import { parseConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/observe/log.ts'
import { waitFor } from '../../src/wait-for.ts'

export interface TestSidecar {
  readonly app: App
  readonly proxyUrl: string
  readonly adminUrl: string
  /** Every log line written so far, parsed. */
  logs(): Array<Record<string, unknown>>
  /** The raw log text (to assert that no secret ever appears in it). */
  logText(): string
  close(): Promise<void>
}

export interface SidecarOptions {
  /** Wait until /readyz would say ready (every issuer has keys). Default true. */
  readonly waitReady?: boolean
  readonly env?: Record<string, string>
  readonly now?: () => number
}

export async function startSidecar(yaml: string, opts: SidecarOptions = {}): Promise<TestSidecar> {
  const config = parseConfig(yaml, 'test.yaml', { ...opts.env })
  let text = ''
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString('utf8')
      cb()
    },
  })
  const log = createLogger({ level: 'debug' }, sink)
  const app = createApp(config, opts.now === undefined ? { log } : { log, now: opts.now })
  const { proxyUrl, adminUrl } = await app.start()
  if (opts.waitReady !== false) {
    // Every issuer's first load attempt; if one failed, its retries may still bring keys.
    await app.keys.settled()
    await waitFor(() => app.keys.ready(), { what: () => `keys ready: ${JSON.stringify(app.keys.status())}`, timeoutMs: 5000, intervalMs: 5 })
  }
  return {
    app,
    proxyUrl,
    adminUrl,
    logText: () => text,
    logs: () => text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>),
    close: () => app.close(),
  }
}

/** A config for one or more issuers in front of one upstream, with the README's default shape. */
export function sidecarYaml(o: {
  upstream: string
  issuers: Array<{ name: string; issuer: string; jwksUri: string; audiences?: string[]; algorithms?: string[] }>
  extra?: string
  routes?: string
  identity?: string
  upstreamTimeout?: string
  xForwarded?: 'append' | 'replace'
}): string {
  const issuers = o.issuers.map((i) => `
  - name: ${i.name}
    issuer: ${JSON.stringify(i.issuer)}
    jwksUri: ${JSON.stringify(i.jwksUri)}
    audiences: ${JSON.stringify(i.audiences ?? ['test-api'])}
    algorithms: ${JSON.stringify(i.algorithms ?? ['RS256'])}
    refresh:
      unknownKidCooldown: 30s
      unknownKidWait: 500ms`).join('')
  return `
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
upstream:
  url: ${o.upstream}
  timeout: ${o.upstreamTimeout ?? '5s'}
  xForwarded: ${o.xForwarded ?? 'append'}
issuers:${issuers}
tokens:
  from:
    - header: Authorization
      prefix: "Bearer "
  clockSkew: 30s
identity:
${o.identity ?? `  headers:
    X-Auth-Subject: sub
    X-Auth-Issuer: iss
    X-Auth-Scopes: scope
  strip: ["X-Auth-*"]
  forwardToken: true`}
routes:
${o.routes ?? `  - name: health
    path: /healthz
    auth: none
  - name: public
    path: /public/**
    auth: optional
  - name: default
    path: /api/**
    auth: required`}
log:
  level: debug
  access: true
${o.extra ?? ''}`
}
