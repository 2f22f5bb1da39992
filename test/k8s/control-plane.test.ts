/**
 * The k8s tier's control plane itself: the KVCluster CRD as the apiserver enforces it (schema,
 * CEL, defaults, subresources, printer columns), service-account tokens from the TokenRequest
 * API under RBAC, and the controller-manager's garbage collector acting on owner references.
 */
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import {
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node'
import { createFromYaml, k8sSuite, repoRoot, waitEstablished, waitFor } from './harness/index.js'

const { test, env } = k8sSuite('control-plane')

const KVC = { group: 'ringkv.io', version: 'v1alpha1', plural: 'kvclusters', namespace: 'default' }
const kvcPath = (name = '') => `/apis/ringkv.io/v1alpha1/namespaces/default/kvclusters${name ? `/${name}` : ''}`

/** The status code and message of a rejected request (client-node throws ApiException). */
async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p
  } catch (err) {
    const e = err as { code?: number; body?: unknown }
    const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body)
    return { code: e.code ?? 0, message: body }
  }
  throw new Error('expected the request to be rejected, but it succeeded')
}

test('the KVCluster CRD installs and its schema rejects invalid objects', async () => {
  const e = env()
  await createFromYaml(e, join(repoRoot, 'manifests', 'crd', 'kvcluster.yaml'))
  await waitEstablished(e, 'kvclusters.ringkv.io')
  const api = e.cp.kc.makeApiClient(CustomObjectsApi)
  const kvc = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'ringkv.io/v1alpha1', kind: 'KVCluster', metadata: { name }, spec })

  // Defaults fill what the user left out.
  const created = (await api.createNamespacedCustomObject({ ...KVC, body: kvc('demo', {}) })) as { spec: Record<string, unknown> }
  assert.equal(created.spec.replicas, 3)
  assert.equal(created.spec.replicationFactor, 3)
  assert.equal(created.spec.pvcRetentionPolicy, 'Delete')
  assert.equal(created.spec.numTokens, 16)
  assert.equal(created.spec.paused, false)
  assert.equal(created.spec.storage, { size: '1Gi' })

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['zero replicas', { replicas: 0 }, /spec\.replicas/],
    ['zero replication factor', { replicationFactor: 0 }, /spec\.replicationFactor/],
    ['unknown retention policy', { pvcRetentionPolicy: 'Sometimes' }, /spec\.pvcRetentionPolicy.*Unsupported value/],
    ['replicas as a string', { replicas: 'three' }, /spec\.replicas/],
    ['a storage size that is not a quantity', { storage: { size: 'big' } }, /spec\.storage\.size/],
  ]
  for (const [what, spec, why] of bad) {
    const r = await rejection(api.createNamespacedCustomObject({ ...KVC, body: kvc(`bad-${Object.keys(spec)[0]!.toLowerCase()}`, spec) }))
    assert.is(r.code, 422, `${what}: ${r.message}`)
    assert.match(r.message, why, what)
  }
})

test('replicationFactor is immutable (CEL transition rule); replicas is not', async () => {
  const api = env().cp.kc.makeApiClient(CustomObjectsApi)
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
  const r = await rejection(api.patchNamespacedCustomObject({ ...KVC, name: 'demo', body: { spec: { replicationFactor: 5 } } }, merge))
  assert.is(r.code, 422)
  assert.match(r.message, /replicationFactor is immutable/)
  const scaled = (await api.patchNamespacedCustomObject({ ...KVC, name: 'demo', body: { spec: { replicas: 4 } } }, merge)) as { spec: { replicas: number } }
  assert.is(scaled.spec.replicas, 4)
})

test('scale and status subresources, printer columns and the short name', async () => {
  const { cp } = env()
  // kubectl scale kvc/demo --replicas 5 goes through the scale subresource.
  const scale = await cp.raw(`${kvcPath('demo')}/scale`)
  assert.is(scale.status, 200, scale.text)
  assert.is(scale.json.kind, 'Scale')
  assert.is(scale.json.spec.replicas, 4)
  const put = await cp.raw(`${kvcPath('demo')}/scale`, { method: 'PUT', body: { ...scale.json, spec: { replicas: 5 } } })
  assert.is(put.status, 200, put.text)
  assert.is((await cp.raw(kvcPath('demo'))).json.spec.replicas, 5)

  // Status is written through its own subresource only; a spec write there is ignored.
  const obj = (await cp.raw(kvcPath('demo'))).json
  const status = { phase: 'Ready', replicas: 5, readyReplicas: 4, observedGeneration: obj.metadata.generation, nodes: [{ name: 'demo-0', state: 'AVAILABLE', up: true }] }
  const st = await cp.raw(`${kvcPath('demo')}/status`, { method: 'PUT', body: { ...obj, spec: { ...obj.spec, replicas: 9 }, status } })
  assert.is(st.status, 200, st.text)
  const after = (await cp.raw(kvcPath('demo'))).json
  assert.is(after.spec.replicas, 5)
  assert.is(after.status.phase, 'Ready')
  const badPhase = await cp.raw(`${kvcPath('demo')}/status`, { method: 'PUT', body: { ...after, status: { ...status, phase: 'Happy' } } })
  assert.is(badPhase.status, 422, badPhase.text)
  assert.is((await cp.raw(`${kvcPath('demo')}/scale`)).json.status.replicas, 5)

  // kubectl get kvc: the Table the apiserver renders has the columns of design §3.4.
  const table = await cp.raw(kvcPath(), { headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } })
  assert.is(table.status, 200, table.text)
  const columns = table.json.columnDefinitions.map((c: { name: string }) => c.name)
  assert.equal(columns, ['Name', 'Replicas', 'Ready', 'Phase', 'Age'])
  const row = table.json.rows.find((r: { cells: unknown[] }) => r.cells[0] === 'demo')
  assert.equal(row.cells.slice(0, 4), ['demo', 5, 4, 'Ready'])

  const discovery = await cp.raw('/apis/ringkv.io/v1alpha1')
  const resource = discovery.json.resources.find((r: { name: string }) => r.name === 'kvclusters')
  assert.equal(resource.shortNames, ['kvc'])
  assert.ok(discovery.json.resources.some((r: { name: string }) => r.name === 'kvclusters/scale'))
})

test('a TokenRequest token acts as its ServiceAccount, and RBAC denies what it was not granted', async () => {
  const { cp } = env()
  const core = cp.kc.makeApiClient(CoreV1Api)
  const rbac = cp.kc.makeApiClient(RbacAuthorizationV1Api)
  const namespace = 'default'
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } })
  await rbac.createNamespacedRole({
    namespace,
    body: { metadata: { name: 'configmap-reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] },
  })
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'reader-reads-configmaps' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
    },
  })
  await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'settings' }, data: { colour: 'blue' } } })
  const tr = await core.createNamespacedServiceAccountToken({
    name: 'reader',
    namespace,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds: 600 } },
  })
  const token = tr.status!.token
  assert.ok(token.split('.').length === 3, 'a JWT')

  const asReader = cp.clientForToken(token)
  const who = await asReader.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } })
  assert.is(who.status?.userInfo?.username, 'system:serviceaccount:default:reader')
  assert.ok(who.status?.userInfo?.groups?.includes('system:serviceaccounts:default'))

  const readerCore = asReader.makeApiClient(CoreV1Api)
  // The authorizer reads RBAC objects from a cache: a new RoleBinding takes effect (the 403s
  // stop) a moment after it was created.
  const cm = await waitFor('the RoleBinding to let the reader get the ConfigMap', () =>
    readerCore.readNamespacedConfigMap({ name: 'settings', namespace }),
  { timeoutMs: 15_000, intervalMs: 200 })
  assert.is(cm.data?.colour, 'blue')
  // Granted get/list on configmaps in default — nothing else.
  assert.is((await rejection(readerCore.listNamespacedSecret({ namespace }))).code, 403)
  assert.is((await rejection(readerCore.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'x' } } }))).code, 403)
  assert.is((await rejection(readerCore.listNamespacedConfigMap({ namespace: 'kube-system' }))).code, 403)
  // An unknown token is not anyone.
  assert.is((await cp.raw('/api/v1/namespaces/default/configmaps', { token: `${token.slice(0, -4)}AAAA` })).status, 401)
})

test('the garbage collector deletes dependents of a deleted owner', async () => {
  const core = env().cp.kc.makeApiClient(CoreV1Api)
  const namespace = 'default'
  const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' } } })
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: 'owned', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid!, controller: true }] },
      stringData: { k: 'v' },
    },
  })
  await core.deleteNamespacedConfigMap({ name: 'owner', namespace })
  await waitFor('the owned secret to be collected', async () => {
    try {
      await core.readNamespacedSecret({ name: 'owned', namespace })
      return false
    } catch (err) {
      return (err as { code?: number }).code === 404
    }
  }, { timeoutMs: 30_000 })
})

test.run()
