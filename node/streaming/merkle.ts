/**
 * Merkle trees over one ring range, for anti-entropy repair. Pure: no I/O.
 *
 * A tree of depth d splits range (start, end] into 2^d leaves of (almost) equal token width,
 * so two replicas that build trees of the same range and depth can compare them node by node.
 * A leaf's hash covers the (key, encoded record) pairs in it, fed in range order (token, then
 * key bytes — the order a snapshot scan yields). Record encodings are canonical (codec.ts), so
 * replicas holding the same versions hash alike; any difference — value, version vector, HLC,
 * tombstone, expiry — changes the leaf.
 *
 * Public API:
 *   leafOf(range, depth, token): number            the leaf holding a token
 *   leafRange(range, depth, first, last?): Range | undefined   tokens of leaves first..last
 *   new MerkleBuilder(range, depth); add(token, key, raw) in range order; finish(): MerkleTree
 *   tree.root, tree.hash(level, i), tree.hashes(level, indices), diffLeaves(a, b)
 *   new TreeComparison(local, remoteRoot): the top-down walk against a remote tree
 */
import { createHash, type Hash } from 'node:crypto'
import { invariant } from '../errors.js'
import { type Range, RING_SIZE, rangeSize } from '../ring/range.js'

export const HASH_BYTES = 32
/** 4096 leaves: 256 KiB per tree; a whole-ring range of 1M keys has ~250 keys a leaf. */
export const DEFAULT_DEPTH = 12
export const MAX_DEPTH = 20
const STAGE_BYTES = 64 * 1024

const LEAF_TAG = Buffer.from([0])
const NODE_TAG = Buffer.from([1])
const EMPTY_LEAF = createHash('sha256').update(LEAF_TAG).digest()
/** EMPTY[h]: the hash of a subtree of height h with only empty leaves. */
const EMPTY: Buffer[] = [EMPTY_LEAF]
for (let h = 1; h <= MAX_DEPTH; h++) EMPTY.push(createHash('sha256').update(NODE_TAG).update(EMPTY[h - 1]!).update(EMPTY[h - 1]!).digest())

function checkDepth(depth: number): void {
  invariant(Number.isInteger(depth) && depth >= 0 && depth <= MAX_DEPTH, `merkle depth ${depth} is not an integer in [0, ${MAX_DEPTH}]`)
}

/** Position of a token inside a range, counted from its first token: [0, rangeSize). */
export function offsetIn(range: Range, token: bigint): bigint {
  return (token - range.start - 1n + RING_SIZE) % RING_SIZE
}

export function leafOf(range: Range, depth: number, token: bigint): number {
  const size = rangeSize(range)
  const off = offsetIn(range, token)
  invariant(off < size, `token ${token} is outside range (${range.start}, ${range.end}]`)
  if (size === RING_SIZE) return Number(off >> BigInt(64 - depth))
  return Number((off << BigInt(depth)) / size)
}

/** First offset of leaf i: ceil(i * size / 2^depth), so leafOf and leafRange agree exactly. */
function leafStartOffset(size: bigint, depth: number, i: number): bigint {
  const n = BigInt(i) * size
  const d = 1n << BigInt(depth)
  return (n + d - 1n) / d
}

/**
 * The tokens of leaves first..last (inclusive) as one ring range, or undefined when they hold
 * no token (a range narrower than its leaf count has empty leaves).
 */
export function leafRange(range: Range, depth: number, first: number, last = first): Range | undefined {
  checkDepth(depth)
  invariant(first >= 0 && first <= last && last < 2 ** depth, `leaves ${first}..${last} out of bounds for depth ${depth}`)
  const size = rangeSize(range)
  const lo = leafStartOffset(size, depth, first)
  const hi = leafStartOffset(size, depth, last + 1)
  if (lo === hi) return undefined
  // offsets [lo, hi) are tokens start+1+lo .. start+hi, i.e. ring range (start+lo, start+hi]
  return { start: (range.start + lo) % RING_SIZE, end: (range.start + hi) % RING_SIZE }
}

/** A complete binary tree of hashes in heap order (node i has children 2i+1, 2i+2). */
export class MerkleTree {
  private constructor(
    readonly depth: number,
    private readonly nodes: Buffer,
    /** records hashed into it */
    readonly records: number,
  ) {}

  /** Builds the inner levels over 2^depth leaf hashes (concatenated). */
  static fromLeaves(depth: number, leaves: Buffer, records = 0): MerkleTree {
    checkDepth(depth)
    const leafCount = 2 ** depth
    invariant(leaves.length === leafCount * HASH_BYTES, `expected ${leafCount} leaf hashes, got ${leaves.length / HASH_BYTES}`)
    const total = 2 * leafCount - 1
    const nodes = Buffer.allocUnsafe(total * HASH_BYTES)
    leaves.copy(nodes, (leafCount - 1) * HASH_BYTES)
    for (let level = depth - 1; level >= 0; level--) {
      // Sparse ranges are mostly empty subtrees: their hash is known without hashing.
      const emptyChild = EMPTY[depth - level - 1]!
      for (let i = 2 ** (level + 1) - 2; i >= 2 ** level - 1; i--) {
        const l = 2 * i + 1
        const children = nodes.subarray(l * HASH_BYTES, (l + 2) * HASH_BYTES)
        const empty = emptyChild.equals(children.subarray(0, HASH_BYTES)) && emptyChild.equals(children.subarray(HASH_BYTES))
        const h = empty ? EMPTY[depth - level]! : createHash('sha256').update(NODE_TAG).update(children).digest()
        h.copy(nodes, i * HASH_BYTES)
      }
    }
    return new MerkleTree(depth, nodes, records)
  }

  get leafCount(): number {
    return 2 ** this.depth
  }

  get root(): Buffer {
    return this.hash(0, 0)
  }

  /** Hash of node `index` on `level` (0 = root, depth = leaves); a view, not a copy. */
  hash(level: number, index: number): Buffer {
    invariant(Number.isInteger(level) && level >= 0 && level <= this.depth, `level ${level} out of [0, ${this.depth}]`)
    invariant(Number.isInteger(index) && index >= 0 && index < 2 ** level, `index ${index} out of level ${level}`)
    const i = 2 ** level - 1 + index
    return this.nodes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES)
  }

  /** The hashes of the given nodes of one level, concatenated (the wire form). */
  hashes(level: number, indices: readonly number[]): Buffer {
    const out = Buffer.allocUnsafe(indices.length * HASH_BYTES)
    indices.forEach((ix, k) => this.hash(level, ix).copy(out, k * HASH_BYTES))
    return out
  }
}

/**
 * Hashes records into leaves as a range scan yields them. Holds one running hash and the
 * leaf array, never the records: memory is O(2^depth) whatever the range holds.
 */
export class MerkleBuilder {
  private readonly leaves: Buffer
  private leaf = -1
  private hasher: Hash | null = null
  private count = 0
  // Records are staged and handed to the hash in large pieces: one native call per record
  // field costs more than the hashing itself for small records.
  private readonly stage = Buffer.allocUnsafe(STAGE_BYTES)
  private staged = 0
  private readonly size: bigint
  private readonly shift: bigint

  constructor(
    readonly range: Range,
    readonly depth: number,
  ) {
    checkDepth(depth)
    this.leaves = Buffer.allocUnsafe(2 ** depth * HASH_BYTES)
    for (let i = 0; i < 2 ** depth; i++) EMPTY_LEAF.copy(this.leaves, i * HASH_BYTES)
    this.size = rangeSize(range)
    this.shift = BigInt(depth)
  }

  /** Adds one record; calls must follow range order (the order scanRange yields). */
  add(token: bigint, key: Buffer, raw: Buffer): void {
    const off = (token - this.range.start - 1n + RING_SIZE) % RING_SIZE
    invariant(off < this.size, `token ${token} is outside the tree's range`)
    const leaf = this.size === RING_SIZE ? Number(off >> (64n - this.shift)) : Number((off << this.shift) / this.size)
    if (leaf !== this.leaf) {
      invariant(leaf > this.leaf, `records out of range order: leaf ${leaf} after ${this.leaf}`)
      this.flush()
      this.leaf = leaf
      this.hasher = createHash('sha256').update(LEAF_TAG)
    }
    // Length-prefixed, so (key, raw) pairs cannot shift into one another.
    const need = 8 + key.length + raw.length
    if (this.staged + need > STAGE_BYTES) this.drain()
    if (need > STAGE_BYTES) {
      const header = Buffer.allocUnsafe(8)
      header.writeUInt32BE(key.length, 0)
      header.writeUInt32BE(raw.length, 4)
      this.hasher!.update(header).update(key).update(raw)
    } else {
      const st = this.stage
      let o = st.writeUInt32BE(key.length, this.staged)
      o = st.writeUInt32BE(raw.length, o)
      o += key.copy(st, o)
      this.staged = o + raw.copy(st, o)
    }
    this.count++
  }

  finish(): MerkleTree {
    this.flush()
    return MerkleTree.fromLeaves(this.depth, this.leaves, this.count)
  }

  private drain(): void {
    if (this.staged) this.hasher!.update(this.stage.subarray(0, this.staged))
    this.staged = 0
  }

  private flush(): void {
    if (!this.hasher) return
    this.drain()
    this.hasher.digest().copy(this.leaves, this.leaf * HASH_BYTES)
    this.hasher = null
  }
}

/** Leaves whose hashes differ between two local trees of the same range and depth. */
export function diffLeaves(a: MerkleTree, b: MerkleTree): number[] {
  const cmp = new TreeComparison(a, b.root)
  for (let q = cmp.next(); q; q = cmp.next()) cmp.receive(b.hashes(q.level, q.indices))
  return cmp.differing
}

/**
 * The top-down walk that finds differing leaves against a tree held elsewhere, as a state
 * machine: ask next() which remote hashes to fetch, feed them to receive(), repeat until
 * next() is undefined; then `differing` lists the leaves. Each question descends up to `step`
 * levels below the nodes that still differ, so a walk costs about depth/step round trips and
 * bytes in proportion to the differences, not to the tree. A differing subtree that is empty
 * on either side is not descended: all of its leaves differ (a replica that lost everything
 * costs one question, not the whole tree).
 */
export class TreeComparison {
  private level = 0
  private pending: number[] = []
  private asked: { level: number; indices: number[] } | undefined
  private found: number[] = []

  constructor(
    private readonly local: MerkleTree,
    remoteRoot: Buffer,
    private readonly step = 4,
  ) {
    invariant(Number.isInteger(step) && step >= 1, 'step must be a positive integer')
    invariant(remoteRoot.length === HASH_BYTES, 'remote root is not a hash')
    if (!local.root.equals(remoteRoot)) this.differs(0, 0, remoteRoot)
  }

  next(): { level: number; indices: number[] } | undefined {
    invariant(!this.asked, 'next() before receive() of the last question')
    if (this.pending.length === 0) return undefined
    const level = Math.min(this.level + this.step, this.local.depth)
    const fan = 2 ** (level - this.level)
    const indices: number[] = []
    for (const p of this.pending) for (let c = 0; c < fan; c++) indices.push(p * fan + c)
    this.asked = { level, indices }
    return { level, indices: [...indices] }
  }

  receive(hashes: Buffer): void {
    const q = this.asked
    invariant(q, 'receive() without a question')
    invariant(Buffer.isBuffer(hashes) && hashes.length === q.indices.length * HASH_BYTES, `expected ${q.indices.length} hashes`)
    this.asked = undefined
    this.pending = []
    this.level = q.level
    q.indices.forEach((ix, k) => {
      const remote = hashes.subarray(k * HASH_BYTES, (k + 1) * HASH_BYTES)
      if (!this.local.hash(q.level, ix).equals(remote)) this.differs(q.level, ix, remote)
    })
  }

  /** Differing leaves in ascending order; complete once next() returns undefined. */
  get differing(): number[] {
    return [...this.found].sort((a, b) => a - b)
  }

  private differs(level: number, index: number, remote: Buffer): void {
    const height = this.local.depth - level
    const empty = EMPTY[height]!
    if (height > 0 && !remote.equals(empty) && !this.local.hash(level, index).equals(empty)) {
      this.pending.push(index)
      return
    }
    const n = 2 ** height
    for (let i = index * n; i < (index + 1) * n; i++) this.found.push(i)
  }
}

/**
 * Groups sorted leaf indices into runs [[first, last], ...] of consecutive leaves. With a tree,
 * runs also bridge gaps of leaves that are empty in it: a gap that differs nowhere and is empty
 * here is empty on the other side too, so crossing it costs nothing and saves a round trip.
 */
export function leafRuns(leaves: readonly number[], tree?: MerkleTree): [number, number][] {
  const out: [number, number][] = []
  for (const l of leaves) {
    const last = out[out.length - 1]
    if (last && (last[1] + 1 === l || (tree && emptyBetween(tree, last[1], l)))) last[1] = l
    else out.push([l, l])
  }
  return out
}

function emptyBetween(tree: MerkleTree, a: number, b: number): boolean {
  for (let i = a + 1; i < b; i++) if (!tree.hash(tree.depth, i).equals(EMPTY_LEAF)) return false
  return true
}
