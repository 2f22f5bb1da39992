import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomTokens } from '../../../node/ring/balance.js'
import { pendingRanges, pendingReplicasFor } from '../../../node/ring/pending.js'
import { mergeContiguous, rangeContains, rangeFraction, rangeSize, RING_SIZE, type Range } from '../../../node/ring/range.js'
import { Ring } from '../../../node/ring/ring.js'
import type { Member, NodeState } from '../../../node/ring/state.js'
import { TOKEN_MAX, tokenOf } from '../../../node/ring/token.js'
import { createRng, type Rng } from '../../../node/util/rng.js'

/** The definition, written the slow obvious way: sort all (token, owner), scan clockwise. */
function bruteReplicas(owners: Map<string, bigint[]>, token: bigint, rf: number): string[] {
  const all = [...owners].flatMap(([h, ts]) => ts.map((t) => ({ t, h })))
  all.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0))
  let start = all.findIndex((e) => e.t >= token)
  if (start < 0) start = 0
  const out: string[] = []
  for (let k = 0; k < all.length && out.length < rf; k++) {
    const h = all[(start + k) % all.length]!.h
    if (!out.includes(h)) out.push(h)
  }
  return out
}

function randomOwners(rng: Rng, nodes: number, tokens: number): Map<string, bigint[]> {
  const owners = new Map<string, bigint[]>()
  for (let i = 0; i < nodes; i++) owners.set(`h${i}`, randomTokens(rng, tokens))
  return owners
}

function probeTokens(rng: Rng, ring: Ring, count: number): bigint[] {
  // Random tokens plus the ring's own tokens and their neighbours: the boundaries are where
  // an off-by-one would hide.
  const out = randomTokens(rng, count)
  for (let i = 0; i < ring.size; i++) {
    const t = ring.tokenAt(i)
    out.push(t, t === 0n ? TOKEN_MAX : t - 1n, t === TOKEN_MAX ? 0n : t + 1n)
  }
  out.push(0n, TOKEN_MAX)
  return out
}

test('replicasFor matches the brute-force definition, including boundaries and wrap-around', () => {
  const rng = createRng('replicas')
  for (const [nodes, tokens, rf] of [[1, 1, 3], [2, 3, 3], [5, 4, 3], [12, 16, 3], [7, 8, 5], [4, 2, 1]] as const) {
    const owners = randomOwners(rng, nodes, tokens)
    const ring = Ring.fromOwners(owners)
    for (const t of probeTokens(rng, ring, 200)) {
      assert.equal([...ring.replicasFor(t, rf)], bruteReplicas(owners, t, rf), `token ${t} nodes ${nodes} rf ${rf}`)
    }
  }
})

test('a key on a token belongs to that token; past the last token it wraps to the first', () => {
  const ring = Ring.fromOwners([['a', [100n]], ['b', [200n]], ['c', [300n]]])
  assert.equal(ring.replicasFor(100n, 1), ['a'])
  assert.equal(ring.replicasFor(101n, 1), ['b'])
  assert.equal(ring.replicasFor(300n, 2), ['c', 'a'])
  assert.equal(ring.replicasFor(301n, 2), ['a', 'b'])
  assert.equal(ring.replicasFor(0n, 3), ['a', 'b', 'c'])
  assert.equal(ring.replicasFor(5n, 7), ['a', 'b', 'c'], 'never more replicas than nodes')
  assert.equal(Ring.EMPTY.replicasFor(5n, 3), [])
  assert.equal(ring.replicasForKey(Buffer.from('k'), 1), ring.replicasFor(tokenOf(Buffer.from('k')), 1))
})

test('a node is in rangesOf(rf) exactly for the tokens it replicates', () => {
  const rng = createRng('rangesOf')
  const owners = randomOwners(rng, 9, 8)
  const ring = Ring.fromOwners(owners)
  const rf = 3
  const ranges = new Map(ring.nodes.map((h) => [h, ring.rangesOf(h, rf)]))
  for (const t of probeTokens(rng, ring, 500)) {
    const replicas = ring.replicasFor(t, rf)
    for (const h of ring.nodes) {
      const inRanges = ranges.get(h)!.some((r) => rangeContains(r, t))
      assert.is(inRanges, replicas.includes(h), `token ${t} host ${h}`)
    }
  }
  // Primary ranges tile the ring: sizes add up to 2^64, and each token is in exactly one.
  const primaries = [...ring.primaryRanges().values()].flat()
  assert.is(primaries.reduce((s, r) => s + rangeSize(r), 0n), RING_SIZE)
  for (const t of probeTokens(rng, ring, 100)) assert.is(primaries.filter((r) => rangeContains(r, t)).length, 1)
})

test('ownership sums to 1 and matches sampled replica counts', () => {
  const rng = createRng('ownership')
  const owners = randomOwners(rng, 6, 8)
  const ring = Ring.fromOwners(owners)
  for (const rf of [1, 2, 3, 6, 9]) {
    const own = ring.ownership(rf)
    const sum = [...own.values()].reduce((a, b) => a + b, 0)
    assert.ok(Math.abs(sum - 1) < 1e-9, `rf ${rf} sum ${sum}`)
  }
  // Monte Carlo: the share of random tokens a node replicates, / rf, estimates its ownership.
  const own = ring.ownership(3)
  const hits = new Map<string, number>()
  const samples = 20000
  for (const t of randomTokens(rng, samples)) for (const h of ring.replicasFor(t, 3)) hits.set(h, (hits.get(h) ?? 0) + 1)
  for (const h of ring.nodes) assert.ok(Math.abs(hits.get(h)! / samples / 3 - own.get(h)!) < 0.02, h)
  // Evenly spaced tokens of 4 nodes interleaved: exactly a quarter each.
  const even = Ring.fromOwners(['a', 'b', 'c', 'd'].map((h, i) => [h, [0n, 1n, 2n, 3n].map((k) => (k * 4n + BigInt(i)) * (RING_SIZE / 16n))]))
  for (const v of even.ownership(3).values()) assert.ok(Math.abs(v - 0.25) < 1e-12)
})

test('current ring: AVAILABLE and LEAVING own; future ring: AVAILABLE and BOOTSTRAPPING own', () => {
  const m = (state: NodeState, tokens: bigint[]): Member => ({ state, tokens, address: `${state}:1` })
  const members = new Map<string, Member>([
    ['avail', m('AVAILABLE', [10n])],
    ['leaving', m('LEAVING', [20n])],
    ['boot', m('BOOTSTRAPPING', [30n])],
    ['joining', m('JOINING', [40n])],
    ['left', m('LEFT', [50n])],
  ])
  assert.equal([...Ring.current(members).nodes], ['avail', 'leaving'])
  assert.equal([...Ring.future(members).nodes], ['avail', 'boot'])
  assert.is(Ring.current(members).members.get('boot')!.address, 'BOOTSTRAPPING:1')
})

test('two hosts claiming one token: the smaller host id keeps it, and it is reported', () => {
  const ring = Ring.fromOwners([['b', [5n, 9n]], ['a', [5n]]])
  assert.is(ring.size, 2)
  assert.is(ring.ownerAt(0), 'a')
  assert.equal(ring.collisions, [{ token: 5n, kept: 'a', dropped: 'b' }])
  assert.throws(() => Ring.fromOwners([['x', [RING_SIZE]]]), /outside/)
})

test('ranges: containment wraps, sizes, merging neighbours', () => {
  const wrap: Range = { start: TOKEN_MAX - 10n, end: 5n }
  assert.ok(rangeContains(wrap, TOKEN_MAX) && rangeContains(wrap, 0n) && rangeContains(wrap, 5n))
  assert.not.ok(rangeContains(wrap, 6n) || rangeContains(wrap, TOKEN_MAX - 10n))
  assert.is(rangeSize(wrap), 16n)
  const whole: Range = { start: 7n, end: 7n }
  assert.ok(rangeContains(whole, 7n) && rangeContains(whole, 0n))
  assert.is(rangeFraction(whole), 1)
  assert.equal(mergeContiguous([{ start: 1n, end: 5n }, { start: 5n, end: 9n }, { start: 10n, end: 12n }]), [
    { start: 1n, end: 9n },
    { start: 10n, end: 12n },
  ])
  assert.equal(mergeContiguous([{ start: 0n, end: 5n }, { start: 9n, end: 0n }]), [{ start: 9n, end: 5n }])
})

/** Checks pendingRanges against replicasFor on many tokens. */
function checkMovement(current: Ring, future: Ring, rf: number, rng: Rng): Map<string, { gained: number; lost: number }> {
  const moves = pendingRanges(current, future, rf)
  const seen = new Map<string, { gained: number; lost: number }>()
  const tokens = [...probeTokens(rng, current, 300), ...probeTokens(rng, future, 0)]
  for (const t of tokens) {
    const now = current.replicasFor(t, rf)
    const then = future.replicasFor(t, rf)
    assert.equal(pendingReplicasFor(current, future, t, rf), then.filter((h) => !now.includes(h)))
    for (const h of new Set([...now, ...then, ...moves.keys()])) {
      const mv = moves.get(h)
      const gainedHere = (mv?.gained ?? []).filter((g) => rangeContains(g.range, t))
      const lostHere = (mv?.lost ?? []).filter((r) => rangeContains(r, t))
      const shouldGain = then.includes(h) && !now.includes(h)
      const shouldLose = now.includes(h) && !then.includes(h)
      assert.is(gainedHere.length, shouldGain ? 1 : 0, `gain of ${h} at ${t}`)
      assert.is(lostHere.length, shouldLose ? 1 : 0, `loss of ${h} at ${t}`)
      if (shouldGain) {
        const sources = gainedHere[0]!.sources
        assert.equal([...sources].sort(), [...now].sort(), 'every current replica can serve the range')
        const leaver = now.find((x) => !then.includes(x))
        if (leaver) assert.ok(!then.includes(sources[0]!), 'the replica giving the range up comes first')
      }
      const s = seen.get(h) ?? { gained: 0, lost: 0 }
      if (shouldGain) s.gained++
      if (shouldLose) s.lost++
      seen.set(h, s)
    }
  }
  return seen
}

test('pendingRanges for a bootstrap: the joiner gains exactly its future ranges, someone loses each', () => {
  const rng = createRng('bootstrap')
  const owners = randomOwners(rng, 6, 8)
  const current = Ring.fromOwners(owners)
  const future = Ring.fromOwners([...owners, ['new', randomTokens(rng, 8)]])
  const seen = checkMovement(current, future, 3, rng)
  assert.ok(seen.get('new')!.gained > 0)
  const moves = pendingRanges(current, future, 3)
  assert.equal([...moves.get('new')!.lost], [])
  // What the joiner gains is what the others lose, in total size.
  const gained = moves.get('new')!.gained.reduce((s, g) => s + rangeSize(g.range), 0n)
  const lost = [...moves.values()].flatMap((m) => m.lost).reduce((s, r) => s + rangeSize(r), 0n)
  assert.is(gained, lost)
})

test('pendingRanges for a decommission: the leaver only loses, and is the first source', () => {
  const rng = createRng('leave')
  const owners = randomOwners(rng, 7, 8)
  const current = Ring.fromOwners(owners)
  const rest = new Map(owners)
  rest.delete('h3')
  const future = Ring.fromOwners(rest)
  checkMovement(current, future, 3, rng)
  const moves = pendingRanges(current, future, 3)
  assert.equal(moves.get('h3')!.gained, [])
  for (const [h, m] of moves) if (h !== 'h3') for (const g of m.gained) assert.is(g.sources[0], 'h3')
  // Leaving a ring of exactly rf nodes: nobody can gain anything, the leaver just loses.
  const three = Ring.fromOwners([...owners].slice(0, 3))
  const two = Ring.fromOwners([...owners].slice(0, 2))
  const m3 = pendingRanges(three, two, 3)
  assert.equal([...m3.keys()], ['h2'])
  // The first node of a cluster gains the whole ring with nobody to stream from.
  const first = pendingRanges(Ring.EMPTY, Ring.fromOwners([['solo', [42n]]]), 3)
  assert.equal(first.get('solo')!.gained, [{ range: { start: 42n, end: 42n }, sources: [] }])
})

test('replicasFor is fast: a million lookups on a 64 x 16 ring', () => {
  const rng = createRng('perf')
  const ring = Ring.fromOwners(randomOwners(rng, 64, 16))
  const probes = randomTokens(rng, 1 << 16)
  const lookups = 1_000_000
  let sink = 0
  const started = performance.now()
  for (let i = 0; i < lookups; i++) sink += ring.replicasFor(probes[i & 0xffff]!, 3).length
  const ms = performance.now() - started
  console.log(`    replicasFor: ${lookups} lookups in ${ms.toFixed(0)} ms (${((ms * 1e6) / lookups).toFixed(0)} ns each)`)
  assert.is(sink, 3 * lookups)
  assert.ok(ms < 5000, `too slow: ${ms} ms`)
})

test.run()
