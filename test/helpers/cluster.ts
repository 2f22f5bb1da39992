/**
 * Real `ringkv node` processes on 127.0.0.1 for cluster-tier tests: free ports, temp data
 * dirs, kill -9 and restart on the same data dir, and cleanup of every process on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { KvClient } from '../../node/client/kv-client.js'
import { AdminClient } from '../../node/client/admin-client.js'

export const MAIN = fileURLToPath(new URL('../../node/cli/main.js', import.meta.url))

const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL')
})
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const p of live) p.kill('SIGKILL')
    process.exit(130)
  })
}

/** Ports handed out in this process: each is released before its node binds it, so the kernel may offer it again. */
const handedOut = new Set<number>()

/** A port free on 127.0.0.1 now and never returned before by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await kernelPort()
    if (handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
  throw new Error('no new free port after 100 attempts')
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export function tempDir(prefix = 'ringkv-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v as T
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export interface NodeSpec {
  name: string
  dataDir: string
  clientPort: number
  peerPort: number
  seeds: string[]
  rf: number
  tokenFile?: string
  args?: string[]
  env?: Record<string, string>
  /** addresses to listen on and advertise instead of 127.0.0.1 (a network namespace's) */
  clientHost?: string
  peerHost?: string
  /** a command prefix the node runs under, e.g. `ip netns exec NS` */
  wrap?: string[]
}

/** One node process; restartable on the same ports and data dir. */
export class TestNode {
  proc: ChildProcess | undefined
  readonly logFile: string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined

  constructor(readonly spec: NodeSpec) {
    this.logFile = `${spec.dataDir}.log`
  }

  get clientUrl(): string {
    return `http://${this.spec.clientHost ?? '127.0.0.1'}:${this.spec.clientPort}`
  }
  get peerUrl(): string {
    return `http://${this.peerAddress}`
  }
  get peerAddress(): string {
    return `${this.spec.peerHost ?? '127.0.0.1'}:${this.spec.peerPort}`
  }
  get kv(): KvClient {
    return new KvClient(this.clientUrl)
  }
  admin(token?: string): AdminClient {
    return new AdminClient(this.peerUrl, token)
  }

  args(): string[] {
    const s = this.spec
    return [
      MAIN, 'node',
      '--name', s.name,
      '--data-dir', s.dataDir,
      '--listen', `${s.clientHost ?? '127.0.0.1'}:${s.clientPort}`,
      '--peer-listen', this.peerAddress,
      '--advertise', this.peerAddress,
      '--seeds', s.seeds.join(','),
      '--replication-factor', String(s.rf),
      '--log-level', 'debug',
      ...(s.tokenFile ? ['--cluster-token-file', s.tokenFile] : []),
      ...(s.args ?? []),
    ]
  }

  start(): this {
    const out = openSync(this.logFile, 'a')
    const [cmd, ...pre] = [...(this.spec.wrap ?? []), process.execPath]
    const p = spawn(cmd!, [...pre, ...this.args()], { stdio: ['ignore', out, out], env: { ...process.env, ...this.spec.env } })
    live.add(p)
    this.proc = p
    this.exit = new Promise((r) => p.once('exit', (code, signal) => {
      live.delete(p)
      r({ code, signal })
    }))
    return this
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    await waitFor(`${this.spec.name} /readyz`, async () => {
      if (!this.running) throw new Error(`${this.spec.name} exited; see ${this.logFile}`)
      const r = await fetch(`${this.clientUrl}/readyz`)
      return r.ok
    }, timeoutMs)
  }

  async kill9(): Promise<void> {
    if (!this.running) return
    this.proc!.kill('SIGKILL')
    await this.exit
  }

  /** SIGTERM and wait for a graceful exit. */
  async stop(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.running) return (await this.exit) ?? { code: null, signal: null }
    this.proc!.kill('SIGTERM')
    const t = setTimeout(() => this.proc?.kill('SIGKILL'), timeoutMs)
    const r = await this.exit!
    clearTimeout(t)
    return r
  }
}

export interface ClusterOptions {
  nodes: number
  rf?: number
  token?: boolean
  args?: string[]
  /** start and wait for every node (default true) */
  wait?: boolean
  /** where node `i` runs: hosts and a command prefix (network-namespace tests) */
  place?: (i: number) => Pick<NodeSpec, 'clientHost' | 'peerHost' | 'wrap'>
  /** runs before each node first starts (e.g. to mount something at its data dir) */
  prepare?: (spec: NodeSpec) => void
}

/** n nodes sharing seeds (the first three) and a cluster token; removed by `destroy()`. */
export class TestCluster {
  readonly nodes: TestNode[] = []
  readonly dir: string
  readonly token: string | undefined
  readonly tokenFile: string | undefined
  private seeds: string[] = []

  private constructor(readonly opts: ClusterOptions) {
    this.dir = tempDir('ringkv-cluster-')
    if (opts.token !== false) {
      this.token = `test-token-${Math.random().toString(36).slice(2)}`
      this.tokenFile = join(this.dir, 'token')
      writeFileSync(this.tokenFile, this.token)
    }
  }

  static async start(opts: ClusterOptions): Promise<TestCluster> {
    const c = new TestCluster(opts)
    const specs: NodeSpec[] = []
    for (let i = 0; i < opts.nodes; i++) specs.push(await c.spec(i))
    c.seeds = specs.slice(0, 3).map((s) => new TestNode(s).peerAddress)
    for (const s of specs) {
      s.seeds = c.seeds
      opts.prepare?.(s)
      c.nodes.push(new TestNode(s).start())
    }
    if (opts.wait !== false) await Promise.all(c.nodes.map((n) => n.ready()))
    return c
  }

  private async spec(i: number): Promise<NodeSpec> {
    const s: NodeSpec = {
      name: `n${i + 1}`,
      dataDir: join(this.dir, `n${i + 1}`),
      clientPort: await freePort(),
      peerPort: await freePort(),
      seeds: this.seeds,
      rf: this.opts.rf ?? 3,
      args: [...(this.opts.args ?? [])],
      ...this.opts.place?.(i),
    }
    if (this.tokenFile) s.tokenFile = this.tokenFile
    return s
  }

  /** Adds a node (not yet started unless `start`), seeded with the cluster's seeds. */
  async add(args: string[] = [], start = true): Promise<TestNode> {
    const s = await this.spec(this.nodes.length)
    s.seeds = this.seeds
    s.args = [...(s.args ?? []), ...args]
    const n = new TestNode(s)
    this.nodes.push(n)
    if (start) n.start()
    return n
  }

  admin(n: TestNode): AdminClient {
    return n.admin(this.token)
  }

  /**
   * Waits until every running node sees each of `nodes` (default: the running ones) AVAILABLE
   * and up. /readyz of each node alone is not enough: a node can be ready before the others
   * have heard through gossip that it finished bootstrapping, and until then their rings
   * differ (a coordinator may still treat it as a pending replica).
   */
  async converged(timeoutMs = 30_000, nodes: TestNode[] = this.nodes.filter((n) => n.running)): Promise<void> {
    const names = nodes.map((n) => n.spec.name)
    await waitFor(`every node to see ${names.join(', ')} AVAILABLE and up`, async () => {
      for (const observer of this.nodes.filter((n) => n.running)) {
        const c = await observer.kv.cluster()
        for (const name of names) {
          const m = c.nodes.find((x) => x.name === name)
          if (!m || !m.up || m.state !== 'AVAILABLE') return false
        }
      }
      return true
    }, timeoutMs, 100)
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill9()))
    if (!process.env.RINGKV_KEEP_TEST_DATA) rmSync(this.dir, { recursive: true, force: true })
  }
}
