/**
 * e2e tier: kind. Builds the image, loads it into a kind cluster, installs the operator chart,
 * applies the sample KVCluster, port-forwards and checks data through a scale up and down.
 * It needs a Docker engine and the kind and kubectl binaries; where any is missing it prints
 * that it was skipped and why (this is the case on the project's build machines).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { test } from 'uvu'
import * as assert from 'uvu/assert'

function missing(): string | undefined {
  const docker = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 })
  if (docker.error) return `docker is not installed (${(docker.error as NodeJS.ErrnoException).code})`
  if (docker.status !== 0) return `no Docker engine is running (docker info: ${(docker.stderr || docker.stdout).trim().split('\n').pop()})`
  for (const bin of ['kind', 'kubectl', 'helm']) {
    const r = spawnSync(bin, ['version'], { encoding: 'utf8', timeout: 20_000 })
    if (r.error) return `${bin} is not installed`
  }
  return undefined
}

const reason = missing()

if (reason) {
  console.log(`SKIPPED kind e2e: ${reason}. The Kubernetes behaviour is covered by the k8s tier against a real control plane.`)
  test.skip('image, kind cluster, chart, sample, data through scale up and down', () => {})
} else {
  const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 })
  const cluster = `ringkv-e2e-${process.pid}`
  test('image, kind cluster, chart, sample, data through scale up and down', async () => {
    sh('docker', ['build', '-t', 'ringkv:0.1.0', '.'])
    sh('kind', ['create', 'cluster', '--name', cluster, '--wait', '120s'])
    try {
      sh('kind', ['load', 'docker-image', 'ringkv:0.1.0', '--name', cluster])
      sh('helm', ['install', 'ringkv-operator', './charts/ringkv-operator', '-n', 'ringkv-system', '--create-namespace', '--wait', '--kube-context', `kind-${cluster}`])
      sh('kubectl', ['--context', `kind-${cluster}`, 'apply', '-f', 'manifests/samples/kvcluster.yaml'])
      sh('kubectl', ['--context', `kind-${cluster}`, 'wait', '--for=jsonpath={.status.phase}=Ready', 'kvc/demo', '--timeout=600s'])
      const pf = spawnSync('sh', ['-c', `kubectl --context kind-${cluster} port-forward svc/demo 18080:8080 & PF=$!; sleep 3; curl -sf -X PUT --data-binary e2e http://127.0.0.1:18080/v1/kv/e2e && curl -sf http://127.0.0.1:18080/v1/kv/e2e; kill $PF`], { encoding: 'utf8' })
      assert.is(pf.stdout.trim(), 'e2e')
      sh('kubectl', ['--context', `kind-${cluster}`, 'scale', 'kvc/demo', '--replicas', '4'])
      sh('kubectl', ['--context', `kind-${cluster}`, 'wait', '--for=jsonpath={.status.readyReplicas}=4', 'kvc/demo', '--timeout=600s'])
      sh('kubectl', ['--context', `kind-${cluster}`, 'scale', 'kvc/demo', '--replicas', '3'])
      sh('kubectl', ['--context', `kind-${cluster}`, 'wait', '--for=jsonpath={.status.replicas}=3', 'kvc/demo', '--timeout=600s'])
      const again = spawnSync('sh', ['-c', `kubectl --context kind-${cluster} port-forward svc/demo 18080:8080 & PF=$!; sleep 3; curl -sf http://127.0.0.1:18080/v1/kv/e2e; kill $PF`], { encoding: 'utf8' })
      assert.is(again.stdout.trim(), 'e2e')
    } finally {
      spawnSync('kind', ['delete', 'cluster', '--name', cluster])
    }
  })
}

test.run()
