import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { allocateTokens, evenTokens } from '../../../node/ring/allocate.js'
import { balanceOf, growRing, randomTokens } from '../../../node/ring/balance.js'
import { RING_SIZE } from '../../../node/ring/range.js'
import { Ring } from '../../../node/ring/ring.js'
import { createRng } from '../../../node/util/rng.js'

const GOAL = 1.1

test('RF 3, 16 tokens: max/mean effective ownership <= 1.10 at every size 3..64 (random tokens for comparison)', () => {
  const started = performance.now()
  const rings = growRing(64, 16, 3, (ring, host) => allocateTokens(ring, host, 16, 3))
  const ms = performance.now() - started
  const rng = createRng('random-comparison')
  const random = growRing(64, 16, 3, () => randomTokens(rng, 16))
  let worst = 0
  let worstRandom = 0
  const failures: string[] = []
  for (let n = 3; n <= 64; n++) {
    const b = balanceOf(rings[n - 1]!, 3)
    assert.is(b.nodes, n)
    worst = Math.max(worst, b.maxOverMean)
    worstRandom = Math.max(worstRandom, balanceOf(random[n - 1]!, 3).maxOverMean)
    if (b.maxOverMean > GOAL) failures.push(`${n} nodes: ${b.maxOverMean.toFixed(3)}`)
  }
  console.log(`    allocated: worst max/mean ${worst.toFixed(3)} (64 joins in ${ms.toFixed(0)} ms); random tokens: worst ${worstRandom.toFixed(3)}`)
  assert.equal(failures, [])
})

test('other shapes stay balanced too: 8 tokens at RF 2, 32 tokens at RF 5', () => {
  for (const [nodes, tokens, rf, bound] of [[24, 8, 2, 1.15], [20, 32, 5, 1.1]] as const) {
    const rings = growRing(nodes, tokens, rf, (ring, host) => allocateTokens(ring, host, tokens, rf))
    for (let n = rf; n <= nodes; n++) {
      const b = balanceOf(rings[n - 1]!, rf)
      assert.ok(b.maxOverMean <= bound, `${n} nodes, ${tokens} tokens, rf ${rf}: ${b.maxOverMean}`)
    }
  }
})

test('allocation is deterministic, and a retried join gets the tokens it already has', () => {
  const rings = growRing(10, 16, 3, (ring, host) => allocateTokens(ring, host, 16, 3))
  const ring = rings[9]!
  const a = allocateTokens(ring, 'joiner', 16, 3)
  const b = allocateTokens(Ring.fromOwners(ring.nodes.map((h) => [h, ring.tokensOf(h)])), 'joiner', 16, 3)
  assert.equal(a, b)
  assert.is(new Set(a).size, 16)
  for (const t of a) assert.ok(t >= 0n && t < RING_SIZE)
  // Nothing collides with the existing tokens.
  for (const t of a) assert.is(ring.tokensOf(ring.ownerAt(ring.indexOf(t))).includes(t), false)
  const joined = Ring.fromOwners([...ring.nodes.map((h) => [h, ring.tokensOf(h)] as const), ['joiner', a]])
  assert.equal(allocateTokens(joined, 'joiner', 16, 3), a)
  assert.is(joined.collisions.length, 0)
  // Two hosts joining against the same ring at once (the join protocol should prevent it)
  // must not pick the same tokens.
  const other = allocateTokens(ring, 'joiner-2', 16, 3)
  assert.is(other.filter((t) => a.includes(t)).length, 0)
})

test('the first node takes evenly spaced tokens', () => {
  const t = allocateTokens(Ring.EMPTY, 'first', 4, 3)
  assert.equal(t, evenTokens('first', 4))
  const step = RING_SIZE / 4n
  for (let i = 1; i < 4; i++) assert.is(t[i]! - t[i - 1]!, step)
  assert.ok(t[0]! < step)
  assert.not.equal(evenTokens('other', 4), t, 'rotated by host id')
  assert.throws(() => allocateTokens(Ring.EMPTY, 'x', 0, 3), /num-tokens/)
  assert.throws(() => allocateTokens(Ring.EMPTY, 'x', 4, 0), /replication factor/)
})

test.run()
