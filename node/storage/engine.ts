/**
 * The narrow surface ringkv needs from an ordered byte-key store. Everything above this
 * (records, key layout, hints, merging) is engine-independent, so RocksDB could be swapped
 * for another LSM without touching replication or streaming.
 */
export type WriteOp =
  | { type: 'put'; key: Buffer; value: Buffer }
  | { type: 'del'; key: Buffer }

export interface IterateOptions {
  gte?: Buffer
  lt?: Buffer
  /** stop after this many entries */
  limit?: number
  /** skip reading values (each entry's value is then an empty buffer) */
  keysOnly?: boolean
}

export interface Engine {
  get(key: Buffer): Promise<Buffer | undefined>
  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]>
  /**
   * Applies the ops atomically. Resolves only once they are in the write-ahead log; with
   * `sync` only once the WAL is fsynced.
   */
  write(ops: WriteOp[], opts?: { sync?: boolean }): Promise<void>
  /**
   * Ordered entries in [gte, lt), read from a snapshot taken when iterate() is called (not
   * when iteration starts): writes that happen while it runs are not seen and never blocked.
   * The result can be iterated once.
   */
  iterate(opts: IterateOptions): AsyncIterable<[Buffer, Buffer]>
  /** Drops [gte, lt) with a range delete (one tombstone), not key by key. */
  deleteRange(gte: Buffer, lt: Buffer): Promise<void>
  /** Estimated bytes of live data, for `load` in cluster views. */
  approximateSize(): number
  close(): Promise<void>
}
