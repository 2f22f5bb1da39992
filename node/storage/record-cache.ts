/**
 * Recently used encoded records by data key, bounded by bytes (LRU by Map insertion order).
 *
 * Coherence: the store updates an entry only while it holds that key's lock, after the write
 * is in the WAL. A read outside the lock may fill an entry only if no write touched the cache
 * since the read began (`epoch`); otherwise it could put back a version older than one a write
 * just stored.
 */
export class RecordCache {
  private readonly map = new Map<string, Buffer>()
  private bytes = 0
  /** bumped by every update and invalidation */
  epoch = 0

  constructor(private readonly maxBytes: number) {}

  get(k: string): Buffer | undefined {
    const v = this.map.get(k)
    if (v !== undefined) {
      // refresh recency
      this.map.delete(k)
      this.map.set(k, v)
    }
    return v
  }

  /** After a write of `k` (under its lock). */
  set(k: string, v: Buffer): void {
    this.epoch++
    this.put(k, v)
  }

  /** After a read that began at `epoch`: kept only if nothing was written meanwhile. */
  fill(k: string, v: Buffer, epoch: number): void {
    if (epoch === this.epoch) this.put(k, v)
  }

  delete(k: string): void {
    this.epoch++
    const v = this.map.get(k)
    if (v === undefined) return
    this.map.delete(k)
    this.bytes -= k.length + v.length
  }

  clear(): void {
    this.epoch++
    this.map.clear()
    this.bytes = 0
  }

  get size(): number {
    return this.map.size
  }

  private put(k: string, v: Buffer): void {
    if (this.maxBytes <= 0) return
    const old = this.map.get(k)
    if (old !== undefined) {
      this.map.delete(k)
      this.bytes -= k.length + old.length
    }
    const cost = k.length + v.length
    if (cost > this.maxBytes / 8) return
    this.map.set(k, v)
    this.bytes += cost
    while (this.bytes > this.maxBytes) {
      const first = this.map.keys().next().value as string
      this.bytes -= first.length + this.map.get(first)!.length
      this.map.delete(first)
    }
  }
}
