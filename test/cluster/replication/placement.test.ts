/**
 * Every key lands on exactly its RF ring replicas: four real nodes with RF 3, so each key must
 * be on the three nodes the ring names and on none other.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type TestCluster, waitFor } from '../../helpers/cluster.js'
import { ReplicaProbe, describe, ringOf, sameRecord, startCluster } from './support.js'

let cluster: TestCluster
let probe: ReplicaProbe

test.before(async () => {
  cluster = await startCluster({ nodes: 4, rf: 3 })
  probe = new ReplicaProbe(cluster.token)
})

test.after(async () => {
  probe?.close()
  await cluster?.destroy()
})

test('each key is on exactly its three ring replicas, identical on each', async () => {
  const { ring, hostIds } = await ringOf(cluster, cluster.nodes)
  const keys = Array.from({ length: 40 }, (_, i) => `placement-${i}`)
  // Coordinators chosen round robin, so most writes arrive at a node that must forward.
  await Promise.all(keys.map((k, i) => cluster.nodes[i % 4]!.kv.put(k, `value of ${k}`)))
  const holders = new Map<string, number>()
  for (const k of keys) {
    const expected = ring.replicasForKey(Buffer.from(k), 3).map((h) => hostIds.get(h)!).sort()
    assert.is(expected.length, 3, `ring names 3 replicas for ${k}`)
    // QUORUM answered after two acks; the third replica's apply may still be in flight.
    const copies = await waitFor(`${k} on ${expected.join(',')}`, async () => {
      const c = await probe.readAll(cluster.nodes, k)
      return expected.every((name) => c.get(name)) ? c : false
    }, 10_000, 100)
    const have = [...copies].filter(([, r]) => r).map(([n]) => n).sort()
    assert.equal(have, expected, `${k} is on ${have.join(',')}, ring says ${expected.join(',')}`)
    const first = copies.get(expected[0]!)
    for (const name of expected) {
      const r = copies.get(name)
      assert.ok(sameRecord(r, first), `${k} differs: ${name} has ${describe(r)}, ${expected[0]} has ${describe(first)}`)
      assert.is(r!.value.toString(), `value of ${k}`)
      holders.set(name, (holders.get(name) ?? 0) + 1)
    }
  }
  // With balanced tokens every node replicates some of 40 keys (3/4 of them on average).
  assert.is(holders.size, 4, `every node holds some keys: ${JSON.stringify([...holders])}`)
})

test('a delete replicates as a tombstone to every replica', async () => {
  const { ring, hostIds } = await ringOf(cluster, cluster.nodes)
  const k = 'placement-deleted'
  await cluster.nodes[0]!.kv.put(k, 'soon gone')
  await cluster.nodes[1]!.kv.del(k)
  const expected = ring.replicasForKey(Buffer.from(k), 3).map((h) => hostIds.get(h)!)
  await waitFor(`tombstone of ${k} on every replica`, async () => {
    const c = await probe.readAll(cluster.nodes, k)
    return expected.every((name) => c.get(name)?.tombstone === true)
  }, 10_000, 100)
  assert.is(await cluster.nodes[2]!.kv.get(k), undefined)
})

test('forwarded writes and reads keep working at QUORUM while a replica is dead', async () => {
  const { ring, hostIds } = await ringOf(cluster, cluster.nodes)
  const victim = cluster.nodes[3]!
  await victim.kill9()
  const live = cluster.nodes.slice(0, 3)
  let forwardedToDead = 0
  // Right after the kill, before anyone noticed: a coordinator that is not a replica may try
  // the dead one first and must move on to a live replica.
  for (let i = 0; i < 40; i++) {
    const k = `forwarded-${i}`
    const coord = live[i % 3]!
    const replicas = ring.replicasForKey(Buffer.from(k), 3).map((h) => hostIds.get(h)!)
    if (!replicas.includes(coord.spec.name) && replicas.includes(victim.spec.name)) forwardedToDead++
    await coord.kv.put(k, `f${i}`)
    assert.is((await live[(i + 1) % 3]!.kv.get(k))?.value.toString(), `f${i}`)
  }
  console.log(`    ${forwardedToDead} of 40 writes were forwarded by a non-replica for a key the dead node replicates`)
  assert.ok(forwardedToDead > 0, 'the scenario forwards for keys of the dead node')
})

test.run()
