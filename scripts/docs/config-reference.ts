/**
 * docs/reference/configuration.md from the config schema (src/config/schema.ts and
 * src/config/schema/*.ts): one row per key with its type, its default and its description,
 * grouped by top-level section. The schema is what `check-config` validates against, so the
 * page cannot list a key the sidecar does not read, or miss one it does.
 */
import { RESTART_ONLY } from '../../src/config/restart-only.ts'
import { DEFAULT_DOC } from '../../src/config/schema.ts'
import type { SchemaNode } from '../../src/config/schema.ts'
import { cell, code, fromReference, generatedNotice, table } from './markdown.ts'

const UNIT_TYPES: Readonly<Record<string, string>> = { duration: 'duration', size: 'size', listen: 'address (`host:port`)' }

/** The node's type in a few words: `duration`, `list of strings`, one of its enum values. */
function typeText(node: SchemaNode): string {
  if (node.enum !== undefined) return node.enum.map(code).join(', ')
  if (node.format !== undefined) return UNIT_TYPES[node.format] ?? node.format
  if (node.anyOf !== undefined) return node.anyOf.map(typeText).join(' or ')
  const type = node.type
  if (typeof type === 'object') return type.join(', ')
  switch (type) {
    case 'array':
      return node.items === undefined ? 'list' : `list of ${plural(node.items)}`
    case 'object':
      return typeof node.additionalProperties === 'object' ? `map of name → ${typeText(node.additionalProperties)}` : 'map'
    case 'integer':
      return node.minimum !== undefined && node.maximum !== undefined ? `integer, ${node.minimum}–${node.maximum}` : 'integer'
    case undefined:
      throw new Error(`a schema node without a type: ${node['x-expected']}`)
    default:
      return type
  }
}

/** A list's element type in the plural: `strings`, `maps`, `strings, numbers or booleans`. */
function plural(node: SchemaNode): string {
  if (node.enum !== undefined) return `values from ${typeText(node)}`
  if (typeof node.type === 'object') {
    const names = node.type.map((t) => `${t}s`)
    return `${names.slice(0, -1).join(', ')} or ${names.at(-1)!}`
  }
  const one = typeText(node)
  return node.type === 'object' || node.type === 'string' || node.type === 'boolean' || node.type === 'integer' ? one.replace(/^(\w+)/, '$1s') : one
}

/** A default as the YAML flow form an operator would write: `5m`, `[RS256]`, `[{header: Authorization, prefix: "Bearer "}]`. */
function yamlFlow(value: unknown): string {
  if (typeof value === 'string') return /^[A-Za-z0-9_./:-]+$/.test(value) && !/^(true|false|null|~|[0-9.]+)$/.test(value) ? value : JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (Array.isArray(value)) return `[${value.map(yamlFlow).join(', ')}]`
  if (typeof value === 'object' && value !== null) return `{${Object.entries(value).map(([k, v]) => `${k}: ${yamlFlow(v)}`).join(', ')}}`
  throw new Error(`a default the reference cannot show: ${String(value)}`)
}

function defaultText(node: SchemaNode, required: boolean): string {
  const documented = node[DEFAULT_DOC]
  if (documented !== undefined) return documented
  if (node.default !== undefined) return code(yamlFlow(node.default))
  return required ? '**required**' : 'none'
}

/** The paragraphs of a key's description: the first is its meaning, the rest introduce its section. */
function paragraphs(node: SchemaNode, path: string): readonly [string, ...string[]] {
  if (node.description === undefined || node.description.trim() === '') throw new Error(`${path}: no description (every key of src/config/schema.ts needs one)`)
  const [first, ...rest] = node.description.split('\n\n').map((p) => fromReference(p.trim()))
  return [first!, ...rest]
}

function row(path: string, node: SchemaNode, required: boolean): string[] {
  const [meaning, ...rest] = paragraphs(node, path)
  if (rest.length > 0) throw new Error(`${path}: a nested key's description is one paragraph (a table cell)`)
  return [code(path), cell(typeText(node), path), cell(defaultText(node, required), path), cell(meaning, path)]
}

/**
 * Rows for every key below `node`, depth first in schema order: `a.b` for properties, `a[].b`
 * below array items, `a.<name>.b` below the entries of a map whose values are objects.
 */
function rows(node: SchemaNode, prefix: string): string[][] {
  const out: string[][] = []
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = `${prefix}.${key}`
    out.push(row(path, child, node.required?.includes(key) === true), ...below(child, path))
  }
  return out
}

function below(node: SchemaNode, path: string): string[][] {
  if (node.properties !== undefined) return rows(node, path)
  if (node.items?.properties !== undefined) return rows(node.items, `${path}[]`)
  if (typeof node.additionalProperties === 'object') {
    const entry = node.additionalProperties
    return [entry, ...(entry.anyOf ?? [])].flatMap((n) => (n.properties === undefined ? [] : rows(n, `${path}.<name>`)))
  }
  return []
}

const HEAD = ['Key', 'Type', 'Default', 'Meaning']

/**
 * @example
 * writeFileSync('docs/reference/configuration.md', configurationReference(configSchema))
 */
export function configurationReference(schema: SchemaNode): string {
  const top = Object.entries(schema.properties ?? {})
  const required = (key: string) => schema.required?.includes(key) === true
  const sections = top.flatMap(([key, node]) => {
    const body = below(node, key)
    if (body.length === 0) return []
    const title = node.type === 'array' ? `${key}[]` : key
    const [, ...intro] = paragraphs(node, key)
    return [`## ${code(title)}`, ...intro, table(HEAD, body)]
  })
  return [
    generatedNotice('src/config/schema.ts and src/config/schema/*.ts'),
    '',
    '# Configuration reference',
    '',
    [
      'Every key of the config file, from the schema `jwt-sidecar check-config` and the sidecar validate it with.',
      '**required** marks a key that has no default. Any other entry in the default column is the value',
      'used when the key is absent. A section left out entirely gets all of its defaults. Unknown keys are',
      'errors everywhere. Durations, sizes and listen addresses use the syntax described in the',
      '[configuration guide](../configuration.md#production-config-example).',
    ].join('\n'),
    '',
    [
      '**Identity providers.** [providers.md](../providers.md) has a tested `issuers[]` entry per',
      'provider (Keycloak, Microsoft Entra ID single- and multi-tenant, Azure AD B2C, Auth0, Okta, AWS',
      'Cognito, Google, Kubernetes service-account tokens, GitHub Actions OIDC, Dex), with the claims',
      'usually forwarded and required, and the [reason](reasons.md) each common mistake produces.',
    ].join('\n'),
    '',
    '## Top level',
    '',
    table(HEAD, top.map(([key, node]) => row(key, { ...node, description: paragraphs(node, key)[0] }, required(key)))),
    '',
    sections.join('\n\n'),
    '',
    '## Settings that need a restart',
    '',
    [
      'A live reload (SIGHUP, or the file changes: see [Running it](../cli.md#running-it)) applies every other',
      'key. A change to one of these is logged in `config.restart_required` and otherwise ignored: the',
      'sidecar keeps the value it started with until it is restarted.',
    ].join('\n'),
    '',
    table(['Key', 'Why'], RESTART_ONLY.map(({ path, why }) => [code(path), cell(why, path)])),
    '',
  ].join('\n')
}
