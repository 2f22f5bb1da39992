/**
 * The pod runner's translation of a container spec into a local process (harness/pod-spec.ts):
 * pure, so checked without a control plane — $(VAR) expansion, env sources, mount paths,
 * entrypoints, and the address flags, including a port that had to move.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { V1Container, V1Pod } from '@kubernetes/client-node'
import { buildLaunch, expand, imageRepository, LaunchError, localPaths, ringkvProfile, type LaunchContext } from './harness/pod-spec.js'

const pod: V1Pod = {
  metadata: { name: 'demo-1', namespace: 'team-a', uid: 'u-1', labels: { app: 'ringkv' } },
  spec: { nodeName: 'n1', containers: [] },
}

function ctx(over: Partial<LaunchContext> = {}): LaunchContext {
  return {
    pod,
    podIP: '127.100.0.7',
    hostIP: '127.0.0.1',
    profiles: [ringkvProfile('/repo', '/usr/bin/node')],
    mounts: { '/data': '/tmp/vol/pvc-1', '/etc/ringkv': '/tmp/pod/volumes/token' },
    lookupKey: (kind, name, key) => (kind === 'secret' && name === 's' && key === 'k' ? 'secret-value' : undefined),
    lookupAll: (kind, name) => (kind === 'configMap' && name === 'cm' ? { A: '1', B: '2' } : undefined),
    bindPort: (p) => p,
    dial: () => undefined,
    baseEnv: { HOSTNAME: 'demo-1' },
    ...over,
  }
}

test('$(VAR) expansion follows the kubelet: known names, $$ escapes, unknown names stay', () => {
  assert.is(expand('$(A)-$(B)-$(C)-$$(A)', { A: 'x', B: 'y' }), 'x-y-$(C)-$(A)')
})

test('image repository ignores registry, tag and digest', () => {
  assert.is(imageRepository('ghcr.io/acme/ringkv:0.1.0'), 'ringkv')
  assert.is(imageRepository('ringkv@sha256:abc'), 'ringkv')
  assert.is(imageRepository('localhost:5000/ringkv'), 'ringkv')
})

test('mount paths are replaced only at path boundaries, longest first', () => {
  const paths = { '/data': '/L/d', '/data/x': '/L/x' }
  assert.is(localPaths('--data-dir=/data', paths), '--data-dir=/L/d')
  assert.is(localPaths('/data/x/y', paths), '/L/x/y')
  assert.is(localPaths('/database', paths), '/database')
  assert.is(localPaths('a:/data,b', paths), 'a:/L/d,b')
})

test('a ringkv node container becomes `node main.js node …` on the pod address', () => {
  const c: V1Container = {
    name: 'node',
    image: 'ringkv:0.1.0',
    args: ['node', '--name=$(POD_NAME)', '--data-dir', '/data', '--cluster-token-file=/etc/ringkv/token', '--advertise=$(POD_NAME).demo-peers.team-a.svc:7000'],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'LABEL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
      { name: 'SECRET', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
      { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ],
    envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'CM_' }],
  }
  const l = buildLaunch(c, ctx())
  assert.is(l.command, '/usr/bin/node')
  assert.equal(l.args, [
    '/repo/dist/node/cli/main.js', 'node', '--name=demo-1', '--data-dir', '/tmp/vol/pvc-1',
    '--cluster-token-file=/tmp/pod/volumes/token/token', '--advertise=demo-1.demo-peers.team-a.svc:7000',
  ])
  // Listen addresses the spec left to defaults are set, on the pod IP.
  assert.is(l.env.RINGKV_LISTEN, '127.100.0.7:8080')
  assert.is(l.env.RINGKV_PEER_LISTEN, '127.100.0.7:7000')
  assert.is(l.env.LABEL, 'ringkv')
  assert.is(l.env.SECRET, 'secret-value')
  assert.is(l.env.IP, '127.100.0.7')
  assert.is(l.env.CM_A, '1')
  assert.is(l.env.HOSTNAME, 'demo-1')
  assert.equal(l.bound, { listen: '127.100.0.7:8080', 'peer-listen': '127.100.0.7:7000', advertise: 'demo-1.demo-peers.team-a.svc:7000' })
})

test('a port that moved is rewritten in bind and dial addresses', () => {
  const c: V1Container = { name: 'node', image: 'ringkv', command: ['ringkv'], args: ['node', '--peer-listen', '0.0.0.0:7000', '--seeds=demo-peers:7000,10.0.0.9:7000'] }
  const l = buildLaunch(c, ctx({
    bindPort: (p) => (p === 7000 ? 17000 : p),
    dial: (host, port) => (host === 'demo-peers' ? [`127.100.0.2:${port + 10_000}`, `127.100.0.7:${port + 10_000}`] : undefined),
  }))
  assert.equal(l.args.slice(1), ['node', '--peer-listen', '127.100.0.7:17000', '--seeds=127.100.0.2:17000,127.100.0.7:17000,10.0.0.9:7000'])
  // No --advertise given: peers are told the pod's own (moved) peer address.
  assert.is(l.env.RINGKV_ADVERTISE, '127.100.0.7:17000')
})

test('missing sources and unknown images are launch errors with kubelet reasons', () => {
  const missing: V1Container = { name: 'x', image: 'ringkv', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }] }
  assert.throws(() => buildLaunch(missing, ctx()), (e: LaunchError) => e.reason === 'CreateContainerConfigError')
  const optional: V1Container = { name: 'x', image: 'ringkv', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 'nope', key: 'k', optional: true } } }] }
  assert.is(buildLaunch(optional, ctx()).env.S, '')
  assert.throws(() => buildLaunch({ name: 'x', image: 'busybox:1' }, ctx()), (e: LaunchError) => e.reason === 'ImageNotSupported')
})

test.run()
