/**
 * A real network partition between network namespaces (test/helpers/netlab.ts): one node of
 * three loses its peer network while clients still reach it. Packets are dropped, not refused,
 * so the coordinators meet what a partition really does — silent peers and timeouts:
 *   - before the failure detector convicts the lost node, ALL times out with the acks it got
 *     and QUORUM still succeeds;
 *   - the majority side keeps taking QUORUM reads and writes; the minority side refuses them
 *     (503, nothing written) and serves only ONE reads, stale;
 *   - after the heal, hints bring the lost node up to date and every acknowledged write is read
 *     back at QUORUM through every node; the refused write never appears.
 * Skipped with a printed reason where network namespaces cannot be created.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TestCluster, waitFor, type TestNode } from '../../helpers/cluster.js'
import { enterNetLab, heal, inNamespace, isolate } from '../../helpers/netlab.js'
import { apiError, SLOW } from './support.js'

const lab = await enterNetLab(3, import.meta.url)
const KEYS = 100

let cluster: TestCluster
const acked = new Map<string, string>()

/** Whether `observer` sees each named node with that liveness. */
async function sees(observer: TestNode, up: Record<string, boolean>): Promise<boolean> {
  const c = await observer.kv.cluster()
  return Object.entries(up).every(([name, u]) => c.nodes.find((x) => x.name === name)?.up === u)
}

async function putAll(via: TestNode, round: string): Promise<void> {
  await Promise.all([...Array(KEYS).keys()].map(async (i) => {
    const v = `${round}-${i}`
    await via.kv.put(`p${i}`, v, { consistency: 'quorum' })
    acked.set(`p${i}`, v)
  }))
}

if (lab) {
  test.before(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      rf: 3,
      wait: false,
      // A short request timeout, so that a write to the silent node times out well before the
      // failure detector convicts it.
      args: ['--request-timeout', '1500ms'],
      place: (i) => ({ clientHost: lab.nodes[i]!.clientIp, peerHost: lab.nodes[i]!.peerIp, wrap: inNamespace(lab.nodes[i]!.ns) }),
    })
    await Promise.all(cluster.nodes.map((n) => n.ready(SLOW.readyMs)))
    await cluster.converged(SLOW.convergeMs)
    await putAll(cluster.nodes[0]!, 'before')
  })

  test.after(async () => {
    await cluster?.destroy()
  })

  test('a silent replica: ALL times out with the acks it got, QUORUM succeeds', async () => {
    const [n1] = cluster.nodes
    isolate(lab, 2)
    const t0 = Date.now()
    const e = await apiError(n1!.kv.put('all-during-cut', 'x', { consistency: 'all' }), [504], 'ALL with a silent replica')
    assert.is(e.code, 'TIMEOUT')
    assert.is(e.body.acks, 2, `acks in ${JSON.stringify(e.body)}`)
    assert.ok(Date.now() - t0 < 5000, 'answered within the request timeout, not hanging')
    await n1!.kv.put('quorum-during-cut', 'y', { consistency: 'quorum' })
    acked.set('quorum-during-cut', 'y')
  })

  test('the majority keeps QUORUM; the cut-off node refuses it and writes nothing', async () => {
    const [n1, n2, n3] = cluster.nodes as [TestNode, TestNode, TestNode]
    await waitFor('the majority sees n3 down', async () => (await sees(n1, { n3: false })) && sees(n2, { n3: false }), 30_000)
    await waitFor('n3 sees both peers down', () => sees(n3, { n1: false, n2: false }), 30_000)
    await putAll(n2, 'during')
    for (const i of [0, 37, 99]) assert.is((await n1.kv.get(`p${i}`, { consistency: 'quorum' }))?.value.toString(), `during-${i}`)
    assert.ok((await cluster.admin(n1).status()).hintsPending + (await cluster.admin(n2).status()).hintsPending > 0, 'hints kept for n3')

    const w = await apiError(n3.kv.put('minority-write', 'lost', { consistency: 'quorum' }), [503], 'QUORUM write on the minority side')
    assert.is(w.code, 'UNAVAILABLE')
    assert.equal([w.body.required, w.body.alive], [2, 1])
    const r = await apiError(n3.kv.get('p1', { consistency: 'quorum' }), [503], 'QUORUM read on the minority side')
    assert.is(r.code, 'UNAVAILABLE')
    // ONE is allowed to answer, and can only answer with what n3 had before the cut.
    assert.is((await n3.kv.get('p1', { consistency: 'one' }))?.value.toString(), 'before-1')
  })

  test('after the heal: hints catch the node up, every acknowledged write is read back, the refused one never appears', async () => {
    const n3 = cluster.nodes[2]!
    heal(lab, 2)
    await cluster.converged(SLOW.convergeMs)
    // ONE on n3 reads its own replica only: it answers the new values once the hints arrived.
    await waitFor('hints replayed to n3', async () => {
      for (const i of [0, 50, 99]) if ((await n3.kv.get(`p${i}`, { consistency: 'one' }))?.value.toString() !== `during-${i}`) return false
      return true
    }, 30_000)
    for (const n of cluster.nodes) {
      for (const [k, v] of acked) assert.is((await n.kv.get(k, { consistency: 'quorum' }))?.value.toString(), v, `${k} through ${n.spec.name}`)
      assert.is(await n.kv.get('minority-write', { consistency: 'all' }), undefined, `the refused write is absent through ${n.spec.name}`)
    }
  })
} else {
  test.skip('partition tests between network namespaces', () => {})
}

test.run()
