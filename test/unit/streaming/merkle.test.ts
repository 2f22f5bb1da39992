import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { encodeRecord } from '../../../node/storage/codec.js'
import type { StoredRecord } from '../../../node/storage/record.js'
import { type Range, rangeContains, rangeSize } from '../../../node/ring/range.js'
import { TOKEN_MAX, tokenOf } from '../../../node/ring/token.js'
import { createRng, type Rng } from '../../../node/util/rng.js'
import { MerkleBuilder, MerkleTree, TreeComparison, diffLeaves, leafOf, leafRange, leafRuns, offsetIn } from '../../../node/streaming/merkle.js'
import { inRangeOrder } from '../../../node/streaming/repair-scan.js'

interface Rec {
  token: bigint
  key: Buffer
  raw: Buffer
}

function rec(value: string, counter = 1, tombstone = false): Buffer {
  const r: StoredRecord = { value: Buffer.from(value), contentType: 'text/plain', vv: { n1: counter }, ts: { wall: 1_700_000_000_000 + counter, logical: 0, node: 'n1' }, tombstone }
  return encodeRecord(r)
}

function records(n: number, prefix = 'key'): Rec[] {
  const out: Rec[] = []
  for (let i = 0; i < n; i++) {
    const key = Buffer.from(`${prefix}-${i}`)
    out.push({ token: tokenOf(key), key, raw: rec(`value-${i}`) })
  }
  return out
}

/** The records of `range` in range order, as a snapshot scan yields them. */
function inOrder(range: Range, rs: readonly Rec[]): Rec[] {
  return rs
    .filter((r) => rangeContains(range, r.token))
    .map((r) => ({ r, off: offsetIn(range, r.token) }))
    .sort((a, b) => (a.off !== b.off ? (a.off < b.off ? -1 : 1) : Buffer.compare(a.r.key, b.r.key)))
    .map((x) => x.r)
}

function tree(range: Range, depth: number, rs: readonly Rec[]): MerkleTree {
  const b = new MerkleBuilder(range, depth)
  for (const r of inOrder(range, rs)) b.add(r.token, r.key, r.raw)
  return b.finish()
}

function randomToken(rng: Rng): bigint {
  return (BigInt(rng.int(2 ** 32)) << 32n) | BigInt(rng.int(2 ** 32))
}

const WHOLE: Range = { start: 0n, end: 0n }
const WRAPPING: Range = { start: TOKEN_MAX - (1n << 62n), end: 1n << 61n }

test('identical data gives equal roots; a different record set does not', () => {
  const rs = records(2000)
  for (const range of [WHOLE, WRAPPING, { start: 5n, end: 1n << 63n }]) {
    const a = tree(range, 8, rs)
    const b = tree(range, 8, [...rs].reverse())
    assert.ok(a.root.equals(b.root))
    assert.equal(diffLeaves(a, b), [])
    const c = tree(range, 8, rs.slice(1))
    if (inOrder(range, [rs[0]!]).length) assert.not.ok(a.root.equals(c.root))
  }
})

test('one changed record: exactly its leaf differs, whatever changed', () => {
  const rs = records(5000)
  for (const range of [WHOLE, WRAPPING]) {
    const depth = 10
    const base = tree(range, depth, rs)
    const target = inOrder(range, rs)[1234]!
    const leaf = leafOf(range, depth, target.token)
    const variants: Buffer[] = [rec('other value'), rec('value-x', 2), rec('', 1, true)]
    for (const raw of variants) {
      const changed = rs.map((r) => (r === target ? { ...r, raw } : r))
      assert.equal(diffLeaves(base, tree(range, depth, changed)), [leaf])
    }
    // missing on one side, and an extra key on one side
    assert.equal(diffLeaves(base, tree(range, depth, rs.filter((r) => r !== target))), [leaf])
    const extraKey = Buffer.from('extra')
    if (rangeContains(range, tokenOf(extraKey))) {
      const extra = { token: tokenOf(extraKey), key: extraKey, raw: rec('e') }
      assert.equal(diffLeaves(base, tree(range, depth, [...rs, extra])), [leafOf(range, depth, extra.token)])
    }
  }
})

test('leafOf and leafRange agree: leaves partition the range in order', () => {
  const rng = createRng('merkle-leaves')
  const ranges: Range[] = [WHOLE, WRAPPING, { start: TOKEN_MAX, end: 100n }, { start: 10n, end: 17n }, { start: TOKEN_MAX - 2n, end: 3n }]
  for (let i = 0; i < 8; i++) ranges.push({ start: randomToken(rng), end: randomToken(rng) })
  for (const range of ranges) {
    for (const depth of [0, 1, 3, 12]) {
      let covered = 0n
      let prevEnd: bigint | undefined
      for (let l = 0; l < 2 ** depth; l++) {
        const lr = leafRange(range, depth, l)
        if (!lr) continue
        if (prevEnd !== undefined) assert.is(lr.start, prevEnd)
        prevEnd = lr.end
        covered += rangeSize(lr)
        // the leaf's first and last tokens map back to it
        assert.is(leafOf(range, depth, (lr.start + 1n) % (TOKEN_MAX + 1n)), l)
        assert.is(leafOf(range, depth, lr.end), l)
      }
      assert.is(covered, rangeSize(range), `depth ${depth} covers the range`)
      // a run of leaves is the union of its leaves
      const run = leafRange(range, depth, 0, 2 ** depth - 1)!
      assert.equal(run, range.start === range.end ? { start: range.start, end: range.start } : range)
    }
    for (let i = 0; i < 200; i++) {
      const t = randomToken(rng)
      if (!rangeContains(range, t)) continue
      const l = leafOf(range, 12, t)
      assert.ok(rangeContains(leafRange(range, 12, l)!, t))
    }
  }
})

test('the tree format: tagged leaves of length-prefixed (key, record), tagged inner nodes', () => {
  const sha = (...parts: Buffer[]) => { const h = createHash('sha256'); for (const p of parts) h.update(p); return h.digest() }
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b }
  const range: Range = { start: 0n, end: 4n }
  const [k1, k2, r1, r2] = [Buffer.from('a'), Buffer.from('b'), rec('1'), rec('2')]
  const b = new MerkleBuilder(range, 2)
  b.add(2n, k1, r1) // leaf 1
  b.add(2n, k2, r2) // leaf 1
  const t = b.finish()
  const empty = sha(Buffer.from([0]))
  const leaf1 = sha(Buffer.from([0]), u32(1), u32(r1.length), k1, r1, u32(1), u32(r2.length), k2, r2)
  const node = (l: Buffer, r: Buffer) => sha(Buffer.from([1]), l, r)
  assert.ok(t.root.equals(node(node(empty, leaf1), node(empty, empty))))
  assert.ok(MerkleTree.fromLeaves(3, Buffer.concat(Array(8).fill(empty))).root.equals(node(node(node(empty, empty), node(empty, empty)), node(node(empty, empty), node(empty, empty)))))
})

test('records added out of range order are refused', () => {
  const b = new MerkleBuilder(WHOLE, 4)
  b.add(TOKEN_MAX - 1n, Buffer.from('b'), rec('b'))
  assert.throws(() => b.add(1n, Buffer.from('a'), rec('a')), /out of range order/)
  assert.throws(() => new MerkleBuilder({ start: 10n, end: 20n }, 4).add(30n, Buffer.from('x'), rec('x')), /outside/)
})

test('inRangeOrder: a wrapping range is scanned upper part first, so offsets only grow', () => {
  assert.equal(inRangeOrder({ start: 5n, end: 9n }), [{ start: 5n, end: 9n }])
  assert.equal(inRangeOrder({ start: 9n, end: 5n }), [{ start: 9n, end: TOKEN_MAX }, { start: TOKEN_MAX, end: 5n }])
  assert.equal(inRangeOrder({ start: 7n, end: 7n }), [{ start: 7n, end: TOKEN_MAX }, { start: TOKEN_MAX, end: 7n }])
  assert.equal(inRangeOrder({ start: TOKEN_MAX, end: TOKEN_MAX }), [{ start: TOKEN_MAX, end: TOKEN_MAX }])
})

test('top-down comparison: round trips ~ depth/step, hashes fetched ~ differences, not tree size', () => {
  const rs = records(20_000)
  const depth = 12
  const a = tree(WHOLE, depth, rs)
  const changed = new Set([17, 9000, 19_999])
  const b = tree(WHOLE, depth, rs.map((r, i) => (changed.has(i) ? { ...r, raw: rec('changed', 9) } : r)))
  const cmp = new TreeComparison(a, b.root, 4)
  let questions = 0
  let hashes = 0
  for (let q = cmp.next(); q; q = cmp.next()) {
    questions++
    hashes += q.indices.length
    cmp.receive(b.hashes(q.level, q.indices))
  }
  assert.is(questions, 3)
  assert.ok(hashes <= 3 * 3 * 16, `${hashes} hashes fetched`)
  assert.equal(cmp.differing, [...changed].map((i) => leafOf(WHOLE, depth, rs[i]!.token)).sort((x, y) => x - y))
  // equal roots: nothing to ask
  assert.is(new TreeComparison(a, a.root).next(), undefined)
})

test('a subtree empty on either side is not descended: all of its leaves differ at once', () => {
  const depth = 8
  const full = tree(WHOLE, depth, records(3000))
  const empty = tree(WHOLE, depth, [])
  for (const [x, y] of [[full, empty], [empty, full]] as const) {
    const cmp = new TreeComparison(x, y.root)
    assert.is(cmp.next(), undefined)
    assert.equal(cmp.differing, Array.from({ length: 256 }, (_, i) => i))
  }
  // the lower half of the ring lost: one question, then the half's leaves
  const upper = tree(WHOLE, depth, records(3000).filter((r) => r.token >= 1n << 63n))
  const cmp = new TreeComparison(upper, full.root)
  let questions = 0
  for (let q = cmp.next(); q; q = cmp.next()) {
    questions++
    cmp.receive(full.hashes(q.level, q.indices))
  }
  assert.is(questions, 1)
  assert.equal(cmp.differing, Array.from({ length: 128 }, (_, i) => i))
})

test('leafRuns groups consecutive leaves', () => {
  assert.equal(leafRuns([]), [])
  assert.equal(leafRuns([1, 2, 3, 7, 9, 10]), [[1, 3], [7, 7], [9, 10]])
  // with a tree: gaps of leaves empty in it are bridged, others not
  const range: Range = { start: 0n, end: 16n }
  const t = tree(range, 4, [5n, 6n, 12n].map((token) => ({ token, key: Buffer.from(`k${token}`), raw: rec('v') })))
  // token 5 is leaf 4, token 6 leaf 5, token 12 leaf 11
  assert.equal(leafRuns([1, 3, 6, 8, 12], t), [[1, 3], [6, 8], [12, 12]])
  assert.equal(leafRuns([3, 6], t), [[3, 3], [6, 6]])
  assert.equal(leafRuns([10, 12], t), [[10, 10], [12, 12]])
  assert.equal(leafRuns([12, 15], t), [[12, 15]])
})

test('performance: 100k records hash in well under two CPU seconds; a diff is instant', () => {
  const rs = inOrder(WHOLE, records(100_000))
  // CPU time, not wall time: the machine is shared, and contention is not this code's cost.
  const cpuMs = (f: () => void) => {
    const c = process.cpuUsage()
    f()
    const d = process.cpuUsage(c)
    return (d.user + d.system) / 1000
  }
  const build = (changeAt: number) => {
    const b = new MerkleBuilder(WHOLE, 12)
    rs.forEach((r, i) => b.add(r.token, r.key, i === changeAt ? rec('x', 7) : r.raw))
    return b.finish()
  }
  let a!: MerkleTree
  let b!: MerkleTree
  let d: number[] = []
  const buildMs = cpuMs(() => (a = build(-1)))
  b = build(50_000)
  const diffMs = cpuMs(() => (d = diffLeaves(a, b)))
  assert.equal(d, [leafOf(WHOLE, 12, rs[50_000]!.token)])
  assert.is(a.records, 100_000)
  console.log(`  merkle: 100k records (depth 12) built in ${buildMs.toFixed(0)} ms CPU, diffed in ${diffMs.toFixed(1)} ms CPU`)
  assert.ok(buildMs < 2000, `build took ${buildMs} ms`)
  assert.ok(diffMs < 50, `diff took ${diffMs} ms`)
})

test.run()
