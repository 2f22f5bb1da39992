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
import { describe, hintsGone, ReplicaProbe, SLOW, startCluster } from './support.js'

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

test('If-Match writes through a node an hour behind supersede versions it never saw', async () => {
  await restartSlow(-HOUR)
  const keys = Array.from({ length: 8 }, (_, i) => `causal-${i}`)
  // The versions to supersede are written while the slow node is down: it never sees them.
  await slow.kill9()
  for (const k of keys) await fast.kv.put(k, 'written by the correct clock')
  slow.start()
  await slow.ready(SLOW.readyMs)
  await cluster.converged(SLOW.convergeMs)
  await hintsGone(cluster)
  const first = new Map<string, number>()
  for (const k of keys) {
    assert.is(await probe.read(slow, k), undefined, `${k}: the slow node never saw the first version`)
    first.set(k, (await probe.read(fast, k))!.ts.wall)
    // ONE through `fast` reads fast's copy only, so nothing repairs the slow node.
    const seen = await fast.kv.get(k, { consistency: 'one' })
    await slow.kv.put(k, 'supersedes it from the slow clock', { ifMatch: seen!.etag })
  }
  for (const k of keys) {
    await assertEverywhere(k, 'supersedes it from the slow clock')
    // Its timestamp is about an hour older than the version it replaced: only causality put it first.
    const neu = await probe.read(other, k)
    assert.ok(neu!.ts.wall < first.get(k)! - HOUR / 2, `${k}: the winner carries the slow clock (${describe(neu)})`)
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

test.run()
