/**
 * Real upstream apps of the kinds jwt-sidecar protects (issue #9), each started by the test on
 * 127.0.0.1 and each reading requests the way its framework really does: express 4 and 5 (with
 * method-override), koa with @koa/router, Python's http.server (HTTP/1.1 keep-alive, handlers
 * that never read bodies), Flask under wsgiref (identity from the WSGI environ), and nginx.
 *
 * Every app has an **admin handler** for `/admin` and below (routed the framework's default
 * way) and an **echo handler** for everything else; both answer JSON
 * `{handler, method, path, subject, scopes, headers}` where `subject`/`scopes` are the
 * X-Auth-Subject / X-Auth-Scopes values read the framework's idiomatic way. `handled()` lists
 * every request a handler ran, so a test can prove the admin handler never ran.
 *
 * Missing fixtures fail loudly (no silent skip): `.ci/run` installs nginx and python3-flask.
 *
 * @example
 * const app = await startApp('flask-wsgiref')
 * t.after(() => app.close())
 * assert.equal(app.handled().filter((h) => h.handler === 'admin').length, 0)
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { connect, createServer as createNetServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import express from 'express'
import express4 from 'express4'
import Koa from 'koa'
import Router from '@koa/router'
import methodOverride from 'method-override'
import { waitFor } from '../../src/wait-for.ts'

export const APP_KINDS = ['express4', 'express5', 'koa', 'python-http-server', 'flask-wsgiref', 'nginx'] as const
export type AppKind = (typeof APP_KINDS)[number]

/** One request a handler of the app ran. */
export interface Handled {
  readonly handler: 'admin' | 'echo'
  readonly method: string
  readonly path: string
  /** X-Auth-Subject as the app read it; null when absent. */
  readonly subject: string | null
}

export interface RealApp {
  readonly kind: AppKind
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  handled(): Handled[]
  close(): Promise<void>
}

const FIXTURES = fileURLToPath(new URL('../fixtures/apps/', import.meta.url))
/** Debian's interpreter, where Debian's python3-flask lives (a pyenv `python3` on PATH may lack it). */
const PYTHON = '/usr/bin/python3'
const NGINX = '/usr/sbin/nginx'
const INSTALL = 'install them with: apt-get install -y nginx-light python3-flask (.ci/run does)'

export async function startApp(kind: AppKind): Promise<RealApp> {
  switch (kind) {
    case 'express4':
    case 'express5':
      return startNode(kind, expressHandler(kind))
    case 'koa':
      return startNode(kind, koaHandler())
    case 'python-http-server':
      return startPython(kind, 'http_server_app.py')
    case 'flask-wsgiref':
      return startPython(kind, 'flask_wsgiref_app.py')
    case 'nginx':
      return startNginx()
  }
}

// ---------------------------------------------------------------------------------------------
// Node frameworks, in process
// ---------------------------------------------------------------------------------------------

type Recorder = (h: Handled) => void
type NodeHandler = (record: Recorder) => (req: IncomingMessage, res: ServerResponse) => void

function reply(record: Recorder, handler: 'admin' | 'echo', method: string, path: string, get: (h: string) => string | undefined, headers: IncomingMessage['headers']): string {
  const subject = get('x-auth-subject') ?? null
  record({ handler, method, path, subject })
  return JSON.stringify({ handler, method, path, subject, scopes: get('x-auth-scopes') ?? null, headers })
}

/** express's default router: case-insensitive, non-strict; method-override with its default getter. */
function expressHandler(kind: 'express4' | 'express5'): NodeHandler {
  return (record) => {
    const app = kind === 'express4' ? express4() : express()
    app.use(methodOverride())
    const handle = (handler: 'admin' | 'echo') => (req: express.Request, res: express.Response): void => {
      res.type('application/json').send(reply(record, handler, req.method, req.path, (h) => req.get(h), req.headers))
    }
    // express 5 (path-to-regexp 8) names its wildcards; express 4 takes a bare `*`.
    app.all(kind === 'express4' ? ['/admin', '/admin/*'] : ['/admin', '/admin/{*rest}'], handle('admin'))
    app.all(kind === 'express4' ? '*' : '/{*rest}', handle('echo'))
    return app
  }
}

/** koa with @koa/router's defaults (case-insensitive, non-strict); everything else falls to echo. */
function koaHandler(): NodeHandler {
  return (record) => {
    const app = new Koa()
    const router = new Router()
    const admin = (ctx: Koa.Context): void => {
      ctx.type = 'application/json'
      ctx.body = reply(record, 'admin', ctx.method, ctx.path, (h) => ctx.get(h) || undefined, ctx.headers)
    }
    router.all('/admin', admin)
    router.all('/admin/{*rest}', admin)
    app.use(router.routes())
    app.use((ctx) => {
      ctx.type = 'application/json'
      ctx.body = reply(record, 'echo', ctx.method, ctx.path, (h) => ctx.get(h) || undefined, ctx.headers)
    })
    const callback = app.callback()
    // koa's callback returns its promise; the http server ignores it (koa handles its own errors).
    return (req, res) => {
      void callback(req, res)
    }
  }
}

async function startNode(kind: AppKind, make: NodeHandler): Promise<RealApp> {
  const handled: Handled[] = []
  const server: Server = createServer(make((h) => handled.push(h)))
  server.keepAliveTimeout = 1_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    handled: () => [...handled],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

// ---------------------------------------------------------------------------------------------
// Python apps and nginx, as child processes
// ---------------------------------------------------------------------------------------------

function requireFixture(ok: boolean, what: string): void {
  if (!ok) throw new Error(`${what} is missing: ${INSTALL}`)
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 2_000).unref()
  })
}

async function startPython(kind: AppKind, script: string): Promise<RealApp> {
  requireFixture(existsSync(PYTHON), PYTHON)
  const child = spawn(PYTHON, ['-u', join(FIXTURES, script)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const handled: Handled[] = []
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  let buffered = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start within 10 s: ${stderr}`)), 10_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      const hint = /No module named 'flask'/.test(stderr) ? ` (python3-flask is missing: ${INSTALL})` : ''
      reject(new Error(`${kind} exited with ${code}${hint}: ${stderr}`))
    })
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffered += d
      let nl: number
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        const m = /^LISTENING (\d+)$/.exec(line)
        if (m !== null) {
          clearTimeout(timer)
          resolve(Number(m[1]))
        } else if (line.startsWith('{')) {
          handled.push(JSON.parse(line) as Handled)
        }
      }
    })
  })
  return { kind, url: `http://127.0.0.1:${port}`, handled: () => [...handled], close: () => stopChild(child) }
}

/** A port free right now (nginx needs it in its config before it binds). */
export async function freePort(): Promise<number> {
  const probe = createNetServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

async function startNginx(): Promise<RealApp> {
  requireFixture(existsSync(NGINX), NGINX)
  const prefix = mkdtempSync(join(tmpdir(), 'jwt-sidecar-nginx-'))
  const port = await freePort()
  const conf = join(prefix, 'nginx.conf')
  writeFileSync(conf, readFileSync(join(FIXTURES, 'nginx.conf.tmpl'), 'utf8').replaceAll('@PREFIX@', prefix).replaceAll('@PORT@', String(port)))
  const log = join(prefix, 'handled.log')
  writeFileSync(log, '')
  // -e: the start-up error log, before the config's own is opened (the default is under /var/log).
  const child = spawn(NGINX, ['-p', prefix, '-c', conf, '-e', join(prefix, 'startup.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr} ${readIfExists(join(prefix, 'error.log'))}`)
    return canConnect(port)
  }, { what: () => `nginx to listen on ${port}: ${stderr}`, timeoutMs: 10_000 })
  return {
    kind: 'nginx',
    url: `http://127.0.0.1:${port}`,
    handled: () =>
      readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
        const h = JSON.parse(l) as { handler: 'admin' | 'echo'; method: string; path: string; subject: string }
        return { ...h, subject: h.subject === '' ? null : h.subject }
      }),
    close: async () => {
      await stopChild(child)
      rmSync(prefix, { recursive: true, force: true })
    },
  }
}

function readIfExists(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : ''
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => {
      c.destroy()
      resolve(true)
    })
    c.on('error', () => resolve(false))
  })
}
