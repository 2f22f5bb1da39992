import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClusterView, type MemberInfo } from '../../../node/membership/view.js'
import type { StoredRecord } from '../../../node/storage/record.js'
import { Store } from '../../../node/storage/store.js'
import { Repairer, type RepairProgress } from '../../../node/streaming/repair.js'
import { tokenOf } from '../../../node/ring/token.js'
import { createRng } from '../../../node/util/rng.js'
import { memoryLogger, startPeer, type PeerNode } from '../transport/fixture.js'

/** One replica as the node runs it for repair: a real store, a real peer port, a Repairer. */
export interface Replica {
  hostId: string
  store: Store
  peer: PeerNode
  view: ClusterView
  repairer: Repairer
  /** bytes this replica received for repair (its onBytes) */
  bytesIn: number
  /** the clock its Repairer reads */
  clock: { now: number }
  /** called with its Repairer's progress reports */
  onProgress?: (p: RepairProgress) => void
}

export interface ReplicaSetOptions {
  nodes: number
  rf: number
  numTokens?: number
  graceMs?: number
  depth?: number
  seed?: string
}

/** n replicas on 127.0.0.1 that all see each other AVAILABLE and up; `close()` removes them. */
export class ReplicaSet {
  readonly replicas: Replica[] = []
  private members: MemberInfo[] = []
  private readonly dirs: string[] = []

  private constructor(readonly opts: ReplicaSetOptions) {}

  static async start(opts: ReplicaSetOptions): Promise<ReplicaSet> {
    const set = new ReplicaSet(opts)
    const rng = createRng(opts.seed ?? 'replicas')
    for (let i = 0; i < opts.nodes; i++) {
      const hostId = `host-${i + 1}`
      const dir = mkdtempSync(join(tmpdir(), `ringkv-repair-${hostId}-`))
      set.dirs.push(dir)
      const store = await Store.open(dir, { durable: false })
      const peer = await startPeer(hostId)
      const view = new ClusterView(hostId, opts.rf)
      const clock = { now: Date.now() }
      const r: Replica = { hostId, store, peer, view, clock, bytesIn: 0, repairer: undefined as unknown as Repairer }
      r.repairer = new Repairer({
        hostId, rf: opts.rf, store, transport: peer.transport, view, log: memoryLogger().logger,
        onBytes: (n) => (r.bytesIn += n),
        tombstoneGraceMs: opts.graceMs ?? 10 * 24 * 3600_000,
        depth: opts.depth ?? 12,
        now: () => clock.now,
        onProgress: (p) => r.onProgress?.(p),
      })
      r.repairer.register()
      set.replicas.push(r)
      const tokens: bigint[] = []
      for (let t = 0; t < (opts.numTokens ?? 4); t++) tokens.push((BigInt(rng.int(2 ** 32)) << 32n) | BigInt(rng.int(2 ** 32)))
      set.members.push({ hostId, name: `n${i + 1}`, address: peer.address, clientAddress: '', state: 'AVAILABLE', tokens, up: true, load: 0, generation: 1 })
    }
    set.publish()
    return set
  }

  /** Marks a replica up or down in every view (the failure detector's verdict). */
  setUp(hostId: string, up: boolean): void {
    this.members = this.members.map((m) => (m.hostId === hostId ? { ...m, up } : m))
    this.publish()
  }

  /** Gives a replica new tokens in every view (a ring change). */
  setTokens(hostId: string, tokens: bigint[]): void {
    this.members = this.members.map((m) => (m.hostId === hostId ? { ...m, tokens } : m))
    this.publish()
  }

  private publish(): void {
    for (const r of this.replicas) r.view.update(this.members.map((m) => (m.hostId === r.hostId ? { ...m, up: true } : m)))
  }

  /** Host ids replicating `key`. */
  replicasOf(key: Buffer): Replica[] {
    const ids = this.replicas[0]!.view.ring.replicasFor(tokenOf(key), this.opts.rf)
    return this.replicas.filter((r) => ids.includes(r.hostId))
  }

  setClock(now: number): void {
    for (const r of this.replicas) r.clock.now = now
  }

  async close(): Promise<void> {
    for (const r of this.replicas) {
      await r.peer.stop()
      await r.store.close()
    }
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true })
  }
}

export function value(v: string, vv: Record<string, number>, wall: number, extra: Partial<StoredRecord> = {}): StoredRecord {
  return { value: Buffer.from(v), contentType: 'text/plain', vv, ts: { wall, logical: 0, node: Object.keys(vv)[0]! }, tombstone: false, ...extra }
}

export function tombstone(vv: Record<string, number>, wall: number): StoredRecord {
  return { value: Buffer.alloc(0), contentType: '', vv, ts: { wall, logical: 0, node: Object.keys(vv)[0]! }, tombstone: true }
}

/** Drops one key from a store behind the cluster's back (no tombstone: it is simply gone). */
export async function dropKey(store: Store, key: Buffer): Promise<void> {
  const t = tokenOf(key)
  await store.dropRange(t === 0n ? (1n << 64n) - 1n : t - 1n, t)
}

/** Every record of a store as key(hex) → raw(hex). */
export async function contents(store: Store): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for await (const e of store.scanRange(0n, 0n)) out.set(e.key.toString(), e.raw.toString('hex'))
  return out
}
