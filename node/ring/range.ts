/**
 * Token ranges. A range is (start, end] on the 64-bit ring; it wraps past TOKEN_MAX when
 * start >= end, and start === end is the whole ring (a ring with a single token).
 *
 * Public API:
 *   interface Range { start: bigint; end: bigint }
 *   RING_SIZE = 2^64
 *   rangeContains(r, token): boolean
 *   rangeSize(r): bigint               // number of tokens in r (whole ring = 2^64)
 *   rangeFraction(r): number           // rangeSize / 2^64
 *   mergeContiguous(ranges): Range[]   // joins neighbours where one's end is the next's start
 *   rangeToJSON(r) / rangeFromJSON(j)  // decimal strings, for JSON transports
 */
import { RingError } from '../errors.js'
import { TOKEN_MAX } from './token.js'

export interface Range {
  readonly start: bigint
  readonly end: bigint
}

export const RING_SIZE = TOKEN_MAX + 1n
const RING_SIZE_F = 2 ** 64

export function rangeContains(r: Range, token: bigint): boolean {
  if (r.start < r.end) return token > r.start && token <= r.end
  return token > r.start || token <= r.end
}

export function rangeSize(r: Range): bigint {
  const d = (r.end - r.start + RING_SIZE) % RING_SIZE
  return d === 0n ? RING_SIZE : d
}

export function rangeFraction(r: Range): number {
  return Number(rangeSize(r)) / RING_SIZE_F
}

/** Joins ranges given in ring order where one ends exactly where the next starts. */
export function mergeContiguous(ranges: readonly Range[]): Range[] {
  const out: Range[] = []
  for (const r of ranges) {
    const last = out[out.length - 1]
    if (last && last.end === r.start && last.start !== last.end) out[out.length - 1] = { start: last.start, end: r.end }
    else out.push(r)
  }
  // The last may continue into the first across the wrap point.
  if (out.length > 1) {
    const first = out[0]!
    const last = out[out.length - 1]!
    if (last.end === first.start) {
      out[0] = { start: last.start, end: first.end }
      out.pop()
    }
  }
  return out
}

export function rangeToJSON(r: Range): { start: string; end: string } {
  return { start: r.start.toString(), end: r.end.toString() }
}

export function rangeFromJSON(j: unknown): Range {
  const o = j as { start?: unknown; end?: unknown }
  if (!o || typeof o.start !== 'string' || typeof o.end !== 'string' || !/^\d+$/.test(o.start) || !/^\d+$/.test(o.end)) {
    throw new RingError('BAD_REQUEST', 'a range is {"start": "<decimal token>", "end": "<decimal token>"}')
  }
  const start = BigInt(o.start)
  const end = BigInt(o.end)
  if (start > TOKEN_MAX || end > TOKEN_MAX) throw new RingError('BAD_REQUEST', 'range tokens must be below 2^64')
  return { start, end }
}
