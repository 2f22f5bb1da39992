import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { createRequire } from 'node:module'
import type { WriteOp } from './engine.js'
import { invariant } from '../errors.js'

/**
 * fsynced writes off the main thread. The binding's batch write runs synchronously on the
 * calling thread, so a `sync: true` write would stall the event loop for a whole fsync
 * (1-3 ms here) and nothing — reads, request parsing, the next group of writes — could run
 * meanwhile. A worker thread opens the same RocksDB instance through the binding's native
 * handle and does the sync writes; the main thread only packs the ops into one transferable
 * buffer. This module is both the main-thread client (SyncWriter) and, when started as a
 * worker, the worker loop.
 */

const ROLE = 'ringkv-sync-writer'
const PUT = 1
const DEL = 2

/** u32 count, then per op: u8 type, u32 key length, key, [u32 value length, value]. */
export function packOps(ops: WriteOp[]): ArrayBuffer {
  let size = 4
  for (const op of ops) size += 1 + 4 + op.key.length + (op.type === 'put' ? 4 + op.value.length : 0)
  const buf = Buffer.from(new ArrayBuffer(size))
  buf.writeUInt32BE(ops.length, 0)
  let off = 4
  for (const op of ops) {
    buf[off] = op.type === 'put' ? PUT : DEL
    buf.writeUInt32BE(op.key.length, off + 1)
    off += 5 + op.key.copy(buf, off + 5)
    if (op.type === 'put') {
      buf.writeUInt32BE(op.value.length, off)
      off += 4 + op.value.copy(buf, off + 4)
    }
  }
  invariant(off === size, 'packed size mismatch')
  return buf.buffer as ArrayBuffer
}

export function unpackOps(ab: ArrayBuffer): WriteOp[] {
  const buf = Buffer.from(ab)
  const n = buf.readUInt32BE(0)
  const ops: WriteOp[] = new Array(n)
  let off = 4
  for (let i = 0; i < n; i++) {
    const type = buf[off]
    const klen = buf.readUInt32BE(off + 1)
    const key = buf.subarray(off + 5, off + 5 + klen)
    off += 5 + klen
    if (type === PUT) {
      const vlen = buf.readUInt32BE(off)
      ops[i] = { type: 'put', key, value: buf.subarray(off + 4, off + 4 + vlen) }
      off += 4 + vlen
    } else {
      ops[i] = { type: 'del', key }
    }
  }
  return ops
}

interface Reply {
  id: number
  error?: string
}

/** Main-thread side: one worker, writes in flight tracked by id. */
export class SyncWriter {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
  private drained: (() => void)[] = []
  private failed: Error | undefined
  private closing = false

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: Reply) => this.settle(m.id, m.error === undefined ? undefined : new Error(m.error)))
    const fail = (e: Error) => {
      this.failed ??= e
      for (const id of [...this.pending.keys()]) this.settle(id, e)
    }
    worker.on('error', fail)
    worker.on('exit', (code) => {
      if (!this.closing) fail(new Error(`RocksDB sync-writer thread exited (code ${code})`))
    })
  }

  /** Starts the worker on the already-open database behind `handle`. */
  static async start(handle: bigint): Promise<SyncWriter> {
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: ROLE, handle } })
    const onExit = (code: number) => startFailed(new Error(`RocksDB sync-writer thread exited during start (code ${code})`))
    let startFailed!: (e: Error) => void
    try {
      await new Promise<void>((resolve, reject) => {
        startFailed = reject
        worker.once('message', () => resolve())
        worker.once('error', reject)
        worker.once('exit', onExit)
      })
    } finally {
      worker.removeListener('error', startFailed)
      worker.removeListener('exit', onExit)
    }
    worker.unref()
    return new SyncWriter(worker)
  }

  /** Resolves once the ops are written and the WAL is fsynced. */
  write(ops: WriteOp[]): Promise<void> {
    if (this.failed) return Promise.reject(this.failed)
    const id = this.nextId++
    const packed = packOps(ops)
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      // A pending fsync must keep the process alive; an idle writer must not.
      if (this.pending.size === 1) this.worker.ref()
      this.worker.postMessage({ id, ops: packed }, [packed])
    })
  }

  private settle(id: number, err: Error | undefined): void {
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    if (err) p.reject(err)
    else p.resolve()
    if (this.pending.size === 0) {
      this.worker.unref()
      for (const d of this.drained.splice(0)) d()
    }
  }

  /** Waits for writes in flight, then stops the thread. The database stays open. */
  async close(): Promise<void> {
    if (this.pending.size > 0) await new Promise<void>((r) => this.drained.push(r))
    this.failed ??= new Error('RocksDB sync writer is closed')
    this.closing = true
    await this.worker.terminate()
  }
}

interface RocksBatchLike {
  put(k: Buffer, v: Buffer): unknown
  del(k: Buffer): unknown
  write(opts: { sync: boolean }): Promise<void>
}

async function workerMain(handle: bigint): Promise<void> {
  const require = createRequire(import.meta.url)
  const { RocksLevel } = require('@nxtedition/rocksdb')
  // Attaches to the instance the main thread opened; this thread never closes it.
  const db = new RocksLevel(handle, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  const port = parentPort!
  port.on('message', (m: { id: number; ops: ArrayBuffer }) => {
    let reply: Reply
    try {
      const batch: RocksBatchLike = db.batch()
      for (const op of unpackOps(m.ops)) {
        if (op.type === 'put') batch.put(op.key, op.value)
        else batch.del(op.key)
      }
      // The binding's write is synchronous; the promise only defers the callback.
      batch.write({ sync: true }).then(
        () => port.postMessage({ id: m.id }),
        (e: Error) => port.postMessage({ id: m.id, error: e.message }),
      )
      return
    } catch (e) {
      reply = { id: m.id, error: (e as Error).message }
    }
    port.postMessage(reply)
  })
  port.postMessage({ ready: true })
}

if (!isMainThread && (workerData as { role?: string } | undefined)?.role === ROLE) {
  void workerMain((workerData as { handle: bigint }).handle)
}
