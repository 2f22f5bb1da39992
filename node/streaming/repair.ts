import { RingError } from '../errors.js'
import type { Logger } from '../log.js'
import type { ClusterView } from '../membership/view.js'
import { mergeContiguous, type Range } from '../ring/range.js'
import type { Ring } from '../ring/ring.js'
import type { Store } from '../storage/store.js'
import type { Transport } from '../transport/index.js'
import { DEFAULT_DEPTH, TreeComparison, leafRange, leafRuns, type MerkleTree } from './merkle.js'
import { reconcile, type LocalEntry, type RemoteEntry } from './reconcile.js'
import { CHUNK_BYTES, MAX_GET_KEYS, MSG, RepairPeer, digestEntries, type DigestChunk, type RecordChunk, type TreeReply } from './repair-peer.js'
import { buildTree, recordDigest, scanForRepair } from './repair-scan.js'

export const DEFAULT_TOMBSTONE_GRACE_MS = 10 * 24 * 3600_000
/** Store meta: when the last repair that reached every replica of every range started. */
const META_CLEAN_AT = 'repair-clean-at'

export interface RepairProgress {
  rangesTotal: number
  rangesDone: number
  /** bytes exchanged by this run: hashes, digests and records, both ways */
  bytes: number
}

export interface RepairStats extends RepairProgress {
  /** replica pairs compared / that failed (peer down or unreachable) */
  sessions: number
  failed: number
  differingLeaves: number
  recordsPulled: number
  recordsPushed: number
  bytesIn: number
  bytesOut: number
  /** every replica of every range was reached: tombstones older than the start may be purged */
  clean: boolean
  purged: number
}

export interface RepairerOptions {
  hostId: string
  rf: number
  store: Store
  transport: Transport
  view: ClusterView
  log: Logger
  /** bytes received for repair, by this node as initiator and as peer */
  onBytes(n: number): void
  /** --tombstone-grace: settled records younger than this are never purged (default 10 d) */
  tombstoneGraceMs?: number
  /** reports a running repair's progress (admin status `streaming`) */
  onProgress?(p: RepairProgress): void
  /** Merkle tree depth: 2^depth leaves per range (default 12) */
  depth?: number
  now?(): number
}

/**
 * Anti-entropy repair of this node's ranges (docs/decisions/repair.md). For every range with
 * one replica set, and every other replica of it: both build a Merkle tree of the range from a
 * snapshot, walk the trees top-down to the differing leaves, merge-join (key, digest) lists of
 * those leaves and exchange only the records that differ, both ways. Applies are resolving
 * merges, so a difference caused by a write in flight is harmless.
 *
 * After a run that reached every replica, tombstones and expired records that settled before
 * both that run's start and now − grace are purged: none of them can come back.
 */
export class Repairer {
  private readonly peer: RepairPeer
  private running: Promise<RepairStats> | null = null
  private cleanAt: number | undefined
  private readonly graceMs: number
  private readonly depth: number

  constructor(private readonly o: RepairerOptions) {
    this.graceMs = o.tombstoneGraceMs ?? DEFAULT_TOMBSTONE_GRACE_MS
    this.depth = o.depth ?? DEFAULT_DEPTH
    this.peer = new RepairPeer({ store: o.store, transport: o.transport, log: o.log, onBytes: o.onBytes, settledFloor: () => this.lastCleanAt() })
  }

  register(): void {
    this.peer.register()
  }

  /** Repairs every range of this node; a call while a run is going joins that run. */
  repair(): Promise<RepairStats> {
    if (!this.running) this.running = this.run().finally(() => (this.running = null))
    return this.running
  }

  /** repair() for callers that only wait for it (the runtime's loop, POST /admin/repair). */
  async repairAll(): Promise<void> {
    await this.repair()
  }

  private now(): number {
    return this.o.now?.() ?? Date.now()
  }

  /**
   * Settled records before this are skipped in comparisons and may be purged: older than the
   * grace period and than the last clean repair. 0 (nothing) before the first clean repair.
   */
  async settledFloor(): Promise<number> {
    return Math.max(0, Math.min(this.now() - this.graceMs, await this.lastCleanAt()))
  }

  /** Start of the last run that reached every replica of every range (0: none yet). */
  private async lastCleanAt(): Promise<number> {
    if (this.cleanAt === undefined) {
      const raw = await this.o.store.getMeta(META_CLEAN_AT)
      this.cleanAt = raw ? Number(raw.toString()) : 0
    }
    return this.cleanAt
  }

  private async run(): Promise<RepairStats> {
    const { view, log } = this.o
    if (view.rangesPending) throw new RingError('BAD_STATE', 'ranges are moving (a node is joining or leaving); repair when it is done')
    const startedAt = this.now()
    const plan = repairPlan(view.ring, this.o.hostId, this.o.rf)
    const stats: RepairStats = { rangesTotal: plan.length, rangesDone: 0, bytes: 0, sessions: 0, failed: 0, differingLeaves: 0, recordsPulled: 0, recordsPushed: 0, bytesIn: 0, bytesOut: 0, clean: true, purged: 0 }
    const progress = () => this.o.onProgress?.({ rangesTotal: stats.rangesTotal, rangesDone: stats.rangesDone, bytes: stats.bytesIn + stats.bytesOut })
    progress()
    const settledBefore = await this.settledFloor()
    for (const { range, replicas } of plan) {
      let local: MerkleTree | undefined
      for (const peer of replicas) {
        if (peer === this.o.hostId) continue
        const m = view.member(peer)
        stats.sessions++
        if (!m || !view.isUp(peer)) {
          stats.failed++
          log.info({ peer: m?.name ?? peer }, 'repair: replica is down; its ranges wait for the next run')
          continue
        }
        const session = new Session(this.o, m.address, range, this.depth, stats, progress)
        try {
          local = await session.run(settledBefore, local)
        } catch (e) {
          stats.failed++
          local = undefined
          log.warn({ err: e, peer: m.name, range: { start: String(range.start), end: String(range.end) } }, 'repair of a range with a replica failed; next run retries')
        }
      }
      stats.rangesDone++
      progress()
    }
    // A run is clean only if it covered the ring as it still is: a plan that changed under it
    // (a node joined or left) may have missed a replica.
    stats.clean = stats.failed === 0 && !view.rangesPending && samePlan(plan, repairPlan(view.ring, this.o.hostId, this.o.rf))
    stats.bytes = stats.bytesIn + stats.bytesOut
    if (stats.clean) {
      await this.o.store.putMeta(META_CLEAN_AT, Buffer.from(String(startedAt)))
      this.cleanAt = startedAt
    }
    const purgeBefore = await this.settledFloor()
    if (purgeBefore > 0) stats.purged = await this.o.store.purgeTombstones(purgeBefore)
    log.info({ ...stats, ms: this.now() - startedAt }, 'repair done')
    return stats
  }
}

/** This node's ranges, split so each has one replica set and merged where contiguous. */
export function repairPlan(ring: Ring, hostId: string, rf: number): { range: Range; replicas: string[] }[] {
  const groups = new Map<string, { replicas: string[]; ranges: Range[] }>()
  for (const r of ring.rangesOf(hostId, rf)) {
    const replicas = [...ring.replicasFor(r.end, rf)].sort()
    const k = replicas.join('\0')
    const g = groups.get(k) ?? { replicas, ranges: [] }
    g.ranges.push(r)
    groups.set(k, g)
  }
  return [...groups.values()].flatMap((g) => mergeContiguous(g.ranges).map((range) => ({ range, replicas: g.replicas })))
}

function samePlan(a: ReturnType<typeof repairPlan>, b: ReturnType<typeof repairPlan>): boolean {
  const key = (p: ReturnType<typeof repairPlan>) => p.map((x) => `${x.range.start}:${x.range.end}:${x.replicas.join(',')}`).sort().join('|')
  return key(a) === key(b)
}

/** One range compared with one replica, from this node's side. */
class Session {
  private pulled = 0

  constructor(
    private readonly o: RepairerOptions,
    private readonly address: string,
    private readonly range: Range,
    private readonly depth: number,
    private readonly stats: RepairStats,
    private readonly progress: () => void,
  ) {}

  /**
   * Compares and exchanges; resolves with this node's tree if it is still valid for the next
   * replica (nothing was pulled into the range), else undefined.
   */
  async run(settledBefore: number, reuse: MerkleTree | undefined): Promise<MerkleTree | undefined> {
    const { transport, store } = this.o
    const { range, depth } = this
    const localP = reuse ? Promise.resolve(reuse) : buildTree(store, range, depth, settledBefore)
    localP.catch(() => {})
    const remote = await transport.request<TreeReply>(this.address, MSG.TREE, { start: range.start, end: range.end, depth, settledBefore }, { timeoutMs: 300_000 })
    this.received(remote.root.length + remote.session.length + 16)
    try {
      // The peer may hold settled records we would skip (it had no clean repair since): then
      // both sides compare with its earlier cutoff.
      const cutoff = remote.settledBefore
      const local = cutoff === settledBefore ? await localP : await buildTree(store, range, depth, cutoff)
      const cmp = new TreeComparison(local, remote.root)
      for (let q = cmp.next(); q; q = cmp.next()) {
        const r = await transport.request<{ hashes: Buffer }>(this.address, MSG.HASHES, { session: remote.session, ...q }, { timeoutMs: 60_000 })
        this.received(r.hashes.length)
        cmp.receive(r.hashes)
      }
      this.stats.differingLeaves += cmp.differing.length
      for (const [first, last] of leafRuns(cmp.differing, local)) {
        const sub = leafRange(range, depth, first, last)
        if (sub) await this.exchange(sub, cutoff)
      }
      return this.pulled === 0 && cutoff === settledBefore ? local : undefined
    } finally {
      transport.request(this.address, MSG.DONE, { session: remote.session }, { timeoutMs: 5000 }).catch(() => {})
    }
  }

  /** Merge-joins both sides' records of `sub` and moves the differing ones. */
  private async exchange(sub: Range, cutoff: number): Promise<void> {
    let pullKeys: Buffer[] = []
    let pullBytes = 0
    let push: RecordChunk = { keys: [], raws: [] }
    let pushBytes = 0
    const flushPull = async () => {
      if (pullKeys.length) await this.pull(pullKeys)
      pullKeys = []
      pullBytes = 0
    }
    const flushPush = async () => {
      if (push.keys.length) await this.push(push, pushBytes)
      push = { keys: [], raws: [] }
      pushBytes = 0
    }
    for await (const a of reconcile(sub, this.localEntries(sub, cutoff), this.remoteEntries(sub, cutoff))) {
      if (a.kind === 'pull') {
        pullKeys.push(a.key)
        pullBytes += a.key.length
        if (pullKeys.length >= MAX_GET_KEYS || pullBytes >= CHUNK_BYTES) await flushPull()
      } else {
        push.keys.push(a.key)
        push.raws.push(a.raw)
        pushBytes += a.key.length + a.raw.length
        if (pushBytes >= CHUNK_BYTES) await flushPush()
      }
    }
    await flushPull()
    await flushPush()
  }

  private async *localEntries(sub: Range, cutoff: number): AsyncGenerator<LocalEntry> {
    for await (const e of scanForRepair(this.o.store, sub, cutoff)) yield { token: e.token, key: e.key, raw: e.raw, digest: recordDigest(e.raw) }
  }

  private async *remoteEntries(sub: Range, cutoff: number): AsyncGenerator<RemoteEntry> {
    const chunks = this.o.transport.requestStream<DigestChunk>(this.address, MSG.DIGESTS, { start: sub.start, end: sub.end, settledBefore: cutoff }, { timeoutMs: 60_000 })
    for await (const c of chunks) {
      this.received(c.tokens.length + c.digests.length + c.keys.reduce((n, k) => n + k.length, 0))
      yield* digestEntries(c)
    }
  }

  /** Fetches the peer's versions of `keys` and merges them here. */
  private async pull(keys: Buffer[]): Promise<void> {
    for await (const c of this.o.transport.requestStream<RecordChunk>(this.address, MSG.GET, { keys }, { timeoutMs: 60_000 })) {
      let bytes = 0
      // Applied concurrently so the store groups them into few writes.
      await Promise.all(c.keys.map((k, i) => {
        bytes += k.length + c.raws[i]!.length
        return this.o.store.applyRaw(k, c.raws[i]!)
      }))
      this.pulled += c.keys.length
      this.stats.recordsPulled += c.keys.length
      this.received(bytes)
    }
  }

  /** Sends our versions for the peer to merge. */
  private async push(chunk: RecordChunk, bytes: number): Promise<void> {
    await this.o.transport.request(this.address, MSG.PUT, chunk, { timeoutMs: 60_000 })
    this.stats.recordsPushed += chunk.keys.length
    this.stats.bytesOut += bytes
    this.progress()
  }

  private received(n: number): void {
    this.stats.bytesIn += n
    this.o.onBytes(n)
  }
}
