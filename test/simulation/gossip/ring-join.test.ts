import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Gossiper } from '../../../node/gossip/gossiper.js'
import { publishState, publishTokens, ringMembers } from '../../../node/gossip/members.js'
import { allocateTokens } from '../../../node/ring/allocate.js'
import { balanceOf } from '../../../node/ring/balance.js'
import { pendingRanges } from '../../../node/ring/pending.js'
import { rangeSize } from '../../../node/ring/range.js'
import { Ring } from '../../../node/ring/ring.js'
import { GossipSim } from '../../../node/sim/gossip-cluster.js'

const RF = 3
const NUM_TOKENS = 16

function ringSignature(ring: Ring): string {
  const parts: string[] = []
  for (let i = 0; i < ring.size; i++) parts.push(`${ring.tokenAt(i)}=${ring.ownerAt(i)}`)
  return parts.join(',')
}

test('nodes join one at a time, each allocating tokens from the gossiped ring: every view agrees and ownership stays balanced', () => {
  const NODES = 24
  const sim = new GossipSim({ seed: 'ring-join', loss: 0.05 })
  const worst: number[] = []
  for (let k = 0; k < NODES; k++) {
    const g: Gossiper = sim.start(k, { state: 'JOINING' })
    // The joiner waits until its view has caught up with the cluster's (the operator's
    // one-join-at-a-time rule plus gossip convergence), then allocates against that view.
    assert.ok(sim.waitFor(() => sim.converged(), 30_000) !== undefined, `node ${k} never caught up`)
    const before = ringMembers(g.endpoints())
    const current = Ring.current(before)
    assert.is(current.nodes.length, k, `node ${k} sees ${current.nodes.length} owners`)
    const tokens = allocateTokens(Ring.future(before), g.hostId, NUM_TOKENS, RF)
    publishTokens(g, tokens)
    publishState(g, k === 0 ? 'AVAILABLE' : 'BOOTSTRAPPING')
    assert.ok(sim.waitFor(() => sim.converged(), 30_000) !== undefined, `node ${k}'s tokens did not spread`)

    if (k > 0) {
      // Another node computes the pending ranges from its own view: the joiner gains exactly
      // what it will replicate, and each gained range has current replicas to stream from.
      const observer = sim.gossiper(0)!
      const members = ringMembers(observer.endpoints())
      const now = Ring.current(members)
      const future = Ring.future(members)
      const moves = pendingRanges(now, future, RF)
      const gained = moves.get(g.hostId)!.gained
      const gainedSize = gained.reduce((s, r) => s + rangeSize(r.range), 0n)
      const futureSize = future.rangesOf(g.hostId, RF).reduce((s, r) => s + rangeSize(r), 0n)
      assert.is(gainedSize, futureSize)
      for (const r of gained) assert.ok(r.sources.length === Math.min(RF, k), 'every gained range has all current replicas as sources')
      publishState(g, 'AVAILABLE')
      assert.ok(sim.waitFor(() => sim.converged(), 30_000) !== undefined)
    }
    if (k + 1 >= RF) worst.push(balanceOf(Ring.current(ringMembers(sim.gossiper(k >> 1)!.endpoints())), RF).maxOverMean)
  }
  // Every node derives the same ring from its own gossip view.
  const rings = sim.live().map(([, g]) => ringSignature(Ring.current(ringMembers(g.endpoints()))))
  assert.is(new Set(rings).size, 1)
  assert.is(Ring.current(ringMembers(sim.gossiper(5)!.endpoints())).nodes.length, NODES)
  console.log(`    max/mean ownership at RF ${RF} as ${RF}..${NODES} nodes joined through gossip: ${worst.map((w) => w.toFixed(3)).join(' ')}`)
  for (const w of worst) assert.ok(w <= 1.1, `max/mean ${w}`)
  console.log(`    virtual time for ${NODES} sequential joins: ${(sim.net.now / 1000).toFixed(0)} s`)
})

test.run()
