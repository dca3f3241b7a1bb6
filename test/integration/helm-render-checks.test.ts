/**
 * What the Helm chart refuses at render time, and what it leaves to the user (issue #14 §3,
 * §4), checked offline with the real helm (test/helpers/helm.ts):
 * - no image.repository: `helm template` and `helm install` fail with a message saying what to
 *   set (no public image is published, so the chart names none);
 * - the user's app container gets no resources or securityContext (nor the pod a
 *   securityContext) unless they are set; the sidecar keeps its own;
 * - plain-http key URLs: the chart's decision is compared, URL by URL, with the sidecar's own
 *   `refusesPlainHttp` (src/http/transport.ts);
 * - app.healthPath: the chart's decision is compared, case by case, with the route the
 *   sidecar's own `createRouteMatcher` (src/policy/routes.ts) picks for the kubelet's GET.
 * The native-sidecar version check, the app chart and examples/patch.yaml are in
 * helm.test.ts, with the rest of the chart.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { parseConfig } from '../../src/config/load.ts'
import { refusesPlainHttp } from '../../src/http/transport.ts'
import { createRouteMatcher } from '../../src/policy/routes.ts'
import { CHART_DIR, IMAGE_REPOSITORY, IMAGE_UNSET, NAMESPACE, RELEASE, extractTools, one, renderChart, renderChartFails, run } from '../helpers/helm.ts'
import type { K8sObject } from '../helpers/helm.ts'

const tools = extractTools()
after(() => tools.cleanup())

const read = (path: string): string => readFileSync(path, 'utf8')

// Shapes (only what the assertions read)
interface Container {
  readonly name: string
  readonly image: string
  readonly resources?: unknown
  readonly securityContext?: unknown
  readonly readinessProbe?: { readonly httpGet?: { readonly path: string } }
}
interface PodSpec {
  readonly initContainers?: Container[]
  readonly containers: Container[]
  readonly securityContext?: unknown
}
interface Deployment extends K8sObject {
  readonly spec: { readonly template: { readonly spec: PodSpec } }
}
interface ConfigMap extends K8sObject {
  readonly data: Record<string, string>
}
const DEFAULTS = parse(read(join(CHART_DIR, 'values.yaml'))) as {
  readonly image: { readonly repository: string }
  readonly sidecar: { readonly resources: unknown; readonly securityContext: unknown }
  readonly config: { readonly issuers: Array<Record<string, unknown>> }
}

const template = (args: readonly string[]): Promise<K8sObject[]> => renderChart(tools, args)
const templateFails = (args: readonly string[]): Promise<string> => renderChartFails(tools, args)

/** The sidecar container, in initContainers (native) or containers. */
function sidecarOf(spec: PodSpec): { container: Container } {
  const found = [...(spec.initContainers ?? []), ...spec.containers].filter((c) => c.name === 'jwt-sidecar')
  assert.equal(found.length, 1, 'the pod must hold exactly one jwt-sidecar container')
  return { container: found[0]! }
}

/** The rendered sidecar.yaml, parsed. */
function sidecarConfigOf(objects: readonly K8sObject[]): Record<string, unknown> {
  const cm = (objects as ConfigMap[]).find((o) => o.kind === 'ConfigMap' && o.data['sidecar.yaml'] !== undefined)
  assert.ok(cm !== undefined, 'no ConfigMap with sidecar.yaml')
  return parse(cm.data['sidecar.yaml']!) as Record<string, unknown>
}

describe('render-time checks, and what the chart leaves to the user', () => {
  test('no image.repository: helm template and helm install fail, saying what to set', async () => {
    assert.equal(DEFAULTS.image.repository, '', 'values.yaml names no image: none is published')
    // (`helm lint` renders in lint mode, where Helm 4 only logs a template's `fail`.)
    for (const args of [['template', RELEASE, CHART_DIR], ['install', RELEASE, CHART_DIR, '--dry-run=client']]) {
      const r = await run(tools.helm, [...args, '--namespace', NAMESPACE], tools.env)
      assert.notEqual(r.code, 0, `helm ${args[0]} without image.repository should fail`)
      assert.ok(`${r.stderr}${r.stdout}`.includes(IMAGE_UNSET), `helm ${args[0]}: the message should say what to set; got:\n${r.stderr}${r.stdout}`)
    }
    const appVersion = (parse(read(join(CHART_DIR, 'Chart.yaml'))) as { appVersion: string }).appVersion
    const image = async (args: string[]): Promise<string> => sidecarOf(one<Deployment>(await template(args), 'Deployment').spec.template.spec).container.image
    assert.equal(await image([]), `${IMAGE_REPOSITORY}:${appVersion}`, 'the tag defaults to the appVersion')
    assert.equal(await image(['--set', 'image.tag=1.2.3']), `${IMAGE_REPOSITORY}:1.2.3`)
    const digest = `sha256:${'a'.repeat(64)}`
    assert.equal(await image(['--set', `image.digest=${digest}`]), `${IMAGE_REPOSITORY}@${digest}`)
    // Inject mode renders no container, so it needs no image (examples/patch.yaml names its own).
    const inject = await run(tools.helm, ['template', 'myapp', CHART_DIR, '--namespace', NAMESPACE, '-f', join(CHART_DIR, 'ci', 'inject-only-values.yaml')], tools.env)
    assert.equal(inject.code, 0, inject.stderr)
  })

  test("the user's app gets no resources or securityContext unless set; the sidecar keeps its own", async () => {
    const defaults = DEFAULTS
    const spec = one<Deployment>(await template([]), 'Deployment').spec.template.spec
    const app = spec.containers.find((c) => c.name === 'app')
    assert.ok(app !== undefined)
    assert.equal(app.resources, undefined, 'no memory limit imposed on the app')
    assert.equal(app.securityContext, undefined, 'no uid or read-only root imposed on the app')
    assert.equal(spec.securityContext, undefined, 'no pod securityContext: it would apply to the app too')
    const { container } = sidecarOf(spec)
    assert.deepEqual(container.securityContext, defaults.sidecar.securityContext, 'the sidecar keeps its restricted profile')
    assert.deepEqual(container.resources, defaults.sidecar.resources)
    // What the user sets reaches the app (and the pod), and the sidecar stays as it was.
    const set = one<Deployment>(await template(['--set', 'app.resources.limits.memory=1Gi', '--set', 'app.securityContext.runAsUser=1000', '--set', 'app.podSecurityContext.fsGroup=2000']), 'Deployment').spec.template.spec
    const setApp = set.containers.find((c) => c.name === 'app')
    assert.ok(setApp !== undefined)
    assert.deepEqual(setApp.resources, { limits: { memory: '1Gi' } })
    assert.deepEqual(setApp.securityContext, { runAsUser: 1000 })
    assert.deepEqual(set.securityContext, { fsGroup: 2000 })
    assert.deepEqual(sidecarOf(set).container, container)
    // ci/everything-on-values.yaml sets a restricted profile for whoami: passed through as written.
    const file = join(CHART_DIR, 'ci', 'everything-on-values.yaml')
    const ci = parse(read(file)) as { app: { securityContext: unknown; resources: unknown } }
    const everything = one<Deployment>(await template(['-f', file]), 'Deployment').spec.template.spec.containers.find((c) => c.name === 'app')
    assert.ok(everything !== undefined)
    assert.deepEqual(everything.securityContext, ci.app.securityContext)
    assert.deepEqual(everything.resources, ci.app.resources)
  })

  test('plain-http key URLs are refused unless loopback or allowInsecureHttp, as the sidecar refuses them (src/http/transport.ts)', async () => {
    // The default issuer without its key URL: each case adds its own.
    const base = Object.fromEntries(Object.entries(DEFAULTS.config.issuers[0]!).filter(([k]) => k !== 'jwksUri'))
    const cases: Array<{ key: 'jwksUri' | 'discoveryUrl' | 'issuer'; url: string; allow?: boolean }> = [
      ...[
        'https://idp.example.com/certs', 'http://idp.example.com/certs', 'HTTP://IDP.example.com/certs', 'http://keycloak.idp.svc.cluster.local:8080/certs',
        'http://10.0.0.5/certs', 'http://localhost:8080/certs', 'http://LocalHost/certs', 'http://127.0.0.1:8080/certs', 'http://127.10.0.1/certs',
        'http://[::1]:9000/certs', 'http://127.0.0.1.nip.io/certs', 'http://localhost.example.com/certs',
      ].map((url) => ({ key: 'jwksUri' as const, url })),
      { key: 'jwksUri', url: 'http://idp.example.com/certs', allow: true },
      { key: 'jwksUri', url: 'http://idp.example.com/certs', allow: false },
      { key: 'discoveryUrl', url: 'http://idp.example.com/realms/corp/.well-known/openid-configuration' },
      { key: 'discoveryUrl', url: 'http://127.0.0.1:8080/realms/corp/.well-known/openid-configuration' },
      { key: 'discoveryUrl', url: 'http://idp.example.com/realms/corp/.well-known/openid-configuration', allow: true },
      { key: 'issuer', url: 'http://idp.example.com/realms/corp' },
      { key: 'issuer', url: 'http://localhost:8080/realms/corp' },
    ]
    const outcomes = await Promise.all(cases.map(async ({ key, url, allow }) => {
      const issuer: Record<string, unknown> = { ...base, ...(allow === undefined ? {} : { allowInsecureHttp: allow }) }
      if (key === 'issuer') Object.assign(issuer, { issuer: url, discovery: true })
      else issuer[key] = url
      const args = ['--set-json', `config.issuers=${JSON.stringify([issuer])}`]
      const refused = refusesPlainHttp(new URL(url), allow === true)
      if (!refused) {
        await template(args)
        return 'rendered'
      }
      const host = new URL(url).hostname
      const err = await templateFails(args)
      assert.ok(err.includes(`config.issuers[0].${key} "${url}" is plain http to ${host}, which is not loopback`), `${key} ${url}: ${err}`)
      assert.ok(err.includes('RFC 8725 §3.10') && err.includes('set config.issuers[0].allowInsecureHttp: true'), `${key} ${url}: the way out: ${err}`)
      return 'refused'
    }))
    assert.deepEqual([outcomes.filter((o) => o === 'refused').length, outcomes.filter((o) => o === 'rendered').length], [9, 10], 'both outcomes are exercised')
    // A ${VAR} URL is resolved only at start-up: left to the sidecar's own check.
    await template(['--set-json', `config.issuers=${JSON.stringify([{ ...base, jwksUri: 'http://$' + '{IDP_HOST}/certs' }])}`])
    // Inject mode renders the config too, so it checks too.
    assert.match(
      await templateFails(['-f', join(CHART_DIR, 'ci', 'inject-only-values.yaml'), '--set-json', `config.issuers=${JSON.stringify([{ ...base, jwksUri: 'http://idp.example.com/certs' }])}`]),
      /config\.issuers\[0\]\.jwksUri "http:\/\/idp\.example\.com\/certs" is plain http/,
    )
  })

  test('app.healthPath: the first route that matches GET <path> must admit a request without a token, as the sidecar decides (src/policy/routes.ts)', async () => {
    const rendered = sidecarConfigOf(await template([]))
    type Route = { name: string; path: string; auth?: string; methods?: string[]; caseSensitive?: boolean }
    const health: Route = { name: 'health', path: '/health', methods: ['GET'], auth: 'none' }
    const rest: Route = { name: 'default', path: '/**', auth: 'required' }
    const cases: Array<{ healthPath: string; routes: Route[] }> = [
      { healthPath: '/health', routes: [health, rest] },
      { healthPath: '/health?full=1', routes: [health, rest] },
      { healthPath: '/health/', routes: [health, rest] }, // none/optional match exactly as written
      { healthPath: '/Health', routes: [health, rest] },
      { healthPath: '/Health', routes: [{ ...health, caseSensitive: false }, rest] },
      { healthPath: '/ready', routes: [health, rest] },
      { healthPath: '/health', routes: [{ name: 'api', path: '/**', methods: ['GET'] }, { ...health, methods: [] }] },
      { healthPath: '/HEALTH/', routes: [{ name: 'blocked', path: '/health', auth: 'deny' }, { name: 'open', path: '/**', auth: 'none' }] },
      { healthPath: '/health', routes: [{ ...health, methods: ['POST'] }, rest] },
      { healthPath: '/health', routes: [{ name: 'api', path: '/api/**' }] }, // no route at all
      { healthPath: '/probes/ready', routes: [{ name: 'probes', path: '/probes/**', auth: 'none' }, rest] },
      { healthPath: '/probes', routes: [{ name: 'probes', path: '/probes/**', auth: 'none' }, rest] },
      { healthPath: '/v1/ready', routes: [{ name: 'ready', path: '/*/ready', auth: 'optional', methods: ['get', 'HEAD'] }, rest] },
      { healthPath: '/v1/x/ready', routes: [{ name: 'ready', path: '/*/ready', auth: 'optional' }, rest] },
      { healthPath: '/aXb', routes: [{ name: 'dot', path: '/a.b', auth: 'none' }, rest] }, // a literal dot, not a regexp one
      { healthPath: '/a.b', routes: [{ name: 'dot', path: '/a.b', auth: 'none' }, rest] },
    ]
    const outcomes = await Promise.all(cases.map(async ({ healthPath, routes }, n) => {
      // The sidecar's own decision for the kubelet's GET: the config as rendered, these routes.
      const config = parseConfig(stringify({ ...rendered, routes }), `case ${n}`, {})
      const route = createRouteMatcher(config.routes).match('GET', healthPath.replace(/[?#].*$/, ''))
      const args = ['--set-json', `config.routes=${JSON.stringify(routes)}`, '--set-json', `app.healthPath=${JSON.stringify(healthPath)}`]
      const where = `case ${n} (${healthPath})`
      if (route?.auth === 'none' || route?.auth === 'optional') {
        const app = one<Deployment>(await template(args), 'Deployment').spec.template.spec.containers.find((c) => c.name === 'app')
        assert.equal(app?.readinessProbe?.httpGet?.path, healthPath, where)
        return 'rendered'
      }
      const err = await templateFails(args)
      const path = healthPath.replace(/[?#].*$/, '')
      const why = route === undefined
        ? `no route in config.routes matches GET ${path}, so the sidecar answers the kubelet's readiness probe with 403`
        : `the first route in config.routes that matches GET ${path} is routes[${config.routes.indexOf(route)}] (${route.name}, auth: ${route.auth}), so the kubelet's readiness probe, which carries no token, gets ${route.auth === 'deny' ? 403 : 401}`
      assert.ok(err.includes(`app.healthPath "${healthPath}": ${why}`), `${where}: expected "${why}", got: ${err}`)
      assert.ok(err.includes(`add the route {name: health, path: ${path}, methods: [GET], auth: none} to config.routes`), `${where}: the way out: ${err}`)
      return 'refused'
    }))
    assert.deepEqual([outcomes.filter((o) => o === 'refused').length, outcomes.filter((o) => o === 'rendered').length], [9, 7], 'both outcomes are exercised')
    // No probe, no check.
    const none = one<Deployment>(await template(['--set-json', `config.routes=${JSON.stringify([rest])}`, '--set', 'app.healthPath=']), 'Deployment')
    assert.equal(none.spec.template.spec.containers.find((c) => c.name === 'app')?.readinessProbe, undefined)
  })
})

