/**
 * A node that lost its disk comes back under its old name (design §4.1): with real processes
 * and RocksDB, n3 is killed, its data dir wiped, and it is started again on the same name and
 * ports. It must not claim its old tokens as if it had their data: it has a new host id,
 * bootstraps into the dead member's tokens (BOOTSTRAPPING, streaming from the other replicas),
 * and only then is AVAILABLE; the old identity is LEFT on every node and its hints are dropped.
 * A node that takes the name of a live member is refused.
 */
import { rmSync } from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ApiError } from '../../../node/client/http.js'
import { TestCluster, waitFor, type TestNode } from '../../helpers/cluster.js'
import { load, missing, rejects, StateTrace, storedKeys, valueFor } from './helpers.js'

const KEYS = 400
const VALUE_BYTES = 500

let cluster: TestCluster
const data = new Map<string, string>()
const admin = (n: TestNode) => cluster.admin(n)

test.before(async () => {
  cluster = await TestCluster.start({ nodes: 3, rf: 3 })
  await cluster.converged()
  await load(cluster.nodes[0]!, 'k', KEYS, VALUE_BYTES)
  for (let i = 0; i < KEYS; i++) data.set(`k${i}`, valueFor(`k${i}`, VALUE_BYTES))
})

test.after(async () => {
  await cluster?.destroy()
})

test('a node restarted with an empty data dir replaces its old identity by bootstrapping into its tokens', async () => {
  const [n1, n2, n3] = cluster.nodes as [TestNode, TestNode, TestNode]
  const before = await admin(n3).status()
  await n3.kill9()
  await waitFor('n1 sees n3 down', async () => (await n1.kv.cluster()).nodes.find((x) => x.name === 'n3')?.up === false, 30_000)
  // Writes the old n3 never sees: hints for it pile up on n1 and n2.
  await load(n2, 'w', 100, VALUE_BYTES)
  for (let i = 0; i < 100; i++) data.set(`w${i}`, valueFor(`w${i}`, VALUE_BYTES))
  assert.ok((await admin(n1).status()).hintsPending + (await admin(n2).status()).hintsPending > 0, 'hints kept for the dead n3')

  rmSync(n3.spec.dataDir, { recursive: true, force: true })
  n3.start()
  const trace = new StateTrace(cluster, n3, 50)
  await n3.ready(90_000)
  await trace.stop()
  const after = await admin(n3).status()
  assert.is.not(after.hostId, before.hostId, 'a wiped data dir is a new identity')
  assert.is(after.replaces, before.hostId)
  assert.equal(after.tokens, before.tokens, 'it stands where the old member stood')
  assert.ok(trace.states.includes('BOOTSTRAPPING'), `it bootstrapped (states ${trace.states.join(' → ')})`)
  assert.is(trace.states[trace.states.length - 1], 'AVAILABLE')
  assert.ok(after.streaming.rangesTotal > 0 && after.streaming.rangesDone === after.streaming.rangesTotal, 'it streamed every range')

  // Everyone sees the old identity LEFT and the new one AVAILABLE; the dead one's hints go.
  await waitFor('the old identity LEFT everywhere', async () => {
    for (const n of cluster.nodes) {
      const c = await n.kv.cluster()
      const old = c.nodes.find((x) => x.hostId === before.hostId)
      if (old && old.state !== 'LEFT') return false
      if (c.nodes.filter((x) => x.state === 'AVAILABLE' && x.up).length !== 3) return false
    }
    return true
  }, 30_000)
  await waitFor('hints for the old identity dropped', async () => (await admin(n1).status()).hintsPending + (await admin(n2).status()).hintsPending === 0, 30_000)

  // Its RocksDB holds every key (RF 3 of 3 nodes), including those written while it was dead.
  await n3.stop()
  const keys = await storedKeys(n3)
  const absent = [...data.keys()].filter((k) => !keys.has(k))
  assert.is(absent.length, 0, `the replacement lacks ${absent.length} keys, e.g. ${absent.slice(0, 3)}`)
  n3.start()
  await n3.ready()
  await cluster.converged()
  assert.is((await missing(n3, data)).length, 0, 'every acknowledged write readable at QUORUM')
})

test('a node that takes the name of a live member is refused', async () => {
  const impostor = await cluster.add(['--auto-join', 'false', '--name', 'n1'])
  try {
    await waitFor('the impostor answers', () => admin(impostor).status())
    await waitFor('the impostor has heard of the cluster', async () => (await impostor.kv.cluster()).nodes.length >= 4, 30_000)
    // Refused for the name, once it is past its first gossip rounds (earlier 409s say so).
    const e = await waitFor('join answered', async () => {
      try {
        await admin(impostor).join()
        return 'accepted'
      } catch (err) {
        return /discovering|converging/.test((err as Error).message) ? undefined : err
      }
    }, 30_000, 500)
    assert.instance(e, ApiError, `join was ${String(e)}`)
    const msg = await rejects(Promise.reject(e), 409, 'BAD_STATE')
    assert.match(msg, /another node named n1 is up/)
    assert.is((await admin(impostor).status()).state, 'JOINING')
  } finally {
    await impostor.stop()
  }
})

test.run()
