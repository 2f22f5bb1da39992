/**
 * Hinted handoff between real processes: writes a replica missed while it was killed are
 * stored as hints on the coordinators (visible as hintsPending), replayed to it within
 * seconds of its return, and deleted once delivered.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type TestCluster, waitFor, type TestNode } from '../../helpers/cluster.js'
import { metric, ReplicaProbe, SLOW, describe, startCluster } from './support.js'

let cluster: TestCluster
let probe: ReplicaProbe
let victim: TestNode
let alive: TestNode[]
const KEYS = Array.from({ length: 30 }, (_, i) => `hinted-${i}`)

test.before(async () => {
  cluster = await startCluster({ nodes: 3, rf: 3 })
  probe = new ReplicaProbe(cluster.token)
  victim = cluster.nodes[1]!
  alive = [cluster.nodes[0]!, cluster.nodes[2]!]
})

test.after(async () => {
  probe?.close()
  await cluster?.destroy()
})

async function hintsPending(n: TestNode): Promise<number> {
  return (await cluster.admin(n).status()).hintsPending
}

test('writes made while a replica is dead become hints on their coordinators', async () => {
  for (const n of cluster.nodes) assert.is(await hintsPending(n), 0, `${n.spec.name} starts without hints`)
  await victim.kill9()
  // Both coordinators take writes; the first ones race the failure detector (sent, refused,
  // hinted), the later ones are hinted without being sent.
  for (let i = 0; i < KEYS.length; i++) {
    await alive[i % 2]!.kv.put(KEYS[i]!, `missed ${i}`)
    if (i === 9) await new Promise((r) => setTimeout(r, 3000))
  }
  // A coordinator answers once a quorum acked; a refused send becomes a hint just after, so the
  // last writes' hints may still be on their way.
  let pending: number[] = []
  await waitFor('a hint per write on each coordinator', async () => {
    pending = await Promise.all(alive.map(hintsPending))
    return pending.every((p) => p >= KEYS.length / 2)
  }, 10_000, 100).catch(() => undefined) // the assertion below reports the counts
  console.log(`    hintsPending while down: ${alive.map((n, i) => `${n.spec.name}=${pending[i]}`).join(' ')}`)
  for (let i = 0; i < 2; i++) assert.ok(pending[i]! >= KEYS.length / 2, `${alive[i]!.spec.name} holds a hint per write it coordinated (${pending[i]})`)
  // Hints stay while the replica is down: nothing to deliver them to.
  await new Promise((r) => setTimeout(r, 2000))
  assert.equal(await Promise.all(alive.map(hintsPending)), pending)
  const gauge = await metric(alive[0]!, 'ringkv_hints_pending')
  assert.is(gauge, pending[0])
})

test('the returning replica receives every missed write within seconds, and the hints are gone', async () => {
  victim.start()
  await victim.ready(SLOW.readyMs)
  const back = Date.now()
  await waitFor('every missed write on the restarted replica', async () => {
    for (const k of KEYS) if (!(await probe.read(victim, k))) return false
    return true
  }, 15_000, 200)
  const deliveredMs = Date.now() - back
  console.log(`    all ${KEYS.length} hinted writes on the replica ${deliveredMs} ms after it was ready`)
  for (let i = 0; i < KEYS.length; i++) {
    const [mine, theirs] = [await probe.read(victim, KEYS[i]!), await probe.read(alive[0]!, KEYS[i]!)]
    assert.is(mine?.value.toString(), `missed ${i}`, `${KEYS[i]}: ${describe(mine)}`)
    assert.equal(mine?.vv, theirs?.vv)
  }
  await waitFor('hintsPending 0 on every coordinator', async () => (await Promise.all(alive.map(hintsPending))).every((n) => n === 0), 10_000, 200)
  let replayed = 0
  for (const n of alive) replayed += await metric(n, 'ringkv_hints_replayed')
  assert.ok(replayed >= KEYS.length, `ringkv_hints_replayed ${replayed} counts every delivered hint`)
})

test.run()
