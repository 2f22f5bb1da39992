/**
 * A real Kubernetes control plane on loopback: etcd, kube-apiserver (client-certificate auth,
 * RBAC, service-account tokens), kube-controller-manager (each controller with its own service
 * account credentials) and kube-scheduler, each a process in its own group on free ports in a
 * temp dir. `stop()` tears everything down; the process registry also does so when the test
 * process exits in any other way.
 */
import { request } from 'node:https'
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import type { Binaries } from './binaries.js'
import { createPki, writeKubeconfig, type CertPair, type Pki } from './pki.js'
import { freePort } from './net.js'
import { removeTree, startProcess, waitFor, type ManagedProcess } from './processes.js'

/** The controllers the tests rely on, by their --controllers names. */
export const CONTROLLERS = [
  'serviceaccount-controller', // the "default" ServiceAccount of every namespace
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller', // kube-root-ca.crt, which projected token volumes use
  'namespace-controller', // namespace deletion
  'garbage-collector-controller', // owner references
  'statefulset-controller',
  'deployment-controller',
  'replicaset-controller',
  'disruption-controller', // PodDisruptionBudget status
  'endpointslice-controller',
  'persistentvolume-binder-controller',
  'persistentvolumeclaim-protection-controller',
  'persistentvolume-protection-controller',
]

export interface ControlPlaneOptions {
  binaries: Binaries
  /** Parent of the temp dir (default: the OS temp dir). */
  parentDir?: string
  /** Keep the temp dir (logs, etcd data) after stop; also RINGKV_K8S_KEEP=1. */
  keep?: boolean
  /** Log verbosity of the Go components (-v). */
  verbosity?: number
}

export class ControlPlane {
  /** The admin's client (user in group system:masters). */
  readonly kc: KubeConfig
  private stopped = false

  private constructor(
    readonly dir: string,
    readonly server: string,
    readonly pki: Pki,
    /** Admin kubeconfig file (for helm and anything else that reads one). */
    readonly kubeconfigPath: string,
    readonly processes: Record<'etcd' | 'apiserver' | 'controllerManager' | 'scheduler', ManagedProcess | undefined>,
    private readonly keep: boolean,
  ) {
    this.kc = new KubeConfig()
    this.kc.loadFromFile(kubeconfigPath)
  }

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const dir = mkdtempSync(join(opts.parentDir ?? tmpdir(), 'ringkv-k8s-'))
    const keep = opts.keep ?? process.env.RINGKV_K8S_KEEP === '1'
    const v = String(opts.verbosity ?? 1)
    const pki = createPki(join(dir, 'pki'))
    const procs: ControlPlane['processes'] = { etcd: undefined, apiserver: undefined, controllerManager: undefined, scheduler: undefined }
    const fail = async (err: unknown): Promise<never> => {
      await Promise.all(Object.values(procs).map((p) => p?.stop(1_000)))
      const tails = Object.entries(procs)
        .filter(([, p]) => p)
        .map(([n, p]) => `--- ${n} (${p!.spec.logFile}):\n${p!.tail(2_500)}`)
        .join('\n')
      if (!keep) removeTree(dir)
      throw new Error(`control plane did not start: ${(err as Error).message}\n${tails}`)
    }
    try {
      const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort] = await distinctFreePorts(5)
      const etcdUrl = `http://127.0.0.1:${etcdClient}`
      procs.etcd = startProcess({
        name: 'etcd',
        command: opts.binaries.etcd,
        args: [
          '--name=default', `--data-dir=${join(dir, 'etcd')}`,
          `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
          `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
          // Throwaway data on a disk shared with other work: durability buys nothing here.
          '--unsafe-no-fsync', '--log-level=warn',
        ],
        logFile: join(dir, 'logs', 'etcd.log'),
      })
      await waitHealthy('etcd', procs.etcd, async () => {
        const r = await fetch(`${etcdUrl}/health`)
        return r.ok && ((await r.json()) as { health?: string }).health === 'true'
      })

      const server = `https://127.0.0.1:${apiPort}`
      procs.apiserver = startProcess({
        name: 'kube-apiserver',
        command: opts.binaries['kube-apiserver'],
        args: [
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
          `--cert-dir=${join(dir, 'apiserver-certs')}`,
          `--tls-cert-file=${pki.apiserver.cert}`, `--tls-private-key-file=${pki.apiserver.key}`,
          `--client-ca-file=${pki.caCert}`,
          '--authorization-mode=RBAC',
          '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
          `--service-account-key-file=${pki.saPub}`,
          `--service-account-signing-key-file=${pki.saKey}`,
          '--service-cluster-ip-range=10.96.0.0/16',
          // The endpoints of the kubernetes service cannot be a loopback address (the apiserver
          // refuses it); pods reach the apiserver through the kubeconfig the runner gives them.
          '--endpoint-reconciler-type=none',
          // Front-proxy (aggregation) authentication: configured so that the components'
          // delegated authentication finds a CA, trusted for a name no client here has.
          `--requestheader-client-ca-file=${pki.caCert}`, '--requestheader-allowed-names=front-proxy-client',
          '--requestheader-username-headers=X-Remote-User', '--requestheader-group-headers=X-Remote-Group',
          '--requestheader-extra-headers-prefix=X-Remote-Extra-',
          '--profiling=false',
          `-v=${v}`,
        ],
        logFile: join(dir, 'logs', 'kube-apiserver.log'),
      })
      const kubeconfigPath = join(dir, 'admin.kubeconfig')
      writeKubeconfig(kubeconfigPath, server, pki.caCert, pki.admin, { user: 'admin' })
      await waitHealthy('kube-apiserver', procs.apiserver, () => httpsOk(`${server}/readyz`, pki.caCert, pki.admin), 90_000)

      // Controller-manager and scheduler: their own client certificate, delegated authn/authz
      // for their health endpoints, one instance each (no leader election needed).
      const component = (name: 'kube-controller-manager' | 'kube-scheduler', pair: CertPair, port: number, extra: string[]) => {
        const config = join(dir, `${name}.kubeconfig`)
        writeKubeconfig(config, server, pki.caCert, pair, { user: name })
        return startProcess({
          name,
          command: opts.binaries[name],
          args: [
            `--kubeconfig=${config}`, `--authentication-kubeconfig=${config}`, `--authorization-kubeconfig=${config}`,
            '--bind-address=127.0.0.1', `--secure-port=${port}`, `--cert-dir=${join(dir, `${name}-certs`)}`,
            '--leader-elect=false', `-v=${v}`, ...extra,
          ],
          logFile: join(dir, 'logs', `${name}.log`),
        })
      }
      procs.controllerManager = component('kube-controller-manager', pki.controllerManager, kcmPort, [
        `--controllers=${CONTROLLERS.join(',')}`,
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.caCert}`,
      ])
      procs.scheduler = component('kube-scheduler', pki.scheduler, schedPort, [])
      await Promise.all([
        waitHealthy('kube-controller-manager', procs.controllerManager, () => httpsOk(`https://127.0.0.1:${kcmPort}/healthz`), 60_000),
        waitHealthy('kube-scheduler', procs.scheduler, () => httpsOk(`https://127.0.0.1:${schedPort}/healthz`), 60_000),
      ])
      const cp = new ControlPlane(dir, server, pki, kubeconfigPath, procs, keep)
      // Pods cannot be created in a namespace before its default ServiceAccount exists.
      const core = cp.kc.makeApiClient(CoreV1Api)
      await waitFor('the default ServiceAccount', async () =>
        (await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })).metadata?.name === 'default',
      { timeoutMs: 60_000 })
      return cp
    } catch (err) {
      return fail(err)
    }
  }

  /** A kubeconfig file for a bearer token (e.g. a service account's), in this plane's temp dir. */
  tokenKubeconfig(token: string, namespace = 'default'): string {
    mkdirSync(join(this.dir, 'kubeconfigs'), { recursive: true })
    const file = join(this.dir, 'kubeconfigs', `token-${Date.now()}-${Math.random().toString(36).slice(2)}.kubeconfig`)
    writeKubeconfig(file, this.server, this.pki.caCert, { token }, { user: 'token', namespace })
    return file
  }

  /** A client that authenticates with a bearer token. */
  clientForToken(token: string, namespace = 'default'): KubeConfig {
    const kc = new KubeConfig()
    kc.loadFromFile(this.tokenKubeconfig(token, namespace))
    return kc
  }

  /**
   * A raw API request as the admin (or as the bearer of `token`): for what the typed clients
   * do not cover (Table output, arbitrary paths). The body is JSON unless a string is given.
   */
  raw(
    path: string,
    { method = 'GET', body, headers = {}, token }: { method?: string; body?: unknown; headers?: Record<string, string>; token?: string } = {},
  ): Promise<{ status: number; json: any; text: string }> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.server),
        {
          method,
          ca: readFileSync(this.pki.caCert),
          ...(token ? {} : { cert: readFileSync(this.pki.admin.cert), key: readFileSync(this.pki.admin.key) }),
          headers: {
            accept: 'application/json',
            ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...headers,
          },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => (text += d))
          res.on('end', () => {
            let json: unknown
            try {
              json = JSON.parse(text)
            } catch {
              json = undefined
            }
            resolve({ status: res.statusCode ?? 0, json, text })
          })
        },
      )
      req.on('error', reject)
      req.end(payload)
    })
  }

  /** Log of one component, for failure messages. */
  log(component: keyof ControlPlane['processes'], bytes = 4_000): string {
    return this.processes[component]?.tail(bytes) ?? ''
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    // Clients first, so that none of them logs errors against a vanished apiserver; etcd last.
    await Promise.all([this.processes.scheduler?.stop(3_000), this.processes.controllerManager?.stop(3_000)])
    await this.processes.apiserver?.stop(5_000)
    await this.processes.etcd?.stop(3_000)
    if (!this.keep) removeTree(this.dir)
    else process.stderr.write(`[k8s harness] kept ${this.dir}\n`)
  }
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

/** Waits for `check`, failing early (with the log) if the process exits first. */
async function waitHealthy(name: string, proc: ManagedProcess, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await waitFor(`${name} to become healthy`, async () => {
    if (!proc.running) throw new Error(`${name} exited (${JSON.stringify(proc.exit)})`)
    return check()
  }, { timeoutMs, intervalMs: 250 })
  if (!proc.running) throw new Error(`${name} exited (${JSON.stringify(proc.exit)})`)
}

/** GET over HTTPS, true on 200. Without a CA the server certificate is not checked (self-signed). */
function httpsOk(url: string, caFile?: string, client?: CertPair): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: 'GET',
        ca: caFile ? readFileSync(caFile) : undefined,
        rejectUnauthorized: !!caFile,
        cert: client ? readFileSync(client.cert) : undefined,
        key: client ? readFileSync(client.key) : undefined,
        timeout: 5_000,
      },
      (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      },
    )
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}
