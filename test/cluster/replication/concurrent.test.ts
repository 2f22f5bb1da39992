/**
 * Concurrent writes to one key through different coordinators: every replica ends with the
 * byte-identical version (same value, same ETag whichever node answers), and every replica
 * that had to choose between truly concurrent versions counts it in
 * ringkv_concurrent_versions_resolved.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { waitFor, type TestCluster } from '../../helpers/cluster.js'
import { compareVV } from '../../../node/replication/version.js'
import { encodeRecord } from '../../../node/storage/codec.js'
import { describe, metric, ReplicaProbe, startCluster, vvOfEtag } from './support.js'

let cluster: TestCluster
let probe: ReplicaProbe

test.before(async () => {
  cluster = await startCluster({ nodes: 3, rf: 3 })
  probe = new ReplicaProbe(cluster.token)
})

test.after(async () => {
  probe?.close()
  await cluster?.destroy()
})

async function resolvedCount(): Promise<number> {
  let n = 0
  for (const node of cluster.nodes) n += await metric(node, 'ringkv_concurrent_versions_resolved')
  return n
}

test('a PUT answers with the ETag later reads return', async () => {
  // Coordinators in descending host-id order build a vector whose entries were added out of
  // sorted order; that order must not leak into the ETag.
  const byId = await Promise.all(cluster.nodes.map(async (n) => ({ n, id: (await n.kv.node()).hostId })))
  byId.sort((x, y) => (x.id < y.id ? 1 : -1))
  for (const { n } of byId.slice(0, 2)) await n.kv.put('etag-stable', 'first', { consistency: 'all' })
  const etag = await byId[2]!.n.kv.put('etag-stable', 'second')
  assert.is(Object.keys(vvOfEtag(etag)).length, 3)
  for (const n of cluster.nodes) {
    await waitFor(`${n.spec.name} to hold the second version`, async () => (await n.kv.get('etag-stable', { consistency: 'one' }))?.value.toString() === 'second', 5000, 50)
    assert.is((await n.kv.get('etag-stable', { consistency: 'one' }))?.etag, etag, `${n.spec.name}'s ETag`)
  }
})

test('simultaneous writes from three coordinators converge to one version everywhere, and are counted', async () => {
  const before = await resolvedCount()
  let concurrentKeys = 0
  const keys: string[] = []
  // Simultaneous requests nearly always mint concurrent versions; a few rounds make it certain
  // enough that the scenario really happened (counted below from the PUTs' own ETags).
  for (let round = 0; round < 3 && concurrentKeys < 5; round++) {
    const batch = Array.from({ length: 20 }, (_, i) => `race-${round}-${i}`)
    keys.push(...batch)
    const etags = await Promise.all(batch.map((k) => Promise.all(cluster.nodes.map((n) => n.kv.put(k, `from ${n.spec.name}`)))))
    for (const e of etags) {
      const vvs = e.map(vvOfEtag)
      if (vvs.some((a, i) => vvs.some((b, j) => i < j && compareVV(a, b) === 'concurrent'))) concurrentKeys++
    }
  }
  console.log(`    ${concurrentKeys} of ${keys.length} keys got truly concurrent versions`)
  assert.ok(concurrentKeys > 0, 'the scenario needs concurrent versions; none were minted')

  for (const k of keys) {
    // Each coordinator sent its version to every replica, so all end identical without a read.
    const copies = await waitFor(`${k} identical on every replica`, async () => {
      const c = [...(await probe.readAll(cluster.nodes, k)).values()]
      const bytes = c.map((r) => (r ? encodeRecord(r).toString('hex') : 'absent'))
      return bytes.every((b) => b === bytes[0] && b !== 'absent') ? c : false
    }, 10_000, 100)
    const value = copies[0]!.value.toString()
    assert.ok(/^from n[123]$/.test(value), `${k}: ${describe(copies[0])}`)
    const answers = await Promise.all(cluster.nodes.map((n) => n.kv.get(k, { consistency: 'one' })))
    for (const a of answers) {
      assert.is(a?.value.toString(), value)
      assert.is(a?.etag, answers[0]!.etag)
    }
  }
  // Each concurrent key was resolved on at least one replica (normally on all three).
  const counted = await waitFor('the metric to count the resolutions', async () => {
    const n = (await resolvedCount()) - before
    return n >= concurrentKeys ? n : false
  }, 10_000, 500)
  console.log(`    ringkv_concurrent_versions_resolved rose by ${counted} across the nodes`)
})

test.run()
