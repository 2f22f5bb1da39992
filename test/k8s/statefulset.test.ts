/**
 * Real `ringkv node` pods on the real control plane, laid out as design §3.4 says the operator
 * lays them out (token Secret, headless `<name>-peers` service publishing not-ready addresses,
 * Parallel StatefulSet, --auto-join=false, readiness = /readyz). The test plays the operator's
 * part by hand: it joins the pods one at a time through their admin API, reached with the pod
 * runner's NodeAddressResolver, and watches the StatefulSet become ready. Then data goes in
 * through one pod and out through another, and a crashed pod comes back Ready with its data.
 */
import * as assert from 'uvu/assert'
import { AppsV1Api, CoreV1Api, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node'
import { AdminClient } from '../../node/client/admin-client.js'
import { KvClient } from '../../node/client/kv-client.js'
import { k8sSuite, waitFor } from './harness/index.js'

const { test, env } = k8sSuite('ringkv-statefulset', { podRunner: true })
const namespace = 'default'
const name = 'demo'
const token = 'k8s-tier-cluster-token'

function nodeStatefulSet(replicas: number): V1StatefulSet {
  const labels = { 'app.kubernetes.io/name': 'ringkv', 'app.kubernetes.io/instance': name }
  return {
    metadata: { name, labels },
    spec: {
      serviceName: `${name}-peers`,
      replicas,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 10,
          containers: [{
            name: 'node',
            image: 'ringkv:0.1.0',
            args: [
              'node',
              '--name=$(POD_NAME)',
              '--data-dir=/data',
              '--listen=0.0.0.0:8080',
              '--peer-listen=0.0.0.0:7000',
              `--advertise=$(POD_NAME).${name}-peers.$(POD_NAMESPACE).svc:7000`,
              `--seeds=${name}-peers.$(POD_NAMESPACE).svc:7000`,
              '--replication-factor=3',
              '--num-tokens=16',
              '--cluster-token-file=/etc/ringkv/token',
              '--auto-join=false',
            ],
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'RINGKV_LOG_LEVEL', value: 'warn' },
            ],
            ports: [{ name: 'client', containerPort: 8080 }, { name: 'peer', containerPort: 7000 }],
            readinessProbe: { httpGet: { path: '/readyz', port: 'client' }, periodSeconds: 2 },
            livenessProbe: { httpGet: { path: '/healthz', port: 'client' }, periodSeconds: 5, failureThreshold: 6 },
            volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'token', mountPath: '/etc/ringkv', readOnly: true }],
          }],
          volumes: [{ name: 'token', secret: { secretName: `${name}-token` } }],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  }
}

const ready = (p: V1Pod | undefined) => p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
const pods = ['demo-0', 'demo-1', 'demo-2']

function admin(pod: string): AdminClient {
  return new AdminClient(env().runner!.resolver({ name: pod, namespace, clusterName: name }, 'peer'), token)
}
function kv(pod: string): KvClient {
  return new KvClient(env().runner!.resolver({ name: pod, namespace, clusterName: name }, 'client'))
}
async function readPod(pod: string): Promise<V1Pod> {
  return env().cp.kc.makeApiClient(CoreV1Api).readNamespacedPod({ name: pod, namespace })
}

test('three ringkv node pods start, join one at a time, and become Ready', async () => {
  const { cp } = env()
  const core = cp.kc.makeApiClient(CoreV1Api)
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: `${name}-token` }, stringData: { token } } })
  const selector = { 'app.kubernetes.io/name': 'ringkv', 'app.kubernetes.io/instance': name }
  await core.createNamespacedService({
    namespace,
    body: { metadata: { name: `${name}-peers` }, spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector, ports: [{ name: 'peer', port: 7000 }, { name: 'client', port: 8080 }] } },
  })
  await core.createNamespacedService({ namespace, body: { metadata: { name }, spec: { selector, ports: [{ name: 'client', port: 8080, targetPort: 'client' }] } } })
  await cp.kc.makeApiClient(AppsV1Api).createNamespacedStatefulSet({ namespace, body: nodeStatefulSet(3) })

  // All three start at once and wait in JOINING: running, not ready.
  await waitFor('three nodes answering in JOINING', async () => {
    const states = await Promise.all(pods.map((p) => admin(p).status(2_000).then((s) => s.state, () => undefined)))
    return states.every((s) => s === 'JOINING')
  }, { timeoutMs: 90_000, intervalMs: 500 })
  assert.not.ok(ready(await readPod('demo-0')), 'a JOINING node is not Ready')

  for (const p of pods) {
    // As the operator does: a node may ask to be asked again (still discovering peers).
    await waitFor(`${p} to accept the join`, () => admin(p).join().then(() => true), { timeoutMs: 60_000, intervalMs: 1_000 })
    await waitFor(`${p} AVAILABLE and Ready`, async () => (await admin(p).status(2_000)).state === 'AVAILABLE' && ready(await readPod(p)), { timeoutMs: 90_000, intervalMs: 500 })
  }
  // The StatefulSet controller writes status after it sees the pods Ready, not with them.
  await waitFor('StatefulSet status.readyReplicas = 3', async () =>
    (await cp.kc.makeApiClient(AppsV1Api).readNamespacedStatefulSet({ name, namespace })).status?.readyReplicas === 3,
  { timeoutMs: 30_000, intervalMs: 500 })
  // The nodes found each other through the headless service's DNS name.
  await waitFor('every node to see three AVAILABLE nodes', async () => {
    const views = await Promise.all(pods.map((p) => kv(p).cluster()))
    return views.every((v) => v.nodes.filter((n) => n.state === 'AVAILABLE' && n.up).length === 3)
  }, { timeoutMs: 60_000, intervalMs: 500 })
})

test('a write through one pod is read through another', async () => {
  await kv('demo-0').put('greeting', 'hello from demo-0', { consistency: 'quorum' })
  const got = await kv('demo-2').get('greeting', { consistency: 'quorum' })
  assert.is(got?.value.toString(), 'hello from demo-0')
})

test('a crashed node pod is restarted by the runner and comes back Ready with its data', async () => {
  const { runner } = env()
  // A ONE read through a replica is answered from its own store. The QUORUM write may have
  // been acknowledged before it reached demo-1: wait until demo-1 holds it, so that the read
  // after the crash tests what survived the crash and not how fast replication was.
  await waitFor('demo-1 to hold the greeting itself', async () =>
    (await kv('demo-1').get('greeting', { consistency: 'one' }))?.value.toString() === 'hello from demo-0',
  { timeoutMs: 15_000, intervalMs: 200 })
  const before = (await readPod('demo-1')).status?.containerStatuses?.[0]?.restartCount ?? 0
  await runner!.kill(namespace, 'demo-1')
  await waitFor('demo-1 restarted and Ready', async () => {
    const p = await readPod('demo-1')
    return ready(p) && (p.status?.containerStatuses?.[0]?.restartCount ?? 0) > before
  }, { timeoutMs: 90_000, intervalMs: 500 })
  // Ready can come before the restarted node has heard from a peer, and until then it refuses
  // with UNAVAILABLE: retry refusals only; the first answer is the one checked.
  const { got } = await waitFor('demo-1 to answer a read', async () => ({ got: await kv('demo-1').get('greeting', { consistency: 'one' }) }), { timeoutMs: 30_000, intervalMs: 200 })
  assert.is(got?.value.toString(), 'hello from demo-0')
})

test.run()
