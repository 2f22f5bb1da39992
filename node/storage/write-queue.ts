import type { Engine, WriteOp } from './engine.js'

export interface WriteStats {
  /** engine write calls made */
  writeCalls: number
  /** of which with sync (one WAL fsync each) */
  syncWrites: number
  /** ops written in all */
  opsWritten: number
  /** most ops in one write call */
  largestBatch: number
}

interface OpsEntry {
  kind: 'ops'
  ops: WriteOp[]
  bytes: number
  sync: boolean
  resolve: () => void
  reject: (e: unknown) => void
}

interface ExclusiveEntry {
  kind: 'exclusive'
  run: () => Promise<void>
  resolve: () => void
  reject: (e: unknown) => void
}

// Bounds on one group, so a burst of large values cannot make one write (and the copy to
// the sync thread) arbitrarily big. A single larger write still goes through alone.
const MAX_GROUP_OPS = 4096
const MAX_GROUP_BYTES = 16 << 20

/**
 * Group commit. Every write goes through this queue; while one engine write is in flight,
 * arriving writes wait and then all go in the next one, so concurrent writers share a write
 * call and, when durable, a single WAL fsync. A write's promise resolves only after the
 * write call containing it has returned (WAL written; fsynced if durable or asked for).
 *
 * Exclusive entries (range deletes) run alone, after everything queued before them and
 * before everything queued after them.
 */
export class WriteQueue {
  private readonly queue: (OpsEntry | ExclusiveEntry)[] = []
  private busy = false
  private scheduled = false
  private idleWaiters: (() => void)[] = []
  readonly stats: WriteStats = { writeCalls: 0, syncWrites: 0, opsWritten: 0, largestBatch: 0 }

  constructor(
    private readonly engine: Engine,
    private readonly durable: boolean,
  ) {}

  /** Writes ops atomically. `sync` forces an fsync even when the queue is not durable. */
  write(ops: WriteOp[], sync = false): Promise<void> {
    let bytes = 0
    for (const op of ops) bytes += op.key.length + (op.type === 'put' ? op.value.length : 0)
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'ops', ops, bytes, sync, resolve, reject })
      this.schedule()
    })
  }

  /** Runs `run` with no write in flight before it finishes. */
  exclusive(run: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'exclusive', run, resolve, reject })
      this.schedule()
    })
  }

  /** Resolves once everything queued so far has been written. */
  drain(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve()
    return new Promise<void>((r) => this.idleWaiters.push(r))
  }

  /**
   * An idle queue waits for the end of the current event-loop turn before writing, so the
   * writes of every request handled in that turn share one engine write. Without it a
   * non-durable write (which the binding runs synchronously) always went alone: ~40 µs of
   * main-thread RocksDB work per PUT instead of per batch.
   */
  private schedule(): void {
    if (this.busy || this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.pump()
    })
  }

  private pump(): void {
    if (this.busy) return
    const head = this.queue[0]
    if (!head) {
      for (const w of this.idleWaiters.splice(0)) w()
      return
    }
    this.busy = true
    const done = () => {
      this.busy = false
      this.pump()
    }
    if (head.kind === 'exclusive') {
      this.queue.shift()
      head.run().then(head.resolve, head.reject).finally(done)
      return
    }
    const group: OpsEntry[] = []
    let nOps = 0
    let bytes = 0
    for (const e of this.queue) {
      if (e.kind !== 'ops') break
      if (group.length > 0 && (nOps + e.ops.length > MAX_GROUP_OPS || bytes + e.bytes > MAX_GROUP_BYTES)) break
      group.push(e)
      nOps += e.ops.length
      bytes += e.bytes
    }
    this.queue.splice(0, group.length)
    const ops = group.length === 1 ? group[0]!.ops : group.flatMap((e) => e.ops)
    const sync = this.durable || group.some((e) => e.sync)
    this.stats.writeCalls++
    if (sync) this.stats.syncWrites++
    this.stats.opsWritten += ops.length
    if (ops.length > this.stats.largestBatch) this.stats.largestBatch = ops.length
    this.engine
      .write(ops, { sync })
      .then(
        () => group.forEach((e) => e.resolve()),
        (err) => group.forEach((e) => e.reject(err)),
      )
      .finally(done)
  }
}
