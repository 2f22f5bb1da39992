import type { Range } from '../ring/range.js'
import { offsetIn } from './merkle.js'

export interface LocalEntry {
  token: bigint
  key: Buffer
  raw: Buffer
  digest: Buffer
}

export interface RemoteEntry {
  token: bigint
  key: Buffer
  digest: Buffer
}

/** What one side must do about one key: fetch the peer's version, or send ours. */
export type Action = { kind: 'pull'; key: Buffer } | { kind: 'push'; key: Buffer; raw: Buffer }

/**
 * Merge-joins this replica's records of `range` with the peer's (key, digest) list, both in
 * range order, and yields only the keys that differ: a key only the peer has is pulled, one
 * only we have is pushed, one whose versions differ goes both ways (each side resolves, so
 * both end with the merge). Streams: holds one entry of each side at a time.
 */
export async function* reconcile(range: Range, local: AsyncIterable<LocalEntry>, remote: AsyncIterable<RemoteEntry>): AsyncGenerator<Action> {
  const li = local[Symbol.asyncIterator]()
  const ri = remote[Symbol.asyncIterator]()
  try {
    let l = await li.next()
    let r = await ri.next()
    while (!l.done || !r.done) {
      const c = l.done ? 1 : r.done ? -1 : compare(range, l.value, r.value)
      if (c < 0) {
        yield { kind: 'push', key: l.value!.key, raw: l.value!.raw }
        l = await li.next()
      } else if (c > 0) {
        yield { kind: 'pull', key: r.value!.key }
        r = await ri.next()
      } else {
        if (!l.value!.digest.equals(r.value!.digest)) {
          yield { kind: 'pull', key: r.value!.key }
          yield { kind: 'push', key: l.value!.key, raw: l.value!.raw }
        }
        l = await li.next()
        r = await ri.next()
      }
    }
  } finally {
    // An early stop (error, break) must release both sides: snapshots and the remote stream.
    await Promise.allSettled([li.return?.(), ri.return?.()])
  }
}

/** Range order: offset from the range start, then key bytes — the engine's key order. */
function compare(range: Range, a: { token: bigint; key: Buffer }, b: { token: bigint; key: Buffer }): number {
  if (a.token !== b.token) return offsetIn(range, a.token) < offsetIn(range, b.token) ? -1 : 1
  return Buffer.compare(a.key, b.key)
}
