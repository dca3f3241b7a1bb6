/**
 * `jwt-sidecar verify`: what the sidecar would answer to one request, and why, step by step.
 *
 * The request is decided by request/decide.ts's `decide` — the decision the proxy's
 * onRequest hook makes — with a trace sink (request/trace.ts, verify/trace.ts); each step
 * below is one traced event put into words. Nothing is decided here, so the explanation
 * cannot disagree with the sidecar: it is the sidecar's own path, taken once.
 *
 * Output safety: the signature and the token itself never appear. Header fields, claim names
 * and the values of iss/sub/aud/exp/nbf/iat/scope are shown; other claim values are not
 * (the route's required claims excepted: the authorizer's explanation names what it compares).
 * Nor does a DPoP proof or its signature; its checks show the claims they compare.
 */
import { createHash, type X509Certificate } from 'node:crypto'
import { issValues } from '../config/tenants.ts'
import type { IssuerConfig, RouteConfig, SidecarConfig, TokenSource } from '../config/types.ts'
import type { IssuerKeyStatus, KeyStore } from '../keys/types.ts'
import { decide } from '../request/decide.ts'
import { thumbprint } from '../request/client-cert.ts'
import type { Connection } from '../request/client-cert.ts'
import { createPipeline } from '../request/pipeline.ts'
import type { RequestTraceEvent } from '../request/trace.ts'
import { createTokenExtractor } from '../verify/extract.ts'
import type { TokenScheme } from '../verify/extract.ts'
import { REASONS } from '../verify/reasons.ts'
import type { Reason } from '../verify/reasons.ts'
import { parseCompactJws, splitCompactJws } from '../verify/token.ts'
import type { JoseHeader } from '../verify/token.ts'

export interface ExplainStep {
  /** `url`, `path`, `method`, `route`, `source`, `cache`, `token`, `issuer`, `algorithm`, `key`, `signature`, `typ`, a claim rule's name, `dpop.<check>`, `binding`, `authorization`, `error`: one per traced event. */
  readonly step: string
  /** true: passed; false: this is where the sidecar stops; undefined: information only. */
  readonly ok: boolean | undefined
  readonly detail: string
}

export interface Explanation {
  readonly steps: ExplainStep[]
  /** The request would reach the upstream. */
  readonly forwarded: boolean
  /** The sidecar's answer; 200 when forwarded (the upstream then answers). */
  readonly status: number
  readonly reason: Reason | 'none'
}

export interface ExplainInput {
  /** The compact JWS; '' when the request would carry no token. */
  readonly token: string
  /** Where the token came from, for the `source` step (see `tokenFromInput`). */
  readonly source: string
  /** Request target: path, optionally with `?query` (never used for matching, as in the proxy). */
  readonly path: string
  readonly method: string
  /** `dpop`: sent as `Authorization: DPoP <token>` (RFC 9449 §7.1); else where the first configured source reads it. */
  readonly scheme?: TokenScheme
  /** The `DPoP` header: a proof JWT. */
  readonly proof?: string
  /** From a URL the client addressed: the `Host` header it sends, and its scheme (the htu's). */
  readonly authority?: { readonly scheme: 'http' | 'https'; readonly host: string }
  /** The client certificate the request comes with (RFC 8705), as the config's source would see it. */
  readonly clientCertificate?: X509Certificate
  /** epoch ms; default Date.now. */
  readonly now?: () => number
}

/** Claims whose values the token step shows; every other claim is shown by name only. */
const SHOWN_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'scope'] as const
const MAX_NAMES = 40

/** JSON text of an untrusted value, on one line and bounded (control characters escaped). */
function show(v: unknown, max = 120): string {
  if (v === undefined) return 'absent'
  const s = JSON.stringify(v) ?? typeof v
  return s.length > max ? `${s.slice(0, max)}…` : s
}

/** An untrusted string without its JSON quotes: one line, control characters escaped, bounded. */
function printable(s: string, max = 200): string {
  const t = JSON.stringify(s).slice(1, -1)
  return t.length > max ? `${t.slice(0, max)}…` : t
}

function headerLine(h: JoseHeader): string {
  return `alg ${show(h.alg, 40)}, kid ${h.kid === undefined ? 'absent' : show(h.kid, 80)}, typ ${h.typ === undefined ? 'absent' : show(h.typ, 40)}`
}

function routeLine(r: RouteConfig): string {
  const req: string[] = []
  if (r.require.scopes.length > 0) req.push(`scopes ${JSON.stringify(r.require.scopes)}`)
  for (const [claim, values] of Object.entries(r.require.claims)) req.push(`claim ${claim} in ${JSON.stringify(values)}`)
  return `${r.name} (path ${r.path}): auth ${r.auth}, methods ${r.methods.length === 0 ? 'any' : r.methods.join(',')}, issuers ${r.issuers.length === 0 ? 'any' : r.issuers.join(',')}, require ${req.length === 0 ? 'nothing' : req.join('; ')}`
}

/** RFC 9449 §7.1: the DPoP scheme, in the Authorization header, whatever `tokens.from` says. */
const DPOP_SOURCE: TokenSource = { kind: 'header', header: 'Authorization', prefix: 'DPoP ' }

/**
 * Reads a CLI input the way the proxy reads a request: a full header value is run through the
 * configured header sources' own extractor (prefix compared case-insensitively, RFC 7235
 * §2.1), then the DPoP scheme's; anything else is taken as a raw compact JWS, sent with the
 * DPoP scheme when a proof comes with it (`proof: true`), else as the first source reads it.
 *
 * @example
 * tokenFromInput(config.tokens.from, 'Bearer eyJ…', 'stdin')
 * // { token: 'eyJ…', source: 'Authorization header (prefix "Bearer ")', scheme: 'bearer' }
 */
export function tokenFromInput(sources: readonly TokenSource[], value: string, origin: string, options: { readonly proof?: boolean } = {}): { readonly token: string; readonly source: string; readonly scheme: TokenScheme } {
  for (const source of [...sources, DPOP_SOURCE]) {
    // An empty prefix would claim every input; a raw token is the same token then anyway.
    if (source.kind !== 'header' || source.prefix === '') continue
    const name = source.header.toLowerCase()
    const found = createTokenExtractor([source]).extract({ [name]: value }, [source.header, value], undefined)
    if (found.kind !== 'token') continue
    return source === DPOP_SOURCE
      ? { token: found.token, source: 'Authorization header, DPoP scheme (RFC 9449 §7.1)', scheme: 'dpop' }
      : { token: found.token, source: `${source.header} header (prefix ${JSON.stringify(source.prefix)})`, scheme: 'bearer' }
  }
  return options.proof === true
    ? { token: value, source: `raw token (${origin}), sent as Authorization: DPoP since a proof comes with it`, scheme: 'dpop' }
    : { token: value, source: `raw token (${origin})`, scheme: 'bearer' }
}

/** The configured issuer a token names by its exact `iss`, if it parses and names one (the CLI waits for that issuer's keys only). */
export function issuerForToken(config: SidecarConfig, token: string): IssuerConfig | undefined {
  const parsed = parseCompactJws(token, config.tokens.maxBytes)
  if (!parsed.ok) return undefined
  const iss = parsed.token.payload.iss
  return typeof iss === 'string' ? config.issuers.find((i) => issValues(i).some((v) => v.iss === iss)) : undefined
}

/** The request the proxy would see: the token placed where the first configured source reads it. */
interface RequestFacts {
  readonly method: string
  /** The request target as given (path and query), with the token's query parameter when that is its source. */
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly rawHeaders: readonly string[]
  /** The proxy's: https with `tls`, else http (proxy/server.ts), whatever scheme the client addressed. */
  readonly listenerScheme: 'http' | 'https'
  readonly connection?: Connection
}

const listenerScheme = (config: SidecarConfig): 'http' | 'https' => (config.tls === undefined ? 'http' : 'https')

function factsFor(config: SidecarConfig, input: ExplainInput): RequestFacts {
  const headers: Record<string, string> = {}
  let url = input.path
  const source = config.tokens.from[0]
  if (input.token !== '' && input.scheme === 'dpop') headers.authorization = `DPoP ${input.token}`
  else if (input.token !== '' && source !== undefined) {
    if (source.kind === 'header') headers[source.header.toLowerCase()] = `${source.prefix}${input.token}`
    else if (source.kind === 'cookie') headers.cookie = `${source.cookie}=${input.token}`
    else url = `${url}${url.includes('?') ? '&' : '?'}${source.query}=${encodeURIComponent(input.token)}`
  }
  if (input.authority !== undefined) headers.host = input.authority.host
  if (input.proof !== undefined) headers.dpop = input.proof
  const cert = input.clientCertificate
  let connection: Connection | undefined
  const ingress = config.clientCertificateHeader
  if (cert !== undefined && ingress !== undefined) {
    // As the trusted ingress would pass it, from the first address it is trusted from.
    headers[ingress.name.toLowerCase()] = ingress.format === 'xfcc' ? `Hash=${createHash('sha256').update(cert.raw).digest('hex')}` : encodeURIComponent(cert.toString())
    connection = { remoteAddress: ingress.trustedPeers[0]!.split('/')[0] }
  } else if (cert !== undefined) connection = { getPeerX509Certificate: () => cert }
  const facts = { method: input.method, url, headers, rawHeaders: Object.entries(headers).flat(), listenerScheme: listenerScheme(config) }
  return connection === undefined ? facts : { ...facts, connection }
}

/** What `--client-cert` stands for under this config (RFC 8705 §3): said before the steps. */
function certificateStep(config: SidecarConfig, input: ExplainInput): ExplainStep[] {
  const cert = input.clientCertificate
  if (cert === undefined) return []
  const x5t = thumbprint(cert.raw)
  const ingress = config.clientCertificateHeader
  const how = ingress !== undefined
    ? `as the trusted ingress would pass it (${ingress.name}, ${ingress.format})`
    : config.tls?.clientCaFile !== undefined
      ? 'as presented in the TLS handshake (its chain to tls.clientCaFile is checked by the handshake, not here)'
      : 'but the config has no client-certificate source (tls.clientCaFile or clientCertificateHeader): the sidecar would never see it'
  return [step('certificate', undefined, `client certificate ${printable(cert.subject.replaceAll('\n', ', '), 100)}, x5t#S256 ${x5t}, ${how}`)]
}

/**
 * A DPoP proof's htu is checked against the listener's scheme, not the one the client
 * addressed (binding.ts): when they differ, say so before the steps.
 */
function urlStep(config: SidecarConfig, input: ExplainInput): ExplainStep[] {
  const a = input.authority
  const listener = listenerScheme(config)
  if (a === undefined || a.scheme === listener) return []
  return [step('url', undefined, `the URL is ${a.scheme} but the listener is ${listener} (${config.tls === undefined ? 'no tls' : 'tls'}): the sidecar sees ${listener}://${printable(a.host, 100)}, and a DPoP proof's htu is checked against that; behind a proxy that terminates TLS the client's htu does not match`)]
}

/** Each issuer's key status, to tell what an unknown-kid refresh did. */
function keyStatuses(config: SidecarConfig, keys: KeyStore): Map<string, IssuerKeyStatus> {
  const out = new Map<string, IssuerKeyStatus>()
  for (const i of config.issuers) {
    const s = keys.issuer(i.name)?.status()
    if (s !== undefined) out.set(i.name, s)
  }
  return out
}

/**
 * Explains what the sidecar would answer to `method path` carrying `token`. The key store must
 * be started by the caller; a key lookup may wait for an unknown-kid refetch, as a request would.
 *
 * @example
 * const keys = createKeyStore(config.issuers); keys.start()
 * const e = await explainRequest(config, keys, { token, source: 'raw token (stdin)', path: '/x', method: 'GET' })
 * for (const s of e.steps) console.log(s.step, s.ok, s.detail)
 * await keys.stop()
 */
export async function explainRequest(config: SidecarConfig, keys: KeyStore, input: ExplainInput): Promise<Explanation> {
  const events: RequestTraceEvent[] = []
  const before = keyStatuses(config, keys)
  const decision = await decide(createPipeline(config, keys, input.now === undefined ? {} : { now: input.now }), factsFor(config, input), (e) => {
    events.push(e)
  })
  const steps = [...urlStep(config, input), ...certificateStep(config, input), ...events.flatMap((e) => describe(e, { config, keys, input, before }))]
  const forwarded = decision.kind === 'admit'
  const status = forwarded ? 200 : REASONS[decision.reason].status
  const reason = forwarded ? 'none' : decision.reason
  if (!forwarded) {
    // The step the sidecar stopped at carries the answer; when none did (an internal error), a step says so.
    const last = steps.at(-1)
    const answer = `${status} ${reason}`
    if (last?.ok === false) steps[steps.length - 1] = { ...last, detail: `${last.detail} → ${answer}` }
    else steps.push({ step: 'error', ok: false, detail: `${decision.detail ?? 'the decision failed internally'} → ${answer}` })
  }
  const secrets = input.proof === undefined ? [input.token] : [input.token, input.proof]
  return { steps: steps.map((s) => ({ ...s, detail: secrets.reduce(redact, s.detail) })), forwarded, status, reason }
}

interface Context {
  readonly config: SidecarConfig
  readonly keys: KeyStore
  readonly input: ExplainInput
  /** Key status before the request, per issuer name. */
  readonly before: ReadonlyMap<string, IssuerKeyStatus>
}

const step = (name: string, ok: boolean | undefined, detail: string): ExplainStep => ({ step: name, ok, detail })

/** One traced event in words (several lines for the authorization step). */
function describe(e: RequestTraceEvent, c: Context): ExplainStep[] {
  const { input } = c
  switch (e.step) {
    case 'path': {
      // The proxy matches, and forwards, the normalised path (policy/normalize.ts).
      const target = `${printable(input.method, 40)} ${printable(e.ok ? e.rawPath : input.path.split('?')[0]!)}`
      if (!e.ok) return [step('path', false, `${target} refused: ${e.why}`)]
      return [step('path', true, `${target} → ${printable(e.path)}${e.rawPath === e.path ? ' (already normal)' : ' (normalised)'}${input.path.includes('?') ? '; the query string takes no part' : ''}`)]
    }
    case 'method':
      return [typeof e.effective === 'string'
        ? step('method', true, `${printable(e.method, 40)} overridden to ${printable(e.effective, 40)} (requests.methodOverride: honor)`)
        : step('method', false, `method override refused: ${e.effective.invalid}`)]
    case 'route':
      if (e.route === undefined) return [step('route', false, `no route rule matches ${printable(e.method, 40)} ${printable(e.path)} (first match wins, no match is denied)`)]
      if (e.route.auth === 'deny') return [step('route', false, `${routeLine(e.route)}: closed for what it matches`)]
      return [step('route', true, routeLine(e.route))]
    case 'source':
      switch (e.found) {
        case 'not_read': return [step('source', undefined, `not read: route ${e.route.name} has auth none, the request is forwarded without verification`)]
        case 'none': return [e.route.auth === 'optional'
          ? step('source', undefined, `no token: route ${e.route.name} has auth optional, forwarded anonymously`)
          : step('source', false, `no token (route ${e.route.name} has auth required)${input.scheme === 'dpop' && input.token !== '' ? '; the DPoP scheme is read only when an issuer has dpop.mode allowed or required' : ''}`)]
        case 'invalid': return [step('source', false, e.detail ?? 'invalid')]
        case 'token': return [step('source', true, input.source)]
      }
      break
    case 'cache':
      return [step('cache', true, `verified before under ${e.issuer.name}: answered from the verified-token cache`)]
    case 'token': {
      if (!e.ok) {
        const split = splitCompactJws(input.token, c.config.tokens.maxBytes)
        return [step('token', false, `${e.detail}${split.ok ? ` (header: ${headerLine(split.parts.header)})` : ''}`)]
      }
      const { header, payload } = e.token
      const names = Object.keys(payload)
      const nameList = names.slice(0, MAX_NAMES).map((n) => printable(n, 40)).join(', ') + (names.length > MAX_NAMES ? `, … (${names.length} in all)` : '')
      const values = SHOWN_CLAIMS.filter((n) => Object.hasOwn(payload, n)).map((n) => `${n}=${show(payload[n])}`).join(' ')
      return [step('token', true, `${headerLine(header)}; claims [${nameList}]${values === '' ? '' : `; ${values}`}`)]
    }
    case 'issuer':
      // Issuer by exact iss (RFC 7519 §4.1.1 is case-sensitive).
      if (e.issuer !== undefined) return [step('issuer', true, `iss ${show(e.iss)} → ${e.issuer.name}`)]
      if (e.iss === undefined || e.iss === null) return [step('issuer', false, '"iss" is missing')]
      if (typeof e.iss !== 'string') return [step('issuer', false, `"iss" is ${show(e.iss, 40)}, not a string (RFC 7519 §4.1.1 StringOrURI)`)]
      return [step('issuer', false, `iss ${show(e.iss)} matches no configured issuer (${c.config.issuers.map((i) => `${i.name}: ${i.issuer}`).join(', ')})`)]
    case 'algorithm': {
      // The allowlist is checked before any key is touched (alg confusion, `none`).
      const allowlist = e.issuer.algorithms.join(', ')
      return [e.ok
        ? step('algorithm', true, `${e.alg} allowed for ${e.issuer.name} (allowlist ${allowlist})`)
        : step('algorithm', false, `${show(e.alg, 40)} is not allowed for ${e.issuer.name} (allowlist ${allowlist})`)]
    }
    case 'key':
      return [keyStep(e, c)]
    case 'signature': {
      const c = e.candidate
      if (c === undefined) {
        return [e.ok
          ? step('signature', true, `${e.alg} signature verifies with key ${e.key.thumbprint}`)
          : step('signature', false, `${e.alg} signature does not verify with key ${e.key.thumbprint}`)]
      }
      // A token without kid, tried key by key (kidless.maxCandidates): only the last check decides.
      const which = `candidate ${c.n} of ${c.of} (key ${e.key.thumbprint}${e.key.kid === undefined ? '' : `, kid ${show(e.key.kid, 40)}`})`
      if (e.ok) return [step('signature', true, `${e.alg} signature verifies with ${which}; ${c.n} signature check${c.n === 1 ? '' : 's'}`)]
      if (c.n < c.of) return [step('signature', undefined, `${e.alg} signature does not verify with ${which}; trying the next`)]
      return [step('signature', false, `${e.alg} signature does not verify with ${which}: none of the ${c.of} candidates verifies; ${c.n} signature checks`)]
    }
    case 'typ':
      return [step('typ', e.ok, `typ ${e.typ === undefined ? 'absent' : show(e.typ, 40)} must be ${e.expected} (RFC 8725 §3.11)`)]
    case 'claim':
      return [step(e.rule.name, e.reason === undefined, e.rule.explain(e.payload, e.now))]
    case 'dpop':
      // RFC 9449 §11.1: replay is judged against the jtis this process has seen, and a one-shot CLI has seen none.
      return [step(`dpop.${e.check}`, e.ok, e.check === 'replay' && e.ok ? `${e.detail}; jwt-sidecar verify starts with an empty replay cache, so it cannot tell whether a running sidecar has seen this proof` : e.detail)]
    case 'binding': {
      // issue #13 §2: a token with cnf is never a plain bearer token (RFC 9449, RFC 8705).
      const how = `${e.scheme === 'dpop' ? 'DPoP' : 'Bearer'} scheme, dpop.mode ${e.mode}${e.scheme === 'bearer' && input.proof !== undefined ? ' (the DPoP header is not read with the Bearer scheme)' : ''}`
      if (!e.result.ok) return [step('binding', false, `${how}: ${e.result.detail}`)]
      const { jkt, x5t } = e.result
      const proven = [
        ...(jkt === undefined ? [] : [`DPoP proof verifies, key thumbprint ${jkt}`]),
        ...(x5t === undefined ? [] : [`client certificate matches cnf x5t#S256 ${x5t}`]),
      ]
      return [step('binding', true, proven.length === 0 ? `${how}: unbound token, no cnf` : `${how}: ${proven.join('; ')}`)]
    }
    case 'authorization': {
      const lines = e.authorizer.explain(e.issuer, e.claims).map(({ ok, line }) => step('authorization', ok, line))
      lines.push(e.refused === undefined
        ? step('authorization', true, `route ${e.route.name} admits the token`)
        : step('authorization', false, `route ${e.route.name} refuses the token`))
      return lines
    }
  }
  return []
}

/** The key step: which key, where it came from, and what an unknown-kid refresh did. */
function keyStep(e: RequestTraceEvent & { readonly step: 'key' }, c: Context): ExplainStep {
  const name = e.issuer.name
  const after = c.keys.issuer(name)?.status()
  const before = c.before.get(name)
  const where = after?.jwksUri ?? 'static key files'
  const kidText = e.kid === undefined ? 'no kid' : `kid ${show(e.kid, 80)}`
  const known = `known kids: ${(after?.keyList ?? []).map((k) => (k.kid === undefined ? '(none)' : show(k.kid, 40))).join(', ') || 'none'}`
  const fetchNote = !e.refetched
    ? ''
    : after?.lastSuccess !== before?.lastSuccess
      ? `; not in the cached set, so ${where} was fetched again (unknown-kid refresh)`
      : `; not in the cached set, an unknown-kid refresh of ${where} was attempted${after?.lastError === undefined ? '' : ` and failed: ${after.lastError}`}`
  const r = e.result
  if (r.ok && r.candidates !== undefined) {
    // issue #12: a token without kid that several keys fit, each tried in index order.
    const max = e.issuer.kidless.maxCandidates
    return step('key', true, `no kid: ${r.candidates.length} keys fit ${e.alg} (kidless.maxCandidates ${max}), tried in key-index order (key files first, then the JWKS in document order): ${r.candidates.map((k) => k.thumbprint).join(', ')}`)
  }
  if (r.ok) {
    const chain = r.key.chainLength === undefined ? '' : ` (the leaf of a chain of ${r.key.chainLength} certificates)`
    const source = r.key.source === 'jwks' ? `jwks ${where}` : `${r.key.source}${chain}`
    // A stale set (refreshes failing, or the key snapshot of a cold start, issue #13 §3) is trusted only until maxStale after its last confirmation.
    const stale = r.key.source === 'jwks' && after?.state === 'stale' && after.lastSuccess !== undefined
      ? `; the key set is stale: last confirmed by the IdP ${new Date(after.lastSuccess).toISOString()}, usable until ${new Date(after.lastSuccess + e.issuer.refresh.maxStale).toISOString()} (refresh.maxStale)${after.lastError === undefined ? '' : `, last error: ${after.lastError}`}`
      : ''
    return step('key', true, `${kidText}: found${fetchNote}; kty ${r.key.kty}, alg ${r.key.alg ?? 'any'}, thumbprint ${r.key.thumbprint}, source ${source}${stale}`)
  }
  switch (r.reason) {
    case 'keys_unavailable':
      return step('key', false, `${name} has no usable keys (state ${after?.state ?? 'unknown'}, last error: ${after?.lastError ?? 'none'})`)
    case 'unknown_kid':
      if (e.kid === undefined && r.fitting !== undefined) {
        const max = e.issuer.kidless.maxCandidates
        return step('key', false, `no kid in the header, and ${r.fitting} keys of ${name} fit ${e.alg}, more than kidless.maxCandidates (${max}): none is tried; ${known}`)
      }
      if (e.kid === undefined) return step('key', false, `no kid in the header, and ${name} has no key for ${e.alg}; ${known}`)
      return step('key', false, `${kidText}: not found${fetchNote}${e.refetched ? '' : ' (no refetch now: cooldown, static keys only, or already proven unknown)'}; ${known}`)
    case 'bad_signature': {
      const k = after?.keyList.find((i) => i.kid === e.kid)
      return step('key', false, `${kidText}: found${k === undefined ? '' : ` (kty ${k.kty}, alg ${k.alg ?? 'any'}, thumbprint ${k.thumbprint})`} but it may not verify ${e.alg}`)
    }
  }
}

/**
 * Defence in depth: no detail may carry the token, a DPoP proof or their signature segments,
 * even if a claim value was crafted to contain them. (Tiny segments are not redacted: they
 * would match ordinary words and cannot be a real signature.)
 */
function redact(detail: string, token: string): string {
  let out = detail
  if (token.length >= 16) out = out.split(token).join('[token]')
  const sig = token.slice(token.lastIndexOf('.') + 1)
  if (sig.length >= 16) out = out.split(sig).join('[signature]')
  return out
}
