/**
 * Token allocation for a joining node that keeps effective (replicated) ownership balanced.
 *
 * Public API:
 *   allocateTokens(existing: Ring, newHostId: string, numTokens: number, rf: number): bigint[]
 *     `existing` should be the ring the join will land in: the future ring of the gossiped
 *     members (AVAILABLE + BOOTSTRAPPING), so two joins one after the other see each other.
 *     Deterministic: the same ring, host id, count and rf give the same tokens. If the ring
 *     already holds tokens of newHostId (a retried join) those are returned unchanged.
 *   evenTokens(hostId, numTokens): bigint[]   what the first node of a cluster takes
 *
 * Algorithm (greedy placement, then refinement; every candidate evaluated exactly):
 *   Inserting a token t of the new node X into range i = (a, b] changes replica sets only
 *   locally. The new piece (a, t] is replicated by X plus the first rf-1 distinct owners from
 *   b on, so the rf-th of range i's replicas (call it L) loses (a, t] unless X already
 *   replicates range i. Each preceding range j whose clockwise walk reaches t before it has
 *   collected rf distinct owners gains X and loses its own rf-th replica. Those changes do
 *   not depend on where in (a, b] t lies; only the size d = t - a of the new piece does, and
 *   it moves ownership from L to X one for one. The objective is
 *       sum over nodes of ((ownership - target) / target)^6,   target = min(rf, N) / N
 *   (a high even power so the most loaded node dominates, as in max/mean), and for a convex
 *   cost of that shape the best d leaves X and L equally far from their targets; it is
 *   clamped so neither piece is under 10% of the range. So every range is one candidate with
 *   a closed-form split; we evaluate all and take the best (ties go to the largest range,
 *   then the lowest index). While X is incomplete its target is scaled by the share of its tokens
 *   placed, so early tokens take from the most loaded nodes rather than anything big. Then
 *   each of X's tokens is taken out and placed again with the others in place (2 passes).
 *   While the cluster has at most rf nodes everyone replicates everything; the allocator then
 *   balances for replication factor N-1, which lays out tokens that keep later joins even.
 *   Cost: O(numTokens * ring tokens * rf) per join: ~15 ms at 64 nodes x 16 tokens.
 *   Measured balance: docs/benchmarks.md "Ring balance".
 */
import { invariant, RingError } from '../errors.js'
import { type Ring, rangeLength } from './ring.js'
import { RING_SIZE } from './range.js'
import { tokenOf } from './token.js'

const RING_SIZE_F = 2 ** 64
/** Neither side of a split gets less than this share of the range it splits. */
const MIN_SPLIT = 0.1
/** Re-placement passes over the new node's tokens after the greedy pass. */
const REFINE_PASSES = 2
/** Host-specific jitter of a split point, as a share of the range split. */
const NUDGE = 0.02

export function allocateTokens(existing: Ring, newHostId: string, numTokens: number, rf: number): bigint[] {
  if (!Number.isInteger(numTokens) || numTokens < 1 || numTokens > 1024) {
    throw new RingError('BAD_REQUEST', `num-tokens must be an integer in [1, 1024], got ${numTokens}`)
  }
  if (!Number.isInteger(rf) || rf < 1) throw new RingError('BAD_REQUEST', `replication factor must be a positive integer, got ${rf}`)
  const mine = existing.tokensOf(newHostId)
  if (mine.length > 0) return mine
  if (existing.size === 0) return evenTokens(newHostId, numTokens)
  const alloc = new Allocator(existing, newHostId, rf)
  // The new node's target grows with each token it places, so that its first tokens take
  // their share from the most loaded nodes instead of grabbing everything they can.
  for (let k = 1; k <= numTokens; k++) alloc.placeOne(k / numTokens)
  // Greedy placement fixes early tokens before later ones exist; re-placing each token with
  // all others in place repairs most of that.
  for (let pass = 0; pass < REFINE_PASSES; pass++) {
    for (const t of alloc.tokensOfNew()) {
      alloc.remove(t)
      alloc.placeOne(1)
    }
  }
  return alloc.tokensOfNew().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

/**
 * Evenly spaced tokens, rotated by a hash of the host id so that two clusters started apart
 * and later merged by mistake do not collide token for token.
 */
export function evenTokens(hostId: string, numTokens: number): bigint[] {
  const step = RING_SIZE / BigInt(numTokens)
  const offset = tokenOf(Buffer.from(hostId)) % step
  return Array.from({ length: numTokens }, (_, k) => offset + BigInt(k) * step)
}

class Allocator {
  private readonly tokens: bigint[] = []
  private readonly owner: number[] = []
  /** length of range i = (token[i-1], token[i]] as a share of the ring, kept in step with tokens */
  private readonly len: number[] = []
  private readonly nodeCount: number
  private readonly x: number

  private readonly rf: number
  private placed = 0

  constructor(
    ring: Ring,
    private readonly hostId: string,
    rf: number,
  ) {
    const hosts = [...ring.nodes]
    invariant(!hosts.includes(hostId), 'the new host already owns tokens')
    const index = new Map(hosts.map((h, i) => [h, i]))
    for (let i = 0; i < ring.size; i++) {
      this.tokens.push(ring.tokenAt(i))
      this.owner.push(index.get(ring.ownerAt(i))!)
    }
    for (let i = 0; i < this.tokens.length; i++) this.len.push(0)
    for (let i = 0; i < this.tokens.length; i++) this.fixLength(i)
    this.x = hosts.length
    this.nodeCount = hosts.length + 1
    // While the cluster has no more than rf nodes every node replicates everything, and any
    // placement scores the same. Balancing for the largest replication factor that still
    // discriminates lays tokens out so that the joins after rf are balanced too.
    this.rf = Math.max(1, Math.min(rf, this.nodeCount - 1))
  }

  /** Recomputes the length of range i (mod size) from its bounding tokens. */
  private fixLength(i: number): void {
    const T = this.tokens.length
    if (T === 0) return
    const j = ((i % T) + T) % T
    this.len[j] = rangeLength(this.tokens[(j - 1 + T) % T]!, this.tokens[j]!) / RING_SIZE_F
  }

  tokensOfNew(): bigint[] {
    return this.tokens.filter((_, i) => this.owner[i] === this.x)
  }

  remove(token: bigint): void {
    const at = this.tokens.indexOf(token)
    invariant(at >= 0 && this.owner[at] === this.x, 'removing a token the new node does not hold')
    this.tokens.splice(at, 1)
    this.owner.splice(at, 1)
    this.len.splice(at, 1)
    this.fixLength(at)
  }

  /** Places one token of the new node; `share` scales its target while it is incomplete. */
  placeOne(share: number): void {
    const T = this.tokens.length
    const { rf, x, nodeCount } = this
    const len = this.len
    // Replica sets per range: rf slots per range, -1 when the ring has fewer distinct nodes.
    const reps = new Int32Array(T * rf).fill(-1)
    const own = new Float64Array(nodeCount)
    for (let j = 0; j < T; j++) {
      let n = 0
      for (let k = 0; k < T && n < rf; k++) {
        const o = this.owner[(j + k) % T]!
        let dup = false
        for (let m = 0; m < n; m++) if (reps[j * rf + m] === o) dup = true
        if (!dup) reps[j * rf + n++] = o
      }
      for (let m = 0; m < n; m++) own[reps[j * rf + m]!]! += len[j]!
    }
    const target = Math.min(rf, nodeCount) / nodeCount
    const targetOf = (n: number): number => (n === x ? target * share : target)
    const hasRep = (j: number, node: number): boolean => {
      for (let m = 0; m < rf; m++) if (reps[j * rf + m] === node) return true
      return false
    }
    const lastRep = (j: number): number => reps[j * rf + rf - 1]!

    const delta = new Float64Array(nodeCount)
    const touched: number[] = []
    const touch = (node: number, d: number): void => {
      if (delta[node] === 0 && !touched.includes(node)) touched.push(node)
      delta[node]! += d
    }
    let best = Infinity
    let bestIndex = -1
    let bestSplit = 0
    const prefix: number[] = []
    for (let i = 0; i < T; i++) {
      if (len[i]! * RING_SIZE_F < 4) continue // no room for a token strictly inside
      prefix.length = 0
      // Preceding ranges whose walk now meets X before rf distinct owners.
      for (let step = 0; step < T - 1; step++) {
        const j = (i - 1 - step + T) % T
        const o = this.owner[j]!
        if (o === x) break
        if (!prefix.includes(o)) prefix.push(o)
        if (prefix.length >= rf) break
        if (hasRep(j, x)) continue
        touch(x, len[j]!)
        const l = lastRep(j)
        if (l >= 0) touch(l, -len[j]!)
      }
      // The new piece (a, t] of range i.
      const lo = len[i]! * MIN_SPLIT
      const hi = len[i]! * (1 - MIN_SPLIT)
      let split = len[i]! / 2
      if (!hasRep(i, x)) {
        const l = lastRep(i)
        const ax = own[x]! + delta[x]!
        if (l < 0) {
          split = clamp(target * share - ax, lo, hi)
          touch(x, split)
        } else {
          split = clamp((own[l]! + delta[l]! - target - (ax - target * share)) / 2, lo, hi)
          touch(x, split)
          touch(l, -split)
        }
      }
      let score = 0
      for (const n of touched) {
        const before = (own[n]! - targetOf(n)) / target
        const after = before + delta[n]! / target
        score += penalty(after) - penalty(before)
        delta[n] = 0
      }
      touched.length = 0
      // Equal scores (always so while the cluster is smaller than rf) go to the largest range,
      // which keeps the token ranges even for the joins that come later.
      if (score < best - 1e-12 || (score < best + 1e-12 && len[i]! > len[bestIndex]!)) {
        best = Math.min(best, score)
        bestIndex = i
        bestSplit = split
      }
    }
    invariant(bestIndex >= 0, 'no range left to split')
    const start = this.tokens[(bestIndex - 1 + T) % T]!
    // A host-specific nudge: two hosts joining against the same ring at once (which the join
    // protocol should prevent) would otherwise pick identical tokens and collide.
    const nudge = (hashFraction(`${this.hostId}/${this.placed++}`) - 0.5) * NUDGE * len[bestIndex]!
    const offset = BigInt(Math.max(1, Math.floor((bestSplit + nudge) * RING_SIZE_F)))
    const token = (start + offset) % RING_SIZE
    // Insert keeping the array sorted; a split of the wrapping range may land before index 0.
    let at = 0
    while (at < T && this.tokens[at]! < token) at++
    invariant(this.tokens[at] !== token, 'allocated a token that is already taken')
    this.tokens.splice(at, 0, token)
    this.owner.splice(at, 0, x)
    this.len.splice(at, 0, 0)
    this.fixLength(at)
    this.fixLength(at + 1)
  }
}

/**
 * Cost of a node's relative deviation from its target. A sixth power makes the worst node
 * dominate (what max/mean judges) while staying smooth; squares left single nodes stuck ~9%
 * over for dozens of joins.
 */
function penalty(r: number): number {
  const q = r * r
  return q * q * q
}

/** A stable number in [0, 1) from text. */
function hashFraction(text: string): number {
  return Number(tokenOf(Buffer.from(text)) >> 11n) / 2 ** 53
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v
}
