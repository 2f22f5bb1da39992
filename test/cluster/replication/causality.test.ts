/**
 * Causality beats wall clocks, with a real node whose clock runs an hour behind
 * (RINGKV_CLOCK_SKEW_MS). A write carrying If-Match of the current ETag supersedes that version
 * on every replica even when its timestamp is older — pure last-write-wins would drop it.
 *
 * The sharp case needs the slow node never to have seen the version it supersedes (otherwise
 * its HLC would have jumped past that version's timestamp by observing it): it was down when
 * that version was written, and every node keeps hints for 1 ms only.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type TestCluster, type TestNode } from '../../helpers/cluster.js'
import { CLOCK_SKEW_ENV } from '../../../node/replication/version.js'
import { Store } from '../../../node/storage/store.js'
import { META_CLOCK_LEASE } from '../../../node/server/runtime.js'
import { ReplicaProbe, SLOW, describe, startCluster, whileDown } from './support.js'

const HOUR = 3_600_000
let cluster: TestCluster
let probe: ReplicaProbe
let fast: TestNode, slow: TestNode, other: TestNode

test.before(async () => {
  cluster = await startCluster({ nodes: 3, rf: 3, args: ['--hint-window', '1ms'] })
  probe = new ReplicaProbe(cluster.token)
  ;[fast, slow, other] = cluster.nodes as [TestNode, TestNode, TestNode]
})

test.after(async () => {
  probe?.close()
  await cluster?.destroy()
})

async function restartSlow(skewMs: number): Promise<void> {
  await slow.stop()
  // A node persists a lease above every timestamp it issued, so a restart with the clock set
  // back keeps stamping after them (it would otherwise go back in time). To model a node whose
  // clock has always run behind, forget the lease its correct-clock past left.
  const store = await Store.open(slow.spec.dataDir, { durable: false })
  await store.putMeta(META_CLOCK_LEASE, Buffer.from('0'))
  await store.close()
  slow.spec.env = { ...slow.spec.env, [CLOCK_SKEW_ENV]: String(skewMs) }
  slow.start()
  await slow.ready(SLOW.readyMs)
  await cluster.converged(SLOW.convergeMs)
}

async function assertEverywhere(key: string, value: string): Promise<void> {
  for (const n of cluster.nodes) {
    const r = await probe.read(n, key)
    assert.is(r?.value.toString(), value, `${n.spec.name} holds ${describe(r)}`)
    assert.is((await n.kv.get(key))?.value.toString(), value, `QUORUM read through ${n.spec.name}`)
  }
}

test('the slow node really stamps with a clock an hour behind', async () => {
  await restartSlow(-HOUR)
  await slow.kv.put('slow-clock', 'x')
  const r = await probe.read(slow, 'slow-clock')
  assert.ok(Math.abs(r!.ts.wall - (Date.now() - HOUR)) < 60_000, describe(r))
})

test('If-Match through the slow node supersedes a version it never saw: it fetches it and stamps after it', async () => {
  const keys = Array.from({ length: 8 }, (_, i) => `causal-${i}`)
  // The versions to supersede are written while the slow node is down: it never sees them.
  await whileDown(cluster, [slow], async () => {
    for (const k of keys) await fast.kv.put(k, 'written by the correct clock')
  })
  for (const k of keys) {
    assert.is(await probe.read(slow, k), undefined, `${k}: the slow node never saw the first version`)
    const first = (await probe.read(fast, k))!
    // ONE through `fast` reads fast's copy only, so nothing repairs the slow node.
    const seen = await fast.kv.get(k, { consistency: 'one' })
    await slow.kv.put(k, 'supersedes it from the slow clock', { ifMatch: seen!.etag })
    const neu = (await probe.read(slow, k))!
    // HLC order extends causal order even from a clock an hour behind (see Coordinator.catchUp).
    assert.ok(neu.ts.wall >= first.ts.wall, `${k}: ${describe(neu)} is stamped after ${describe(first)}`)
  }
  for (const k of keys) await assertEverywhere(k, 'supersedes it from the slow clock')
})

test('If-Match through the slow node wins by causality alone when it cannot see the version it supersedes', async () => {
  const keys = Array.from({ length: 4 }, (_, i) => `vector-wins-${i}`)
  const etags = new Map<string, string>()
  const first = new Map<string, number>()
  // The slow node misses the first versions, and later their holders are dead when it
  // supersedes them: nothing can show them to it, so its versions carry its own, older clock.
  await whileDown(cluster, [slow], async () => {
    for (const k of keys) {
      etags.set(k, await fast.kv.put(k, 'written by the correct clock'))
      first.set(k, (await probe.read(fast, k))!.ts.wall)
    }
  })
  await whileDown(cluster, [fast, other], async () => {
    for (const k of keys) await slow.kv.put(k, 'supersedes it from the slow clock', { consistency: 'one', ifMatch: etags.get(k)! })
  })
  for (const k of keys) {
    const neu = (await probe.read(slow, k))!
    assert.ok(neu.ts.wall < first.get(k)! - HOUR / 2, `${k}: the new version carries the slow clock (${describe(neu)})`)
    assert.is((await probe.read(other, k))?.value.toString(), 'written by the correct clock', `${k}: other is stale`)
    // ALL through the slow node consults and repairs every replica; the vector decides.
    assert.is((await slow.kv.get(k, { consistency: 'all' }))?.value.toString(), 'supersedes it from the slow clock')
    await assertEverywhere(k, 'supersedes it from the slow clock')
  }
})

test('a chain of If-Match writes alternating between a slow and a fast coordinator never loses a step', async () => {
  const key = 'causal-chain'
  let etag = await fast.kv.put(key, 'step 0')
  for (let i = 1; i <= 12; i++) {
    const coord = [slow, fast, other][i % 3]!
    etag = await coord.kv.put(key, `step ${i}`, { ifMatch: etag })
    // Every coordinator must see the last step, whoever's clock stamped it.
    for (const n of cluster.nodes) {
      const r = await n.kv.get(key)
      assert.is(r?.value.toString(), `step ${i}`, `after step ${i} through ${coord.spec.name}, ${n.spec.name} answered ${r?.value.toString()}`)
      assert.is(r?.etag, etag)
    }
  }
})

test('a node with a skewed clock refuses a skew that is not a number at startup', async () => {
  await slow.stop()
  slow.spec.env = { ...slow.spec.env, [CLOCK_SKEW_ENV]: 'an hour' }
  slow.start()
  const exit = await slow.exit!
  assert.is.not(exit.code, 0)
  slow.spec.env = { ...slow.spec.env, [CLOCK_SKEW_ENV]: '0' }
})

test('a node restarted with its clock set back keeps stamping after what it stamped before', async () => {
  await restartSlow(0)
  await slow.kv.put('lease-check', 'before')
  const before = await probe.read(slow, 'lease-check')
  // Not restartSlow: this time the lease of its correct-clock run is kept, as in production.
  await slow.stop()
  slow.spec.env = { ...slow.spec.env, [CLOCK_SKEW_ENV]: String(-2 * HOUR) }
  slow.start()
  await slow.ready(SLOW.readyMs)
  await cluster.converged(SLOW.convergeMs)
  await slow.kv.put('lease-check-2', 'after')
  const after = await probe.read(slow, 'lease-check-2')
  assert.ok(after!.ts.wall >= before!.ts.wall, `after restart ${describe(after)} vs before ${describe(before)}`)
  await restartSlow(0)
})

test.run()
