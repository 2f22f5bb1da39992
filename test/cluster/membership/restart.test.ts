/**
 * A whole-cluster restart while one member is dead (the trap behind persisting the peer table):
 * n4 is killed, n1–n3 are stopped and started again, and n4 is still in everybody's ring —
 * down, owning its ranges — so writes meant for it become hints instead of landing on nodes
 * that inherited its ranges without its data. When n4 returns with its data dir, the hints
 * reach it and every acknowledged write is readable.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TestCluster, waitFor, type TestNode } from '../../helpers/cluster.js'
import { inRanges, load, missing, ringOf, storedKeys, valueFor } from './helpers.js'

const RF = 3
const VALUE_BYTES = 200

let cluster: TestCluster
const data = new Map<string, string>()

test.before(async () => {
  cluster = await TestCluster.start({ nodes: 4, rf: RF })
  await cluster.converged(60_000)
  await load(cluster.nodes[0]!, 'k', 200, VALUE_BYTES)
  for (let i = 0; i < 200; i++) data.set(`k${i}`, valueFor(`k${i}`, VALUE_BYTES))
})

test.after(async () => {
  await cluster?.destroy()
})

test('a dead member stays in the ring through a restart of every other node', async () => {
  const [n1, n2, n3, n4] = cluster.nodes as [TestNode, TestNode, TestNode, TestNode]
  const dead = await cluster.admin(n4).status()
  await n4.kill9()
  const rest = [n1, n2, n3]
  for (const n of rest) await n.stop()
  for (const n of rest) n.start()
  await Promise.all(rest.map((n) => n.ready(60_000)))
  await cluster.converged(60_000, rest)

  for (const n of rest) {
    const c = await waitFor(`${n.spec.name} lists n4 again`, async () => {
      const c = await n.kv.cluster()
      return c.nodes.some((x) => x.name === 'n4') && c
    }, 15_000)
    const m = c.nodes.find((x) => x.name === 'n4')!
    assert.is(m.hostId, dead.hostId, `${n.spec.name} remembers n4's identity`)
    assert.is(m.state, 'AVAILABLE')
    assert.is(m.up, false)
    assert.is(m.tokens, dead.tokens.length)
    assert.ok(m.ownership > 0.2, `${n.spec.name} still gives n4 its share of the ring (${m.ownership})`)
  }

  // Writes for n4's ranges are hinted, not re-routed to nodes that never had the older data.
  await load(n1, 'w', 100, VALUE_BYTES)
  for (let i = 0; i < 100; i++) data.set(`w${i}`, valueFor(`w${i}`, VALUE_BYTES))
  const hints = async () => {
    let sum = 0
    for (const n of rest) sum += (await cluster.admin(n).status()).hintsPending
    return sum
  }
  assert.ok((await hints()) > 0, 'hints kept for the dead n4')

  n4.start()
  await n4.ready(60_000)
  await cluster.converged(60_000)
  assert.is((await cluster.admin(n4).status()).hostId, dead.hostId)
  await waitFor('hints delivered to n4', async () => (await hints()) === 0, 60_000)

  const statuses = await Promise.all(cluster.nodes.map((n) => cluster.admin(n).status()))
  const mine = ringOf(statuses).rangesOf(dead.hostId!, RF)
  await n4.stop()
  const stored = await storedKeys(n4)
  const lacking = [...data.keys()].filter((k) => inRanges(k, mine) && !stored.has(k))
  assert.is(lacking.length, 0, `n4 lacks ${lacking.length} of its keys, e.g. ${lacking.slice(0, 3)}`)
  n4.start()
  await n4.ready(60_000)
  await cluster.converged(60_000)
  assert.is((await missing(n2, data)).length, 0, 'every acknowledged write readable at QUORUM')
})

test.run()
