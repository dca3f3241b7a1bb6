/**
 * `jwt-sidecar verify`: the request path, step by step, for one token. Every step calls the
 * unit the sidecar itself uses (normalizePath, the route matcher, parseCompactJws, the key
 * store, verifySignature, the claim rules, the route authorizer): nothing is re-implemented,
 * so an explanation shows what the proxy does, not what we think it does.
 *
 * The final outcome does not come from the steps: it comes from proxy/decide.ts, the very
 * decision the proxy's onRequest hook runs. When the two disagree, a `consistency` step says
 * so: that is a bug to report.
 *
 * Output safety: the signature and the token itself never appear. Header fields, claim names
 * and the values of iss/sub/aud/exp/nbf/iat/scope are shown; other claim values are not
 * (the route's required claims excepted: the authorizer's explanation names what it compares).
 */
import { SUPPORTED_ALGORITHMS } from '../config/types.ts'
import type { Algorithm, IssuerConfig, RouteConfig, SidecarConfig, TokenSource } from '../config/types.ts'
import type { KeyResult, KeyStore } from '../keys/types.ts'
import { createRouteAuthorizer } from '../policy/authorize.ts'
import { parseTarget } from '../policy/normalize.ts'
import { createRouteMatcher } from '../policy/routes.ts'
import { createClaimRules, typMatches } from './claims.ts'
import { createTokenExtractor } from './extract.ts'
import { REASONS } from './reasons.ts'
import type { Reason } from './reasons.ts'
import { verifySignature } from './signature.ts'
import { parseCompactJws, splitCompactJws } from './token.ts'
import type { JoseHeader } from './token.ts'
import { afterVerify, badRequest, begin } from '../proxy/decide.ts'
import { createPipeline } from '../proxy/pipeline.ts'
import type { Pipeline } from '../proxy/pipeline.ts'

export interface ExplainStep {
  /** `path`, `route`, `source`, `token`, `issuer`, `algorithm`, `key`, `signature`, `typ`, a claim rule's name, `authorization`, `consistency`. */
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
  /** epoch ms; default Date.now. */
  readonly now?: () => number
}

interface Outcome {
  readonly forwarded: boolean
  readonly status: number
  readonly reason: Reason | 'none'
}

const FORWARDED: Outcome = { forwarded: true, status: 200, reason: 'none' }
const denied = (reason: Reason): Outcome => ({ forwarded: false, status: REASONS[reason].status, reason })
const describeOutcome = (o: Outcome): string => (o.forwarded ? 'forwarded' : `denied ${o.status} ${o.reason}`)
const SUPPORTED = new Set<string>(SUPPORTED_ALGORITHMS)

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

/** `/a?b` → `/a`: the query string never takes part in matching (policy/normalize.ts parseTarget). */
function pathOnly(target: string): string {
  const q = target.indexOf('?')
  return q < 0 ? target : target.slice(0, q)
}

/**
 * Reads a CLI input the way the proxy reads a request: a full header value is run through the
 * configured header sources' own extractor (prefix compared case-insensitively, RFC 7235
 * §2.1), anything else is taken as a raw compact JWS.
 *
 * @example
 * tokenFromInput(config.tokens.from, 'Bearer eyJ…', 'stdin')
 * // { token: 'eyJ…', source: 'Authorization header (prefix "Bearer ")' }
 */
export function tokenFromInput(sources: readonly TokenSource[], value: string, origin: string): { readonly token: string; readonly source: string } {
  for (const source of sources) {
    // An empty prefix would claim every input; a raw token is the same token then anyway.
    if (source.kind !== 'header' || source.prefix === '') continue
    const name = source.header.toLowerCase()
    const found = createTokenExtractor([source]).extract({ [name]: value }, [source.header, value], undefined)
    if (found.kind === 'token') return { token: found.token, source: `${source.header} header (prefix ${JSON.stringify(source.prefix)})` }
  }
  return { token: value, source: `raw token (${origin})` }
}

/** The configured issuer a token names by its exact `iss`, if it parses and names one (the CLI waits for that issuer's keys only). */
export function issuerForToken(config: SidecarConfig, token: string): IssuerConfig | undefined {
  const parsed = parseCompactJws(token, config.tokens.maxBytes)
  if (!parsed.ok) return undefined
  const iss = parsed.token.payload.iss
  return typeof iss === 'string' ? config.issuers.find((i) => i.issuer === iss) : undefined
}

/** The request the proxy would see: the token placed where the first configured source reads it. */
interface RequestFacts {
  readonly method: string
  /** The request target as given (path and query, the token query parameter not yet added). */
  readonly target: string
  readonly query: string | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly rawHeaders: readonly string[]
}

function factsFor(config: SidecarConfig, input: ExplainInput): RequestFacts {
  const q = input.path.indexOf('?')
  let query = q < 0 ? undefined : input.path.slice(q + 1)
  const headers: Record<string, string> = {}
  const source = config.tokens.from[0]
  if (input.token !== '' && source !== undefined) {
    if (source.kind === 'header') headers[source.header.toLowerCase()] = `${source.prefix}${input.token}`
    else if (source.kind === 'cookie') headers.cookie = `${source.cookie}=${input.token}`
    else query = `${query === undefined ? '' : `${query}&`}${source.query}=${encodeURIComponent(input.token)}`
  }
  return { method: input.method, target: input.path, query, headers, rawHeaders: Object.entries(headers).flat() }
}

/** The sidecar's decision for this request: proxy/decide.ts, exactly as the proxy's onRequest hook runs it. */
async function decide(pipeline: Pipeline, f: RequestFacts): Promise<Outcome> {
  try {
    const t = parseTarget(f.target)
    const next = t.ok ? begin(pipeline, f.method, t.path, f.query, f.headers, f.rawHeaders) : badRequest(t.why)
    const d = next.kind === 'verify' ? afterVerify(pipeline, next.route, await pipeline.verifier.verify(next.token)) : next
    return d.kind === 'admit' ? FORWARDED : denied(d.reason)
  } catch {
    // The proxy fails closed on an internal error.
    return denied('internal_error')
  }
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
  const now = input.now ?? Date.now
  const routes = createRouteMatcher(config.routes)
  const steps: ExplainStep[] = []
  const add = (step: string, ok: boolean | undefined, detail: string): void => {
    steps.push({ step, ok, detail })
  }
  const stop = (step: string, reason: Reason, detail: string): Outcome => {
    add(step, false, `${detail} → ${REASONS[reason].status} ${reason}`)
    return denied(reason)
  }

  const derived = await (async (): Promise<Outcome> => {
    // path: the proxy matches, and forwards, the normalised path (policy/normalize.ts).
    const raw = pathOnly(input.path)
    const normalized = parseTarget(input.path)
    const target = `${printable(input.method, 40)} ${printable(raw)}`
    if (!normalized.ok) return stop('path', 'invalid_request', `${target} refused: ${normalized.why}`)
    add('path', true, `${target} → ${printable(normalized.path)}${raw === normalized.path ? ' (already normal)' : ' (normalised)'}${raw === input.path ? '' : '; the query string takes no part'}`)

    const route = routes.match(input.method, normalized.path)
    if (route === undefined) return stop('route', 'no_route', `no route rule matches ${printable(input.method, 40)} ${printable(normalized.path)} (first match wins, no match is denied)`)
    if (route.auth === 'deny') return stop('route', 'route_denied', `${routeLine(route)}: closed for what it matches`)
    add('route', true, routeLine(route))
    if (route.auth === 'none') {
      add('source', undefined, `not read: route ${route.name} has auth none, the request is forwarded without verification`)
      return FORWARDED
    }

    if (input.token === '') {
      if (route.auth === 'optional') {
        add('source', undefined, `no token: route ${route.name} has auth optional, forwarded anonymously`)
        return FORWARDED
      }
      return stop('source', 'missing_token', `no token (route ${route.name} has auth required)`)
    }
    add('source', true, input.source)

    const parsed = parseCompactJws(input.token, config.tokens.maxBytes)
    if (!parsed.ok) {
      const split = splitCompactJws(input.token, config.tokens.maxBytes)
      return stop('token', parsed.reason, `${parsed.detail}${split.ok ? ` (header: ${headerLine(split.parts.header)})` : ''}`)
    }
    const { header, payload } = parsed.token
    const names = Object.keys(payload)
    const nameList = names.slice(0, MAX_NAMES).map((n) => printable(n, 40)).join(', ') + (names.length > MAX_NAMES ? `, … (${names.length} in all)` : '')
    const values = SHOWN_CLAIMS.filter((c) => Object.hasOwn(payload, c)).map((c) => `${c}=${show(payload[c])}`).join(' ')
    add('token', true, `${headerLine(header)}; claims [${nameList}]${values === '' ? '' : `; ${values}`}`)

    // issuer by exact iss (RFC 7519 §4.1.1 is case-sensitive).
    const iss = payload.iss
    if (iss === undefined || iss === null) return stop('issuer', 'unknown_issuer', '"iss" is missing')
    if (typeof iss !== 'string') return stop('issuer', 'bad_claim_type', `"iss" is ${show(iss, 40)}, not a string (RFC 7519 §4.1.1 StringOrURI)`)
    const issuer = config.issuers.find((i) => i.issuer === iss)
    if (issuer === undefined) return stop('issuer', 'unknown_issuer', `iss ${show(iss)} matches no configured issuer (${config.issuers.map((i) => `${i.name}: ${i.issuer}`).join(', ')})`)
    add('issuer', true, `iss ${show(iss)} → ${issuer.name}`)

    // The allowlist is checked before any key is touched (alg confusion, `none`).
    const alg = header.alg
    const allowlist = issuer.algorithms.join(', ')
    if (!SUPPORTED.has(alg) || !issuer.algorithms.includes(alg as Algorithm)) {
      return stop('algorithm', 'alg_not_allowed', `${show(alg, 40)} is not allowed for ${issuer.name} (allowlist ${allowlist})`)
    }
    add('algorithm', true, `${alg} allowed for ${issuer.name} (allowlist ${allowlist})`)

    const issuerKeys = keys.issuer(issuer.name)
    if (issuerKeys === undefined) return stop('key', 'internal_error', `the key store has no issuer ${issuer.name}`)
    const kidText = header.kid === undefined ? 'no kid' : `kid ${show(header.kid, 80)}`
    const before = issuerKeys.status()
    const pending = issuerKeys.getKey(header.kid, alg as Algorithm)
    const refetched = pending instanceof Promise
    const lookup: KeyResult = await pending
    const after = issuerKeys.status()
    const where = after.jwksUri ?? 'static key files'
    const known = `known kids: ${after.keyList.map((k) => (k.kid === undefined ? '(none)' : show(k.kid, 40))).join(', ') || 'none'}`
    const fetchNote = !refetched
      ? ''
      : after.lastSuccess !== before.lastSuccess
        ? `; not in the cached set, so ${where} was fetched again (unknown-kid refresh)`
        : `; not in the cached set, an unknown-kid refresh of ${where} was attempted${after.lastError === undefined ? '' : ` and failed: ${after.lastError}`}`
    if (!lookup.ok) {
      switch (lookup.reason) {
        case 'keys_unavailable':
          return stop('key', 'keys_unavailable', `${issuer.name} has no usable keys (state ${after.state}, last error: ${after.lastError ?? 'none'})`)
        case 'unknown_kid':
          if (header.kid === undefined) return stop('key', 'unknown_kid', `no kid in the header, and ${issuer.name} has no key without a kid for ${alg}; ${known}`)
          return stop('key', 'unknown_kid', `${kidText}: not found${fetchNote}${refetched ? '' : ' (no refetch now: cooldown, static keys only, or already proven unknown)'}; ${known}`)
        case 'bad_signature': {
          const k = after.keyList.find((i) => i.kid === header.kid)
          return stop('key', 'bad_signature', `${kidText}: found${k === undefined ? '' : ` (kty ${k.kty}, alg ${k.alg ?? 'any'}, thumbprint ${k.thumbprint})`} but it may not verify ${alg}`)
        }
      }
    }
    const key = lookup.key
    const source = key.source === 'jwks' ? `jwks ${where}` : key.source
    add('key', true, `${kidText}: found${fetchNote}; kty ${key.kty}, alg ${key.alg ?? 'any'}, thumbprint ${key.thumbprint}, source ${source}`)

    if (!verifySignature(alg as Algorithm, key.key, parsed.token.signingInput, parsed.token.signature)) {
      return stop('signature', 'bad_signature', `${alg} signature does not verify with key ${key.thumbprint}`)
    }
    add('signature', true, `${alg} signature verifies with key ${key.thumbprint}`)

    // verifier.ts order: typ (when the issuer requires one), then the claim rules in table order.
    if (issuer.typ !== undefined) {
      const detail = `typ ${header.typ === undefined ? 'absent' : show(header.typ, 40)} must be ${issuer.typ} (RFC 8725 §3.11)`
      if (!typMatches(issuer.typ, header.typ)) return stop('typ', 'bad_type', detail)
      add('typ', true, detail)
    }
    const t = now() / 1000
    for (const rule of createClaimRules(issuer, config.tokens.clockSkew)) {
      const reason = rule.check(payload, t)
      const detail = rule.explain(payload, t)
      if (reason !== undefined) return stop(rule.name, reason, detail)
      add(rule.name, true, detail)
    }

    return authorization(route, issuer.name, payload)
  })()

  function authorization(route: RouteConfig, issuerName: string, payload: Readonly<Record<string, unknown>>): Outcome {
    const authorizer = createRouteAuthorizer(route)
    const refused = authorizer.authorize(issuerName, payload)
    for (const { ok, line } of authorizer.explain(issuerName, payload)) add('authorization', ok, line)
    if (refused !== undefined) {
      add('authorization', false, `route ${route.name} refuses the token → ${REASONS[refused].status} ${refused}`)
      return denied(refused)
    }
    add('authorization', true, `route ${route.name} admits the token`)
    return FORWARDED
  }

  // The answer the sidecar would give, from the real decision (run after the steps, so the key
  // step above is the one that saw any unknown-kid refetch, as the first request would).
  const real = await decide(createPipeline(config, keys, { now }), factsFor(config, input))
  if (real.forwarded !== derived.forwarded || real.status !== derived.status || real.reason !== derived.reason) {
    add('consistency', false, `the steps say ${describeOutcome(derived)} but the sidecar's pipeline says ${describeOutcome(real)}: the pipeline's answer is reported (please report this as a bug)`)
  }
  return { steps: steps.map((s) => ({ ...s, detail: redact(s.detail, input.token) })), ...real }
}

/**
 * Defence in depth: no detail may carry the token or its signature segment, even if a claim
 * value was crafted to contain them. (Tiny segments are not redacted: they would match
 * ordinary words and cannot be a real signature.)
 */
function redact(detail: string, token: string): string {
  let out = detail
  if (token.length >= 16) out = out.split(token).join('[token]')
  const sig = token.slice(token.lastIndexOf('.') + 1)
  if (sig.length >= 16) out = out.split(sig).join('[signature]')
  return out
}
