/**
 * The k8s tier's entry point for test files:
 *
 *   const { test, env } = k8sSuite('statefulset', { podRunner: true })
 *   test('…', async () => { const { cp, runner } = env(); … })
 *   test.run()
 *
 * One control plane (and pod runner) per file, started before its first test and torn down
 * after its last, also when a test fails. When the binaries are missing and cannot be built,
 * every test of the file is skipped and the reason printed.
 */
import { suite, type Test } from 'uvu'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ApiextensionsV1Api, KubernetesObjectApi, loadAllYaml, type KubernetesObject } from '@kubernetes/client-node'
import { ensureBinaries, type Binaries } from './binaries.js'
import { ControlPlane } from './control-plane.js'
import { haveOpenssl } from './pki.js'
import { PodRunner, type PodRunnerOptions } from './pod-runner.js'
import { stopAll, waitFor } from './processes.js'

export { ControlPlane } from './control-plane.js'
export { PodRunner } from './pod-runner.js'
export { waitFor } from './processes.js'
export { ensureBinaries, repoRoot } from './binaries.js'

export interface K8sEnv {
  cp: ControlPlane
  binaries: Binaries
  /** Present when the suite asked for it. */
  runner: PodRunner | undefined
}

export interface K8sSuiteOptions {
  podRunner?: boolean
  runner?: Partial<Omit<PodRunnerOptions, 'kc' | 'server' | 'caCertFile' | 'workDir'>>
}

type TestFn = (name: string, fn: () => Promise<void> | void) => void

/** Whether the tier can run here; the reason when it cannot. Checked once per process. */
function availability(): { ok: true; binaries: Binaries } | { ok: false; reason: string } {
  if (!haveOpenssl()) return { ok: false, reason: 'the openssl command is not installed (scripts/ci-deps.sh installs it)' }
  const r = ensureBinaries()
  return r.ok ? { ok: true, binaries: r.binaries } : r
}

export function k8sSuite(name: string, opts: K8sSuiteOptions = {}): { test: TestFn & { run: () => void }; env: () => K8sEnv } {
  const s: Test = suite(name)
  const avail = availability()
  let current: K8sEnv | undefined
  if (!avail.ok) {
    console.log(`SKIP k8s suite "${name}": ${avail.reason}`)
  } else {
    s.before(async () => {
      try {
        const cp = await ControlPlane.start({ binaries: avail.binaries })
        current = { cp, binaries: avail.binaries, runner: undefined }
        if (opts.podRunner) {
          current.runner = await PodRunner.start({ ...opts.runner, kc: cp.kc, server: cp.server, caCertFile: cp.pki.caCert, workDir: join(cp.dir, 'pod-runner') })
        }
      } catch (err) {
        // uvu swallows a failing before hook (its tests count as failed, silently): say why.
        console.error(`k8s suite "${name}" could not start its control plane:`, err)
        throw err
      }
    })
    s.after(async () => {
      await current?.runner?.stop()
      await current?.cp.stop()
      await stopAll()
    })
  }
  const test = ((testName: string, fn: () => Promise<void> | void) => (avail.ok ? s(testName, fn) : s.skip(testName, fn))) as TestFn & { run: () => void }
  test.run = () => s.run()
  return {
    test,
    env: () => {
      if (!current) throw new Error('k8s suite environment is not started')
      return current
    },
  }
}

/** Runs helm against the plane (its own config/cache dirs, so nothing of the user's is read). */
export function helm(env: K8sEnv, args: string[], { timeoutMs = 120_000 } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const home = join(env.cp.dir, 'helm')
  return new Promise((resolve) => {
    execFile(
      env.binaries.helm,
      args,
      {
        timeout: timeoutMs,
        maxBuffer: 32 * 1024 * 1024,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          KUBECONFIG: env.cp.kubeconfigPath,
          HELM_CONFIG_HOME: join(home, 'config'),
          HELM_CACHE_HOME: join(home, 'cache'),
          HELM_DATA_HOME: join(home, 'data'),
        },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** Creates every object of a YAML file (multi-document) as the admin; returns them as created. */
export async function createFromYaml(env: K8sEnv, file: string, namespace?: string): Promise<KubernetesObject[]> {
  const api = KubernetesObjectApi.makeApiClient(env.cp.kc)
  const out: KubernetesObject[] = []
  for (const obj of loadAllYaml(readFileSync(file, 'utf8')) as KubernetesObject[]) {
    if (!obj) continue
    if (namespace && obj.metadata && !obj.metadata.namespace) obj.metadata.namespace = namespace
    out.push(await api.create(obj))
  }
  return out
}

/** Waits until a CRD is Established (its API is served). */
export async function waitEstablished(env: K8sEnv, name: string): Promise<void> {
  const api = env.cp.kc.makeApiClient(ApiextensionsV1Api)
  await waitFor(`CRD ${name} to be Established`, async () => {
    const crd = await api.readCustomResourceDefinition({ name })
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
  })
}
