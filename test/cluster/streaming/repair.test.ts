/**
 * Anti-entropy repair between real node processes: a replica whose data was deleted behind its
 * back (its RocksDB edited while it was stopped; its identity kept) gets every key back from
 * POST /admin/repair, streaming only what differs; and a replica that missed a delete gets the
 * tombstone — the delete is not undone, and the young tombstone is not purged anywhere.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Store } from '../../../node/storage/store.js'
import { encodeRecord } from '../../../node/storage/codec.js'
import { tokenOf } from '../../../node/ring/token.js'
import { type TestCluster, waitFor, type TestNode } from '../../helpers/cluster.js'
import { ReplicaProbe, SLOW, describe, metric, startCluster } from '../replication/support.js'

const KEYS = Array.from({ length: 300 }, (_, i) => `repair-${i}`)
const VALUE = (i: number) => `value ${i} `.padEnd(1000, '.')

let cluster: TestCluster
let probe: ReplicaProbe
let victim: TestNode

test.before(async () => {
  cluster = await startCluster({ nodes: 3, rf: 3 })
  probe = new ReplicaProbe(cluster.token)
  victim = cluster.nodes[2]!
  // ALL: every replica holds every key before anything is damaged (no hints involved)
  for (let i = 0; i < KEYS.length; i += 20) await Promise.all(KEYS.slice(i, i + 20).map((k, j) => cluster.nodes[0]!.kv.put(k, VALUE(i + j), { consistency: 'all' })))
})

test.after(async () => {
  probe?.close()
  await cluster?.destroy()
})

/** Stops `n`, edits its data dir with the Store class (identity kept), starts it again. */
async function behindItsBack(n: TestNode, edit: (s: Store) => Promise<void>): Promise<void> {
  await n.stop()
  const s = await Store.open(n.spec.dataDir, { durable: true })
  try {
    await edit(s)
  } finally {
    await s.close()
  }
  n.start()
  await n.ready(SLOW.readyMs)
  await cluster.converged(SLOW.convergeMs)
}

async function dropKey(s: Store, key: string): Promise<void> {
  const t = tokenOf(Buffer.from(key))
  await s.dropRange(t === 0n ? (1n << 64n) - 1n : t - 1n, t)
}

/** POST /admin/repair on `n` and wait for its operation to finish; returns bytes it received. */
async function repair(n: TestNode): Promise<number> {
  const before = await metric(n, 'ringkv_streamed_bytes')
  await cluster.admin(n).repair()
  const op = await waitFor(`repair on ${n.spec.name} to finish`, async () => {
    const o = (await cluster.admin(n).status()).operation
    return o?.type === 'repair' && o.phase !== 'running' ? o : undefined
  }, 60_000, 200)
  assert.is(op.phase, 'done', `repair ${op.phase}: ${op.error ?? ''}`)
  return (await metric(n, 'ringkv_streamed_bytes')) - before
}

test('one key lost behind a replica\'s back: repair brings it back, streaming little more than it', async () => {
  const key = KEYS[123]!
  await behindItsBack(victim, (s) => dropKey(s, key))
  assert.is(await probe.read(victim, key), undefined, 'the key is gone from the victim')
  const bytes = await repair(victim)
  const rec = await probe.read(victim, key)
  assert.is(rec?.value.toString(), VALUE(123), describe(rec))
  const total = KEYS.length * VALUE(0).length
  console.log(`    restored 1 of ${KEYS.length} keys with ${bytes} bytes streamed in (data: ${total} bytes)`)
  assert.ok(bytes > 0 && bytes < total / 20, `${bytes} bytes streamed to restore one key of ${total}`)
})

test('all data lost behind its back (identity kept): repair restores every key', async () => {
  await behindItsBack(victim, (s) => s.dropRange(0n, 0n))
  assert.is(await probe.read(victim, KEYS[0]!), undefined)
  const bytes = await repair(victim)
  console.log(`    restored all ${KEYS.length} keys with ${bytes} bytes streamed in`)
  for (let i = 0; i < KEYS.length; i++) {
    const [mine, theirs] = [await probe.read(victim, KEYS[i]!), await probe.read(cluster.nodes[0]!, KEYS[i]!)]
    assert.is(mine?.value.toString(), VALUE(i), `${KEYS[i]}: ${describe(mine)}`)
    assert.ok(encodeRecord(mine!).equals(encodeRecord(theirs!)), `${KEYS[i]} differs from n1's copy`)
  }
})

test('a delete the replica missed is repaired, not undone; the young tombstone is kept everywhere', async () => {
  const key = KEYS[7]!
  const live = await probe.read(victim, key)
  assert.ok(live && !live.tombstone)
  await cluster.nodes[0]!.kv.del(key, { consistency: 'all' })
  // the victim "missed" the delete: its tombstone is replaced by the old live version
  await behindItsBack(victim, async (s) => {
    assert.ok((await s.get(Buffer.from(key)))?.tombstone)
    await dropKey(s, key)
    await s.apply(Buffer.from(key), live)
  })
  assert.not.ok((await probe.read(victim, key))?.tombstone, 'the victim holds the old value')
  await repair(victim)
  // and the others repair too: a clean run on every node, each followed by its purge step
  for (const n of cluster.nodes.slice(0, 2)) await repair(n)
  for (const n of cluster.nodes) {
    const rec = await probe.read(n, key)
    assert.ok(rec?.tombstone, `${n.spec.name}: ${describe(rec)}`)
  }
  assert.is(await cluster.nodes[1]!.kv.get(key, { consistency: 'all' }), undefined)
})

test.run()
