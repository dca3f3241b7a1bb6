/**
 * `jwt-sidecar demo`: an embedded issuer, an echo upstream and the real sidecar wired by
 * config/demo.yaml, then curl commands that show 200 / 401 / 401 and the keys the sidecar
 * holds; the sidecar's own log (its access lines included, config/demo.yaml) runs below them.
 *
 * A failure to start leaves nothing behind: the issuer, the echo app and the sidecar are
 * closed, so the command exits (a busy port used to leave the process hanging), and a busy
 * port's message names DEMO_PORT / DEMO_ADMIN_PORT.
 */
import { join } from 'node:path'
import { createApp } from '../app.ts'
import type { App } from '../app.ts'
import { loadConfig } from '../config/load.ts'
import { packageRoot } from '../package-root.ts'
import { unreadableFile } from '../cli/preflight.ts'
import { StartupError } from '../startup-error.ts'
import { startEchoUpstream } from './echo.ts'
import { startDemoIssuer } from './issuer.ts'

export const demoConfigPath = (): string => join(packageRoot(), 'config', 'demo.yaml')

export interface DemoHandle {
  readonly app: App
  stop(): Promise<void>
}

/** Tampering: swap the payload for one claiming to be someone else, keep the signature. */
function tamper(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
  claims.sub = 'admin'
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
}

/** The hint for a busy demo port: the demo's own knobs, not another sidecar's. */
const BUSY_PORT_HINT = 'is another jwt-sidecar (or demo) running? DEMO_PORT=0 DEMO_ADMIN_PORT=0 jwt-sidecar demo picks free ports'

export async function runDemo(configPath: string, env: NodeJS.ProcessEnv, print: (line: string) => void): Promise<DemoHandle> {
  const issuer = await startDemoIssuer()
  const upstream = await startEchoUpstream()
  let app: App | undefined
  try {
    const config = loadConfig(configPath, {
      ...env,
      DEMO_ISSUER: issuer.issuer,
      DEMO_JWKS_URI: issuer.jwksUri,
      DEMO_UPSTREAM_URL: upstream.url,
    })
    const unreadable = unreadableFile(config)
    if (unreadable !== undefined) throw unreadable
    app = createApp(config)
    const { proxyUrl, adminUrl } = await app.start()
    // Print the commands only once they work: until the JWKS is loaded the sidecar says 503.
    // The issuer runs in this process, so a first fetch that fails will not do better later.
    await app.keys.settled()
    if (!app.keys.ready()) throw new Error(`the demo issuer's keys did not load: ${JSON.stringify(app.keys.status())}`)
    const audience = config.issuers[0]?.audiences[0] ?? 'demo-api'
    const token = await issuer.sign({ sub: 'alice', scope: 'orders:read orders:write', name: 'Alice Example' }, audience, 3600)
    banner(print, { proxyUrl, adminUrl, upstreamUrl: upstream.url, issuer: issuer.issuer, jwksUri: issuer.jwksUri, token })
    const running = app
    return {
      app: running,
      async stop() {
        await running.close()
        await Promise.all([upstream.close(), issuer.close()])
      },
    }
  } catch (err) {
    await app?.close()
    await Promise.all([upstream.close(), issuer.close()])
    throw err instanceof StartupError && err.code === 'EADDRINUSE' ? err.withHint(BUSY_PORT_HINT) : err
  }
}

interface BannerFacts {
  readonly proxyUrl: string
  readonly adminUrl: string
  readonly upstreamUrl: string
  readonly issuer: string
  readonly jwksUri: string
  readonly token: string
}

function banner(print: (line: string) => void, f: BannerFacts): void {
  const q = (s: string): string => `'${s}'`
  print('jwt-sidecar demo is running:')
  print(`  proxy     ${f.proxyUrl}  ->  echo upstream ${f.upstreamUrl}`)
  print(`  admin     ${f.adminUrl}/  (lists /healthz, /readyz, /keys, /metrics)`)
  print(`  issuer    ${f.issuer}  (JWKS at ${f.jwksUri})`)
  print('')
  print('1) Valid token -> 200; the upstream echoes the verified X-Auth-* headers (the spoofed one is stripped):')
  print(`curl -s -H ${q(`Authorization: Bearer ${f.token}`)} -H 'X-Auth-Subject: spoofed-admin' ${f.proxyUrl}/orders/42`)
  print('')
  print('2) No token -> 401 with a Bearer challenge:')
  print(`curl -si ${f.proxyUrl}/orders/42`)
  print('')
  print('3) Tampered token (payload says sub=admin, signature kept) -> 401 bad_signature:')
  print(`curl -si -H ${q(`Authorization: Bearer ${tamper(f.token)}`)} ${f.proxyUrl}/orders/42`)
  print('')
  print("4) The issuer's keys as the sidecar holds them (the admin port, never proxied):")
  print(`curl -s ${f.adminUrl}/keys`)
  print('')
  print('The token is valid for one hour. Each request above gets an access line (http.access) below,')
  print('with its status, reason, duration and X-Request-Id. Stop the demo with Ctrl-C.')
  print('')
}
