/**
 * Real loopback servers for tests: a token issuer that serves its JWKS over HTTP and signs
 * tokens with keys generated at test time, and an echo upstream. Nothing here knows about the
 * sidecar; anything that speaks HTTP and JOSE can be tested with it.
 *
 * Every server listens on 127.0.0.1:0 (a free port) and must be closed by the test
 * (`t.after(() => issuer.close())`); `close()` drops keep-alive connections and pending delays,
 * so a test file never hangs on an open handle.
 *
 * @example
 * ```ts
 * const idp = await startTestIssuer({ alg: 'ES256', kids: ['a', 'b'] })
 * t.after(() => idp.close())
 * const token = await idp.sign({ sub: 'alice' }, { kid: 'b' })
 * idp.setStatus(503)            // the JWKS endpoint now fails
 * assert.equal(idp.fetchCount(), 1)
 * ```
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { CryptoKey, JWK } from 'jose'

/** JWS algorithms the helper can generate keys for (the same list the sidecar supports). */
export type SigningAlg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA'

// ---------------------------------------------------------------------------------------------
// Generic loopback server
// ---------------------------------------------------------------------------------------------

export interface TestServer {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string
  readonly server: Server
  /** Drop every connection (keep-alive included) and stop listening. Idempotent. */
  close(): Promise<void>
}

/**
 * Start a node:http server on 127.0.0.1:0 with the given handler. The building block of the
 * helpers below, exported for tests that need a custom endpoint (a body that never ends, a
 * server that hangs up).
 */
export async function startHttpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const server = createServer(handler)
  // Keep-alive sockets from a client pool would otherwise hold close() open.
  server.keepAliveTimeout = 1_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  let closing: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Test issuer
// ---------------------------------------------------------------------------------------------

export interface TestIssuerOptions {
  /** Algorithm of the initial keys. Default `RS256`. */
  readonly alg?: SigningAlg
  /** kids of the initial keys, all published. Default `['k1']`. */
  readonly kids?: readonly string[]
  /** The `iss` the tokens carry. Default: the server's base URL. */
  readonly issuer?: string
  /**
   * Opt-in HTTP validators for `/jwks`: a 200 carries `ETag` (a hash of the body) and
   * `Last-Modified` (when that body was first served), and a request whose `If-None-Match`
   * matches the current ETag gets a bodiless `304` (still counted in `fetchCount`, and in
   * `notModifiedCount`). Default false: no validators, never a 304.
   */
  readonly conditional?: boolean
}

export interface SignOptions {
  /**
   * The `kid` header. `null` omits it. Default: the signing key's kid. A kid that names no
   * key of this issuer is put in the header as-is and the token is signed with the first key
   * (handy for "unknown kid" tests).
   */
  readonly kid?: string | null
  /** kid of the key that signs (published or not). Default: `kid` if it names a key, else the first key. */
  readonly key?: string
  /** The JWS `alg`. Default: the signing key's algorithm. jose signs only with the alg a key was generated for (a WebCrypto key is bound to one algorithm: an RS256 key cannot sign PS256). */
  readonly alg?: string
  /** Extra or overriding protected header members (e.g. `{ typ: 'at+jwt' }`, `{ crit: [...] }`). */
  readonly header?: Readonly<Record<string, unknown>>
  /** Seconds from now until `exp`. Default 300. Ignored when `claims` has an `exp` member. */
  readonly expiresIn?: number
}

export interface TestKey {
  readonly kid: string
  readonly alg: SigningAlg
  /** The public JWK as served (kid, alg, use: sig, plus any `jwk` extras). */
  readonly jwk: JWK
  readonly privateKey: CryptoKey
  readonly published: boolean
}

export interface AddKeyOptions {
  /** false: keep the key for signing but do not serve it (a "rogue" or not-yet-published key). Default true. */
  readonly publish?: boolean
  /** Members merged into the served JWK, e.g. `{ use: 'enc' }` or `{ alg: undefined }` to drop alg. */
  readonly jwk?: Readonly<Record<string, unknown>>
}

export interface RecordedRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

export interface TestIssuer {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string
  /** `<url>/jwks`. */
  readonly jwksUri: string
  /** The `iss` string of signed tokens (default: `url`). `<url>/.well-known/openid-configuration` serves it with `jwks_uri`. */
  readonly issuer: string
  /** JWKS requests served (or failed) so far. */
  fetchCount(): number
  /** The last JWKS request (method, url, headers), to check what a client sent. */
  lastRequest(): RecordedRequest | undefined
  /** JWKS requests answered with 304 so far (only with `conditional: true`); included in `fetchCount`. */
  notModifiedCount(): number
  /** Discovery-document requests (`/.well-known/openid-configuration`) served so far. */
  discoveryCount(): number
  /** Serve this raw body (status 200) as the discovery document instead of `{issuer, jwks_uri}`. `undefined` restores. */
  setDiscoveryBody(raw: string | undefined): void
  /** Make the discovery document answer with this status. `200` restores. */
  setDiscoveryStatus(code: number): void
  /** The Location a 3xx from `/jwks` carries. `undefined` restores the default, `<url>/elsewhere/jwks`. */
  setLocation(url: string | undefined): void
  /**
   * Sign a JWT. Fills `iss` (this issuer), `aud: 'test-api'`, `iat: now`, `exp: now + 300`
   * unless `claims` has that member; a member set to `undefined` is left out of the token
   * (`{ exp: undefined }` makes a token without exp).
   */
  sign(claims?: Readonly<Record<string, unknown>>, opts?: SignOptions): Promise<string>
  /** Generate a key (default alg: the issuer's) and, unless `publish: false`, serve it. */
  addKey(kid: string, alg?: SigningAlg, opts?: AddKeyOptions): Promise<TestKey>
  /** Stop serving a key. It can still sign (`sign({}, { kid })`), as a rotated-out key would have. */
  removeKey(kid: string): void
  /** Every key, published or not. */
  keys(): readonly TestKey[]
  /** The JWKS document currently served (ignoring setBody). */
  jwks(): { keys: JWK[] }
  /** Make `/jwks` answer with this status (3xx adds a Location header). `200` restores normal service. */
  setStatus(code: number): void
  /** Delay every `/jwks` response by `ms` before its headers. `0` restores. */
  setDelay(ms: number): void
  /** Serve this raw body at `/jwks` instead of the JWKS (status still from setStatus). `undefined` restores. */
  setBody(raw: string | undefined): void
  /** Extra response headers for `/jwks` (e.g. Cache-Control, ETag). Replaces the previous extras. */
  setHeaders(headers: Readonly<Record<string, string>>): void
  close(): Promise<void>
}

interface MutableKey {
  kid: string
  alg: SigningAlg
  jwk: JWK
  privateKey: CryptoKey
  published: boolean
}

/**
 * Start a token issuer with a JWKS endpoint on a loopback port.
 *
 * @example
 * ```ts
 * const idp = await startTestIssuer()
 * t.after(() => idp.close())
 * await idp.addKey('k2')              // rotate in
 * idp.removeKey('k1')                 // rotate out
 * const token = await idp.sign({ sub: 'bob' }, { kid: 'k2', expiresIn: 60 })
 * ```
 */
export async function startTestIssuer(opts: TestIssuerOptions = {}): Promise<TestIssuer> {
  const defaultAlg = opts.alg ?? 'RS256'
  const keys = new Map<string, MutableKey>()
  let count = 0
  let last: RecordedRequest | undefined
  let status = 200
  let delay = 0
  let rawBody: string | undefined
  let extraHeaders: Readonly<Record<string, string>> = {}
  const pending = new Set<NodeJS.Timeout>()
  let notModified = 0
  let discoveries = 0
  let discoveryBody: string | undefined
  let discoveryStatus = 200
  let location: string | undefined
  // conditional: the ETag last served, and the HTTP-date it was first served at.
  let servedEtag: string | undefined
  let servedSince = new Date().toUTCString()

  const jwks = (): { keys: JWK[] } => ({ keys: [...keys.values()].filter((k) => k.published).map((k) => ({ ...k.jwk })) })

  const srv = await startHttpServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path === '/.well-known/openid-configuration') {
      discoveries++
      if (discoveryStatus !== 200) send(res, discoveryStatus, JSON.stringify({ error: `status ${discoveryStatus}` }))
      else send(res, 200, discoveryBody ?? JSON.stringify({ issuer, jwks_uri: jwksUri }))
      return
    }
    if (path !== '/jwks') {
      send(res, 404, JSON.stringify({ error: 'not_found' }))
      return
    }
    count++
    last = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }
    const respond = (): void => {
      if (res.destroyed) return
      const headers: Record<string, string> = { ...extraHeaders }
      if (status >= 300 && status < 400) headers['location'] = location ?? `${srv.url}/elsewhere/jwks`
      const body = rawBody ?? (status === 200 ? JSON.stringify(jwks()) : JSON.stringify({ error: `status ${status}` }))
      if (opts.conditional === true && status === 200) {
        const etag = `"${createHash('sha256').update(body).digest('base64url')}"`
        if (etag !== servedEtag) {
          servedEtag = etag
          servedSince = new Date().toUTCString()
        }
        const validators = { etag, 'last-modified': servedSince }
        if (etagMatches(req.headers['if-none-match'], etag)) {
          notModified++
          // RFC 9110 §15.4.5: a 304 repeats the validators and caching headers a 200 would carry.
          res.writeHead(304, { ...validators, ...extraHeaders })
          res.end()
          return
        }
        send(res, status, body, { ...validators, ...headers })
        return
      }
      send(res, status, body, headers)
    }
    if (delay <= 0) {
      respond()
      return
    }
    const t = setTimeout(() => {
      pending.delete(t)
      respond()
    }, delay)
    pending.add(t)
  })

  const url = srv.url
  const jwksUri = `${url}/jwks`
  const issuer = opts.issuer ?? url

  async function addKey(kid: string, alg: SigningAlg = defaultAlg, o: AddKeyOptions = {}): Promise<TestKey> {
    if (keys.has(kid)) throw new Error(`test issuer: kid ${kid} already exists`)
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig', ...o.jwk }
    for (const [k, v] of Object.entries(jwk)) if (v === undefined) delete (jwk as Record<string, unknown>)[k]
    const key: MutableKey = { kid, alg, jwk, privateKey, published: o.publish ?? true }
    keys.set(kid, key)
    return snapshot(key)
  }

  for (const kid of opts.kids ?? ['k1']) await addKey(kid)

  return {
    url,
    jwksUri,
    issuer,
    fetchCount: () => count,
    lastRequest: () => last,
    notModifiedCount: () => notModified,
    discoveryCount: () => discoveries,
    setDiscoveryBody(raw) {
      discoveryBody = raw
    },
    setDiscoveryStatus(code) {
      discoveryStatus = code
    },
    setLocation(url) {
      location = url
    },
    async sign(claims = {}, o = {}) {
      const signerKid = o.key ?? (typeof o.kid === 'string' && keys.has(o.kid) ? o.kid : undefined)
      const signer = signerKid === undefined ? [...keys.values()][0] : keys.get(signerKid)
      if (signer === undefined) throw new Error(`test issuer: no key ${signerKid ?? ''} to sign with`)
      const now = Math.floor(Date.now() / 1000)
      const payload: Record<string, unknown> = { iss: issuer, aud: 'test-api', iat: now, exp: now + (o.expiresIn ?? 300), ...claims }
      const kid = o.kid === undefined ? signer.kid : o.kid
      const header = { alg: o.alg ?? signer.alg, typ: 'JWT', ...(kid === null ? {} : { kid }), ...o.header }
      // JSON drops undefined members, which is how `{ exp: undefined }` leaves exp out.
      return new SignJWT(payload).setProtectedHeader(header).sign(signer.privateKey)
    },
    addKey,
    removeKey(kid) {
      const key = keys.get(kid)
      if (key === undefined) throw new Error(`test issuer: no key ${kid}`)
      key.published = false
    },
    keys: () => [...keys.values()].map(snapshot),
    jwks,
    setStatus(code) {
      status = code
    },
    setDelay(ms) {
      delay = ms
    },
    setBody(raw) {
      rawBody = raw
    },
    setHeaders(headers) {
      extraHeaders = { ...headers }
    },
    close() {
      for (const t of pending) clearTimeout(t)
      pending.clear()
      return srv.close()
    },
  }
}

/** RFC 9110 §13.1.2: If-None-Match uses the weak comparison; `*` matches any current representation. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const opaque = (t: string): string => t.trim().replace(/^W\//, '')
  return header.split(',').some((t) => t.trim() === '*' || opaque(t) === opaque(etag))
}

function snapshot(k: MutableKey): TestKey {
  return { kid: k.kid, alg: k.alg, jwk: { ...k.jwk }, privateKey: k.privateKey, published: k.published }
}

function send(res: ServerResponse, status: number, body: string, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers })
  res.end(body)
}

// ---------------------------------------------------------------------------------------------
// Echo upstream
// ---------------------------------------------------------------------------------------------

/** What the echo upstream saw, and what it answers with (as JSON). */
export interface EchoRecord {
  readonly method: string
  /** The request target as received (path and query). */
  readonly url: string
  /** Node's lower-cased header object (repeated headers joined, set-cookie an array). */
  readonly headers: IncomingHttpHeaders
  readonly bodyBytes: number
  /** Hex SHA-256 of the full body (of the empty string when there is none). */
  readonly bodySha256: string
}

export interface TestUpstream {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string
  /** Requests answered so far. */
  requests(): number
  /** The most recent request, or undefined. */
  last(): EchoRecord | undefined
  close(): Promise<void>
}

/**
 * Start an upstream that answers every request with 200 and the JSON `EchoRecord` of what it
 * received, after reading the whole body.
 *
 * @example
 * ```ts
 * const up = await startUpstream()
 * t.after(() => up.close())
 * // ... send a request through the proxy ...
 * assert.equal(up.last()?.headers['x-user'], 'alice')
 * ```
 */
export async function startUpstream(): Promise<TestUpstream> {
  let count = 0
  let last: EchoRecord | undefined
  const srv = await startHttpServer((req, res) => {
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      hash.update(chunk)
    })
    req.on('end', () => {
      const record: EchoRecord = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
      }
      count++
      last = record
      send(res, 200, JSON.stringify(record))
    })
    req.on('error', () => res.destroy())
  })
  return {
    url: srv.url,
    requests: () => count,
    last: () => last,
    close: () => srv.close(),
  }
}
