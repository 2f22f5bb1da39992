/**
 * A local etcd cluster of real `etcd` processes on 127.0.0.1 (Debian's etcd-server), for
 * comparisons. Each member gets its own client and peer port and data dir under one temp dir;
 * fsync stays on (etcd's default), so the comparison is against etcd as it runs for real.
 *
 *   const etcd = await EtcdCluster.start({ members: 3 })
 *   etcd.clientUrls   // ['http://127.0.0.1:P1', ...]; JSON gateway at POST /v3/kv/put, /v3/kv/range
 *   etcd.pids
 *   await etcd.stop()  // SIGTERM, then removes the data
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { openSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, tempDir, waitFor } from '../../test/helpers/cluster.js'
import { RingError } from '../../node/errors.js'

export interface EtcdOptions {
  members: number
  /** etcd binary (default: `etcd` on PATH) */
  binary?: string
  logLevel?: string
}

interface Member {
  name: string
  clientUrl: string
  peerUrl: string
  proc: ChildProcess
  exited: Promise<void>
}

export class EtcdCluster {
  private constructor(readonly dir: string, private readonly members: Member[]) {}

  get clientUrls(): string[] {
    return this.members.map((m) => m.clientUrl)
  }

  get pids(): number[] {
    return this.members.map((m) => m.proc.pid!)
  }

  /** `etcd --version`'s first line, or undefined when etcd is not installed. */
  static version(binary = 'etcd'): string | undefined {
    const r = spawnSync(binary, ['--version'], { encoding: 'utf8' })
    return r.status === 0 ? r.stdout.split('\n')[0]!.trim() : undefined
  }

  static async start(o: EtcdOptions): Promise<EtcdCluster> {
    const binary = o.binary ?? 'etcd'
    if (!EtcdCluster.version(binary)) {
      throw new RingError('UNAVAILABLE', `${binary} is not installed; on Debian: apt-get install -y etcd-server`)
    }
    const dir = tempDir('ringkv-bench-etcd-')
    const specs = []
    for (let i = 0; i < o.members; i++) {
      specs.push({ name: `etcd${i + 1}`, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` })
    }
    const initialCluster = specs.map((s) => `${s.name}=${s.peer}`).join(',')
    const members: Member[] = specs.map((s) => {
      const log = openSync(join(dir, `${s.name}.log`), 'a')
      const proc = spawn(binary, [
        '--name', s.name,
        '--data-dir', join(dir, s.name),
        '--listen-client-urls', s.client,
        '--advertise-client-urls', s.client,
        '--listen-peer-urls', s.peer,
        '--initial-advertise-peer-urls', s.peer,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `bench-${process.pid}`,
        '--logger', 'zap',
        '--log-outputs', 'stderr',
        '--log-level', o.logLevel ?? 'warn',
      ], { stdio: ['ignore', log, log] })
      const exited = new Promise<void>((r) => proc.once('exit', () => r()))
      return { name: s.name, clientUrl: s.client, peerUrl: s.peer, proc, exited }
    })
    const cluster = new EtcdCluster(dir, members)
    process.once('exit', () => cluster.killAll())
    try {
      // /health is true only once the member sees a leader and can serve a linearizable read.
      await Promise.all(members.map((m) => waitFor(`${m.name} /health`, async () => {
        if (m.proc.exitCode !== null) throw new Error(`${m.name} exited; see ${join(dir, `${m.name}.log`)}`)
        const r = await fetch(`${m.clientUrl}/health`)
        return r.ok && ((await r.json()) as { health?: string }).health === 'true'
      }, 30_000, 200)))
    } catch (e) {
      await cluster.stop()
      throw e
    }
    return cluster
  }

  private killAll(): void {
    for (const m of this.members) if (m.proc.exitCode === null) m.proc.kill('SIGKILL')
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    for (const m of this.members) if (m.proc.exitCode === null) m.proc.kill('SIGTERM')
    const t = setTimeout(() => this.killAll(), timeoutMs)
    await Promise.all(this.members.map((m) => m.exited))
    clearTimeout(t)
    if (!process.env.RINGKV_KEEP_TEST_DATA) rmSync(this.dir, { recursive: true, force: true })
  }
}
