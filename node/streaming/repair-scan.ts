import { createHash } from 'node:crypto'
import { RECORD_FORMAT, decodeRecord } from '../storage/codec.js'
import { settledAt, type ScanEntry, type Store } from '../storage/store.js'
import type { Range } from '../ring/range.js'
import { TOKEN_MAX } from '../ring/token.js'
import { MerkleBuilder, type MerkleTree } from './merkle.js'

export const DIGEST_BYTES = 16

/**
 * The records of `range` in range order — by offset from its start, then key — which is the
 * order Merkle leaves and the leaf merge-join need. Store.scanRange yields a wrapping range
 * from token 0 first, so a wrapping range is read as its two halves, the upper one first.
 *
 * Records that settled (tombstones, expired records) before `settledBefore` are skipped: every
 * replica may have purged them, and comparing them would copy purged tombstones back.
 */
export async function* scanForRepair(store: Store, range: Range, settledBefore: number): AsyncGenerator<ScanEntry> {
  for (const part of inRangeOrder(range)) {
    for await (const e of store.scanRange(part.start, part.end)) {
      // Byte 1 of a format-1 record is its flags (codec.ts): 0 = neither deleted nor expiring,
      // the common case, decided without decoding.
      if (settledBefore > 0 && !(e.raw[0] === RECORD_FORMAT && e.raw[1] === 0)) {
        const at = settledAt(decodeRecord(e.raw))
        if (at !== undefined && at < settledBefore) continue
      }
      yield e
    }
  }
}

/** `range` as ring ranges that scanRange yields in offset order, in that order. */
export function inRangeOrder(range: Range): Range[] {
  if (range.start < range.end) return [range]
  const parts: Range[] = []
  if (range.start < TOKEN_MAX) parts.push({ start: range.start, end: TOKEN_MAX })
  // (TOKEN_MAX, end] is [0, end]; with start === end === TOKEN_MAX it is the whole ring from 0
  parts.push({ start: TOKEN_MAX, end: range.end })
  return parts
}

/** A Merkle tree of this store's records of `range`, from a snapshot scan. */
export async function buildTree(store: Store, range: Range, depth: number, settledBefore: number): Promise<MerkleTree> {
  const b = new MerkleBuilder(range, depth)
  for await (const e of scanForRepair(store, range, settledBefore)) b.add(e.token, e.key, e.raw)
  return b.finish()
}

/** A short digest of an encoded record, to compare one key across replicas without its value. */
export function recordDigest(raw: Buffer): Buffer {
  return createHash('sha256').update(raw).digest().subarray(0, DIGEST_BYTES)
}
