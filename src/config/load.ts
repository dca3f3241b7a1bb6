/**
 * Loads the YAML config file into a validated, defaulted, unit-converted, deep-frozen
 * {@link SidecarConfig}, or throws one {@link ConfigError} listing every problem with its
 * file, line and path (fastify's `lib/initial-config-validation.js` is the model: validate
 * once at the boundary, report everything, then freeze).
 *
 * Pipeline, each stage collecting all of its issues before the next one runs:
 * 1. `yaml.parseDocument`: syntax errors and duplicate keys (nothing else runs if any);
 * 2. `${VAR}` interpolation of scalar values (interpolate.ts);
 * 3. JSON Schema validation with defaults (schema.ts), ajv errors mapped back to YAML lines
 *    and rewritten with the schema's `x-expected` phrases;
 * 4. semantic checks JSON Schema cannot express (uniqueness, URLs, route patterns, ...);
 * 5. unit conversion and deep-freeze.
 * An issue at a path hides later issues at the same path or below it, so one mistake is
 * reported once (an unset `${VAR}` is not also reported as "expected a URL").
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve as resolvePath } from 'node:path'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Pair } from 'yaml'
import { interpolateDocument, type Env, type PathSegment } from './interpolate.ts'
import { EXPECTED, UNIT_FORMATS, type SchemaNode } from './schema.ts'
import {
  SUPPORTED_ALGORITHMS,
  type Algorithm,
  type AuthMode,
  type ClaimValue,
  type LogConfig,
  type TokenSource,
  type SidecarConfig,
} from './types.ts'
import { parseDuration, parseListen, parseSize, unitReason } from './units.ts'
import { validate as generatedValidate } from './validate.generated.ts'
import { isToken } from '../http/grammar.ts'
import { FRAMING, HOP_BY_HOP, foldHeaderName, headerNameMatcher } from '../http/header-names.ts'
import { refusesPlainHttp } from '../http/transport.ts'
import { findFallThroughs } from '../policy/fallthrough.ts'

/** One problem in a config file. `path` is `a.b[0].c`, `(root)`, `(yaml)`, or '' for the file itself. */
export interface ConfigIssue {
  readonly file: string
  /** 1-based; undefined when the problem has no place in the file (e.g. it cannot be read). */
  readonly line: number | undefined
  readonly path: string
  readonly message: string
}

/** `config/sidecar.yaml:14 issuers[0].audiences: expected a non-empty list of strings` */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`
  return issue.path === '' ? `${where}: ${issue.message}` : `${where} ${issue.path}: ${issue.message}`
}

/** Every problem found in a config file; `message` has one formatted issue per line. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[]

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'))
    this.name = 'ConfigError'
    this.issues = Object.freeze([...issues])
  }
}

/** The default config file, relative to the working directory. */
export const DEFAULT_CONFIG_PATH = 'config/sidecar.yaml'

/**
 * Which file to load: the `--config FILE` value, else `JWT_SIDECAR_CONFIG`, else
 * {@link DEFAULT_CONFIG_PATH}. An empty value counts as absent (an unset-but-exported
 * variable in a shell script is a common accident). The path is returned as given, so
 * messages show what the operator wrote.
 *
 * @example
 * resolveConfigPath(undefined, { JWT_SIDECAR_CONFIG: '/etc/jwt-sidecar.yaml' }) // '/etc/jwt-sidecar.yaml'
 */
export function resolveConfigPath(flag: string | undefined, env: Env): string {
  if (flag !== undefined && flag !== '') return flag
  const fromEnv = env['JWT_SIDECAR_CONFIG']
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  return DEFAULT_CONFIG_PATH
}

/**
 * Reads and parses the config file at `path` (see {@link parseConfig}).
 *
 * @throws {ConfigError} when the file cannot be read or is invalid.
 * @example
 * const config = loadConfig(resolveConfigPath(args.config, process.env))
 */
export function loadConfig(path: string, env: Env = process.env): SidecarConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err))
    throw new ConfigError([{ file: path, line: undefined, path: '', message: `cannot read the file (${code})` }])
  }
  return parseConfig(text, path, env)
}

/**
 * Parses config text. Pure: `source` only names the file in messages and in
 * `SidecarConfig.source`, and variables come from `env` alone.
 *
 * @throws {ConfigError} listing every problem found.
 * @example
 * const config = parseConfig(text, 'inline.yaml', { UPSTREAM_URL: 'http://127.0.0.1:3000' })
 */
export function parseConfig(text: string, source: string, env: Env): SidecarConfig {
  const lineCounter = new LineCounter()
  // prettyErrors off: yaml would append a multi-line code frame; we want one line per issue.
  // merge on: `<<: *defaults` is the usual way to share issuer settings.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file: source,
        line: lineCounter.linePos(e.pos[0]).line,
        path: '(yaml)',
        message: e.message,
      })),
    )
  }

  const found: Found[] = []
  for (const issue of interpolateDocument(doc, env)) found.push({ path: issue.path, message: issue.message })

  let data: unknown
  try {
    // maxAliasCount bounds alias expansion ("billion laughs"); yaml throws beyond it.
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    throw new ConfigError([{ file: source, line: undefined, path: '(yaml)', message }])
  }
  const validate = compiledSchema()
  if (!validate(data)) found.push(...schemaIssues(validate.errors ?? [], data))
  found.push(...semanticIssues(data))

  const issues = dedupe(found)
  if (issues.length > 0) {
    const located = issues.map((f) => ({
      file: source,
      line: lineOf(doc, lineCounter, f.path),
      path: formatPath(f.path),
      message: f.message,
    }))
    // Stable sort: top to bottom as the operator reads the file; line-less issues first.
    located.sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
    throw new ConfigError(located)
  }
  const config = convert(data as RawConfig, source)
  // Valid but probably unintended: check-config prints these, `run` logs them.
  const warnings = findFallThroughs(config.routes).map((f) => ({
    file: source,
    line: lineOf(doc, lineCounter, ['routes', f.route]),
    path: formatPath(['routes', f.route]),
    message: f.message,
  }))
  return deepFreeze({ ...config, warnings })
}

// ---------------------------------------------------------------------------------------
// Issues before they get a line

interface Found {
  readonly path: readonly PathSegment[]
  readonly message: string
}

function isPrefix(prefix: readonly PathSegment[], path: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => String(seg) === String(path[i]))
}

/** Keeps the first issue of each path and drops those below a path that already failed. */
function dedupe(found: readonly Found[]): Found[] {
  const kept: Found[] = []
  for (const f of found) {
    if (!kept.some((k) => isPrefix(k.path, f.path))) kept.push(f)
  }
  return kept
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/

/** `['issuers', 0, 'audiences']` → `issuers[0].audiences`; odd keys are quoted: `headers["a.b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return '(root)'
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (!IDENTIFIER.test(seg)) out += `[${JSON.stringify(seg)}]`
    else out += out === '' ? seg : `.${seg}`
  }
  return out
}

// ---------------------------------------------------------------------------------------
// From a path to a line

/** The pair for `key` in a map, looking into `<<` merge sources the way yaml's toJS does. */
function findPair(doc: Document, map: unknown, key: string, depth = 0): Pair | undefined {
  const node = isAlias(map) ? map.resolve(doc) : map
  if (!isMap(node) || depth > 10) return undefined
  let merged: Pair | undefined
  for (const pair of node.items) {
    if (!isPair(pair)) continue
    const k = isScalar(pair.key) ? pair.key.value : pair.key
    if (String(k) === key) return pair
    if (k === '<<' && merged === undefined) {
      const sources = isSeq(pair.value) ? pair.value.items : [pair.value]
      for (const source of sources) {
        merged ??= findPair(doc, source, key, depth + 1)
      }
    }
  }
  return merged
}

function startLine(lineCounter: LineCounter, node: unknown): number | undefined {
  const range = (node as { range?: readonly number[] | null } | null)?.range
  const start = range?.[0]
  return start === undefined ? undefined : lineCounter.linePos(start).line
}

/**
 * The line of the deepest node along `path` that exists in the document. A map entry's
 * line is its key's (where `audiences:` is written, not where its first item is); a
 * sequence item's is the item's. A value that came from a default has no node, so its
 * nearest written ancestor is used.
 */
function lineOf(doc: Document, lineCounter: LineCounter, path: readonly PathSegment[]): number | undefined {
  let node: unknown = doc.contents
  let line = startLine(lineCounter, node)
  for (const seg of path) {
    const current = isAlias(node) ? node.resolve(doc) : node
    if (isSeq(current)) {
      const item: unknown = current.items[Number(seg)]
      if (item === undefined || item === null) return line
      line = startLine(lineCounter, item) ?? line
      node = item
    } else {
      const pair = findPair(doc, current, String(seg))
      if (pair === undefined) return line
      line = startLine(lineCounter, pair.key) ?? line
      node = pair.value
    }
  }
  return line
}

// ---------------------------------------------------------------------------------------
// Schema validation

/**
 * The schema's validator, compiled from schema.ts at development time into standalone code
 * (scripts/gen-config-validator.ts, checked to be current by test/unit/config-validator.test.ts),
 * as fastify does for its own options: compiling the schema at every start cost about 100 ms of
 * the cold start, and ajv itself is not loaded at run time.
 */
function compiledSchema(): ValidateFunction {
  return generatedValidate as unknown as ValidateFunction
}

/** JSON pointer → path segments, typed by walking the data (array indexes become numbers). */
function pointerToPath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return []
  const path: PathSegment[] = []
  let node = data
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    if (Array.isArray(node)) {
      path.push(Number(key))
      node = node[Number(key)] as unknown
    } else {
      path.push(key)
      node = isRecord(node) ? node[key] : undefined
    }
  }
  return path
}

function expected(node: SchemaNode | undefined): string {
  return node?.[EXPECTED] ?? 'a valid value'
}

function schemaIssues(errors: readonly ErrorObject[], data: unknown): Found[] {
  // A failed oneOf/anyOf also reports why each branch failed; only the combinator's own
  // error (with its x-expected phrase) says something useful to the operator.
  const combinators = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf')
  const relevant = errors.filter((e) => !combinators.some((c) => e.schemaPath.startsWith(`${c.schemaPath}/`)))
  return relevant.map((e): Found => {
    const parent = e.parentSchema as SchemaNode | undefined
    const at = pointerToPath(e.instancePath, data)
    const params = e.params as Record<string, unknown>
    switch (e.keyword) {
      case 'required': {
        const key = String(params['missingProperty'])
        return { path: [...at, key], message: `required key is missing (expected ${expected(parent?.properties?.[key])})` }
      }
      case 'additionalProperties': {
        const known = Object.keys(parent?.properties ?? {}).join(', ')
        return { path: [...at, String(params['additionalProperty'])], message: `unknown key (expected one of: ${known})` }
      }
      case 'uniqueItems': {
        const [first, again] = [Number(params['j']), Number(params['i'])].sort((a, b) => a - b)
        return { path: [...at, again ?? 0], message: `duplicate of item [${first}] (expected ${expected(parent)})` }
      }
      default: {
        // For unit strings, ask the parser why: "a bare number has no unit" beats a bare "expected".
        const format = parent?.format
        const value: unknown = e.data
        const reason =
          format !== undefined && (typeof value === 'string' || typeof value === 'number')
            ? unitReason(UNIT_FORMATS[format], String(value))
            : undefined
        return { path: at, message: `expected ${expected(parent)}${reason === undefined ? '' : ` (${reason})`}` }
      }
    }
  })
}

// ---------------------------------------------------------------------------------------
// Semantic checks: run on whatever the schema let through, so every access is guarded.

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
function field(v: unknown, key: string): unknown {
  return isRecord(v) ? v[key] : undefined
}
function text(v: unknown, key: string): string | undefined {
  const f = field(v, key)
  return typeof f === 'string' ? f : undefined
}
function list(v: unknown, key: string): readonly unknown[] {
  const f = field(v, key)
  return Array.isArray(f) ? (f as unknown[]) : []
}
function ms(v: unknown, key: string): number | undefined {
  const t = text(v, key)
  return t === undefined || unitReason(parseDuration, t) !== undefined ? undefined : parseDuration(t)
}
function bytes(v: unknown, key: string): number | undefined {
  const t = text(v, key)
  return t === undefined || unitReason(parseSize, t) !== undefined ? undefined : parseSize(t)
}
function address(v: unknown, key: string): { host: string; port: number } | undefined {
  const t = text(v, key)
  return t === undefined || unitReason(parseListen, t) !== undefined ? undefined : parseListen(t)
}

/**
 * Headers an identity header must never be: hop-by-hop ones are removed by every proxy on
 * the way (RFC 9110 §7.6.1), and Host and the framing headers would corrupt the forwarded
 * request (RFC 9112 §6).
 */
const RESERVED_HEADERS: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...FRAMING])
/** RFC 9110 §9.3 plus PATCH (RFC 5789). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'])
const MAX_CLOCK_SKEW_MS = 5 * 60_000
const MIN_REFRESH_INTERVAL_MS = 1000

const INVALID_HEADER_NAME = "is not a valid HTTP header name (RFC 9110 §5.6.2: letters, digits and !#$%&'*+-.^_`|~)"

function headerNameProblem(name: string): string | undefined {
  if (!isToken(name)) return INVALID_HEADER_NAME
  if (RESERVED_HEADERS.has(name.toLowerCase())) {
    return 'cannot be used: hop-by-hop and framing headers (Connection, Host, Content-Length, Transfer-Encoding, ...) are not forwarded as set'
  }
  return undefined
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

function routePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with /'
  if (/[?#]/.test(path)) return 'must not contain ? or #: routes match the path only, not the query'
  const segments = path.slice(1).split('/')
  for (const [i, seg] of segments.entries()) {
    const last = i === segments.length - 1
    if (seg === '' && !last) return 'must not contain an empty segment (//)'
    if (seg === '.' || seg === '..') return 'must not contain . or .. segments; request paths are matched as sent'
    // `*` matches within one segment (policy/routes.ts); `**` means "this prefix and below".
    if (seg.includes('**') && !(seg === '**' && last)) return '** is only allowed as the whole last segment, like /api/**'
  }
  return undefined
}

function semanticIssues(data: unknown): Found[] {
  const out: Found[] = []
  const add = (path: readonly PathSegment[], message: string): void => {
    out.push({ path, message })
  }

  // Listen addresses: the admin port must not collide with the proxy port.
  const main = address(data, 'listen')
  const admin = address(field(data, 'admin'), 'listen')
  if (main !== undefined && admin !== undefined && main.port !== 0 && main.port === admin.port) {
    const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::'
    if (main.host === admin.host || wildcard(main.host) || wildcard(admin.host)) {
      add(['admin', 'listen'], `port ${admin.port} is already used by listen`)
    }
  }

  // Upstream: where verified requests go. A query or fragment would be glued onto every path.
  const upstream = field(data, 'upstream')
  const upstreamUrl = text(upstream, 'url')
  if (upstreamUrl !== undefined) {
    const url = parseUrl(upstreamUrl)
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      add(['upstream', 'url'], 'expected an http:// or https:// URL')
    } else if (url.search !== '' || url.hash !== '' || /[?#]/.test(upstreamUrl)) {
      add(['upstream', 'url'], 'must not have a query or fragment: request paths and queries are appended to it')
    }
  }
  if (ms(upstream, 'timeout') === 0) add(['upstream', 'timeout'], 'must be greater than 0s')
  if (ms(field(data, 'requests'), 'timeout') === 0) add(['requests', 'timeout'], 'must be greater than 0s')

  // Issuers.
  const issuers = list(data, 'issuers')
  const names = new Map<string, number>()
  const issValues = new Map<string, number>()
  issuers.forEach((item, i) => {
    const name = text(item, 'name')
    if (name !== undefined) {
      const first = names.get(name)
      if (first !== undefined) add(['issuers', i, 'name'], `duplicate issuer name "${name}" (also issuers[${first}].name)`)
      else names.set(name, i)
    }
    const iss = text(item, 'issuer')
    if (iss !== undefined) {
      const first = issValues.get(iss)
      if (first !== undefined) {
        add(['issuers', i, 'issuer'], `issuer "${iss}" is also issuers[${first}].issuer; tokens with this iss would be ambiguous`)
      } else {
        issValues.set(iss, i)
      }
    }
    const jwksUri = text(item, 'jwksUri')
    if (jwksUri !== undefined) {
      const url = parseUrl(jwksUri)
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        add(['issuers', i, 'jwksUri'], 'expected an http:// or https:// URL')
      } else if (url.hash !== '') {
        add(['issuers', i, 'jwksUri'], 'must not have a #fragment')
      } else if (refusesPlainHttp(url, field(item, 'allowInsecureHttp') === true)) {
        // The key set decides which tokens are accepted: fetched over plain http, anyone on
        // the path could substitute their own keys (RFC 8725 §3.10 wants TLS for key retrieval).
        add(
          ['issuers', i, 'jwksUri'],
          'https is required unless the host is loopback (127.0.0.0/8, ::1, localhost); set allowInsecureHttp: true to override',
        )
      }
    }
    // Key sources: remote (jwksUri or discovery), static files, or both; never none.
    const discovery = field(item, 'discovery') === true
    const staticKeys = list(item, 'keys')
    if (jwksUri !== undefined && discovery) {
      add(['issuers', i, 'discovery'], 'cannot be combined with jwksUri: choose one remote key source')
    } else if (jwksUri === undefined && !discovery && staticKeys.length === 0) {
      add(['issuers', i], 'expected a key source: jwksUri, discovery: true, or keys (static files)')
    }
    if (discovery && iss !== undefined) {
      // OIDC Discovery 1.0 §4: the document lives at {issuer}/.well-known/openid-configuration.
      const url = parseUrl(iss)
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        add(['issuers', i, 'issuer'], 'with discovery: true, expected an http:// or https:// issuer URL')
      } else if (refusesPlainHttp(url, field(item, 'allowInsecureHttp') === true)) {
        add(['issuers', i, 'issuer'], 'with discovery: true, https is required unless the host is loopback; set allowInsecureHttp: true to override')
      }
    }
    if (ms(item, 'maxLifetime') === 0) add(['issuers', i, 'maxLifetime'], 'must be greater than 0s')
    const fetch = field(item, 'fetch')
    if (ms(fetch, 'timeout') === 0) add(['issuers', i, 'fetch', 'timeout'], 'must be greater than 0s')
    if (bytes(fetch, 'maxBytes') === 0) add(['issuers', i, 'fetch', 'maxBytes'], 'must be greater than 0B')
    const extra = field(fetch, 'headers')
    if (isRecord(extra)) {
      for (const h of Object.keys(extra)) {
        const problem = headerNameProblem(h)
        if (problem !== undefined) add(['issuers', i, 'fetch', 'headers', h], problem)
      }
    }
    const refresh = field(item, 'refresh')
    const interval = ms(refresh, 'interval')
    const minInterval = ms(refresh, 'minInterval')
    const maxInterval = ms(refresh, 'maxInterval')
    const maxStale = ms(refresh, 'maxStale')
    for (const [key, value] of [['interval', interval], ['minInterval', minInterval]] as const) {
      if (value !== undefined && value < MIN_REFRESH_INTERVAL_MS) {
        add(['issuers', i, 'refresh', key], 'must be at least 1s; refreshing faster would hammer the identity provider')
      }
    }
    if (minInterval !== undefined && maxInterval !== undefined && minInterval > maxInterval) {
      add(['issuers', i, 'refresh', 'minInterval'], 'must not be greater than maxInterval')
    } else if (interval !== undefined && minInterval !== undefined && maxInterval !== undefined && (interval < minInterval || interval > maxInterval)) {
      add(['issuers', i, 'refresh', 'interval'], 'must lie between minInterval and maxInterval')
    }
    if (maxStale !== undefined && maxInterval !== undefined && maxStale < maxInterval) {
      add(['issuers', i, 'refresh', 'maxStale'], 'must be at least maxInterval, or keys would expire between two scheduled refreshes')
    }
  })

  // Tokens.
  const tokens = field(data, 'tokens')
  const tokenHeaders: string[] = []
  const sources = new Map<string, number>()
  list(tokens, 'from').forEach((item, i) => {
    const kinds = (['header', 'cookie', 'query'] as const).filter((k) => field(item, k) !== undefined)
    if (kinds.length !== 1) {
      add(['tokens', 'from', i], `expected exactly one of header, cookie or query (found ${kinds.length === 0 ? 'none' : kinds.join(' and ')})`)
      return
    }
    if (kinds[0] !== 'header' && field(item, 'prefix') !== undefined) {
      add(['tokens', 'from', i, 'prefix'], 'only a header source has a prefix')
      return
    }
    let key: string
    const header = text(item, 'header')
    if (header !== undefined) {
      // Only the name's syntax is checked: reading a token from e.g. Proxy-Authorization is legitimate.
      if (!isToken(header)) {
        add(['tokens', 'from', i, 'header'], `"${header}" ${INVALID_HEADER_NAME}`)
        return
      }
      tokenHeaders.push(header)
      // RFC 7235 §2.1: the scheme is case-insensitive, and so is the header name.
      key = `header\n${header.toLowerCase()}\n${(text(item, 'prefix') ?? '').toLowerCase()}`
    } else {
      const kind = kinds[0]!
      key = `${kind}\n${text(item, kind) ?? ''}`
    }
    const first = sources.get(key)
    if (first !== undefined) add(['tokens', 'from', i], `duplicate of tokens.from[${first}]`)
    else sources.set(key, i)
  })
  const skew = ms(tokens, 'clockSkew')
  if (skew !== undefined && skew > MAX_CLOCK_SKEW_MS) {
    add(['tokens', 'clockSkew'], 'must be at most 5m; a larger skew keeps expired tokens valid and is almost certainly a mistake')
  }
  if (bytes(tokens, 'maxBytes') === 0) add(['tokens', 'maxBytes'], 'must be greater than 0B')
  if (bytes(field(tokens, 'cache'), 'maxBytes') === 0) add(['tokens', 'cache', 'maxBytes'], 'must be greater than 0B (to turn the cache off, set tokens.cache.enabled: false)')

  // Identity headers: set by the sidecar, so they must be names it can own outright.
  const identity = field(data, 'identity')
  const headers = field(identity, 'headers')
  if (isRecord(headers)) {
    const seen = new Map<string, string>()
    for (const name of Object.keys(headers)) {
      const problem = headerNameProblem(name)
      if (problem !== undefined) {
        add(['identity', 'headers', name], `"${name}" ${problem}`)
        continue
      }
      const lower = name.toLowerCase()
      const first = seen.get(lower)
      if (first !== undefined) {
        add(['identity', 'headers', name], `"${name}" is the same header as "${first}" (header names are case-insensitive)`)
        continue
      }
      seen.set(lower, name)
      const token = tokenHeaders.find((h) => h.toLowerCase() === lower)
      if (token !== undefined) add(['identity', 'headers', name], `"${name}" is a token source in tokens.from and would overwrite the token`)
    }
  }
  const claimsHeader = text(identity, 'claimsHeader')
  if (claimsHeader !== undefined) {
    const problem = headerNameProblem(claimsHeader)
    const lower = claimsHeader.toLowerCase()
    if (problem !== undefined) add(['identity', 'claimsHeader'], `"${claimsHeader}" ${problem}`)
    else if (isRecord(headers) && Object.keys(headers).some((h) => h.toLowerCase() === lower)) {
      add(['identity', 'claimsHeader'], `"${claimsHeader}" is also in identity.headers`)
    } else if (tokenHeaders.some((h) => h.toLowerCase() === lower)) {
      add(['identity', 'claimsHeader'], `"${claimsHeader}" is a token source in tokens.from and would overwrite the token`)
    }
  }
  list(identity, 'strip').forEach((pattern, i) => {
    if (typeof pattern !== 'string' || pattern === '') return
    if (!isToken(pattern)) {
      add(['identity', 'strip', i], `"${pattern}" is not a header name or a pattern with * (RFC 9110 §5.6.2)`)
      return
    }
    // Stripping happens before the token is extracted, so this would discard every token.
    const covers = headerNameMatcher([], [pattern])
    const victim = tokenHeaders.find((h) => covers(foldHeaderName(h)))
    if (victim !== undefined) add(['identity', 'strip', i], `"${pattern}" would remove the token header ${victim} before it is read`)
  })

  // Routes: first match wins, no match is denied.
  const routes = list(data, 'routes')
  const routeNames = new Map<string, number>()
  const earlier: { index: number; name: string; path: string; methods: readonly string[] }[] = []
  routes.forEach((item, i) => {
    const name = text(item, 'name')
    if (name !== undefined) {
      const first = routeNames.get(name)
      if (first !== undefined) add(['routes', i, 'name'], `duplicate route name "${name}" (also routes[${first}].name)`)
      else routeNames.set(name, i)
    }
    const path = text(item, 'path')
    let valid = path !== undefined
    if (path !== undefined) {
      const problem = routePathProblem(path)
      if (problem !== undefined) {
        add(['routes', i, 'path'], problem)
        valid = false
      }
    }
    const methods: string[] = []
    list(item, 'methods').forEach((m, j) => {
      if (typeof m !== 'string') return
      const upper = m.toUpperCase()
      if (!METHODS.has(upper)) {
        add(['routes', i, 'methods', j], `"${m}" is not an HTTP method (expected one of ${[...METHODS].join(', ')})`)
        valid = false
      } else if (methods.includes(upper)) {
        add(['routes', i, 'methods', j], `${upper} is listed twice`)
      } else {
        methods.push(upper)
      }
    })
    list(item, 'issuers').forEach((n, j) => {
      if (typeof n === 'string' && !names.has(n)) {
        add(['routes', i, 'issuers', j], `"${n}" is not a configured issuer (expected one of: ${[...names.keys()].join(', ')})`)
      }
    })
    const claims = field(field(item, 'require'), 'claims')
    if (isRecord(claims)) {
      for (const claimPath of Object.keys(claims)) {
        if (claimPath.split('.').some((seg) => seg === '')) add(['routes', i, 'require', 'claims', claimPath], 'expected a claim path like roles or realm_access.roles')
      }
    }
    const requires = list(item, 'issuers').length > 0 || list(field(item, 'require'), 'scopes').length > 0 || (isRecord(claims) && Object.keys(claims).length > 0)
    const auth = field(item, 'auth')
    if (requires && auth === 'deny') {
      add(['routes', i, 'auth'], 'is deny, so issuers and require would never be checked; remove them or use auth: required')
    } else if (requires && auth === 'none') {
      add(['routes', i, 'auth'], 'is none, so issuers and require would never be checked; use auth: required')
    } else if (requires && auth === 'optional') {
      // Fail closed: a client refused for its token's scope could drop the token and be admitted.
      add(['routes', i, 'auth'], 'is optional, so a request without a token would bypass issuers and require; use auth: required')
    }
    if (!valid || path === undefined) return
    // A route every request of which an earlier route already takes can never match.
    const shadow = earlier.find(
      (e) =>
        (e.path === '/**' || e.path === path) &&
        (e.methods.length === 0 || (methods.length > 0 && methods.every((m) => e.methods.includes(m)))),
    )
    if (shadow !== undefined) {
      add(['routes', i], `unreachable: routes[${shadow.index}] (${shadow.name}) matches all of its requests first (the first matching route wins)`)
    }
    earlier.push({ index: i, name: name ?? `#${i}`, path, methods })
  })

  return out
}

// ---------------------------------------------------------------------------------------
// Conversion of the validated data

/** The file's shape after validation with defaults: every key present, units still strings. */
interface RawConfig {
  readonly listen: string
  readonly upstream: { readonly url: string; readonly timeout: string; readonly xForwarded: 'append' | 'replace'; readonly drainsBodies: boolean }
  readonly admin: { readonly listen: string; readonly maxEventLoopDelay: string }
  readonly shutdown: { readonly delay: string; readonly timeout: string }
  readonly issuers: readonly {
    readonly name: string
    readonly issuer: string
    readonly jwksUri?: string
    readonly discovery: boolean
    readonly keys: readonly { readonly file: string; readonly alg?: string; readonly kid?: string }[]
    readonly audiences: readonly string[]
    readonly algorithms: readonly string[]
    readonly requiredClaims: readonly string[]
    readonly maxLifetime?: string
    readonly typ?: string
    readonly allowInsecureHttp: boolean
    readonly fetch: {
      readonly timeout: string
      readonly maxBytes: string
      readonly headers: Readonly<Record<string, string>>
      readonly bearerTokenFile?: string
      readonly caFile?: string
    }
    readonly refresh: Readonly<Record<'interval' | 'minInterval' | 'maxInterval' | 'unknownKidCooldown' | 'unknownKidWait' | 'maxStale' | 'discoveryInterval', string>>
  }[]
  readonly tokens: {
    readonly from: readonly { readonly header?: string; readonly prefix?: string; readonly cookie?: string; readonly query?: string }[]
    readonly clockSkew: string
    readonly maxBytes: string
    readonly cache: { readonly enabled: boolean; readonly maxEntries: number; readonly maxBytes: string }
  }
  readonly identity: {
    readonly headers: Readonly<Record<string, string>>
    readonly strip: readonly string[]
    readonly forwardToken: boolean
    readonly arrays: 'join' | 'json'
    readonly maxValueBytes: string
    readonly claimsHeader?: string
    readonly underscoreHeaders: 'drop' | 'reject' | 'allow'
  }
  readonly requests: { readonly methodOverride: 'strip' | 'honor'; readonly timeout: string }
  readonly routes: readonly {
    readonly name: string
    readonly path: string
    readonly methods: readonly string[]
    readonly auth: AuthMode
    readonly caseSensitive?: boolean
    readonly issuers: readonly string[]
    readonly require: { readonly scopes: readonly string[]; readonly claims: Readonly<Record<string, readonly ClaimValue[]>> }
  }[]
  readonly log: { readonly level: LogConfig['level']; readonly access: boolean }
}

function isAlgorithm(value: string): value is Algorithm {
  return (SUPPORTED_ALGORITHMS as readonly string[]).includes(value)
}

/** Builds fresh objects (nothing shared with the YAML data, even through aliases). */
function convert(raw: RawConfig, source: string): SidecarConfig {
  return {
    source,
    listen: parseListen(raw.listen),
    upstream: { url: raw.upstream.url, timeout: parseDuration(raw.upstream.timeout), xForwarded: raw.upstream.xForwarded, drainsBodies: raw.upstream.drainsBodies },
    admin: { listen: parseListen(raw.admin.listen), maxEventLoopDelay: parseDuration(raw.admin.maxEventLoopDelay) },
    shutdown: { delay: parseDuration(raw.shutdown.delay), timeout: parseDuration(raw.shutdown.timeout) },
    issuers: raw.issuers.map((i) => ({
      name: i.name,
      issuer: i.issuer,
      jwksUri: i.jwksUri,
      discovery: i.discovery,
      // Relative key files are relative to the config file, not to the working directory.
      keys: i.keys.map((k) => ({
        file: resolvePath(dirname(source), k.file),
        alg: k.alg !== undefined && isAlgorithm(k.alg) ? k.alg : undefined,
        kid: k.kid,
      })),
      audiences: [...i.audiences],
      algorithms: i.algorithms.filter(isAlgorithm),
      requiredClaims: [...i.requiredClaims],
      maxLifetime: i.maxLifetime === undefined ? undefined : parseDuration(i.maxLifetime),
      typ: i.typ,
      allowInsecureHttp: i.allowInsecureHttp,
      fetch: {
        timeout: parseDuration(i.fetch.timeout),
        maxBytes: parseSize(i.fetch.maxBytes),
        headers: Object.fromEntries(Object.entries(i.fetch.headers)),
        bearerTokenFile: i.fetch.bearerTokenFile === undefined ? undefined : resolvePath(dirname(source), i.fetch.bearerTokenFile),
        caFile: i.fetch.caFile === undefined ? undefined : resolvePath(dirname(source), i.fetch.caFile),
      },
      refresh: {
        interval: parseDuration(i.refresh.interval),
        minInterval: parseDuration(i.refresh.minInterval),
        maxInterval: parseDuration(i.refresh.maxInterval),
        unknownKidCooldown: parseDuration(i.refresh.unknownKidCooldown),
        unknownKidWait: parseDuration(i.refresh.unknownKidWait),
        maxStale: parseDuration(i.refresh.maxStale),
        discoveryInterval: parseDuration(i.refresh.discoveryInterval),
      },
    })),
    tokens: {
      from: raw.tokens.from.map((f): TokenSource => {
        if (f.cookie !== undefined) return { kind: 'cookie', cookie: f.cookie }
        if (f.query !== undefined) return { kind: 'query', query: f.query }
        return { kind: 'header', header: f.header ?? '', prefix: f.prefix ?? '' }
      }),
      clockSkew: parseDuration(raw.tokens.clockSkew),
      maxBytes: parseSize(raw.tokens.maxBytes),
      cache: raw.tokens.cache.enabled ? { maxEntries: raw.tokens.cache.maxEntries, maxBytes: parseSize(raw.tokens.cache.maxBytes) } : undefined,
    },
    identity: {
      headers: Object.fromEntries(Object.entries(raw.identity.headers)),
      strip: [...raw.identity.strip],
      forwardToken: raw.identity.forwardToken,
      arrays: raw.identity.arrays,
      maxValueBytes: parseSize(raw.identity.maxValueBytes),
      claimsHeader: raw.identity.claimsHeader,
      underscoreHeaders: raw.identity.underscoreHeaders,
    },
    requests: { methodOverride: raw.requests.methodOverride, timeout: parseDuration(raw.requests.timeout) },
    routes: raw.routes.map((r) => ({
      name: r.name,
      path: r.path,
      methods: r.methods.map((m) => m.toUpperCase()),
      auth: r.auth,
      // Protecting routes match any letter case, admitting ones exact (never less strict than the app).
      caseSensitive: r.caseSensitive ?? (r.auth === 'none' || r.auth === 'optional'),
      issuers: [...r.issuers],
      require: {
        scopes: [...r.require.scopes],
        claims: Object.fromEntries(Object.entries(r.require.claims).map(([k, v]) => [k, [...v]])),
      },
    })),
    log: { level: raw.log.level, access: raw.log.access },
    warnings: [],
  }
}

/** Freezes `value` and everything reachable from it, so no unit can change the config. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
