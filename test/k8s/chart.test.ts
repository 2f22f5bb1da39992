/**
 * The operator's Helm chart against the real control plane: it lints, renders what the values
 * ask for, matches the plain manifests/ it is rendered into, installs (CRD from crds/, RBAC,
 * Deployment), its operator pod runs under the chart's ServiceAccount, and that account may do
 * what the operator needs and nothing else. Then it uninstalls cleanly.
 */
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { AppsV1Api, AuthenticationV1Api, AuthorizationV1Api, CoreV1Api, KubeConfig, loadAllYaml, RbacAuthorizationV1Api, type V1ResourceAttributes } from '@kubernetes/client-node'
import { helm, k8sSuite, repoRoot, waitEstablished, waitFor } from './harness/index.js'

const { test, env } = k8sSuite('chart', { podRunner: true })
const chart = join(repoRoot, 'charts', 'ringkv-operator')
const release = 'ringkv-operator'
const ns = 'ringkv-system'

async function template(...set: string[]): Promise<{ kind: string; metadata: { name: string }; [k: string]: any }[]> {
  const r = await helm(env(), ['template', release, chart, '--namespace', ns, ...set.flatMap((s) => ['--set', s])])
  assert.is(r.code, 0, r.stderr)
  return loadAllYaml(r.stdout).filter(Boolean)
}

const absent = async (read: () => Promise<unknown>) => {
  try {
    await read()
    return false
  } catch (err) {
    return (err as { code?: number }).code === 404
  }
}

test('helm lint passes strictly', async () => {
  const r = await helm(env(), ['lint', '--strict', chart])
  assert.is(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/)
})

test('helm template renders what the values ask for', async () => {
  const objs = await template()
  assert.equal(objs.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'ServiceAccount'])
  const dep = objs.find((o) => o.kind === 'Deployment')!
  const binding = objs.find((o) => o.kind === 'ClusterRoleBinding')!
  const pod = dep.spec.template.spec
  assert.is(pod.serviceAccountName, binding.subjects[0].name)
  assert.is(binding.subjects[0].namespace, ns)
  assert.is(pod.containers[0].image, 'ringkv:0.1.0')
  assert.equal(pod.containers[0].args, ['operator'])

  const scoped = (await template('watchNamespace=team-a', 'image.tag=9.9.9')).find((o) => o.kind === 'Deployment')!
  assert.equal(scoped.spec.template.spec.containers[0].args, ['operator', '--namespace=team-a'])
  assert.is(scoped.spec.template.spec.containers[0].image, 'ringkv:9.9.9')
  assert.equal((await template('rbac.create=false')).map((o) => o.kind).sort(), ['Deployment', 'ServiceAccount'])

  const withCrds = await helm(env(), ['template', release, chart, '--namespace', ns, '--include-crds'])
  assert.ok(loadAllYaml(withCrds.stdout).some((o: { kind?: string }) => o?.kind === 'CustomResourceDefinition'))
})

test('manifests/ is the rendering of the chart', () => {
  // Exits 1 and names the stale files when someone edited one side only.
  execFileSync(process.execPath, [join(repoRoot, 'scripts', 'k8s', 'render-manifests.mjs'), '--check', '--helm', env().binaries.helm], { stdio: 'pipe' })
  assert.is(
    readFileSync(join(repoRoot, 'manifests', 'crd', 'kvcluster.yaml'), 'utf8'),
    readFileSync(join(chart, 'crds', 'kvcluster.yaml'), 'utf8'),
  )
})

test('helm install: CRD, RBAC and an operator pod running as the chart ServiceAccount', async () => {
  const e = env()
  const r = await helm(e, ['install', release, chart, '--namespace', ns, '--create-namespace'])
  assert.is(r.code, 0, r.stdout + r.stderr)
  const status = await helm(e, ['status', release, '--namespace', ns, '-o', 'json'])
  assert.is(JSON.parse(status.stdout).info.status, 'deployed')
  await waitEstablished(e, 'kvclusters.ringkv.io')

  // The Deployment's pod is created by the controllers, bound by the scheduler and started by
  // the pod runner with a token of the pod's ServiceAccount, as a kubelet would mount it.
  const core = e.cp.kc.makeApiClient(CoreV1Api)
  const podName = await waitFor('the operator pod to be started', async () => {
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/name=ringkv-operator' })
    const p = pods.items.find((x) => x.spec?.nodeName && e.runner!.podInfo(ns, x.metadata!.name!)?.kubeconfig)
    return p?.metadata?.name
  }, { timeoutMs: 60_000 })
  const kc = new KubeConfig()
  kc.loadFromFile(e.runner!.podInfo(ns, podName)!.kubeconfig!)
  const who = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } })
  assert.is(who.status?.userInfo?.username, `system:serviceaccount:${ns}:${release}`)
  // A bound token carries the pod it was issued for.
  assert.equal(who.status?.userInfo?.extra?.['authentication.kubernetes.io/pod-name'], [podName])

  const authz = kc.makeApiClient(AuthorizationV1Api)
  const can = async (a: V1ResourceAttributes) =>
    (await authz.createSelfSubjectAccessReview({ body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: a } } })).status!.allowed
  const allowed: V1ResourceAttributes[] = [
    { group: 'ringkv.io', resource: 'kvclusters', verb: 'watch', namespace: 'default' },
    { group: 'ringkv.io', resource: 'kvclusters', subresource: 'status', verb: 'patch', namespace: 'default' },
    { group: 'ringkv.io', resource: 'kvclusters', subresource: 'scale', verb: 'update', namespace: 'default' },
    { group: 'apps', resource: 'statefulsets', verb: 'create', namespace: 'default' },
    { group: '', resource: 'services', verb: 'patch', namespace: 'team-a' },
    { group: '', resource: 'secrets', verb: 'create', namespace: 'default' },
    { group: '', resource: 'persistentvolumeclaims', verb: 'delete', namespace: 'default' },
    { group: '', resource: 'pods', verb: 'list', namespace: 'default' },
    { group: 'policy', resource: 'poddisruptionbudgets', verb: 'create', namespace: 'default' },
    { group: 'events.k8s.io', resource: 'events', verb: 'create', namespace: 'default' },
    { group: 'coordination.k8s.io', resource: 'leases', verb: 'update', namespace: ns },
  ]
  const denied: V1ResourceAttributes[] = [
    { group: '', resource: 'nodes', verb: 'delete' },
    { group: 'rbac.authorization.k8s.io', resource: 'clusterroles', verb: 'create' },
    { group: '', resource: 'pods', subresource: 'exec', verb: 'create', namespace: 'default' },
    { group: '', resource: 'pods', verb: 'create', namespace: 'default' },
    { group: '', resource: 'configmaps', verb: 'get', namespace: 'default' },
    { group: 'ringkv.io', resource: 'kvclusters', verb: 'delete', namespace: 'default' },
    { group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions', verb: 'create' },
  ]
  for (const a of allowed) assert.ok(await can(a), `allowed: ${JSON.stringify(a)}`)
  for (const a of denied) assert.not.ok(await can(a), `denied: ${JSON.stringify(a)}`)
  // And for real, not only by review: the operator's token can list StatefulSets, not Nodes.
  await kc.makeApiClient(AppsV1Api).listStatefulSetForAllNamespaces()
  assert.ok(await kc.makeApiClient(CoreV1Api).listNode().then(() => false, (err: { code?: number }) => err.code === 403))
})

test('helm uninstall removes what it installed, and keeps the CRD (Helm never deletes crds/)', async () => {
  const e = env()
  const r = await helm(e, ['uninstall', release, '--namespace', ns, '--wait'])
  assert.is(r.code, 0, r.stdout + r.stderr)
  const rbac = e.cp.kc.makeApiClient(RbacAuthorizationV1Api)
  const apps = e.cp.kc.makeApiClient(AppsV1Api)
  const core = e.cp.kc.makeApiClient(CoreV1Api)
  await waitFor('the release objects gone', async () =>
    (await absent(() => apps.readNamespacedDeployment({ name: release, namespace: ns }))) &&
    (await absent(() => core.readNamespacedServiceAccount({ name: release, namespace: ns }))) &&
    (await absent(() => rbac.readClusterRole({ name: release }))))
  await waitEstablished(e, 'kvclusters.ringkv.io')
})

test.run()
