/**
 * An immutable snapshot of token ownership: who owns which token, and from that who
 * replicates which key.
 *
 * Public API:
 *   Ring.current(members: ReadonlyMap<hostId, Member>): Ring  // AVAILABLE + LEAVING own
 *   Ring.future(members): Ring                                 // AVAILABLE + BOOTSTRAPPING own
 *   Ring.fromOwners(owners: Iterable<[hostId, readonly bigint[]]>, members?): Ring
 *   Ring.EMPTY
 *   ring.members            the full member map it was built from (addresses, states)
 *   ring.size / ring.nodes  number of tokens / sorted host ids that own tokens
 *   ring.tokenAt(i), ring.ownerAt(i), ring.rangeAt(i)   i in [0, size): range i = (token[i-1], token[i]]
 *   ring.indexOf(token)     index of the first token >= token, wrapping to 0
 *   ring.replicasFor(token, rf): readonly string[]   next rf distinct owners clockwise (hot path)
 *   ring.replicasForKey(key: Buffer, rf)
 *   ring.replicasAt(i, rf)  replicas of range i (cached per index)
 *   ring.tokensOf(hostId): bigint[]
 *   ring.rangesOf(hostId, rf): Range[]   every range hostId replicates (primary and replica)
 *   ring.primaryRanges(): Map<hostId, Range[]>
 *   ring.ownership(rf): Map<hostId, number>   replicated fraction / effective rf; sums to 1
 *   ring.collisions   tokens claimed by two hosts (the smaller host id keeps it)
 *
 * A key's replicas are the owners of the first token >= tokenOf(key) and onwards: range i
 * is (token[i-1], token[i]] and its primary is ownerAt(i).
 */
import { invariant, RingError } from '../errors.js'
import { type Range, RING_SIZE } from './range.js'
import { type Member, ownsInCurrent, ownsInFuture } from './state.js'
import { tokenOf, TOKEN_MAX } from './token.js'

const MASK32 = 0xffffffffn
const RING_SIZE_F = 2 ** 64

export interface TokenCollision {
  readonly token: bigint
  readonly kept: string
  readonly dropped: string
}

export class Ring {
  static readonly EMPTY = new Ring([], new Map())

  readonly members: ReadonlyMap<string, Member>
  readonly nodes: readonly string[]
  readonly collisions: readonly TokenCollision[]
  private readonly tokens: BigUint64Array
  // The tokens split into 32-bit halves so the binary search compares plain numbers
  // instead of allocating a BigInt per probe.
  private readonly hi: Uint32Array
  private readonly lo: Uint32Array
  private readonly owner: Uint32Array
  private readonly replicaCache = new Map<number, (readonly string[] | undefined)[]>()

  private constructor(entries: { token: bigint; host: string }[], members: ReadonlyMap<string, Member>, collisions: TokenCollision[] = []) {
    this.members = members
    this.collisions = collisions
    const hosts = [...new Set(entries.map((e) => e.host))].sort()
    const index = new Map(hosts.map((h, i) => [h, i]))
    this.nodes = hosts
    const n = entries.length
    this.tokens = new BigUint64Array(n)
    this.hi = new Uint32Array(n)
    this.lo = new Uint32Array(n)
    this.owner = new Uint32Array(n)
    for (let i = 0; i < n; i++) {
      const { token, host } = entries[i]!
      this.tokens[i] = token
      this.hi[i] = Number(token >> 32n)
      this.lo[i] = Number(token & MASK32)
      this.owner[i] = index.get(host)!
    }
  }

  static current(members: ReadonlyMap<string, Member>): Ring {
    return Ring.fromMembers(members, ownsInCurrent)
  }

  static future(members: ReadonlyMap<string, Member>): Ring {
    return Ring.fromMembers(members, ownsInFuture)
  }

  private static fromMembers(members: ReadonlyMap<string, Member>, owns: (s: Member['state']) => boolean): Ring {
    const owners: [string, readonly bigint[]][] = []
    for (const [host, m] of members) if (owns(m.state)) owners.push([host, m.tokens])
    return Ring.fromOwners(owners, members)
  }

  static fromOwners(owners: Iterable<readonly [string, readonly bigint[]]>, members: ReadonlyMap<string, Member> = new Map()): Ring {
    const all: { token: bigint; host: string }[] = []
    for (const [host, tokens] of owners) {
      for (const token of tokens) {
        if (typeof token !== 'bigint' || token < 0n || token > TOKEN_MAX) {
          throw new RingError('BAD_REQUEST', `token ${String(token)} of ${host} is outside [0, 2^64)`)
        }
        all.push({ token, host })
      }
    }
    all.sort((a, b) => (a.token < b.token ? -1 : a.token > b.token ? 1 : a.host < b.host ? -1 : a.host > b.host ? 1 : 0))
    // Two hosts claiming one token: every node must resolve it the same way, so the smaller
    // host id keeps it; the other host simply owns one range fewer.
    const entries: { token: bigint; host: string }[] = []
    const collisions: TokenCollision[] = []
    for (const e of all) {
      const last = entries[entries.length - 1]
      if (last && last.token === e.token) {
        if (last.host !== e.host) collisions.push({ token: e.token, kept: last.host, dropped: e.host })
        continue
      }
      entries.push(e)
    }
    return new Ring(entries, members, collisions)
  }

  get size(): number {
    return this.tokens.length
  }

  tokenAt(i: number): bigint {
    invariant(i >= 0 && i < this.size, `token index ${i} outside [0, ${this.size})`)
    return this.tokens[i]!
  }

  ownerAt(i: number): string {
    invariant(i >= 0 && i < this.size, `token index ${i} outside [0, ${this.size})`)
    return this.nodes[this.owner[i]!]!
  }

  /** (token[i-1], token[i]]; with a single token the whole ring. */
  rangeAt(i: number): Range {
    const end = this.tokenAt(i)
    const start = this.tokens[(i - 1 + this.size) % this.size]!
    return { start, end }
  }

  has(hostId: string): boolean {
    return this.nodes.includes(hostId)
  }

  indexOf(token: bigint): number {
    invariant(this.size > 0, 'indexOf on an empty ring')
    const th = Number(token >> 32n)
    const tl = Number(token & MASK32)
    let lo = 0
    let hi = this.size
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const mh = this.hi[mid]!
      if (mh < th || (mh === th && this.lo[mid]! < tl)) lo = mid + 1
      else hi = mid
    }
    return lo === this.size ? 0 : lo
  }

  replicasFor(token: bigint, rf: number): readonly string[] {
    if (this.size === 0) return []
    return this.replicasAt(this.indexOf(token), rf)
  }

  replicasForKey(key: Buffer, rf: number): readonly string[] {
    return this.replicasFor(tokenOf(key), rf)
  }

  replicasAt(i: number, rf: number): readonly string[] {
    let cache = this.replicaCache.get(rf)
    if (!cache) {
      checkRf(rf)
      cache = new Array(this.size)
      this.replicaCache.set(rf, cache)
    }
    let hit = cache[i]
    if (!hit) {
      hit = Object.freeze(this.walk(i, rf))
      cache[i] = hit
    }
    return hit
  }

  /** The first rf distinct owners clockwise from index i (fewer if the ring has fewer nodes). */
  private walk(i: number, rf: number): string[] {
    const want = Math.min(rf, this.nodes.length)
    const seen: number[] = []
    for (let k = 0; k < this.size && seen.length < want; k++) {
      const o = this.owner[(i + k) % this.size]!
      if (!seen.includes(o)) seen.push(o)
    }
    return seen.map((o) => this.nodes[o]!)
  }

  tokensOf(hostId: string): bigint[] {
    const idx = this.nodes.indexOf(hostId)
    const out: bigint[] = []
    if (idx < 0) return out
    for (let i = 0; i < this.size; i++) if (this.owner[i] === idx) out.push(this.tokens[i]!)
    return out
  }

  rangesOf(hostId: string, rf: number): Range[] {
    const out: Range[] = []
    for (let i = 0; i < this.size; i++) if (this.replicasAt(i, rf).includes(hostId)) out.push(this.rangeAt(i))
    return out
  }

  primaryRanges(): Map<string, Range[]> {
    const out = new Map<string, Range[]>(this.nodes.map((n) => [n, []]))
    for (let i = 0; i < this.size; i++) out.get(this.ownerAt(i))!.push(this.rangeAt(i))
    return out
  }

  /**
   * Effective ownership as `nodetool status <keyspace>` shows it: the fraction of the ring each
   * node holds a replica of, divided by the effective replication factor so the values sum to 1.
   */
  ownership(rf: number): Map<string, number> {
    checkRf(rf)
    const out = new Map<string, number>(this.nodes.map((n) => [n, 0]))
    if (this.size === 0) return out
    const effective = Math.min(rf, this.nodes.length)
    for (let i = 0; i < this.size; i++) {
      const frac = rangeLength(this.tokens[(i - 1 + this.size) % this.size]!, this.tokens[i]!) / RING_SIZE_F
      for (const r of this.replicasAt(i, rf)) out.set(r, out.get(r)! + frac / effective)
    }
    return out
  }
}

/** Tokens in (start, end] as a double; a full turn when start === end. */
export function rangeLength(start: bigint, end: bigint): number {
  const d = (end - start + RING_SIZE) % RING_SIZE
  return d === 0n ? RING_SIZE_F : Number(d)
}

function checkRf(rf: number): void {
  if (!Number.isInteger(rf) || rf < 1) throw new RingError('BAD_REQUEST', `replication factor must be a positive integer, got ${rf}`)
}
