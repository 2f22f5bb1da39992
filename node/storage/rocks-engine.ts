import { accessSync, constants as fsc, mkdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import type { Engine, IterateOptions, WriteOp } from './engine.js'
import { StartupError, invariant } from '../errors.js'
import { SyncWriter } from './sync-writer.js'

// @nxtedition/rocksdb ships no type declarations; this is the part of it ringkv uses.
interface RocksIterator {
  nextv(size: number): Promise<[Buffer, Buffer | undefined][]>
  close(): Promise<void>
}
interface RocksChainedBatch {
  put(key: Buffer, value: Buffer): unknown
  del(key: Buffer): unknown
  write(opts?: { sync?: boolean }): Promise<void>
}
interface RocksLevelDb {
  readonly status: string
  readonly handle: bigint
  open(): Promise<void>
  close(): Promise<void>
  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]>
  batch(): RocksChainedBatch
  iterator(opts: Record<string, unknown>): RocksIterator
  clear(opts: { gte: Buffer; lt: Buffer }): Promise<void>
  getProperty(name: string): string
}
type RocksLevelCtor = new (location: string, options: Record<string, unknown>) => RocksLevelDb

const require = createRequire(import.meta.url)
const { RocksLevel } = require('@nxtedition/rocksdb') as { RocksLevel: RocksLevelCtor }

export interface RocksEngineOptions {
  /** block cache bytes (default 32 MiB) */
  cacheSize?: number
  /** memtable budget (default 32 MiB: write buffers of budget/4, up to 6 of them while flushing) */
  memtableBudget?: number
  /**
   * Do `sync: true` writes on a worker thread so an fsync never stalls the event loop
   * (default true). false: sync writes block the calling thread, as the binding does.
   */
  syncInWorker?: boolean
}

const EMPTY = Buffer.alloc(0)
const NEXTV_BATCH = 1000

/** Engine on RocksDB 9 through @nxtedition/rocksdb (see docs/decisions/storage-engine.md). */
export class RocksEngine implements Engine {
  private readonly iterators = new Set<RocksIterator>()
  private pendingGets: { key: Buffer; resolve: (v: Buffer | undefined) => void; reject: (e: unknown) => void }[] = []
  private closed = false

  private constructor(
    readonly dir: string,
    private readonly db: RocksLevelDb,
    private readonly syncWriter: SyncWriter | undefined,
  ) {}

  static async open(dir: string, opts: RocksEngineOptions = {}): Promise<RocksEngine> {
    checkDataDir(dir)
    const memtableBudget = opts.memtableBudget ?? 32 << 20
    const db = new RocksLevel(dir, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      createIfMissing: true,
      // Leveled compaction sized from the memtable budget, no compression on L0/L1 (hot,
      // short-lived) and ZSTD below: the binding's 'level' preset.
      compaction: 'level',
      memtableMemoryBudget: memtableBudget,
      cacheSize: opts.cacheSize ?? 32 << 20,
      // Bloom/ribbon filters and hashed data-block index: GET is the dominant read.
      optimize: 'point-lookup',
      // WAL records are small; compressing each one costs CPU on every write for little.
      walCompression: false,
      // background flush/compaction threads; the binding's default (cores / 2) is 1 here
      parallelism: Math.min(4, Math.max(2, availableParallelism())),
    })
    try {
      await db.open()
    } catch (err) {
      throw openError(dir, err)
    }
    let writer: SyncWriter | undefined
    if (opts.syncInWorker !== false) {
      try {
        writer = await SyncWriter.start(db.handle)
      } catch (err) {
        await db.close()
        throw err
      }
    }
    return new RocksEngine(dir, db, writer)
  }

  /**
   * Point reads issued in the same tick go to RocksDB as one multi-get: one hop to the thread
   * pool for a whole chunk of streamed records or a burst of requests, not one each.
   */
  get(key: Buffer): Promise<Buffer | undefined> {
    this.checkOpen()
    return new Promise((resolve, reject) => {
      this.pendingGets.push({ key, resolve, reject })
      if (this.pendingGets.length === 1) queueMicrotask(() => this.flushGets())
    })
  }

  private flushGets(): void {
    const batch = this.pendingGets
    this.pendingGets = []
    this.db.getMany(batch.map((g) => g.key)).then(
      (vs) => {
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(vs[i] ?? undefined)
      },
      (err) => {
        for (const g of batch) g.reject(err)
      },
    )
  }

  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    this.checkOpen()
    if (keys.length === 0) return []
    const vs = await this.db.getMany(keys)
    return vs.map((v) => v ?? undefined)
  }

  async write(ops: WriteOp[], opts: { sync?: boolean } = {}): Promise<void> {
    this.checkOpen()
    if (ops.length === 0) return
    if (opts.sync && this.syncWriter) return this.syncWriter.write(ops)
    const b = this.db.batch()
    for (const op of ops) {
      if (op.type === 'put') b.put(op.key, op.value)
      else b.del(op.key)
    }
    await b.write({ sync: opts.sync === true })
  }

  iterate(opts: IterateOptions): AsyncIterable<[Buffer, Buffer]> {
    this.checkOpen()
    const ro: Record<string, unknown> = { values: !opts.keysOnly }
    if (opts.gte) ro.gte = opts.gte
    if (opts.lt) ro.lt = opts.lt
    if (opts.limit !== undefined) ro.limit = opts.limit
    // Created now, so the snapshot is taken now, not when the caller starts iterating.
    const it = this.db.iterator(ro)
    this.iterators.add(it)
    const release = async () => {
      if (this.iterators.delete(it)) await it.close()
    }
    let rows: [Buffer, Buffer | undefined][] = []
    let pos = 0
    let done = false
    const end = async (): Promise<IteratorResult<[Buffer, Buffer]>> => {
      done = true
      await release()
      return { done: true, value: undefined }
    }
    // A hand-written iterator rather than a generator: return() must release the RocksDB
    // iterator even when iteration never started.
    const iterator: AsyncIterator<[Buffer, Buffer]> = {
      async next() {
        while (pos >= rows.length) {
          if (done) return { done: true, value: undefined }
          try {
            rows = await it.nextv(NEXTV_BATCH)
          } catch (err) {
            await end()
            throw err
          }
          pos = 0
          if (rows.length === 0) return end()
        }
        const [k, v] = rows[pos++]!
        return { done: false, value: [k, v ?? EMPTY] }
      },
      return: end,
    }
    let used = false
    return {
      [Symbol.asyncIterator]() {
        invariant(!used, 'an engine iterator can be consumed once')
        used = true
        return iterator
      },
    }
  }

  /** RocksDB iterators (and so snapshots) currently held open. */
  get openIterators(): number {
    return this.iterators.size
  }

  async deleteRange(gte: Buffer, lt: Buffer): Promise<void> {
    this.checkOpen()
    if (Buffer.compare(gte, lt) >= 0) return
    await this.db.clear({ gte, lt })
  }

  approximateSize(): number {
    if (this.closed) return 0
    // Live data in SST files (0 until the first flush) plus what is still in memtables.
    const sst = Number(this.db.getProperty('rocksdb.estimate-live-data-size')) || 0
    const mem = Number(this.db.getProperty('rocksdb.cur-size-all-mem-tables')) || 0
    return sst + mem
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.syncWriter?.close()
    await Promise.allSettled([...this.iterators].map((it) => it.close()))
    this.iterators.clear()
    await this.db.close()
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`storage engine for ${this.dir} is closed`)
  }
}

const NOT_WRITABLE = new Set(['EACCES', 'EPERM', 'EROFS'])

/** Fails early, in one line, on a data dir RocksDB could only fail on obscurely. */
function checkDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    if (NOT_WRITABLE.has(code)) throw notWritable(dir, code)
    if (code === 'EEXIST') throw notADirectory(dir)
    if (code === 'ENOTDIR') throw new StartupError(`data dir ${dir} cannot be created: part of its path is a file; choose another --data-dir`)
    throw new StartupError(`cannot create data dir ${dir}: ${(err as Error).message}`)
  }
  if (!statSync(dir).isDirectory()) throw notADirectory(dir)
  try {
    accessSync(dir, fsc.W_OK | fsc.X_OK)
  } catch (err) {
    throw notWritable(dir, (err as NodeJS.ErrnoException).code ?? 'EACCES')
  }
}

function notWritable(dir: string, code: string): StartupError {
  return new StartupError(`data dir ${dir} is not writable (${code}); give the node's user write access to it or choose another --data-dir`)
}

function notADirectory(dir: string): StartupError {
  return new StartupError(`data dir ${dir} exists and is not a directory; remove it or choose another --data-dir`)
}

function openError(dir: string, err: unknown): StartupError {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } }
  const code = e.cause?.code ?? e.code ?? ''
  const msg = e.cause?.message ?? e.message ?? String(err)
  if (code === 'LEVEL_LOCKED' || /\/LOCK\b/.test(msg)) {
    return new StartupError(`data dir ${dir} is already in use by another ringkv node (RocksDB LOCK held); stop that node or choose another --data-dir`)
  }
  if (/Permission denied|Read-only file system/i.test(msg)) return notWritable(dir, 'EACCES')
  if (/No space left/i.test(msg)) return new StartupError(`data dir ${dir} is on a full disk; free space or move it, then restart`)
  if (/Corruption/i.test(msg)) {
    return new StartupError(`data dir ${dir} is corrupt (${msg}); restore it from a backup, or empty it so this node joins as a new node`)
  }
  return new StartupError(`cannot open data dir ${dir}: ${msg}`)
}
