/**
 * What changes hands when the ring moves from `current` to `future` (joins, leaves).
 *
 * Public API:
 *   pendingRanges(current: Ring, future: Ring, rf): Map<hostId, RangeMovement>
 *     gained: ranges the host will replicate but does not now, each with `sources` = the hosts
 *             that replicate it now, those giving it up first (streaming from the replica that
 *             leaves the set keeps the data exactly as consistent as before the move)
 *     lost:   ranges the host replicates now but will not (cleanup after the move, never before)
 *     Only hosts with something gained or lost appear. Neighbouring pieces with the same
 *     sources are merged.
 *   pendingReplicasFor(current, future, token, rf): string[]
 *     replicas of `token` in the future ring that are not replicas now: writes must also go
 *     there while the move is in progress (design §4, §4.1).
 */
import type { Range } from './range.js'
import type { Ring } from './ring.js'

export interface RangeSource {
  readonly range: Range
  readonly sources: readonly string[]
}

export interface RangeMovement {
  gained: RangeSource[]
  lost: Range[]
}

export function pendingRanges(current: Ring, future: Ring, rf: number): Map<string, RangeMovement> {
  const out = new Map<string, RangeMovement>()
  const bounds = unionTokens(current, future)
  const movement = (host: string): RangeMovement => {
    let m = out.get(host)
    if (!m) {
      m = { gained: [], lost: [] }
      out.set(host, m)
    }
    return m
  }
  // Between two consecutive boundaries of either ring, both rings have one fixed replica set:
  // compare them piece by piece.
  for (let k = 0; k < bounds.length; k++) {
    const end = bounds[k]!
    const range: Range = { start: bounds[(k - 1 + bounds.length) % bounds.length]!, end }
    const now = current.replicasFor(end, rf)
    const then = future.replicasFor(end, rf)
    const leaving = now.filter((h) => !then.includes(h))
    const staying = now.filter((h) => then.includes(h))
    const sources = [...leaving, ...staying]
    for (const h of then) if (!now.includes(h)) appendGained(movement(h).gained, range, sources)
    for (const h of leaving) appendLost(movement(h).lost, range)
  }
  return out
}

export function pendingReplicasFor(current: Ring, future: Ring, token: bigint, rf: number): string[] {
  const now = current.replicasFor(token, rf)
  return future.replicasFor(token, rf).filter((h) => !now.includes(h))
}

function unionTokens(a: Ring, b: Ring): bigint[] {
  const all: bigint[] = []
  for (let i = 0; i < a.size; i++) all.push(a.tokenAt(i))
  for (let i = 0; i < b.size; i++) all.push(b.tokenAt(i))
  all.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))
  return all.filter((t, i) => i === 0 || t !== all[i - 1])
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function appendGained(list: RangeSource[], range: Range, sources: readonly string[]): void {
  const last = list[list.length - 1]
  if (last && last.range.end === range.start && sameList(last.sources, sources)) {
    list[list.length - 1] = { range: { start: last.range.start, end: range.end }, sources: last.sources }
  } else {
    list.push({ range, sources })
  }
}

function appendLost(list: Range[], range: Range): void {
  const last = list[list.length - 1]
  if (last && last.end === range.start) list[list.length - 1] = { start: last.start, end: range.end }
  else list.push(range)
}
