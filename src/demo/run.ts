/**
 * `jwt-sidecar demo`: an embedded issuer, an echo upstream and the real sidecar wired by
 * config/demo.yaml, then three curl commands that show 200 / 401 / 401.
 */
import { join } from 'node:path'
import { createApp } from '../app.ts'
import type { App } from '../app.ts'
import { loadConfig } from '../config/load.ts'
import { packageRoot } from '../package-root.ts'
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

export async function runDemo(configPath: string, env: NodeJS.ProcessEnv, print: (line: string) => void): Promise<DemoHandle> {
  const issuer = await startDemoIssuer()
  const upstream = await startEchoUpstream()
  const config = loadConfig(configPath, {
    ...env,
    DEMO_ISSUER: issuer.issuer,
    DEMO_JWKS_URI: issuer.jwksUri,
    DEMO_UPSTREAM_URL: upstream.url,
  })
  const app = createApp(config)
  const { proxyUrl, adminUrl } = await app.start()
  // Print the commands only once they work: until the JWKS is loaded the sidecar says 503.
  // The issuer runs in this process, so a first fetch that fails will not do better later.
  await app.keys.settled()
  if (!app.keys.ready()) {
    await app.close()
    throw new Error(`the demo issuer's keys did not load: ${JSON.stringify(app.keys.status())}`)
  }
  const audience = config.issuers[0]?.audiences[0] ?? 'demo-api'
  const token = await issuer.sign({ sub: 'alice', scope: 'orders:read orders:write', name: 'Alice Example' }, audience, 3600)
  const q = (s: string): string => `'${s}'`
  print('jwt-sidecar demo is running:')
  print(`  proxy     ${proxyUrl}  ->  echo upstream ${upstream.url}`)
  print(`  admin     ${adminUrl}/metrics  ${adminUrl}/readyz`)
  print(`  issuer    ${issuer.issuer}  (JWKS at ${issuer.jwksUri})`)
  print('')
  print('1) Valid token -> 200; the upstream echoes the verified X-Auth-* headers (the spoofed one is stripped):')
  print(`curl -s -H ${q(`Authorization: Bearer ${token}`)} -H 'X-Auth-Subject: spoofed-admin' ${proxyUrl}/orders/42`)
  print('')
  print('2) No token -> 401 with a Bearer challenge:')
  print(`curl -si ${proxyUrl}/orders/42`)
  print('')
  print('3) Tampered token (payload says sub=admin, signature kept) -> 401 bad_signature:')
  print(`curl -si -H ${q(`Authorization: Bearer ${tamper(token)}`)} ${proxyUrl}/orders/42`)
  print('')
  print('The token is valid for one hour. Stop the demo with Ctrl-C.')
  return {
    app,
    async stop() {
      await app.close()
      await Promise.all([upstream.close(), issuer.close()])
    },
  }
}
