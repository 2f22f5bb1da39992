/**
 * Serialises async critical sections per key while different keys run in parallel. The map
 * holds only keys with work queued, so it does not grow with the keyspace.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>()

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key)
    let release!: () => void
    const mine = new Promise<void>((r) => (release = r))
    const tail = prev ? prev.then(() => mine) : mine
    this.tails.set(key, tail)
    try {
      if (prev) await prev
      return await fn()
    } finally {
      release()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }

  get size(): number {
    return this.tails.size
  }
}
