import { randomBytes } from 'node:crypto'
import type { Engine } from './engine.js'
import type { StoredRecord } from './record.js'
import { RocksEngine, type RocksEngineOptions } from './rocks-engine.js'
import { WriteQueue, type WriteStats } from './write-queue.js'
import { RECORD_FORMAT, decodeHint, decodeRecord, encodeHint, encodeRecord } from './codec.js'
import { allDataBounds, allHintBounds, dataKey, hintBounds, hintKey, metaKey, parseDataKey, parseHintKey, rangeBounds } from './keys.js'
import { resolve } from '../replication/resolve.js'
import { KeyedLock } from '../util/keyed-lock.js'
import { RecordCache } from './record-cache.js'
import { StartupError, invariant } from '../errors.js'

export interface StoreOptions {
  /** fsync the WAL before a write resolves (group-committed). false: a process crash loses
   *  nothing, a machine crash may lose the last writes. */
  durable: boolean
  /** an engine to use instead of opening RocksDB in `dir` */
  engine?: Engine
  /** bytes of recently used records kept decoded-ready in memory (default 64 MiB; 0 = off) */
  cacheBytes?: number
  rocks?: RocksEngineOptions
}

export interface ApplyResult {
  /** the version now stored (the resolved winner) */
  stored: StoredRecord
  /** whether the stored version changed */
  changed: boolean
  /** whether the versions were concurrent and a tie-break decided (count it in a metric) */
  concurrent: boolean
}

export interface ScanEntry {
  key: Buffer
  token: bigint
  /** the encoded record, as stored (decodeRecord / applyRaw) */
  raw: Buffer
}

export interface Hint {
  /** pass to deleteHint once delivered */
  id: Buffer
  key: Buffer
  rec: StoredRecord
  expiresAt: number
}

/** Purge candidates re-checked and deleted together (one group commit). */
const PURGE_BATCH = 256

/**
 * When a record stopped holding data (ms since epoch): a tombstone when it was written, an
 * expiring record at the later of its write and its expiry; undefined while it holds data.
 * Only after this, plus the grace period, may it be purged.
 */
export function settledAt(rec: StoredRecord): number | undefined {
  if (rec.tombstone) return rec.ts.wall
  if (rec.expiresAt !== undefined) return Math.max(rec.ts.wall, rec.expiresAt)
  return undefined
}

/** Layout of the data dir; bumped on incompatible changes to keys.ts or codec.ts. */
const STORAGE_FORMAT = 1
const META_FORMAT = 'storage-format'
const META_HOST_ID = 'host-id'

/**
 * A node's local replica: records by key, hints for peers that were down, and node metadata,
 * in one engine. Every write goes through one group-commit queue; per-key read-resolve-write
 * is serialised by an in-process lock (this process is the only writer: RocksDB's LOCK).
 */
export class Store {
  private readonly keyLocks = new KeyedLock()
  private readonly hintLocks = new KeyedLock()
  private closed = false
  private readonly cache: RecordCache

  private constructor(
    private readonly engine: Engine,
    private readonly queue: WriteQueue,
    private readonly id: string,
    private readonly hintCounts: Map<string, number>,
    private hintSeq: bigint,
    readonly durable: boolean,
    cacheBytes: number,
  ) {
    this.cache = new RecordCache(cacheBytes)
  }

  static async open(dir: string, opts: StoreOptions): Promise<Store> {
    const engine = opts.engine ?? (await RocksEngine.open(dir, opts.rocks))
    try {
      return await Store.init(dir, engine, opts.durable, opts.cacheBytes ?? 64 << 20)
    } catch (err) {
      await engine.close().catch(() => {})
      throw err
    }
  }

  private static async init(dir: string, engine: Engine, durable: boolean, cacheBytes: number): Promise<Store> {
    const queue = new WriteQueue(engine, durable)
    const [format, storedId] = await engine.getMany([metaKey(META_FORMAT), metaKey(META_HOST_ID)])
    if (format && format.toString() !== String(STORAGE_FORMAT)) {
      throw new StartupError(`data dir ${dir} has storage format ${format.toString()}, this ringkv reads format ${STORAGE_FORMAT}; run a matching ringkv version or empty the dir to join as a new node`)
    }
    let hostId = storedId?.toString()
    if (!hostId) {
      // The identity lives with the data: an empty data dir is a new node, whatever its name.
      hostId = randomBytes(8).toString('hex')
      await queue.write(
        [
          { type: 'put', key: metaKey(META_FORMAT), value: Buffer.from(String(STORAGE_FORMAT)) },
          { type: 'put', key: metaKey(META_HOST_ID), value: Buffer.from(hostId) },
        ],
        true,
      )
    }
    const counts = new Map<string, number>()
    let maxSeq = 0n
    for await (const [k] of engine.iterate({ ...allHintBounds(), keysOnly: true })) {
      const { target, seq } = parseHintKey(k)
      counts.set(target, (counts.get(target) ?? 0) + 1)
      if (seq > maxSeq) maxSeq = seq
    }
    return new Store(engine, queue, hostId, counts, maxSeq + 1n, durable, cacheBytes)
  }

  /** This node's identity, created with the data dir. */
  hostId(): string {
    return this.id
  }

  /** The stored record, tombstones and expired records included (see isLive). */
  async get(key: Buffer): Promise<StoredRecord | undefined> {
    const raw = await this.getRaw(key)
    return raw && decodeRecord(raw)
  }

  /** The stored record's encoding, for sending on as is. */
  async getRaw(key: Buffer): Promise<Buffer | undefined> {
    this.checkOpen()
    const dk = dataKey(key)
    const ck = dk.toString('latin1')
    const hit = this.cache.get(ck)
    if (hit) return hit
    const epoch = this.cache.epoch
    const raw = await this.engine.get(dk)
    if (raw) this.cache.fill(ck, raw, epoch)
    return raw
  }

  /**
   * Read-modify-write of one key under its lock: `make` builds the new version from the stored
   * one (a coordinator minting a version), which is then resolved and stored as by apply().
   * One read instead of a get() followed by an apply().
   */
  update(key: Buffer, make: (current: StoredRecord | undefined) => StoredRecord): Promise<ApplyResult> {
    this.checkOpen()
    const dk = dataKey(key)
    const ck = dk.toString('latin1')
    return this.keyLocks.run(ck, async () => {
      const currentRaw = this.cache.get(ck) ?? (await this.engine.get(dk))
      return this.store(dk, ck, currentRaw, make(currentRaw && decodeRecord(currentRaw)), undefined)
    })
  }

  /**
   * Merges `incoming` into the stored version of `key` (see resolve) and stores the winner.
   * Atomic per key against other applies in this process; resolves once durable as
   * configured.
   */
  apply(key: Buffer, incoming: StoredRecord): Promise<ApplyResult> {
    return this.applyEncoded(key, incoming, undefined)
  }

  /** apply() for an encoded record, e.g. from a range stream. */
  applyRaw(key: Buffer, raw: Buffer): Promise<ApplyResult> {
    return this.applyEncoded(key, decodeRecord(raw), raw)
  }

  private async applyEncoded(key: Buffer, incoming: StoredRecord, incomingRaw: Buffer | undefined): Promise<ApplyResult> {
    this.checkOpen()
    const dk = dataKey(key)
    const ck = dk.toString('latin1')
    return this.keyLocks.run(ck, async () => {
      const currentRaw = this.cache.get(ck) ?? (await this.engine.get(dk))
      return this.store(dk, ck, currentRaw, incoming, incomingRaw)
    })
  }

  /** Resolve against the current version and write the winner; the caller holds the key lock. */
  private async store(dk: Buffer, ck: string, currentRaw: Buffer | undefined, incoming: StoredRecord, incomingRaw: Buffer | undefined): Promise<ApplyResult> {
    if (!currentRaw) {
      const raw = incomingRaw ?? encodeRecord(incoming)
      await this.queue.write([{ type: 'put', key: dk, value: raw }])
      this.cache.set(ck, raw)
      return { stored: incoming, changed: true, concurrent: false }
    }
    const current = decodeRecord(currentRaw)
    const { winner, concurrent } = resolve(current, incoming)
    if (winner === current) {
      this.cache.set(ck, currentRaw)
      return { stored: current, changed: false, concurrent }
    }
    const raw = winner === incoming && incomingRaw ? incomingRaw : encodeRecord(winner)
    if (raw.equals(currentRaw)) return { stored: current, changed: false, concurrent }
    await this.queue.write([{ type: 'put', key: dk, value: raw }])
    this.cache.set(ck, raw)
    return { stored: winner, changed: true, concurrent }
  }

  /**
   * The records of ring range (start, end] (start == end: the whole ring) in token order,
   * read from a snapshot taken by this call: writes made meanwhile are neither seen nor
   * blocked. Iterate it to the end (or break) so its snapshot is released.
   */
  scanRange(start: bigint, end: bigint): AsyncIterable<ScanEntry> {
    this.checkOpen()
    const sources = rangeBounds(start, end).map((b) => this.engine.iterate(b))
    return mapSources(sources, ([k, raw]) => {
      const { token, key } = parseDataKey(k)
      return { key, token, raw }
    })
  }

  /**
   * Drops every record of ring range (start, end] with range deletes. Runs after the writes
   * queued before it. The caller must make sure the range no longer receives writes (no
   * cleanup while ranges are pending), or a write racing it may survive.
   */
  async dropRange(start: bigint, end: bigint): Promise<void> {
    this.checkOpen()
    const bounds = rangeBounds(start, end)
    return this.queue.exclusive(async () => {
      for (const b of bounds) await this.engine.deleteRange(b.gte, b.lt)
      // Rare (cleanup): dropping the whole cache is simpler than finding the range's keys.
      this.cache.clear()
    })
  }

  /**
   * Deletes every record that settled (see settledAt) before `olderThanMs`: tombstones and
   * expired records nobody needs any more. The caller decides the cutoff — the tombstone grace
   * period and repair history (docs/decisions/repair.md); purging too early resurrects deleted
   * data. A record overwritten while the purge runs is kept. Resolves with the number purged.
   */
  async purgeTombstones(olderThanMs: number): Promise<number> {
    this.checkOpen()
    let purged = 0
    let batch: [Buffer, Buffer][] = []
    const flush = async () => {
      const done = await Promise.all(batch.map(([dk, raw]) => this.keyLocks.run(dk.toString('latin1'), async () => {
        const current = await this.engine.get(dk)
        if (!current?.equals(raw)) return 0
        await this.queue.write([{ type: 'del', key: dk }])
        this.cache.delete(dk.toString('latin1'))
        return 1
      })))
      for (const n of done) purged += n
      batch = []
    }
    for await (const [dk, raw] of this.engine.iterate(allDataBounds())) {
      // flags byte 0 (codec.ts): neither a tombstone nor expiring, so no need to decode
      if (raw[0] === RECORD_FORMAT && raw[1] === 0) continue
      const at = settledAt(decodeRecord(raw))
      if (at === undefined || at >= olderThanMs) continue
      batch.push([dk, raw])
      if (batch.length >= PURGE_BATCH) await flush()
    }
    await flush()
    return purged
  }

  /** Stores a hint for `target` (a host id) to replay when it is back. Returns its id. */
  async addHint(target: string, key: Buffer, rec: StoredRecord, expiresAt: number): Promise<Buffer> {
    this.checkOpen()
    const id = hintKey(target, this.hintSeq++)
    await this.queue.write([{ type: 'put', key: id, value: encodeHint(key, rec, expiresAt) }])
    this.hintCounts.set(target, (this.hintCounts.get(target) ?? 0) + 1)
    return id
  }

  /** Hints for one target, oldest first, from a snapshot taken by this call. */
  hintsFor(target: string): AsyncIterable<Hint> {
    this.checkOpen()
    return mapSources([this.engine.iterate(hintBounds(target))], ([id, v]) => {
      const h = decodeHint(v)
      return { id, key: h.key, rec: h.rec, expiresAt: h.expiresAt }
    })
  }

  /** Deletes a delivered (or expired) hint; false if it was already gone. */
  async deleteHint(id: Buffer): Promise<boolean> {
    this.checkOpen()
    const { target } = parseHintKey(id)
    return this.hintLocks.run(id.toString('latin1'), async () => {
      if (!(await this.engine.get(id))) return false
      await this.queue.write([{ type: 'del', key: id }])
      const n = (this.hintCounts.get(target) ?? 0) - 1
      invariant(n >= 0, `hint count for ${target} went negative`)
      if (n === 0) this.hintCounts.delete(target)
      else this.hintCounts.set(target, n)
      return true
    })
  }

  /** Hints stored, for one target or for all. */
  countHints(target?: string): number {
    if (target !== undefined) return this.hintCounts.get(target) ?? 0
    let n = 0
    for (const c of this.hintCounts.values()) n += c
    return n
  }

  /** Host ids that have hints waiting. */
  hintTargets(): string[] {
    return [...this.hintCounts.keys()].sort()
  }

  async getMeta(name: string): Promise<Buffer | undefined> {
    this.checkOpen()
    return this.engine.get(metaKey(name))
  }

  /** Stores node metadata (tokens, state) with an fsync, whatever `durable` says. */
  async putMeta(name: string, value: Buffer): Promise<void> {
    this.checkOpen()
    return this.queue.write([{ type: 'put', key: metaKey(name), value }], true)
  }

  /** Estimated bytes of live data (the node's `load`). */
  approximateSize(): number {
    return this.engine.approximateSize()
  }

  /** Group-commit counters. */
  writeStats(): Readonly<WriteStats> {
    return { ...this.queue.stats }
  }

  /** Waits for queued writes, then closes the engine. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.queue.drain()
    await this.engine.close()
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('store is closed')
  }
}

/**
 * The entries of several engine iterators one after the other, mapped. Unlike an async
 * generator, return() (a `break` out of for-await) and errors release every source, also
 * those not reached yet, whose snapshots would otherwise stay pinned until close.
 */
function mapSources<T>(sources: AsyncIterable<[Buffer, Buffer]>[], f: (e: [Buffer, Buffer]) => T): AsyncIterableIterator<T> {
  const its = sources.map((s) => s[Symbol.asyncIterator]())
  let j = 0
  const release = async (): Promise<IteratorResult<T>> => {
    j = its.length
    await Promise.allSettled(its.map((it) => it.return?.()))
    return { done: true, value: undefined }
  }
  const out: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => out,
    async next() {
      try {
        while (j < its.length) {
          const r = await its[j]!.next()
          if (!r.done) return { done: false, value: f(r.value) }
          j++
        }
      } catch (err) {
        await release()
        throw err
      }
      return { done: true, value: undefined }
    },
    return: release,
  }
  return out
}
