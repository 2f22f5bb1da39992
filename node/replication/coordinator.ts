import { RingError, toRingError } from '../errors.js'
import type { ClientWrite, Consistency } from '../api/service.js'
import type { StoredRecord } from '../storage/record.js'
import { planRead, planWrite, WriteRound, type RoundOutcome } from './rounds.js'
import { canonicalVV, resolve } from './resolve.js'
import { compareVV, mergeVV, mintCounter, type HlcClock, type VersionVector } from './version.js'

/** Where a key lives right now, as this node's ring and failure detector see it. */
export interface Topology {
  readonly selfId: string
  readonly rf: number
  /** natural: the replicas now; pending: replicas-to-be that are not replicas now; future: all
   *  replicas-to-be, given only while the key's range moves */
  replicasFor(key: Buffer): { natural: string[]; pending: string[]; future?: string[] }
  isUp(hostId: string): boolean
  /** false for a replica that is leaving the ring: it may stop coordinating any moment, so a
   *  forwarded request goes to another replica first (default: every replica is fine) */
  coordinates?(hostId: string): boolean
}

/** The replica operations a coordinator performs on other nodes (the transport implements it). */
export interface ReplicaChannel {
  apply(hostId: string, key: Buffer, rec: StoredRecord, timeoutMs: number): Promise<void>
  read(hostId: string, key: Buffer, timeoutMs: number): Promise<StoredRecord | undefined>
  forwardWrite(hostId: string, key: Buffer, w: ClientWrite, cl: Consistency, timeoutMs: number): Promise<StoredRecord>
  forwardRead(hostId: string, key: Buffer, cl: Consistency, timeoutMs: number): Promise<StoredRecord | undefined>
}

/** This node's own replica: the store. */
export interface LocalReplica {
  get(key: Buffer): Promise<StoredRecord | undefined>
  apply(key: Buffer, rec: StoredRecord): Promise<{ stored: StoredRecord; changed: boolean; concurrent: boolean }>
  /** read-modify-write under the key's lock: `make` builds the new version from the current one */
  update(key: Buffer, make: (current: StoredRecord | undefined) => StoredRecord): Promise<{ stored: StoredRecord; changed: boolean; concurrent: boolean }>
  addHint(target: string, key: Buffer, rec: StoredRecord, expiresAt: number): Promise<unknown>
}

export interface CoordinatorHooks {
  onConcurrent?(): void
  onReadRepair?(count: number): void
  onHint?(target: string): void
}

export interface CoordinatorOptions {
  topology: Topology
  channel: ReplicaChannel
  local: LocalReplica
  clock: HlcClock
  timeoutMs: number
  hintWindowMs: number
  hooks?: CoordinatorHooks
}

/**
 * Coordinates client reads and writes: a coordinator is always a replica of the key (others
 * forward to one), so version-vector entries are bounded by the key's replica set.
 */
export class Coordinator {
  constructor(private readonly o: CoordinatorOptions) {}

  /**
   * Coordinates a client write. `forwarded`: another node sent it here, so it is not passed on
   * again (two full disks must not bounce a write between them).
   */
  async write(key: Buffer, w: ClientWrite, cl: Consistency, forwarded = false): Promise<StoredRecord> {
    const { topology, channel, timeoutMs } = this.o
    const { natural, pending, future } = topology.replicasFor(key)
    if (!natural.includes(topology.selfId)) {
      return this.forward(natural, (id) => channel.forwardWrite(id, key, w, cl, timeoutMs))
    }
    try {
      return await this.writeAsReplica(key, w, cl, natural, pending, future)
    } catch (e) {
      // Our own disk is full: nothing was written anywhere (the version is minted locally
      // first). Another replica can coordinate it and count us as one failed replica (and keep
      // a hint for us), so one full node does not fail every write it receives.
      const others = natural.filter((id) => id !== topology.selfId)
      if (forwarded || toRingError(e).code !== 'INSUFFICIENT_STORAGE' || others.length === 0) throw e
      return this.forward(others, (id) => channel.forwardWrite(id, key, w, cl, timeoutMs))
    }
  }

  private async writeAsReplica(key: Buffer, w: ClientWrite, cl: Consistency, natural: string[], pending: string[], future: string[] | undefined): Promise<StoredRecord> {
    const { topology, channel, timeoutMs } = this.o
    const plan = planWrite(natural, pending, (id) => id === topology.selfId || topology.isUp(id), cl, topology.rf, future)
    const round = new WriteRound(new Set(natural), plan)
    if (w.context) await this.catchUp(key, w.context, plan.send)
    return new Promise<StoredRecord>((resolvePromise, reject) => {
      let answered = false
      let rec: StoredRecord | undefined
      const settle = (o: RoundOutcome) => {
        if (!o.done || answered) return
        answered = true
        clearTimeout(timer)
        if (o.ok) resolvePromise(rec!)
        else reject(o.error)
      }
      const timer = setTimeout(() => settle(round.timeout()), timeoutMs)
      this.mintLocal(key, w).then(
        (minted) => {
          rec = minted
          settle(round.ack(topology.selfId))
          for (const id of plan.send) {
            if (id === topology.selfId) continue
            channel.apply(id, key, minted, timeoutMs).then(
              () => settle(round.ack(id)),
              () => {
                // A replica that missed the write gets it later as a hint; the hint never counts.
                this.hint(id, key, minted)
                settle(round.fail(id))
              },
            )
          }
          for (const id of plan.hint) this.hint(id, key, minted)
        },
        (e) => {
          answered = true
          clearTimeout(timer)
          reject(e)
        },
      )
    })
  }

  async read(key: Buffer, cl: Consistency): Promise<StoredRecord | undefined> {
    const { topology, channel, timeoutMs } = this.o
    const { natural } = topology.replicasFor(key)
    if (!natural.includes(topology.selfId)) {
      return this.forward(natural, (id) => channel.forwardRead(id, key, cl, timeoutMs))
    }
    const plan = planRead(natural, topology.selfId, (id) => id === topology.selfId || topology.isUp(id), cl, topology.rf)
    // One answer needed and it is ours: nothing to compare or repair, no timer to arm.
    if (plan.blockFor === 1 && plan.ask[0] === topology.selfId) return this.o.local.get(key)
    const answers = await this.gather(key, plan.ask, plan.spare, plan.blockFor)
    let winner: StoredRecord | undefined
    let concurrent = false
    for (const a of answers) {
      if (!a.rec) continue
      if (!winner) winner = a.rec
      else {
        const r = resolve(winner, a.rec)
        winner = r.winner
        concurrent ||= r.concurrent
      }
    }
    if (concurrent) this.o.hooks?.onConcurrent?.()
    if (!winner) return undefined
    // Blocking read repair: the winner is on blockFor replicas before we answer, so a second
    // read at this level (whose replicas intersect these) can never return an older version.
    const stale = answers.filter((a) => !a.rec || !sameVersion(a.rec, winner!))
    if (stale.length) {
      this.o.hooks?.onReadRepair?.(stale.length)
      const w = winner
      const repaired = await Promise.all(
        stale.map(async (a) => {
          const ok = await this.storeAt(a.id, key, w)
          if (!ok && a.id !== topology.selfId) this.hint(a.id, key, w)
          return ok
        }),
      )
      let holding = answers.length - stale.length + repaired.filter(Boolean).length
      // A replica that cannot take the repair (down, or its disk is full) may be made up for
      // by one that was not asked: if it holds the winner (or takes it), it counts.
      if (holding < plan.blockFor) holding += await this.holdElsewhere(key, w, natural, new Set(answers.map((a) => a.id)), plan.blockFor - holding)
      if (holding < plan.blockFor) {
        // Answering now could hand out a version that the next quorum does not contain.
        throw new RingError('TIMEOUT', `the newest version is on ${holding} of the ${plan.blockFor} replicas the consistency level needs, and repairing the others timed out; retry`, { acks: holding, required: plan.blockFor })
      }
    }
    return winner
  }

  /** How many of the live replicas not in `asked` hold `w` or something newer, or take it (up to `need`). */
  private async holdElsewhere(key: Buffer, w: StoredRecord, natural: readonly string[], asked: ReadonlySet<string>, need: number): Promise<number> {
    const { topology, channel, local, timeoutMs } = this.o
    let held = 0
    for (const id of natural) {
      if (held >= need) break
      if (asked.has(id) || !(id === topology.selfId || topology.isUp(id))) continue
      const self = id === topology.selfId
      const rec = await (self ? local.get(key) : channel.read(id, key, timeoutMs)).catch(() => undefined)
      if (rec && (sameVersion(rec, w) || compareVV(rec.vv, w.vv) === 'after')) {
        held++
        continue
      }
      if (await this.storeAt(id, key, w)) held++
    }
    return held
  }

  /** Writes `w` to replica `id` (this node's store or a peer's); false if it could not. */
  private storeAt(id: string, key: Buffer, w: StoredRecord): Promise<boolean> {
    const { topology, channel, local, timeoutMs } = this.o
    const done = id === topology.selfId ? local.apply(key, w) : channel.apply(id, key, w, timeoutMs)
    return done.then(() => true, () => false)
  }

  /** Applies a write coming from another coordinator or a repair. */
  applyReplica(key: Buffer, rec: StoredRecord): Promise<{ stored: StoredRecord; changed: boolean; concurrent: boolean }> {
    this.o.clock.observe(rec.ts)
    return this.o.local.apply(key, rec).then((r) => {
      if (r.concurrent) this.o.hooks?.onConcurrent?.()
      return r
    })
  }

  /**
   * Builds the new version from this replica's current one: the context the client sent (If-Match)
   * and what this replica has are both superseded, and our own counter moves on. The mint lock
   * keeps two writes to one key through this coordinator from minting the same counter.
   */
  private async mintLocal(key: Buffer, w: ClientWrite): Promise<StoredRecord> {
    const { local, clock, topology } = this.o
    // One locked read-modify-write in the store: two writes to one key through this
    // coordinator can never mint the same counter, and the key is read once, not twice.
    const r = await local.update(key, (cur) => {
      // Stamped after the version it supersedes, whatever this node's clock says (it may have
      // restarted, or received that version by repair, without observing its timestamp).
      if (cur) clock.observe(cur.ts)
      let base = cur?.vv ?? {}
      if (w.context) base = mergeVV(base, w.context)
      const ts = clock.tick()
      const rec: StoredRecord = {
        value: w.value ?? Buffer.alloc(0),
        contentType: w.value ? (w.contentType ?? 'application/octet-stream') : '',
        // Canonical entry order: the ETag is the vector's JSON, so the PUT's ETag must match
        // the one later reads (of the decoded, sorted record) return.
        vv: canonicalVV({ ...base, [topology.selfId]: mintCounter(base[topology.selfId], ts) }),
        ts,
        tombstone: w.value === undefined,
      }
      if (w.expiresAt !== undefined) rec.expiresAt = w.expiresAt
      return rec
    })
    if (r.concurrent) this.o.hooks?.onConcurrent?.()
    return r.stored
  }

  /**
   * A client's If-Match may name versions this replica has not received yet (the client read
   * them through another replica). The new version must be stamped after them: resolution
   * orders versions by vector first and HLC second, which is only consistent (associative,
   * the same on every replica whatever the arrival order) while HLC order extends causal
   * order. Otherwise a superseding version with an older HLC can, meeting a third concurrent
   * one, bring the superseded write back. The ETag carries no timestamp to observe, so fetch
   * the versions from the other replicas — only in this case, and for at most half the
   * request timeout; a context nobody can produce (all its holders down) is used as is.
   */
  private catchUp(key: Buffer, context: VersionVector, replicas: string[]): Promise<void> {
    const { topology, channel, local, timeoutMs } = this.o
    const covered = async () => {
      const cur = await local.get(key)
      return !!cur && ['after', 'equal'].includes(compareVV(cur.vv, context))
    }
    return covered().then((ok) => {
      const peers = replicas.filter((id) => id !== topology.selfId)
      if (ok || peers.length === 0) return
      return new Promise<void>((done) => {
        let left = peers.length
        const timer = setTimeout(done, timeoutMs / 2)
        const finish = () => {
          clearTimeout(timer)
          done()
        }
        for (const id of peers) {
          channel
            .read(id, key, timeoutMs / 2)
            .then(async (rec) => {
              if (rec) await this.applyReplica(key, rec)
              if (await covered()) finish()
            })
            .catch(() => {})
            .finally(() => {
              if (--left === 0) finish()
            })
        }
      })
    })
  }

  private hint(target: string, key: Buffer, rec: StoredRecord): void {
    this.o.hooks?.onHint?.(target)
    this.o.local.addHint(target, key, rec, Date.now() + this.o.hintWindowMs).catch(() => {})
  }

  private async gather(key: Buffer, ask: string[], spare: string[], need: number): Promise<{ id: string; rec: StoredRecord | undefined }[]> {
    const { topology, channel, timeoutMs } = this.o
    const got: { id: string; rec: StoredRecord | undefined }[] = []
    const queue = [...spare]
    let failed = 0
    return new Promise((resolvePromise, reject) => {
      let done = false
      const timer = setTimeout(() => {
        if (done) return
        done = true
        reject(new RingError('TIMEOUT', `only ${got.length} of the ${need} replica answers the consistency level needs arrived in time; retry`, { acks: got.length, required: need }))
      }, timeoutMs)
      const askOne = (id: string) => {
        const p = id === topology.selfId ? this.o.local.get(key) : channel.read(id, key, timeoutMs)
        p.then(
          (rec) => {
            if (done) return
            got.push({ id, rec })
            if (got.length >= need) {
              done = true
              clearTimeout(timer)
              resolvePromise(got)
            }
          },
          () => {
            if (done) return
            failed++
            const next = queue.shift()
            if (next) askOne(next)
            else if (got.length + (ask.length + spare.length - got.length - failed) < need) {
              done = true
              clearTimeout(timer)
              reject(new RingError('UNAVAILABLE', `only ${got.length} replicas answered and ${failed} failed; consistency needs ${need} — retry`, { required: need, alive: got.length, acks: got.length }))
            }
          },
        )
      }
      for (const id of ask) askOne(id)
    })
  }

  private async forward<T>(natural: string[], call: (id: string) => Promise<T>): Promise<T> {
    if (natural.length === 0) {
      throw new RingError('UNAVAILABLE', 'no node owns any data yet: the ring is empty until a node joins (auto-join, or POST /admin/join on the peer port)', { required: 1, alive: 0 })
    }
    const { topology } = this.o
    const live = natural.filter((id) => topology.isUp(id))
    if (live.length === 0) {
      throw new RingError('UNAVAILABLE', `none of the key's ${natural.length} replicas is up; retry later`, { required: 1, alive: 0 })
    }
    const settled = (id: string) => topology.coordinates?.(id) ?? true
    const order = [...live.filter(settled), ...live.filter((id) => !settled(id))]
    let last: unknown
    for (const id of order) {
      try {
        return await call(id)
      } catch (e) {
        // An unreachable replica, or one that refused before doing anything (UNAVAILABLE: it
        // is draining, or sees too few replicas), is worth another try. Any other answer is
        // final: after a TIMEOUT the write may be in place, and another coordinator would
        // make it a second, different write.
        if (e instanceof RingError && e.code !== 'UNAVAILABLE') throw e
        last = e
      }
    }
    if (last instanceof RingError) throw last
    throw new RingError('UNAVAILABLE', `no replica of the key could be reached (${(last as Error)?.message ?? 'unknown'}); retry later`, { required: 1, alive: 0 })
  }
}

export function sameVersion(a: StoredRecord, b: StoredRecord): boolean {
  return compareVV(a.vv, b.vv) === 'equal' && a.ts.wall === b.ts.wall && a.ts.logical === b.ts.logical && a.ts.node === b.ts.node && a.tombstone === b.tombstone
}
