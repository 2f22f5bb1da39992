/**
 * Blocking read repair between real processes. Replicas are made stale for real: nodes are
 * killed while a write lands elsewhere, and every node runs with a 1 ms hint window so the
 * hints expire before the stale replicas return (nothing but a read can repair them; the
 * anti-entropy interval is an hour).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type TestCluster, type TestNode } from '../../helpers/cluster.js'
import { compareVV } from '../../../node/replication/version.js'
import { ReplicaProbe, describe, metric, startCluster, vvOfEtag, whileDown } from './support.js'

let cluster: TestCluster
let probe: ReplicaProbe
let a: TestNode, b: TestNode, c: TestNode

test.before(async () => {
  cluster = await startCluster({ nodes: 3, rf: 3, args: ['--hint-window', '1ms'] })
  probe = new ReplicaProbe(cluster.token)
  ;[a, b, c] = cluster.nodes as [TestNode, TestNode, TestNode]
})

test.after(async () => {
  probe?.close()
  await cluster?.destroy()
})

test('a QUORUM read repairs the stale replica it consulted', async () => {
  const key = 'repair-me'
  await a.kv.put(key, 'v1', { consistency: 'all' })
  await whileDown(cluster, [c], async () => {
    await a.kv.put(key, 'v2')
  })
  const stale = await probe.read(c, key)
  assert.is(stale?.value.toString(), 'v1', `c is stale for real: ${describe(stale)}`)
  const repairsBefore = await metric(c, 'ringkv_read_repairs')
  // c coordinates, so it reads its own copy plus one other: it must see v2 and fix itself.
  const got = await c.kv.get(key)
  assert.is(got?.value.toString(), 'v2')
  const fixed = await probe.read(c, key)
  assert.is(fixed?.value.toString(), 'v2', `repaired before the answer: ${describe(fixed)}`)
  assert.equal(fixed?.vv, (await probe.read(a, key))?.vv)
  assert.ok((await metric(c, 'ringkv_read_repairs')) > repairsBefore, 'the repair is counted')
})

test('two QUORUM reads in a row never go backwards after a write reached one replica', async () => {
  const keys = Array.from({ length: 24 }, (_, i) => `monotonic-${i}`)
  for (const k of keys) await a.kv.put(k, 'old', { consistency: 'all' })
  // Only a gets the new versions: b and c are dead, ONE succeeds on a alone.
  await whileDown(cluster, [b, c], async () => {
    for (const k of keys) await a.kv.put(k, 'new', { consistency: 'one' })
  })
  for (const k of keys) {
    const [rb, rc] = [await probe.read(b, k), await probe.read(c, k)]
    assert.ok(rb?.value.toString() === 'old' && rc?.value.toString() === 'old', `${k}: b and c are stale (${describe(rb)}, ${describe(rc)})`)
  }
  let repairedReplicaSeen = 0
  for (const k of keys) {
    // The first read goes through a, which holds the new version; whichever of b and c it
    // consulted must hold it before the answer arrives. Then reads through b and c — each
    // consulting a pair that may not include a — must not return the old version.
    const first = await a.kv.get(k)
    assert.is(first?.value.toString(), 'new')
    const [rb, rc] = [await probe.read(b, k), await probe.read(c, k)]
    const fresh = [rb, rc].filter((r) => r?.value.toString() === 'new').length
    assert.ok(fresh >= 1, `${k}: the replica the read consulted was repaired before the answer (b ${describe(rb)}, c ${describe(rc)})`)
    repairedReplicaSeen += fresh
    let last = vvOfEtag(first!.etag)
    for (const coord of [b, c, a, c, b]) {
      const r = await coord.kv.get(k)
      assert.is(r?.value.toString(), 'new', `${k} read through ${coord.spec.name} went backwards`)
      const vv = vvOfEtag(r!.etag)
      assert.ok(['equal', 'after'].includes(compareVV(vv, last)), `${k}: ${JSON.stringify(vv)} is older than ${JSON.stringify(last)}`)
      last = vv
    }
  }
  console.log(`    ${repairedReplicaSeen} stale replicas of ${keys.length * 2} held the new version right after the first read`)
})

test.run()
