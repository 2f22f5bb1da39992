import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { APP, type Gossiper } from '../../../node/gossip/gossiper.js'
import { publishState } from '../../../node/gossip/members.js'
import { GossipSim } from '../../../node/sim/gossip-cluster.js'

function upSet(g: Gossiper): string[] {
  return g.endpoints().filter((e) => e.up).map((e) => e.hostId).sort()
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i)
}

test('a partition: each side sees the other down, changes on both sides, and after healing the views converge', () => {
  const N = 30
  const sim = new GossipSim({ seed: 'partition', loss: 0.05 })
  for (let i = 0; i < N; i++) sim.start(i, { [APP.STATE]: 'AVAILABLE' })
  assert.ok(sim.waitFor(() => sim.converged() && sim.live().every(([, g]) => upSet(g).length === N), 30_000) !== undefined)
  // All seeds (0..2) are on side A: side B must find its way back without them.
  const sideA = range(0, 15)
  const sideB = range(15, N)
  sim.net.partition(sideA.map(GossipSim.address), sideB.map(GossipSim.address))
  const cut = sim.net.now
  const split = sim.waitFor(
    () => sim.live().every(([i, g]) => upSet(g).length === 15 && upSet(g).includes(GossipSim.hostId(sideA.includes(i) ? 0 : 15))),
    15_000,
    50,
  )
  assert.ok(split !== undefined && split - cut <= 10_000, 'each side saw the other down within 10 s')
  sim.gossiper(4)!.setLocal(APP.LOAD, '1000')
  publishState(sim.gossiper(20)!, 'LEAVING')
  sim.net.run(sim.net.now + 20_000)
  assert.is(sim.gossiper(10)!.get(GossipSim.hostId(20), APP.STATE), 'AVAILABLE', 'no news crosses the partition')
  assert.is(sim.gossiper(25)!.get(GossipSim.hostId(4), APP.LOAD), undefined)
  assert.not.ok(sim.converged())

  sim.net.heal()
  const healed = sim.net.now
  const together = sim.waitFor(() => sim.converged() && sim.live().every(([, g]) => upSet(g).length === N), 30_000, 50)
  assert.ok(together !== undefined, 'views did not converge after healing')
  console.log(`    after healing: same view and all ${N} up again in ${((together! - healed) / 1000).toFixed(1)} s`)
  assert.is(sim.gossiper(10)!.get(GossipSim.hostId(20), APP.STATE), 'LEAVING')
  assert.is(sim.gossiper(25)!.get(GossipSim.hostId(4), APP.LOAD), '1000')
})

/**
 * Node 19 is cut off, node 10 leaves (LEFT) and exits while 19 still holds it as AVAILABLE;
 * then 19 returns, either before or after the others have dropped node 10.
 */
function leftScenario(returnAfterMs: number): { sim: GossipSim; retention: number } {
  const retention = 30_000
  const sim = new GossipSim({ seed: `left-${returnAfterMs}`, loss: 0.05, gossip: { leftRetentionMs: retention } })
  for (let i = 0; i < 20; i++) sim.start(i, { [APP.STATE]: 'AVAILABLE' })
  assert.ok(sim.waitFor(() => sim.converged(), 30_000) !== undefined)
  sim.net.partition([GossipSim.address(19)], range(0, 19).map(GossipSim.address))
  publishState(sim.gossiper(10)!, 'LEFT')
  const others = sim.live().filter(([i]) => i !== 19).map(([, g]) => g)
  assert.ok(sim.waitFor(() => sim.converged(others), 15_000) !== undefined)
  sim.kill(10)
  sim.net.run(sim.net.now + returnAfterMs)
  assert.is(sim.gossiper(19)!.get(GossipSim.hostId(10), APP.STATE), 'AVAILABLE', 'the cut-off node holds stale state')
  sim.net.heal()
  return { sim, retention }
}

test('a LEFT node is not resurrected by a node returning with stale state (within the retention period)', () => {
  const { sim } = leftScenario(10_000)
  assert.ok(sim.waitFor(() => sim.converged(), 30_000) !== undefined)
  for (const [, g] of sim.live()) assert.is(g.get(GossipSim.hostId(10), APP.STATE), 'LEFT')
  assert.is(sim.gossiper(19)!.endpoint(GossipSim.hostId(10))!.up, false)
})

test('a LEFT node is not resurrected by a node returning with stale state (after the others removed it)', () => {
  const { sim, retention } = leftScenario(45_000)
  for (const [i, g] of sim.live()) if (i !== 19) assert.is(g.endpoint(GossipSim.hostId(10)), undefined, `node ${i} still holds node 10`)
  assert.ok(sim.waitFor(() => sim.converged(), 30_000) !== undefined)
  for (const [, g] of sim.live()) assert.is(g.endpoint(GossipSim.hostId(10)), undefined)
  // And it stays gone for as long again, while stale digests could still be around.
  sim.net.run(sim.net.now + retention / 2)
  for (const [, g] of sim.live()) assert.is(g.endpoint(GossipSim.hostId(10)), undefined)
  assert.is(sim.live().length, 19)
})

test.run()
