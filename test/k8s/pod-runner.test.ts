/**
 * The pod runner as a kubelet stand-in, driven by the real controllers: a StatefulSet created
 * through the API gets pods from the controller-manager, nodes from the scheduler, volumes from
 * the runner's provisioner, and the runner makes the pods Running and Ready. Then crashes,
 * graceful deletion, grace-period overrun, scale-down and volume reclaim. The container is the
 * runner's own test program (test/k8s/fixtures/probe-server.ts).
 */
import * as assert from 'uvu/assert'
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node'
import { existsSync } from 'node:fs'
import { k8sSuite, repoRoot, waitFor } from './harness/index.js'
import { probeServerProfile } from './harness/pod-spec.js'

const { test, env } = k8sSuite('pod-runner', { podRunner: true, runner: { profiles: [probeServerProfile(repoRoot)] } })
const namespace = 'default'

function statefulSet(replicas: number, termDelayMs: number, graceSeconds: number): V1StatefulSet {
  return {
    metadata: { name: 'web' },
    spec: {
      serviceName: 'web-peers',
      replicas,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          terminationGracePeriodSeconds: graceSeconds,
          containers: [{
            name: 'srv',
            image: 'ringkv-probe-server:1',
            args: ['--listen', '0.0.0.0:8080', '--data-dir', '/data/srv', '--ready-after-ms', '300', '--term-delay-ms', String(termDelayMs)],
            env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }, { name: 'GREETING', value: 'hi $(POD_NAME)' }],
            ports: [{ name: 'http', containerPort: 8080 }],
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
            readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1 },
          }],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  }
}

const ready = (p: V1Pod | undefined) => p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false

async function pod(name: string): Promise<V1Pod | undefined> {
  try {
    return await env().cp.kc.makeApiClient(CoreV1Api).readNamespacedPod({ name, namespace })
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined
    throw err
  }
}

/** GET a JSON path of a pod's server through the address the runner gave it. */
async function fromPod(name: string, path: string): Promise<any> {
  const [addr] = env().runner!.resolveHostPort(`${name}.web-peers.${namespace}.svc:8080`)
  const res = await fetch(`http://${addr}${path}`)
  return res.json()
}

test('a StatefulSet gets scheduled, provisioned, Running and Ready pods', async () => {
  const { cp, runner } = env()
  const core = cp.kc.makeApiClient(CoreV1Api)
  await core.createNamespacedService({
    namespace,
    body: { metadata: { name: 'web-peers' }, spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector: { app: 'web' }, ports: [{ name: 'http', port: 8080 }] } },
  })
  await cp.kc.makeApiClient(AppsV1Api).createNamespacedStatefulSet({ namespace, body: statefulSet(2, 0, 5) })
  await waitFor('web-0 and web-1 Ready', async () => ready(await pod('web-0')) && ready(await pod('web-1')), { timeoutMs: 60_000 })
  // The StatefulSet controller writes status after it sees the pods Ready, not with them.
  await waitFor('StatefulSet status.readyReplicas = 2', async () =>
    (await cp.kc.makeApiClient(AppsV1Api).readNamespacedStatefulSet({ name: 'web', namespace })).status?.readyReplicas === 2,
  { timeoutMs: 30_000, intervalMs: 500 })

  const p0 = (await pod('web-0'))!
  assert.is(p0.status?.phase, 'Running')
  assert.ok(runner!.nodeNames.includes(p0.spec!.nodeName!), 'bound by kube-scheduler to a runner node')
  assert.match(p0.status!.podIP!, /^127\.\d+\.\d+\.\d+$/)
  assert.is.not(p0.status!.podIP, (await pod('web-1'))!.status!.podIP)
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'data-web-0', namespace })
  assert.is(claim.status?.phase, 'Bound')

  // The container saw what a container would: its args with the volume and the pod address
  // substituted, fieldRef and $(VAR) env, cluster DNS.
  const seen = await fromPod('web-0', '/env')
  assert.is(seen.env.POD_NAME, 'web-0')
  assert.is(seen.env.GREETING, 'hi web-0')
  assert.is(seen.argv[1], `${p0.status!.podIP}:8080`)
  assert.ok(seen.argv[3].endsWith('/srv') && !seen.argv[3].startsWith('/data'), seen.argv[3])
  assert.is(seen.starts, 1)
  const peers = await fromPod('web-0', '/resolve?host=web-peers')
  assert.equal(peers.addresses.sort(), [p0.status!.podIP, (await pod('web-1'))!.status!.podIP].sort())
  const one = await fromPod('web-1', `/resolve?host=web-0.web-peers.${namespace}.svc.cluster.local`)
  assert.equal(one.addresses, [p0.status!.podIP])
  assert.equal((await fromPod('web-0', '/resolve?host=nothing-here.default.svc')).error, 'ENOTFOUND')
  assert.is(runner!.resolver({ name: 'web-1', namespace, clusterName: 'web' }, 'client'), `http://${(await pod('web-1'))!.status!.podIP}:8080`)
})

test('a crashed container is restarted, and its volume survives', async () => {
  const { runner } = env()
  await runner!.kill(namespace, 'web-0')
  await waitFor('web-0 restarted and Ready', async () => {
    const p = await pod('web-0')
    return ready(p) && p?.status?.containerStatuses?.[0]?.restartCount === 1
  }, { timeoutMs: 30_000 })
  const p = (await pod('web-0'))!
  assert.is(p.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 137)
  assert.is((await fromPod('web-0', '/env')).starts, 2)
})

test('deleting a pod sends SIGTERM and waits for the process; the StatefulSet brings it back with its volume', async () => {
  const { cp } = env()
  const before = (await pod('web-1'))!
  await cp.kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ name: 'web-1', namespace })
  await waitFor('a new web-1 Ready', async () => {
    const p = await pod('web-1')
    return p && p.metadata?.uid !== before.metadata?.uid && ready(p)
  }, { timeoutMs: 60_000 })
  assert.is((await fromPod('web-1', '/env')).starts, 2)
  assert.match(env().runner!.logs(namespace, 'web-1', { uid: before.metadata!.uid }), /SIGTERM; exiting in 0 ms/)
})

test('a process that outlives the grace period is killed when it ends', async () => {
  const { cp, runner } = env()
  const apps = cp.kc.makeApiClient(AppsV1Api)
  // Ten seconds to exit after SIGTERM, but a grace period of one: the runner must SIGKILL.
  const spec = statefulSet(2, 10_000, 1).spec!
  await apps.patchNamespacedStatefulSet(
    { name: 'web', namespace, body: { spec: { template: spec.template } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  )
  // The rolling update replaces web-1, then web-0; wait for the new web-0.
  const victim = await waitFor('web-0 of the new revision Ready', async () => {
    const s = await apps.readNamespacedStatefulSet({ name: 'web', namespace })
    const p = await pod('web-0')
    const current = p?.metadata?.labels?.['controller-revision-hash'] === s.status?.updateRevision
    return current && s.metadata?.generation === s.status?.observedGeneration && ready(p) && !p?.metadata?.deletionTimestamp ? p : undefined
  }, { timeoutMs: 90_000 })
  const started = Date.now()
  await cp.kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ name: 'web-0', namespace })
  await waitFor('the old web-0 gone', async () => (await pod('web-0'))?.metadata?.uid !== victim.metadata?.uid, { timeoutMs: 30_000, intervalMs: 100 })
  const took = Date.now() - started
  assert.ok(took >= 900 && took < 8_000, `deleted after ${took} ms; grace 1 s, process wanted 10 s`)
  assert.match(runner!.logs(namespace, 'web-0', { uid: victim.metadata!.uid }), /SIGTERM; exiting in 10000 ms/)
})

test('scaling down removes the pod; deleting its claim reclaims the volume', async () => {
  const { cp } = env()
  const core = cp.kc.makeApiClient(CoreV1Api)
  await waitFor('web-0 Ready again', async () => ready(await pod('web-0')), { timeoutMs: 60_000 })
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'data-web-1', namespace })
  const pv = await core.readPersistentVolume({ name: claim.spec!.volumeName! })
  const dir = pv.spec!.hostPath!.path
  assert.ok(existsSync(`${dir}/srv/starts`), 'the volume holds the data the pod wrote')
  await cp.kc.makeApiClient(AppsV1Api).patchNamespacedStatefulSet(
    { name: 'web', namespace, body: { spec: { replicas: 1 } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )
  await waitFor('web-1 gone', async () => !(await pod('web-1')), { timeoutMs: 30_000 })
  assert.ok(existsSync(dir), 'StatefulSet claims outlive their pods')
  await core.deleteNamespacedPersistentVolumeClaim({ name: 'data-web-1', namespace })
  await waitFor('the volume reclaimed', async () => {
    try {
      await core.readPersistentVolume({ name: pv.metadata!.name! })
      return false
    } catch (err) {
      return (err as { code?: number }).code === 404 && !existsSync(dir)
    }
  }, { timeoutMs: 30_000 })
})

test.run()
