import { RingError } from '../errors.js'
import type { Range } from '../ring/range.js'
import type { Store } from '../storage/store.js'
import type { Transport } from '../transport/index.js'

export const STREAM_RANGE = 'stream.range'

/** Rows per chunk are bounded by bytes, so one chunk is never a large share of the window. */
const CHUNK_BYTES = 256 * 1024

type Chunk = { keys: Buffer[]; raws: Buffer[] }

/**
 * Serves `stream.range`: the records of (start, end] read from a RocksDB snapshot iterator,
 * so writes continue while a range streams out and are never blocked by it. Writes that
 * land after the snapshot reach the receiver as pending-range writes from their coordinators.
 */
export interface RangeStreamingOptions {
  /**
   * Outbound cap in bytes per second for all streams this node serves (0: none). Default from
   * env RINGKV_STREAM_MAX_MBPS: an operator's brake when streaming competes with foreground
   * traffic, and how tests make a stream last long enough to interrupt it.
   */
  maxBytesPerSec?: number
}

export function registerRangeStreaming(transport: Transport, store: Store, opts: RangeStreamingOptions = {}): void {
  const limit = opts.maxBytesPerSec ?? Number(process.env.RINGKV_STREAM_MAX_MBPS ?? 0) * 1e6
  const pace = limit > 0 ? pacer(limit) : async () => {}
  transport.onStream<{ start: bigint; end: bigint }, Chunk>(STREAM_RANGE, async function* (req) {
    if (typeof req?.start !== 'bigint' || typeof req.end !== 'bigint') throw new RingError('BAD_REQUEST', 'stream.range needs bigint start and end')
    let chunk: Chunk = { keys: [], raws: [] }
    let bytes = 0
    for await (const e of store.scanRange(req.start, req.end)) {
      chunk.keys.push(e.key)
      chunk.raws.push(e.raw)
      bytes += e.key.length + e.raw.length
      if (bytes >= CHUNK_BYTES) {
        await pace(bytes)
        yield chunk
        chunk = { keys: [], raws: [] }
        bytes = 0
      }
    }
    if (chunk.keys.length) {
      await pace(bytes)
      yield chunk
    }
  })
}

/** Shared token bucket: resolves when `bytes` more may go out without passing `perSec`. */
function pacer(perSec: number): (bytes: number) => Promise<void> {
  let next = Date.now()
  return async (bytes) => {
    const now = Date.now()
    next = Math.max(next, now) + (bytes / perSec) * 1000
    const wait = next - now - (bytes / perSec) * 1000
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  }
}

/**
 * Pulls one range from `address` into the local store. Each record is applied (resolved against
 * what is here), so a retried or repeated stream is harmless. Resolves with bytes received.
 * One chunk is applied while the next arrives; at most two are held, so memory stays bounded.
 */
export async function fetchRange(transport: Transport, address: string, range: Range, store: Store, onBytes: (n: number) => void): Promise<number> {
  let total = 0
  let applying: Promise<void> = Promise.resolve()
  const stream = transport.requestStream<Chunk>(address, STREAM_RANGE, { start: range.start, end: range.end }, { timeoutMs: 30_000 })
  try {
    for await (const chunk of stream) {
      await applying
      let bytes = 0
      const applies: Promise<unknown>[] = []
      for (let i = 0; i < chunk.keys.length; i++) {
        applies.push(store.applyRaw(chunk.keys[i]!, chunk.raws[i]!))
        bytes += chunk.keys[i]!.length + chunk.raws[i]!.length
      }
      // Applying a chunk's records concurrently lets the store group them into few writes.
      applying = Promise.all(applies).then(() => {
        total += bytes
        onBytes(bytes)
      })
      // A failed apply must not go unobserved while the next chunk is awaited.
      applying.catch(() => {})
    }
  } finally {
    await applying.catch(() => {})
  }
  await applying
  return total
}
