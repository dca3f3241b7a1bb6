/**
 * A real OpenID Provider on loopback for end-to-end tests: npm's certified `oidc-provider`
 * (v9, koa + jose) issuing client_credentials JWT access tokens (RFC 9068, `typ: at+jwt`) with
 * keys generated at test time. Unlike `startTestIssuer` (issuer.ts), nothing here is hand-made:
 * discovery, the JWKS and the tokens are what a production OP serves.
 *
 * oidc-provider fixes its keystore when a Provider is constructed, so `rotate()` and
 * `withdraw()` build a new Provider with the new key list and swap it in behind the same
 * node:http server (same port, same issuer). The wrapper counts JWKS requests and can add a
 * `Cache-Control` header to them; by default the provider's own headers are left alone (it sends
 * no Cache-Control on its JWKS).
 *
 * Noise: the helper gives the provider its own adapter, TTL and features so it prints none of its
 * development notices. On Node < 22 oidc-provider v9 prints one "Unsupported runtime" warning
 * when it is first imported; that is left visible on purpose (Node 20 is not supported upstream).
 * Server errors inside the provider (it turns them into 500 `server_error` responses) are
 * printed with console.error so that they are never silent.
 *
 * @example
 * ```ts
 * const op = await startTestOp({ algs: ['RS256', 'ES256'] })
 * t.after(() => op.close())
 * const token = await op.token('ES256', 'api:read')
 * const kid = await op.rotate('ES256')      // new tokens are signed by `kid`
 * await op.stop()                           // connections refused
 * await op.resume()                         // same port, same keys
 * ```
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'

export type OpAlg = 'RS256' | 'ES256'

export interface TestOp {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  readonly issuer: string
  /** As advertised by discovery (`<issuer>/jwks`). */
  readonly jwksUri: string
  /** The resource server audience every token carries (`aud`), `urn:jwt-sidecar:test`. */
  readonly audience: string
  /**
   * A real client_credentials access token (JWT, `typ: at+jwt`) from the token endpoint, signed
   * with the current key of `alg` (default: the first of `opts.algs`). `scope` defaults to
   * `api:read`; space-separated values are all granted.
   */
  token(alg?: OpAlg, scope?: string): Promise<string>
  /** Publish a NEW signing key for `alg` and sign new tokens with it; the previous keys stay published. Returns the new kid. */
  rotate(alg: OpAlg): Promise<string>
  /**
   * Stop publishing the key with this kid (tokens already signed by it remain in the caller's
   * hands). If it was the current key of its alg, the newest remaining key of that alg signs;
   * with none left, `token(alg)` rejects.
   */
  withdraw(kid: string): Promise<void>
  /** Currently published kids, newest first. */
  kids(): readonly string[]
  /** Requests served on the JWKS path so far (to count fetches). */
  jwksFetches(): number
  /** Simulate an outage: close the listening socket and open connections (connections refused). */
  stop(): Promise<void>
  /** Bring it back on the SAME port with the same keys. */
  resume(): Promise<void>
  /** Stop for good. Idempotent. */
  close(): Promise<void>
}

export interface TestOpOptions {
  /** One initial key per alg, published and signing. Default `['RS256']`. */
  readonly algs?: readonly OpAlg[]
  /** Add `Cache-Control: max-age=<n>` to JWKS responses. Default: the provider's headers (none). */
  readonly cacheMaxAgeSeconds?: number
}

// ---------------------------------------------------------------------------------------------
// The part of oidc-provider's API used here (it ships no type declarations)
// ---------------------------------------------------------------------------------------------

/** The koa context the provider hands to configuration functions (only what is read here). */
interface OpContext {
  /** A request header, '' when absent (koa's `ctx.get`). */
  get(field: string): string
  readonly oidc: { readonly params?: Readonly<Record<string, unknown>> }
}

interface ResourceServerInfo {
  readonly scope: string
  readonly audience: string
  readonly accessTokenFormat: 'jwt'
  readonly jwt: { readonly sign: { readonly alg: OpAlg; readonly kid: string } }
}

interface ClientMetadata {
  readonly client_id: string
  readonly client_secret: string
  readonly grant_types: readonly string[]
  readonly response_types: readonly string[]
  readonly token_endpoint_auth_method: 'client_secret_basic'
  /** Unused (no ID tokens here), but the provider rejects the client when its default, RS256,
   * has no published key. */
  readonly id_token_signed_response_alg?: OpAlg
}

type AdapterPayload = Readonly<Record<string, unknown>>

/** oidc-provider's storage adapter contract (one instance per model name). */
interface OpAdapter {
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>
  find(id: string): Promise<AdapterPayload | undefined>
  findByUserCode(userCode: string): Promise<AdapterPayload | undefined>
  findByUid(uid: string): Promise<AdapterPayload | undefined>
  consume(id: string): Promise<void>
  destroy(id: string): Promise<void>
  revokeByGrantId(grantId: string): Promise<void>
}

interface ProviderConfiguration {
  readonly adapter: new (name: string) => OpAdapter
  readonly clients: readonly ClientMetadata[]
  readonly jwks: { readonly keys: readonly JWK[] }
  readonly routes: { readonly jwks: string; readonly token: string }
  readonly ttl: { readonly ClientCredentials: number }
  readonly features: {
    readonly devInteractions: { readonly enabled: false }
    readonly clientCredentials: { readonly enabled: true }
    readonly resourceIndicators: {
      readonly enabled: true
      defaultResource(ctx: OpContext, client: unknown, oneOf?: string | readonly string[]): Promise<string | readonly string[]>
      getResourceServerInfo(ctx: OpContext, resourceIndicator: string, client: unknown): Promise<ResourceServerInfo>
    }
  }
}

interface OidcProvider {
  /** A node:http request listener for this provider (koa's `app.callback()`). */
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown
  on(event: 'server_error', listener: (ctx: unknown, err: unknown) => void): unknown
}

interface OidcProviderModule {
  readonly Provider: new (issuer: string, configuration: ProviderConfiguration) => OidcProvider
}

// A non-literal specifier: TypeScript would otherwise reject the untyped module (TS7016).
const OIDC_PROVIDER: string = 'oidc-provider'
let loaded: Promise<OidcProviderModule> | undefined
function loadOidcProvider(): Promise<OidcProviderModule> {
  loaded ??= import(OIDC_PROVIDER) as Promise<OidcProviderModule>
  return loaded
}

/** In-memory storage. JWT access tokens are never stored; this only replaces the provider's
 * default adapter, which prints a development warning for every Provider instance. */
function memoryAdapter(): new (name: string) => OpAdapter {
  const store = new Map<string, { payload: AdapterPayload; expiresAt: number }>()
  return class MemoryAdapter implements OpAdapter {
    readonly #name: string
    constructor(name: string) {
      this.#name = name
    }
    #key(id: string): string {
      return `${this.#name}:${id}`
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      store.set(this.#key(id), { payload, expiresAt: expiresIn === undefined ? Infinity : Date.now() + expiresIn * 1000 })
    }
    async find(id: string): Promise<AdapterPayload | undefined> {
      const entry = store.get(this.#key(id))
      return entry !== undefined && entry.expiresAt > Date.now() ? entry.payload : undefined
    }
    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return [...store.values()].find((e) => e.payload['userCode'] === userCode)?.payload
    }
    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return [...store.values()].find((e) => e.payload['uid'] === uid)?.payload
    }
    async consume(id: string): Promise<void> {
      const entry = store.get(this.#key(id))
      if (entry !== undefined) entry.payload = { ...entry.payload, consumed: Math.floor(Date.now() / 1000) }
    }
    async destroy(id: string): Promise<void> {
      store.delete(this.#key(id))
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [k, e] of store) if (e.payload['grantId'] === grantId) store.delete(k)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The test OP
// ---------------------------------------------------------------------------------------------

const AUDIENCE = 'urn:jwt-sidecar:test'
const JWKS_PATH = '/jwks'
const TOKEN_PATH = '/token'
/** Request header the helper's token() sends to pick the signing alg (read by getResourceServerInfo). */
const ALG_HEADER = 'x-test-op-alg'
const DEFAULT_SCOPE = 'api:read'

interface OpKey {
  readonly kid: string
  readonly alg: OpAlg
  /** Private JWK with kid, alg and use: 'sig'. */
  readonly jwk: JWK
  published: boolean
}

export async function startTestOp(opts: TestOpOptions = {}): Promise<TestOp> {
  const algs: readonly OpAlg[] = opts.algs ?? ['RS256']
  const first = algs[0]
  if (first === undefined) throw new Error('test OP: algs must not be empty')
  const defaultAlg: OpAlg = first
  const { Provider } = await loadOidcProvider()

  // Newest first: the JWKS order, and the first key of an alg is the one that signs.
  const keys: OpKey[] = []
  const serial: Record<OpAlg, number> = { RS256: 0, ES256: 0 }
  async function newKey(alg: OpAlg): Promise<OpKey> {
    const kid = `${alg.toLowerCase()}-${++serial[alg]}`
    const { privateKey } = await generateKeyPair(alg, { extractable: true })
    const key: OpKey = { kid, alg, jwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' }, published: true }
    keys.unshift(key)
    return key
  }
  for (const alg of new Set(algs)) await newKey(alg)
  const published = (): OpKey[] => keys.filter((k) => k.published)
  const signingKid = (alg: OpAlg): string | undefined => published().find((k) => k.alg === alg)?.kid

  const clientId = 'jwt-sidecar-e2e'
  const clientSecret = randomBytes(24).toString('base64url')
  const Adapter = memoryAdapter()

  // Bind the server first: the issuer URL needs its port.
  let provider: ((req: IncomingMessage, res: ServerResponse) => unknown) | undefined
  let jwksCount = 0
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path === JWKS_PATH) {
      jwksCount++
      if (opts.cacheMaxAgeSeconds !== undefined) res.setHeader('cache-control', `max-age=${opts.cacheMaxAgeSeconds}`)
    }
    if (provider === undefined) {
      res.writeHead(503).end()
      return
    }
    void provider(req, res)
  })
  server.keepAliveTimeout = 1_000
  await listen(server, 0)
  const { port } = server.address() as AddressInfo
  const issuer = `http://127.0.0.1:${port}`

  function build(): void {
    const idTokenAlg = published()[0]?.alg
    const op = new Provider(issuer, {
      adapter: Adapter,
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          grant_types: ['client_credentials'],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
          ...(idTokenAlg === undefined ? {} : { id_token_signed_response_alg: idTokenAlg }),
        },
      ],
      jwks: { keys: published().map((k) => ({ ...k.jwk })) },
      routes: { jwks: JWKS_PATH, token: TOKEN_PATH },
      ttl: { ClientCredentials: 300 },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => AUDIENCE,
          async getResourceServerInfo(ctx, resourceIndicator) {
            if (resourceIndicator !== AUDIENCE) throw new Error(`test OP: unknown resource ${resourceIndicator}`)
            const requested = ctx.get(ALG_HEADER)
            const alg: OpAlg = requested === 'ES256' || requested === 'RS256' ? requested : defaultAlg
            const kid = signingKid(alg)
            if (kid === undefined) throw new Error(`test OP: no published ${alg} key`)
            const scope = ctx.oidc.params?.['scope']
            return {
              // Grant whatever was asked for: the RS scope filters the requested scope.
              scope: typeof scope === 'string' && scope !== '' ? scope : DEFAULT_SCOPE,
              audience: AUDIENCE,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg, kid } },
            }
          },
        },
      },
    })
    op.on('server_error', (_ctx, err) => console.error('test OP: server_error', err))
    provider = op.callback()
  }
  build()

  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
  const jwksUri = discovery['jwks_uri']
  const tokenEndpoint = discovery['token_endpoint']
  if (typeof jwksUri !== 'string' || typeof tokenEndpoint !== 'string') {
    await closeServer(server)
    throw new Error('test OP: discovery lacks jwks_uri or token_endpoint')
  }

  let closed = false
  return {
    issuer,
    jwksUri,
    audience: AUDIENCE,
    async token(alg = defaultAlg, scope = DEFAULT_SCOPE) {
      if (signingKid(alg) === undefined) throw new Error(`test OP: no published ${alg} key`)
      const res = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          [ALG_HEADER]: alg,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope }).toString(),
      })
      const body = (await res.json()) as Record<string, unknown>
      const token = body['access_token']
      if (!res.ok || typeof token !== 'string') throw new Error(`test OP: token endpoint answered ${res.status} ${JSON.stringify(body)}`)
      return token
    },
    async rotate(alg) {
      const key = await newKey(alg)
      build()
      return key.kid
    },
    async withdraw(kid) {
      const key = keys.find((k) => k.kid === kid)
      if (key === undefined) throw new Error(`test OP: no key ${kid}`)
      key.published = false
      build()
    },
    kids: () => published().map((k) => k.kid),
    jwksFetches: () => jwksCount,
    stop: () => closeServer(server),
    async resume() {
      if (closed) throw new Error('test OP: closed')
      if (!server.listening) await listen(server, port)
    },
    async close() {
      closed = true
      await closeServer(server)
    },
  }
}

function listen(server: ReturnType<typeof createServer>, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function closeServer(server: ReturnType<typeof createServer>): Promise<void> {
  if (!server.listening) return Promise.resolve()
  return new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
