import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { APP } from '../../../node/gossip/gossiper.js'
import { encodeTokens } from '../../../node/gossip/messages.js'
import { randomTokens } from '../../../node/ring/balance.js'
import { GossipSim } from '../../../node/sim/gossip-cluster.js'
import type { Rng } from '../../../node/util/rng.js'

/** LAN-like latency: 1 ms plus an exponential tail with a 5 ms mean. */
const lan = (rng: Rng): number => 1 - Math.log(1 - rng.next()) * 5

function allUp(sim: GossipSim): boolean {
  return sim.live().every(([, g]) => g.endpoints().every((e) => e.up))
}

test('120 nodes joining in waves under 8% loss converge; a killed node is down everywhere within 10 s, and up soon after it returns', () => {
  const N = 120
  const VICTIM = 57
  const down = new Map<number, number>()
  const up = new Map<number, number>()
  const sim = new GossipSim({
    seed: 'waves',
    loss: 0.08,
    latency: lan,
    onEvents: (i, events, now) => {
      for (const e of events) {
        if (e.hostId !== GossipSim.hostId(VICTIM)) continue
        if (e.type === 'down' && !down.has(i)) down.set(i, now)
        if (e.type === 'up' && down.has(i) && !up.has(i)) up.set(i, now)
      }
    },
  })
  const rng = sim.net.rng.fork('tokens')
  const boot = (i: number): void => {
    sim.start(i, { [APP.TOKENS]: encodeTokens(randomTokens(rng, 16)), [APP.STATE]: 'AVAILABLE' })
  }
  // Seeds first, then three waves of 39 nodes, 5 s apart.
  for (let i = 0; i < 3; i++) boot(i)
  for (let w = 0; w < 3; w++) sim.net.at(3000 + w * 5000, () => { for (let i = 3 + w * 39; i < 3 + (w + 1) * 39; i++) boot(i) })
  sim.net.run(13_000)
  const convergedAt = sim.waitFor(() => sim.live().length === N && sim.converged() && allUp(sim), 60_000, 250)
  assert.ok(convergedAt !== undefined, 'the cluster did not converge within 60 s')
  console.log(`    ${N} nodes converged (same view, all up) at t=${(convergedAt! / 1000).toFixed(1)} s, ${((convergedAt! - 13_000) / 1000).toFixed(1)} s after the last wave`)
  for (const [, g] of sim.live()) assert.is(g.endpoints().length, N)

  const killedAt = sim.net.now
  sim.kill(VICTIM)
  const seenDown = sim.waitFor(() => sim.live().every(([i]) => down.has(i)), 15_000, 50)
  const latest = Math.max(...sim.live().map(([i]) => down.get(i) ?? Infinity)) - killedAt
  console.log(`    killed node seen down by all ${N - 1} others after ${(latest / 1000).toFixed(2)} s (first after ${((Math.min(...down.values()) - killedAt) / 1000).toFixed(2)} s)`)
  assert.ok(seenDown !== undefined && latest <= 10_000, `down everywhere only after ${latest} ms`)
  // Nobody else was convicted along the way, and the views still agree.
  for (const [, g] of sim.live()) assert.equal(g.endpoints().filter((e) => !e.up).map((e) => e.hostId), [GossipSim.hostId(VICTIM)])
  assert.ok(sim.converged())

  // It comes back with a new generation: everyone sees it up again soon.
  const restartedAt = sim.net.now + 2000
  sim.net.run(restartedAt)
  sim.restart(VICTIM)
  const upAgain = sim.waitFor(() => sim.live().every(([i]) => i === VICTIM || up.has(i)), 15_000, 50)
  const upLatest = Math.max(...[...up.values()]) - restartedAt
  console.log(`    restarted node seen up again by all after ${(upLatest / 1000).toFixed(2)} s`)
  assert.ok(upAgain !== undefined && upLatest <= 5000, `up everywhere only after ${upLatest} ms`)
  assert.ok(sim.waitFor(() => sim.converged(), 10_000) !== undefined)
  for (const [, g] of sim.live()) assert.is(g.endpoint(GossipSim.hostId(VICTIM))!.generation, 2)
})

interface RoundsRow {
  n: number
  fanout: number
  mean: number
  max: number
  goal: number
}

/** Rounds from one node's state change until every node has it, over several trials. */
function measureRounds(n: number, fanout: number, loss: number, trials: number): RoundsRow {
  const sim = new GossipSim({ seed: `rounds-${n}-${fanout}`, loss, latency: lan, gossip: { fanout } })
  for (let i = 0; i < n; i++) sim.start(i, { [APP.STATE]: 'AVAILABLE' })
  const ready = sim.waitFor(() => sim.converged() && allUp(sim), 60_000, 250)
  assert.ok(ready !== undefined, `${n} nodes did not converge`)
  const rng = sim.net.rng.fork('probes')
  const rounds: number[] = []
  for (let trial = 0; trial < trials; trial++) {
    const origin = rng.int(n)
    const value = `probe-${trial}`
    const host = GossipSim.hostId(origin)
    const t0 = sim.net.now + rng.next() * sim.tickIntervalMs
    sim.net.run(t0)
    sim.gossiper(origin)!.setLocal('probe', value)
    const have = new Set<number>([origin])
    const done = sim.net.run(t0 + 60_000, (ev) => {
      if (ev.kind !== 'deliver') return false
      const i = sim.live().find(([, g]) => g.address === ev.to)![0]
      if (sim.gossiper(i)!.get(host, 'probe') === value) have.add(i)
      return have.size === n
    })
    assert.ok(done, `probe ${trial} did not reach all ${n} nodes`)
    rounds.push((sim.net.now - t0) / sim.tickIntervalMs)
    sim.net.run(sim.net.now + 2000)
  }
  return { n, fanout, mean: rounds.reduce((a, b) => a + b, 0) / rounds.length, max: Math.max(...rounds), goal: 2 * Math.log2(n) }
}

test('rounds for one state change to reach every node, N = 16..128 (5% loss): within 2 log2 N', () => {
  const rows: RoundsRow[] = []
  for (const n of [16, 32, 64, 128]) for (const fanout of [1, 3]) rows.push(measureRounds(n, fanout, 0.05, 8))
  console.log('\n    | N | fanout | mean rounds | max rounds | goal 2·log2 N |')
  console.log('    |---:|---:|---:|---:|---:|')
  for (const r of rows) console.log(`    | ${r.n} | ${r.fanout} | ${r.mean.toFixed(2)} | ${r.max.toFixed(2)} | ${r.goal.toFixed(0)} |`)
  for (const r of rows) assert.ok(r.max <= r.goal, `N=${r.n} fanout ${r.fanout}: ${r.max} rounds > ${r.goal}`)
})

test.run()
