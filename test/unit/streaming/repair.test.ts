import * as assert from 'uvu/assert'
import { test } from '../transport/fixture.js'
import { decodeRecord, encodeRecord } from '../../../node/storage/codec.js'
import { resolve } from '../../../node/replication/resolve.js'
import { repairPlan } from '../../../node/streaming/repair.js'
import { rangeSize } from '../../../node/ring/range.js'
import { ReplicaSet, contents, dropKey, tombstone, value } from './fixture.js'

const T0 = 1_700_000_000_000
const key = (i: number) => Buffer.from(`key-${String(i).padStart(5, '0')}`)

/** Writes keys 0..n-1 (value v<i>) to every replica of each key. */
async function writeAll(set: ReplicaSet, n: number): Promise<number> {
  let bytes = 0
  for (let i = 0; i < n; i++) {
    const rec = value(`value-${i}-${'x'.repeat(100)}`, { w: 1 }, T0)
    bytes += key(i).length + encodeRecord(rec).length
    await Promise.all(set.replicasOf(key(i)).map((r) => r.store.apply(key(i), rec)))
  }
  return bytes
}

async function assertReplicasAgree(set: ReplicaSet, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const raws = await Promise.all(set.replicasOf(key(i)).map(async (r) => (await r.store.getRaw(key(i)))?.toString('hex')))
    assert.ok(raws.every((x) => x !== undefined && x === raws[0]), `replicas of ${key(i)} disagree`)
  }
}

test('repair plan: every range of the node once, one replica set each, contiguous ones merged', async () => {
  const set = await ReplicaSet.start({ nodes: 5, rf: 3, numTokens: 8 })
  try {
    const ring = set.replicas[0]!.view.ring
    for (const r of set.replicas) {
      const plan = repairPlan(ring, r.hostId, 3)
      const total = plan.reduce((n, p) => n + rangeSize(p.range), 0n)
      const mine = ring.rangesOf(r.hostId, 3).reduce((n, x) => n + rangeSize(x), 0n)
      assert.is(total, mine)
      for (const p of plan) {
        assert.ok(p.replicas.includes(r.hostId))
        assert.equal([...ring.replicasFor(p.range.end, 3)].sort(), p.replicas)
        assert.equal([...ring.replicasFor((p.range.start + 1n) % (1n << 64n), 3)].sort(), p.replicas)
      }
      assert.ok(plan.length <= ring.rangesOf(r.hostId, 3).length)
    }
  } finally {
    await set.close()
  }
})

test('in-sync replicas: nothing moves, only the roots are compared', async () => {
  const set = await ReplicaSet.start({ nodes: 3, rf: 3 })
  try {
    await writeAll(set, 500)
    const [a, b, c] = set.replicas
    const s = await a!.repairer.repair()
    assert.equal([s.differingLeaves, s.recordsPulled, s.recordsPushed, s.failed, s.clean], [0, 0, 0, 0, true])
    assert.is(s.sessions, 2 * s.rangesTotal)
    assert.ok(s.bytes < 200 * s.sessions, `${s.bytes} bytes for ${s.sessions} sessions`)
    assert.is(b!.bytesIn + c!.bytesIn, 0)
  } finally {
    await set.close()
  }
})

test('a replica whose data was deleted behind its back is restored, streaming only the differences', async () => {
  const set = await ReplicaSet.start({ nodes: 3, rf: 3 })
  try {
    const total = await writeAll(set, 3000)
    const [a, , c] = set.replicas
    // one key lost: only about it moves
    await dropKey(c!.store, key(1234))
    let s = await c!.repairer.repair()
    // from the first peer; the tree is rebuilt after a pull, so the second has nothing to add
    assert.is(s.recordsPulled, 1)
    assert.is(s.recordsPushed, 0)
    assert.ok(s.bytes < total / 50, `${s.bytes} bytes exchanged to restore one key of ${total}`)
    assert.ok(await c!.store.getRaw(key(1234)))
    // everything lost: all of it comes back
    await c!.store.dropRange(0n, 0n)
    s = await c!.repairer.repair()
    assert.ok(s.recordsPulled >= 3000)
    assert.equal(await contents(c!.store), await contents(a!.store))
  } finally {
    await set.close()
  }
})

test('differences flow both ways and concurrent versions end identical (merged) on both', async () => {
  const set = await ReplicaSet.start({ nodes: 2, rf: 2 })
  try {
    await writeAll(set, 200)
    const [a, b] = set.replicas
    await a!.store.apply(Buffer.from('only-a'), value('a', { a: 1 }, T0))
    await b!.store.apply(Buffer.from('only-b'), value('b', { b: 1 }, T0))
    const va = value('from-a', { w: 1, a: 1 }, T0 + 5)
    const vb = value('from-b', { w: 1, b: 1 }, T0 + 9)
    await a!.store.apply(key(7), va)
    await b!.store.apply(key(7), vb)
    const s = await a!.repairer.repair()
    assert.equal([s.recordsPulled, s.recordsPushed], [2, 2])
    const merged = encodeRecord(resolve(va, vb).winner).toString('hex')
    assert.is((await a!.store.getRaw(key(7)))!.toString('hex'), merged)
    assert.equal(await contents(a!.store), await contents(b!.store))
    assert.equal(decodeRecord((await b!.store.getRaw(key(7)))!).vv, { a: 1, b: 1, w: 1 })
  } finally {
    await set.close()
  }
})

test('writes racing a repair: differences they cause are harmless, replicas end identical', async () => {
  const set = await ReplicaSet.start({ nodes: 3, rf: 3 })
  try {
    await writeAll(set, 1000)
    const [a, b] = set.replicas
    await b!.store.dropRange(0n, 1n << 62n) // a quarter lost on b
    let writing = true
    const writer = (async () => {
      // newer versions land on the replicas one after another, as a coordinator's writes do
      for (let round = 2; writing; round++) {
        for (let i = round % 7; i < 1000; i += 97) {
          const rec = value(`v${round}`, { w: round }, T0 + round)
          for (const r of set.replicasOf(key(i))) await r.store.apply(key(i), rec)
        }
        await new Promise((r) => setTimeout(r, 5))
      }
    })()
    const s = await a!.repairer.repair()
    writing = false
    await writer
    assert.ok(s.clean)
    await assertReplicasAgree(set, 1000)
  } finally {
    await set.close()
  }
})

test('five nodes, rf 3: after every node repairs, every key agrees on all of its replicas', async () => {
  const set = await ReplicaSet.start({ nodes: 5, rf: 3, numTokens: 8, depth: 8 })
  try {
    await writeAll(set, 1000)
    // damage: drop keys on one replica each, and a newer write that reached only one replica
    for (let i = 0; i < 1000; i += 37) await dropKey(set.replicasOf(key(i))[i % 3]!.store, key(i))
    for (let i = 5; i < 1000; i += 53) await set.replicasOf(key(i))[0]!.store.apply(key(i), value('newer', { w: 2 }, T0 + 1))
    for (const r of set.replicas) {
      const s = await r.repairer.repair()
      assert.ok(s.clean)
    }
    await assertReplicasAgree(set, 1000)
    for (let i = 5; i < 1000; i += 53) for (const r of set.replicasOf(key(i))) assert.is((await r.store.get(key(i)))!.value.toString(), 'newer')
    // repair never spreads a key to a node that does not replicate it
    for (const r of set.replicas) {
      for (const k of (await contents(r.store)).keys()) assert.ok(set.replicasOf(Buffer.from(k)).includes(r), `${r.hostId} holds ${k}`)
    }
  } finally {
    await set.close()
  }
})

test('a replica that is down makes the run unclean; the others still repair', async () => {
  const set = await ReplicaSet.start({ nodes: 3, rf: 3 })
  try {
    await writeAll(set, 100)
    const [a, b, c] = set.replicas
    await dropKey(b!.store, key(3))
    set.setUp(c!.hostId, false)
    const s = await a!.repairer.repair()
    assert.equal([s.clean, s.failed > 0], [false, true])
    assert.ok(await b!.store.getRaw(key(3)))
    // a second call while one runs joins it
    const [x, y] = await Promise.all([a!.repairer.repair(), a!.repairer.repair()])
    assert.is(x, y)
  } finally {
    await set.close()
  }
})

test('a run during which the ring changed is not clean (its plan may have missed a replica)', async () => {
  const set = await ReplicaSet.start({ nodes: 4, rf: 2 })
  try {
    const [a, , , d] = set.replicas
    a!.onProgress = (p) => {
      if (p.rangesDone === 0) set.setTokens(d!.hostId, [1n, 2n, 3n, 4n])
    }
    const s = await a!.repairer.repair()
    assert.equal([s.failed, s.clean], [0, false])
    a!.onProgress = undefined
    assert.ok((await a!.repairer.repair()).clean)
  } finally {
    await set.close()
  }
})

test('tombstones: a missed delete is repaired, never purged before the grace, nor while a replica may miss it', async () => {
  const GRACE = 60_000
  const set = await ReplicaSet.start({ nodes: 3, rf: 3, graceMs: GRACE })
  try {
    const [a, b, c] = set.replicas
    const k = Buffer.from('deleted-key')
    const live = value('old', { w: 1 }, T0)
    const del = tombstone({ w: 2 }, T0 + 1000)
    for (const r of set.replicas) await r.store.apply(k, live)
    // one clean repair before the delete, so purging is allowed at all
    set.setClock(T0 + 500)
    assert.ok((await a!.repairer.repair()).clean)

    // b is down and misses the delete
    set.setUp(b!.hostId, false)
    await a!.store.apply(k, del)
    await c!.store.apply(k, del)
    set.setClock(T0 + 1000 + 10 * GRACE)
    let s = await a!.repairer.repair()
    // older than the grace, but the last clean repair started before the delete: kept
    assert.equal([s.clean, s.purged], [false, 0])
    assert.ok((await a!.store.get(k))?.tombstone)

    // b is back: repair sends it the tombstone (the delete is not undone), then purges on a
    set.setUp(b!.hostId, true)
    s = await a!.repairer.repair()
    assert.ok(s.clean)
    assert.ok((await b!.store.get(k))?.tombstone, 'b got the tombstone')
    assert.is(s.purged, 1)
    assert.is(await a!.store.get(k), undefined)
    // b and c had no clean run yet, so they still compare the tombstone and may hand it back
    // to a: safe churn that ends once every replica has had a clean run. "old" never returns.
    for (let round = 0; round < 2; round++) {
      for (const r of set.replicas) {
        await r.repairer.repair()
        for (const x of set.replicas) {
          const rec = await x.store.get(k)
          assert.ok(!rec || rec.tombstone, `${x.hostId} holds a live "${rec?.value}"`)
        }
      }
    }
    for (const r of set.replicas) assert.is(await r.store.get(k), undefined)
    s = await a!.repairer.repair()
    assert.equal([s.recordsPulled, s.recordsPushed, s.purged], [0, 0, 0])
  } finally {
    await set.close()
  }
})

test('tombstones younger than the grace are kept through clean repairs', async () => {
  const GRACE = 60_000
  const set = await ReplicaSet.start({ nodes: 3, rf: 3, graceMs: GRACE })
  try {
    const k = Buffer.from('fresh-delete')
    const del = tombstone({ w: 2 }, T0)
    await set.replicas[0]!.store.apply(k, del)
    for (const at of [T0 + 1, T0 + GRACE / 2, T0 + GRACE - 1]) {
      set.setClock(at)
      for (const r of set.replicas) assert.is((await r.repairer.repair()).purged, 0)
    }
    for (const r of set.replicas) assert.ok((await r.store.get(k))?.tombstone)
    set.setClock(T0 + GRACE + 1)
    for (const r of set.replicas) assert.is((await r.repairer.repair()).purged, 1)
  } finally {
    await set.close()
  }
})

test.run()
