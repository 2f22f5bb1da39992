/**
 * A stand-in for the kubelet: it registers fake Nodes, and for every pod the real kube-scheduler
 * binds to one of them it runs the pod's containers as local processes (see pod-spec.ts for the
 * translation), reports the pod's status through pods/status as a kubelet would, honours deletion
 * with its grace period, restarts crashed containers per restartPolicy, and provisions the
 * pods' PersistentVolumes as local directories. What it does not simulate is listed in
 * docs/testing.md.
 *
 * Every pod gets its own loopback IP (127.x.y.z) and binds its container ports there; cluster
 * DNS names resolve to those IPs in the pods (dns-shim.ts) and, through `resolver`, in a test.
 */
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Container,
  type V1ContainerStateTerminated,
  type V1ContainerStatus,
  type V1Pod,
  type V1PodCondition,
  type V1PodStatus,
  type V1Service,
} from '@kubernetes/client-node'
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { NODE_PORTS, type NodeAddressResolver } from '../../../operator/resolve.js'
import { repoRoot as defaultRepoRoot } from './binaries.js'
import { buildDnsTable, qualify, type DnsTable } from './dns-table.js'
import { keyOf, Watched, type Key } from './informers.js'
import { LoopbackAllocator, portIsFree, freePort } from './net.js'
import { writeKubeconfig } from './pki.js'
import { buildLaunch, LaunchError, resolveEnv, ringkvProfile, type ImageProfile, type Launch, type LaunchContext } from './pod-spec.js'
import { Prober } from './probes.js'
import { Provisioner } from './provisioner.js'
import { startProcess, type ManagedProcess } from './processes.js'
import { containerMounts, prepareVolumes } from './volumes.js'

export interface PodRunnerOptions {
  /** Admin client of the control plane. */
  kc: KubeConfig
  /** The apiserver URL and CA file, for the kubeconfigs of pods' service accounts. */
  server: string
  caCertFile: string
  /** Pod directories, volumes and logs go here. */
  workDir: string
  repoRoot?: string
  /** Names of the fake Nodes to register (default: three). */
  nodeNames?: string[]
  /** Images the runner can run (default: ringkv). */
  profiles?: ImageProfile[]
  storageClass?: string
  /** Probes run at most this far apart (default 1000 ms). */
  probePeriodCapMs?: number
  /** Crash-loop backoff: first restart after initialMs, doubling up to maxMs (default 1 s → 10 s). */
  restartBackoff?: { initialMs: number; maxMs: number }
}

interface ContainerRun {
  spec: V1Container
  init: boolean
  proc?: ManagedProcess
  launch?: Launch
  restarts: number
  startedAt?: string
  everStarted: boolean
  lastTerminated?: V1ContainerStateTerminated
  initDone: boolean
  waiting?: { reason: string; message?: string }
  ready: boolean
  notBefore: number
  probes: Prober[]
}

interface PodRun {
  key: Key
  uid: string
  namespace: string
  name: string
  ip: string
  dir: string
  containers: ContainerRun[]
  startTime: string
  volumeDirs?: Record<string, string>
  kubeconfig?: string
  conditions: Map<string, { status: 'True' | 'False'; time: string }>
  lastStatus?: string
  terminating?: Promise<void>
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

export class PodRunner {
  readonly nodeNames: string[]
  private readonly core: CoreV1Api
  private readonly pods: Watched<V1Pod>
  private readonly services: Watched<V1Service>
  private readonly provisioner: Provisioner
  private readonly ips = new LoopbackAllocator()
  private readonly ipOwner = new Map<string, Key>()
  private readonly portMaps = new Map<Key, Map<number, number>>()
  private readonly runs = new Map<Key, PodRun>()
  /** Every pod run here, by name: uid, directory, container names (for logs after deletion). */
  private readonly history = new Map<Key, { uid: string; dir: string; containers: string[] }[]>()
  private readonly chains = new Map<Key, Promise<void>>()
  private readonly pendingSync = new Set<Key>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly profiles: ImageProfile[]
  private readonly dnsFile: string
  private readonly shimUrl: string
  private readonly logFile: string
  private readonly caPem: string
  private dns: DnsTable = { records: {}, servicePorts: {} }
  private dnsTimer: NodeJS.Timeout | undefined
  private resync: NodeJS.Timeout | undefined
  private stopped = false

  constructor(private readonly opts: PodRunnerOptions) {
    const root = opts.repoRoot ?? defaultRepoRoot
    this.nodeNames = opts.nodeNames ?? ['pod-runner-1', 'pod-runner-2', 'pod-runner-3']
    this.profiles = opts.profiles ?? [ringkvProfile(root)]
    this.core = opts.kc.makeApiClient(CoreV1Api)
    this.dnsFile = join(opts.workDir, 'dns.json')
    this.logFile = join(opts.workDir, 'pod-runner.log')
    this.shimUrl = pathToFileURL(join(root, 'dist', 'test', 'k8s', 'harness', 'dns-shim.js')).href
    this.caPem = readFileSync(opts.caCertFile, 'utf8')
    this.provisioner = new Provisioner(opts.kc, join(opts.workDir, 'volumes'), opts.storageClass)
    this.pods = new Watched(opts.kc, '/api/v1/pods', () => this.core.listPodForAllNamespaces(), (key) => {
      this.enqueue(key)
      this.dnsChanged()
    })
    this.services = new Watched(opts.kc, '/api/v1/services', () => this.core.listServiceForAllNamespaces(), () => this.dnsChanged())
  }

  static async start(opts: PodRunnerOptions): Promise<PodRunner> {
    const r = new PodRunner(opts)
    mkdirSync(opts.workDir, { recursive: true })
    r.writeDns()
    await r.registerNodes()
    await r.provisioner.start()
    await r.services.start()
    await r.pods.start()
    // Level-triggered like a kubelet's periodic sync: every pod is looked at again now and then,
    // whatever events were missed.
    const resync = setInterval(() => {
      for (const p of r.pods.list()) if (r.nodeNames.includes(p.spec?.nodeName ?? '')) r.enqueue(keyOf(p))
      for (const key of r.runs.keys()) r.enqueue(key)
    }, 5_000)
    resync.unref()
    r.resync = resync
    return r
  }

  /** Stops every pod process (the pod objects stay) and the watches. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    clearTimeout(this.dnsTimer)
    clearInterval(this.resync)
    await Promise.all([this.pods.stop(), this.services.stop(), this.provisioner.stop()])
    // A sync already under way may still start a process; let it finish, then stop them all.
    await Promise.all(this.chains.values())
    await Promise.all([...this.runs.values()].map((r) => this.killRun(r, 2_000)))
  }

  // ---- what tests use ----------------------------------------------------------------------

  /** Maps a ringkv node pod to the local base URL of its client or peer port. */
  readonly resolver: NodeAddressResolver = (pod, port) => {
    const key = `${pod.namespace}/${pod.name}`
    const flag = port === 'client' ? 'listen' : 'peer-listen'
    const bound = this.runs.get(key)?.containers.map((c) => c.launch?.bound[flag]).find((b) => b)
    if (bound) return `http://${bound}`
    const ip = this.ipFor(key)
    return `http://${ip}:${this.portMaps.get(key)?.get(NODE_PORTS[port]) ?? NODE_PORTS[port]}`
  }

  /**
   * The local address(es) behind `host:port` as a pod in `namespace` would dial it:
   * `demo-0.demo-peers.default.svc:7000` → [`127.x.y.z:7000`]; a service name → its pods.
   */
  resolveHostPort(hostport: string, namespace = 'default'): string[] {
    const m = /^(.+):(\d+)$/.exec(hostport)
    if (!m) throw new Error(`not host:port: ${hostport}`)
    return this.dial(m[1]!, Number(m[2]), namespace) ?? [hostport]
  }

  /**
   * What the runner made of a running pod: its IP, the address each address flag was given
   * (e.g. listen → 127.x.y.z:8080), its process ids, its directory and the kubeconfig (token
   * of its service account) its containers got in KUBECONFIG.
   */
  podInfo(namespace: string, name: string): { ip: string; bound: Record<string, string>; pids: number[]; dir: string; kubeconfig?: string } | undefined {
    const run = this.runs.get(`${namespace}/${name}`)
    if (!run) return undefined
    const bound = Object.assign({}, ...run.containers.map((c) => c.launch?.bound ?? {})) as Record<string, string>
    const pids = run.containers.flatMap((c) => (c.proc?.running ? [c.proc.pid] : []))
    return { ip: run.ip, bound, pids, dir: run.dir, kubeconfig: run.kubeconfig || undefined }
  }

  /**
   * Output of a pod's container (all its restarts), for assertions and failure messages. A pod
   * that was deleted keeps its log here: name its `uid` to read an earlier pod of the same name
   * (default: the latest).
   */
  logs(namespace: string, name: string, { container, uid }: { container?: string; uid?: string } = {}): string {
    const history = this.history.get(`${namespace}/${name}`) ?? []
    const entry = uid ? history.find((h) => h.uid === uid) : history[history.length - 1]
    const c = entry?.containers.find((x) => !container || x === container)
    if (!entry || !c) return ''
    try {
      return readFileSync(join(entry.dir, `${c}.log`), 'utf8')
    } catch {
      return ''
    }
  }

  /**
   * Simulates a crash: signals the pod's container process(es) and resolves once they have
   * exited. The runner then restarts them per restartPolicy, as the kubelet would.
   */
  async kill(namespace: string, name: string, { container, signal = 'SIGKILL' }: { container?: string; signal?: NodeJS.Signals } = {}): Promise<void> {
    const run = this.runs.get(`${namespace}/${name}`)
    if (!run) throw new Error(`pod ${namespace}/${name} is not running here`)
    const procs = run.containers.filter((c) => (!container || c.spec.name === container) && c.proc?.running).map((c) => c.proc!)
    if (!procs.length) throw new Error(`pod ${namespace}/${name} has no running container${container ? ` "${container}"` : ''}`)
    for (const p of procs) p.signal(signal)
    await Promise.all(procs.map((p) => p.exited))
  }

  // ---- nodes ---------------------------------------------------------------------------------

  private async registerNodes(): Promise<void> {
    for (const name of this.nodeNames) {
      await this.core
        .createNode({
          body: {
            metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'ringkv.io/pod-runner': 'true' } },
          },
        })
        .catch((err: { code?: number }) => {
          if (err.code !== 409) throw err
        })
      const node = await this.core.readNode({ name })
      const t = now()
      const resources = { cpu: '16', memory: '64Gi', pods: '110', 'ephemeral-storage': '100Gi' }
      node.status = {
        capacity: resources,
        allocatable: resources,
        addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: name }],
        conditions: [
          { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ringkv pod runner', lastHeartbeatTime: new Date(t), lastTransitionTime: new Date(t) },
          ...['MemoryPressure', 'DiskPressure', 'PIDPressure'].map((type) => ({ type, status: 'False', reason: 'PodRunner', lastHeartbeatTime: new Date(t), lastTransitionTime: new Date(t) })),
        ],
        nodeInfo: {
          architecture: 'amd64', bootID: '', containerRuntimeVersion: 'ringkv-pod-runner://1', kernelVersion: '', kubeProxyVersion: '',
          kubeletVersion: 'v0.0.0-ringkv-pod-runner', machineID: '', operatingSystem: 'linux', osImage: 'local processes', systemUUID: '',
        },
      }
      await this.core.replaceNodeStatus({ name, body: node })
      // The apiserver taints a new Node not-ready; the node lifecycle controller (not run here:
      // it would evict pods of nodes without a kubelet heartbeat) lifts that once it is Ready.
      const fresh = await this.core.readNode({ name })
      const taints = fresh.spec?.taints?.filter((t) => !t.key.startsWith('node.kubernetes.io/'))
      if (taints?.length !== fresh.spec?.taints?.length) {
        fresh.spec = { ...fresh.spec, taints }
        await this.core.replaceNode({ name, body: fresh })
      }
    }
  }

  // ---- the per-pod loop --------------------------------------------------------------------

  private note(msg: string): void {
    appendFileSync(this.logFile, `${new Date().toISOString()} ${msg}\n`)
  }

  private enqueue(key: Key): void {
    if (this.stopped || this.pendingSync.has(key)) return
    this.pendingSync.add(key)
    const next = (this.chains.get(key) ?? Promise.resolve()).then(async () => {
      this.pendingSync.delete(key)
      if (this.stopped) return
      try {
        await this.syncPod(key)
      } catch (err) {
        this.note(`sync ${key}: ${(err as Error).stack ?? err}`)
        this.later(key, 1_000)
      }
    })
    this.chains.set(key, next)
  }

  private later(key: Key, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      this.enqueue(key)
    }, ms)
    this.timers.add(t)
  }

  private async syncPod(key: Key): Promise<void> {
    const pod = this.pods.get(key)
    let run = this.runs.get(key)
    if (process.env.RINGKV_POD_RUNNER_DEBUG) this.note(`sync ${key} pod ${pod?.metadata?.uid} del ${pod?.metadata?.deletionTimestamp} run ${run?.uid} term ${!!run?.terminating}`)
    if (run && (!pod || pod.metadata?.uid !== run.uid)) {
      // Gone from the API (or replaced by a new pod of the same name): nothing waits any more.
      await this.killRun(run, 0)
      this.runs.delete(key)
      this.dnsChanged()
      run = undefined
    }
    if (!pod || !this.nodeNames.includes(pod.spec?.nodeName ?? '')) return
    if (pod.metadata?.deletionTimestamp) {
      if (run) run.terminating ??= this.terminate(pod, run)
      else await this.deleteNow(pod)
      return
    }
    if (!run) {
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return
      run = this.newRun(pod)
      this.runs.set(key, run)
      this.dnsChanged()
    }
    if (run.terminating) return
    await this.advance(run, pod)
    await this.report(run, pod)
  }

  private ipFor(key: Key): string {
    const ip = this.ips.ipFor(key)
    this.ipOwner.set(ip, key)
    return ip
  }

  private newRun(pod: V1Pod): PodRun {
    const key = keyOf(pod)
    const dir = join(this.opts.workDir, 'pods', `${pod.metadata!.namespace}_${pod.metadata!.name}_${pod.metadata!.uid!.slice(0, 8)}`)
    mkdirSync(dir, { recursive: true })
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name)
    this.history.set(key, [...(this.history.get(key) ?? []), { uid: pod.metadata!.uid!, dir, containers }])
    const mk = (spec: V1Container, init: boolean): ContainerRun => ({ spec, init, restarts: 0, everStarted: false, initDone: false, ready: false, notBefore: 0, probes: [] })
    return {
      key,
      uid: pod.metadata!.uid!,
      namespace: pod.metadata!.namespace!,
      name: pod.metadata!.name!,
      ip: this.ipFor(key),
      dir,
      containers: [...(pod.spec?.initContainers ?? []).map((c) => mk(c, true)), ...(pod.spec?.containers ?? []).map((c) => mk(c, false))],
      startTime: now(),
      conditions: new Map(),
    }
  }

  private restarting(c: ContainerRun, policy: string): boolean {
    if (!c.lastTerminated || c.proc?.running) return false
    if (c.init) return !c.initDone && policy !== 'Never'
    return policy === 'Always' || (policy === 'OnFailure' && c.lastTerminated.exitCode !== 0)
  }

  /** Starts what should run now: the next init container, or every app container that is down. */
  private async advance(run: PodRun, pod: V1Pod): Promise<void> {
    const policy = pod.spec?.restartPolicy ?? 'Always'
    for (const c of run.containers.filter((x) => x.init)) {
      if (c.initDone) continue
      if (c.proc?.running) return
      if (!c.lastTerminated || this.restarting(c, policy)) await this.startContainer(run, pod, c)
      return
    }
    for (const c of run.containers.filter((x) => !x.init)) {
      if (c.proc?.running) continue
      if (!c.lastTerminated || this.restarting(c, policy)) await this.startContainer(run, pod, c)
    }
  }

  private async startContainer(run: PodRun, pod: V1Pod, c: ContainerRun): Promise<void> {
    const wait = c.notBefore - Date.now()
    if (wait > 0) {
      c.waiting = { reason: 'CrashLoopBackOff', message: `back-off ${Math.ceil(wait / 1000)}s restarting failed container=${c.spec.name} pod=${run.name}` }
      this.later(run.key, wait)
      return
    }
    try {
      run.volumeDirs ??= await prepareVolumes({
        core: this.core,
        pod,
        podDir: run.dir,
        caPem: this.caPem,
        token: (audience, seconds) => this.token(pod, audience, seconds),
        persistentVolumeDir: (pv) => this.provisioner.volumeDir(pv),
      })
      run.kubeconfig ??= await this.podKubeconfig(run, pod)
      await this.fetchSources(run, pod)
      const launch = await this.launchFor(run, pod, c)
      if (this.stopped || run.terminating) return
      const proc = startProcess({ name: `${run.key}/${c.spec.name}`, command: launch.command, args: launch.args, env: launch.env, cwd: launch.cwd ?? run.dir, logFile: join(run.dir, `${c.spec.name}.log`) })
      if (c.everStarted) c.restarts++
      c.everStarted = true
      c.proc = proc
      c.launch = launch
      c.waiting = undefined
      c.startedAt = now()
      c.ready = false
      this.note(`started ${run.key}/${c.spec.name} pid ${proc.pid}: ${launch.command} ${launch.args.join(' ')}`)
      void proc.exited.then((exit) => this.onExit(run, c, proc, exit.code, exit.signal))
      this.startProbes(run, c)
    } catch (err) {
      if (!(err instanceof LaunchError)) throw err
      c.waiting = { reason: err.reason, message: err.message }
      this.note(`cannot start ${run.key}/${c.spec.name}: ${err.message}`)
      this.later(run.key, 1_000)
    }
  }

  /** The launch, with the pod's ports checked: a port taken on the pod's IP moves to a free one. */
  private async launchFor(run: PodRun, pod: V1Pod, c: ContainerRun): Promise<Launch> {
    this.refreshDns()
    const ports = this.portMaps.get(run.key) ?? new Map<number, number>()
    this.portMaps.set(run.key, ports)
    const vars = resolveEnv(c.spec, this.launchContext(run, pod, {}, ports))
    const mounts = containerMounts(c.spec, run.volumeDirs!, vars)
    const asked = new Set<number>()
    const ctx = this.launchContext(run, pod, mounts, ports, asked)
    let launch = buildLaunch(c.spec, ctx)
    for (const cp of c.spec.ports ?? []) asked.add(cp.containerPort)
    let moved = false
    for (const p of asked) {
      if (ports.has(p)) continue
      const free = await portIsFree(run.ip, p)
      ports.set(p, free ? p : await freePort(run.ip))
      moved ||= !free
    }
    if (moved) launch = buildLaunch(c.spec, ctx)
    return launch
  }

  private launchContext(run: PodRun, pod: V1Pod, mounts: Record<string, string>, ports: Map<number, number>, asked?: Set<number>): LaunchContext {
    const cache = this.sourceCache
    return {
      pod,
      podIP: run.ip,
      hostIP: '127.0.0.1',
      profiles: this.profiles,
      mounts,
      lookupKey: (kind, name, key) => cache.get(`${kind}/${run.namespace}/${name}`)?.[key],
      lookupAll: (kind, name) => cache.get(`${kind}/${run.namespace}/${name}`),
      bindPort: (p) => {
        asked?.add(p)
        return ports.get(p) ?? p
      },
      // A name stays a name (the pod's DNS, dns-shim, resolves it as cluster DNS would) unless
      // the port behind it had to move; then only the local addresses can say where it went.
      dial: (host, port) => {
        const addrs = this.dial(host, port, run.namespace)
        return addrs?.every((a) => a.endsWith(`:${port}`)) ? undefined : addrs
      },
      baseEnv: this.baseEnv(run, pod),
    }
  }

  /** Secrets and config maps named by env, fetched before a launch (launches are synchronous). */
  private readonly sourceCache = new Map<string, Record<string, string> | undefined>()

  private baseEnv(run: PodRun, pod: V1Pod): Record<string, string> {
    const apiPort = new URL(this.opts.server).port
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: run.dir,
      HOSTNAME: pod.spec?.hostname ?? run.name,
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: apiPort,
      NODE_OPTIONS: `--import=${this.shimUrl}`,
      RINGKV_TEST_DNS_FILE: this.dnsFile,
      RINGKV_TEST_DNS_NAMESPACE: run.namespace,
    }
    if (run.kubeconfig) env.KUBECONFIG = run.kubeconfig
    return env
  }

  /** A kubeconfig with a token of the pod's service account, unless the pod opts out. */
  private async podKubeconfig(run: PodRun, pod: V1Pod): Promise<string> {
    if (pod.spec?.automountServiceAccountToken === false) return ''
    const file = join(run.dir, 'kubeconfig')
    writeKubeconfig(file, this.opts.server, this.opts.caCertFile, { token: await this.token(pod, undefined, 3600) }, { user: pod.spec?.serviceAccountName ?? 'default', namespace: run.namespace })
    return file
  }

  private async fetchSources(run: PodRun, pod: V1Pod): Promise<void> {
    const refs = new Set<string>()
    for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
      for (const e of c.env ?? []) {
        if (e.valueFrom?.secretKeyRef?.name) refs.add(`secret/${e.valueFrom.secretKeyRef.name}`)
        if (e.valueFrom?.configMapKeyRef?.name) refs.add(`configMap/${e.valueFrom.configMapKeyRef.name}`)
      }
      for (const f of c.envFrom ?? []) {
        if (f.secretRef?.name) refs.add(`secret/${f.secretRef.name}`)
        if (f.configMapRef?.name) refs.add(`configMap/${f.configMapRef.name}`)
      }
    }
    for (const ref of refs) {
      const [kind, name] = ref.split('/') as ['secret' | 'configMap', string]
      const read = kind === 'secret'
        ? this.core.readNamespacedSecret({ name, namespace: run.namespace }).then((s) => Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])))
        : this.core.readNamespacedConfigMap({ name, namespace: run.namespace }).then((m) => m.data ?? {})
      this.sourceCache.set(`${kind}/${run.namespace}/${name}`, await read.catch(() => undefined))
    }
  }

  private async token(pod: V1Pod, audience: string | undefined, expirationSeconds: number | undefined): Promise<string> {
    const res = await this.core.createNamespacedServiceAccountToken({
      name: pod.spec?.serviceAccountName ?? 'default',
      namespace: pod.metadata!.namespace!,
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: audience ? [audience] : [],
          expirationSeconds: Math.max(expirationSeconds ?? 3600, 600),
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name, uid: pod.metadata!.uid },
        },
      },
    })
    return res.status!.token
  }

  private startProbes(run: PodRun, c: ContainerRun): void {
    const target = {
      ip: run.ip,
      port: (p: number | string) => {
        const n = typeof p === 'number' ? p : Number(c.spec.ports?.find((cp) => cp.name === p)?.containerPort ?? p)
        return this.portMaps.get(run.key)?.get(n) ?? n
      },
    }
    const cap = this.opts.probePeriodCapMs ?? 1_000
    const note = (m: string) => this.note(`${run.key}/${c.spec.name}: ${m}`)
    if (!c.init && c.spec.readinessProbe) {
      c.probes.push(new Prober('readiness', c.spec.readinessProbe, target, cap, (ok) => {
        c.ready = ok
        this.dnsChanged()
        this.enqueue(run.key)
      }, note))
    } else if (!c.init) {
      c.ready = true
    }
    if (!c.init && c.spec.livenessProbe) {
      const proc = c.proc!
      c.probes.push(new Prober('liveness', c.spec.livenessProbe, target, cap, (ok) => {
        if (ok || !proc.running) return
        note('liveness probe failed; killing the container')
        void proc.stop(Math.min((c.spec.livenessProbe?.terminationGracePeriodSeconds ?? 30) * 1000, 5_000))
      }, note))
    }
    for (const p of c.probes) p.start()
  }

  private onExit(run: PodRun, c: ContainerRun, proc: ManagedProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (c.proc !== proc) return
    for (const p of c.probes) p.stop()
    c.probes = []
    c.ready = false
    const exitCode = code ?? 128 + (signal ? (({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2 }) as Record<string, number>)[signal] ?? 1 : 1)
    c.lastTerminated = {
      exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      ...(signal ? { signal: ({ SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] } : {}),
      startedAt: c.startedAt ? new Date(c.startedAt) : undefined,
      finishedAt: new Date(now()),
      containerID: `pid://${proc.pid}`,
    }
    if (c.init && exitCode === 0) c.initDone = true
    const { initialMs, maxMs } = this.opts.restartBackoff ?? { initialMs: 1_000, maxMs: 10_000 }
    const ranMs = c.startedAt ? Date.now() - Date.parse(c.startedAt) : 0
    // A container that ran well beyond the longest backoff starts its backoff afresh (the
    // kubelet forgets a crash loop after ten minutes of running).
    const exponent = ranMs > 2 * maxMs ? 0 : c.restarts
    c.notBefore = c.init && exitCode === 0 ? 0 : Date.now() + Math.min(maxMs, initialMs * 2 ** exponent)
    this.note(`exited ${run.key}/${c.spec.name} pid ${proc.pid}: code ${code} signal ${signal}`)
    this.dnsChanged()
    this.enqueue(run.key)
  }

  // ---- status --------------------------------------------------------------------------------

  private phase(run: PodRun, policy: string): V1PodStatus['phase'] {
    const inits = run.containers.filter((c) => c.init)
    const app = run.containers.filter((c) => !c.init)
    if (inits.some((c) => !c.initDone)) {
      return inits.some((c) => c.lastTerminated && !c.initDone && policy === 'Never') ? 'Failed' : 'Pending'
    }
    if (!app.some((c) => c.everStarted)) return 'Pending'
    if (app.some((c) => c.proc?.running || !c.lastTerminated || this.restarting(c, policy))) return 'Running'
    return app.every((c) => c.lastTerminated?.exitCode === 0) ? 'Succeeded' : 'Failed'
  }

  private containerStatus(c: ContainerRun, policy: string): V1ContainerStatus {
    const running = !!c.proc?.running
    const terminatedForGood = !running && c.lastTerminated && !this.restarting(c, policy) && !(c.init && !c.initDone)
    const state = running
      ? { running: { startedAt: new Date(c.startedAt!) } }
      : terminatedForGood || (c.init && c.initDone)
        ? { terminated: c.lastTerminated! }
        : { waiting: c.waiting ?? { reason: c.lastTerminated ? 'CrashLoopBackOff' : 'ContainerCreating' } }
    const lastState = (running || !terminatedForGood) && c.lastTerminated && c.restarts + (running ? 0 : 1) > 0 && !(c.init && c.initDone)
      ? { terminated: c.lastTerminated }
      : {}
    return {
      name: c.spec.name,
      image: c.spec.image ?? '',
      imageID: `ringkv-pod-runner://${c.spec.image ?? ''}`,
      containerID: c.proc ? `pid://${c.proc.pid}` : undefined,
      ready: running && c.ready,
      started: running,
      restartCount: c.restarts,
      state,
      lastState,
    }
  }

  private condition(run: PodRun, type: string, ok: boolean): V1PodCondition {
    const status = ok ? 'True' : 'False'
    const prev = run.conditions.get(type)
    if (!prev || prev.status !== status) run.conditions.set(type, { status, time: now() })
    return { type, status, lastTransitionTime: new Date(run.conditions.get(type)!.time) }
  }

  private async report(run: PodRun, pod: V1Pod): Promise<void> {
    const policy = pod.spec?.restartPolicy ?? 'Always'
    const app = run.containers.filter((c) => !c.init)
    const ready = app.length > 0 && app.every((c) => c.proc?.running && c.ready)
    const status: V1PodStatus = {
      phase: this.phase(run, policy),
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: run.ip,
      podIPs: [{ ip: run.ip }],
      startTime: new Date(run.startTime),
      conditions: [
        this.condition(run, 'PodReadyToStartContainers', true),
        this.condition(run, 'Initialized', run.containers.every((c) => !c.init || c.initDone)),
        this.condition(run, 'ContainersReady', ready),
        this.condition(run, 'Ready', ready),
      ],
      initContainerStatuses: run.containers.filter((c) => c.init).map((c) => this.containerStatus(c, policy)),
      containerStatuses: app.map((c) => this.containerStatus(c, policy)),
    }
    const json = JSON.stringify(status)
    if (json === run.lastStatus) return
    try {
      await this.core.patchNamespacedPodStatus(
        { name: run.name, namespace: run.namespace, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      )
      run.lastStatus = json
    } catch (err) {
      if ((err as { code?: number }).code === 404) return
      throw err
    }
  }

  // ---- termination ---------------------------------------------------------------------------

  /** Graceful deletion: preStop hooks, SIGTERM, SIGKILL after the grace period, then the final delete. */
  private async terminate(pod: V1Pod, run: PodRun): Promise<void> {
    const graceMs = (pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000
    const deadline = Date.now() + graceMs
    this.note(`terminating ${run.key} (grace ${graceMs} ms)`)
    for (const c of run.containers) for (const p of c.probes) p.stop()
    await Promise.all(run.containers.filter((c) => c.proc?.running).map((c) => this.preStop(run, c, deadline)))
    await this.killRun(run, Math.max(0, deadline - Date.now()))
    await this.deleteNow(pod)
  }

  private async preStop(run: PodRun, c: ContainerRun, deadline: number): Promise<void> {
    const hook = c.spec.lifecycle?.preStop
    if (!hook?.httpGet) {
      if (hook) this.note(`${run.key}/${c.spec.name}: preStop hook of a kind the pod runner cannot run; skipped`)
      return
    }
    const raw = hook.httpGet.port as number | string
    const n = typeof raw === 'number' ? raw : Number(c.spec.ports?.find((p) => p.name === raw)?.containerPort ?? raw)
    const port = this.portMaps.get(run.key)?.get(n) ?? n
    const ctl = AbortSignal.timeout(Math.max(1, deadline - Date.now()))
    await fetch(`http://${run.ip}:${port}${hook.httpGet.path ?? '/'}`, { signal: ctl }).then((r) => r.arrayBuffer()).catch(() => undefined)
  }

  /** Stops a pod's processes: SIGTERM, SIGKILL after `graceMs`. Restarts are off from here on. */
  private async killRun(run: PodRun, graceMs: number): Promise<void> {
    run.terminating ??= Promise.resolve()
    for (const c of run.containers) {
      for (const p of c.probes) p.stop()
      c.notBefore = Number.POSITIVE_INFINITY
    }
    await Promise.all(run.containers.map((c) => (c.proc?.running ? c.proc.stop(graceMs) : undefined)))
  }

  private async deleteNow(pod: V1Pod): Promise<void> {
    await this.core
      .deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid } } })
      .catch((err: { code?: number }) => {
        // 404: already gone; 409: a newer pod of the same name (the precondition protects it).
        if (err.code !== 404 && err.code !== 409) throw err
      })
  }

  // ---- DNS -----------------------------------------------------------------------------------

  private dnsChanged(): void {
    if (this.dnsTimer || this.stopped) return
    this.dnsTimer = setTimeout(() => {
      this.dnsTimer = undefined
      this.refreshDns()
    }, 20)
  }

  private refreshDns(): void {
    const addresses = [...this.runs.values()].flatMap((run) => {
      const pod = this.pods.get(run.key)
      if (!pod || pod.metadata?.uid !== run.uid) return []
      const app = run.containers.filter((c) => !c.init)
      return [{ pod, ip: run.ip, ready: app.length > 0 && app.every((c) => c.proc?.running && c.ready) }]
    })
    const next = buildDnsTable(addresses, this.services.list())
    if (JSON.stringify(next.records) !== JSON.stringify(this.dns.records)) {
      this.dns = next
      this.writeDns()
    } else {
      this.dns = next
    }
  }

  private writeDns(): void {
    const tmp = `${this.dnsFile}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(this.dns.records))
    renameSync(tmp, this.dnsFile)
  }

  private dial(host: string, port: number, namespace: string): string[] | undefined {
    const owner = this.ipOwner.get(host)
    if (owner) return [`${host}:${this.portMaps.get(owner)?.get(port) ?? port}`]
    const fqdn = qualify(host, namespace, this.dns.records)
    if (!fqdn || !this.dns.records[fqdn]!.length) return undefined
    const target = this.dns.servicePorts[fqdn]?.[port] ?? port
    return this.dns.records[fqdn]!.map((ip) => {
      const key = this.ipOwner.get(ip)
      return `${ip}:${(key && this.portMaps.get(key)?.get(target)) ?? target}`
    })
  }
}
