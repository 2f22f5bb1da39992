/**
 * Membership changes under faults, with real processes and RocksDB. Streams are throttled
 * (RINGKV_STREAM_MAX_MBPS) so that a bootstrap lasts long enough to interrupt:
 *   - every admin call in every state: 202 where it applies (idempotent), 409 where it cannot;
 *   - a second join while one is in progress is refused until the first is AVAILABLE;
 *   - a joining node killed mid-bootstrap restarts it with the same tokens and is AVAILABLE
 *     only with all of its data;
 *   - the streaming source dies mid-stream: the range comes from another replica;
 *   - a decommission starts while a peer is dead but not yet convicted, and a new owner is down:
 *     it waits instead of hanging or losing data; a LEFT node restarted stays LEFT.
 */
import { readFileSync } from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { AdminStatus } from '../../../node/client/admin-client.js'
import { pendingRanges } from '../../../node/ring/pending.js'
import { Ring } from '../../../node/ring/ring.js'
import { TestCluster, waitFor, type TestNode } from '../../helpers/cluster.js'
import { inRanges, load, missing, pool, rejects, ringOf, sleep, StateTrace, storedKeys, valueFor } from './helpers.js'

const RF = 3
const KEYS = 3000
const VALUE_BYTES = 2000

let cluster: TestCluster
const data = new Map<string, string>()

test.before(async () => {
  // Few tokens: few, large ranges, so a kill lands inside one.
  process.env.RINGKV_STREAM_MAX_MBPS = '0.6'
  cluster = await TestCluster.start({ nodes: 3, rf: RF, args: ['--num-tokens', '4'] })
  await load(cluster.nodes[0]!, 'k', KEYS, VALUE_BYTES)
  for (let i = 0; i < KEYS; i++) data.set(`k${i}`, valueFor(`k${i}`, VALUE_BYTES))
})

test.after(async () => {
  await cluster?.destroy()
})

const admin = (n: TestNode) => cluster.admin(n)
const node = (name: string) => cluster.nodes.find((n) => n.spec.name === name)!
const statuses = () => Promise.all(cluster.nodes.filter((n) => n.running).map((n) => admin(n).status()))

/** Stops `n`, checks its RocksDB holds every loaded key of the ranges it replicates, restarts it. */
async function assertHoldsItsRanges(n: TestNode, hostId: string): Promise<void> {
  const ring = ringOf((await statuses()).filter((s) => s.state === 'AVAILABLE' || s.state === 'LEAVING'))
  const mine = ring.rangesOf(hostId, RF)
  await n.stop()
  const keys = await storedKeys(n)
  n.start()
  const expected = [...data.keys()].filter((k) => inRanges(k, mine))
  const absent = expected.filter((k) => !keys.has(k))
  assert.ok(expected.length > KEYS * 0.3, `${n.spec.name} replicates a fair share (${expected.length})`)
  assert.is(absent.length, 0, `${n.spec.name} lacks ${absent.length} of ${expected.length} keys of its ranges, e.g. ${absent.slice(0, 3)}`)
  await n.ready()
}

test('admin calls in JOINING and AVAILABLE: idempotent where they apply, 409 where not', async () => {
  const n1 = node('n1')
  const n4 = await cluster.add(['--auto-join', 'false'])
  await cluster.add(['--auto-join', 'false']) // n5, joined later
  await waitFor('n4 answers', () => admin(n4).status())
  await sleep(3500)
  for (const op of ['decommission', 'cleanup', 'repair'] as const) {
    const msg = await rejects(admin(n4)[op](), 409, 'BAD_STATE')
    assert.match(msg, /JOINING/)
  }
  // AVAILABLE: join is a no-op; leaving would drop below RF; cleanup and repair run.
  assert.is((await admin(n1).join()).accepted, 'join')
  assert.is((await admin(n1).status()).state, 'AVAILABLE')
  const msg = await rejects(admin(n1).decommission(), 409, 'WOULD_LOSE_REPLICAS')
  assert.match(msg, /add a node first/)
  assert.is((await admin(n1).cleanup()).accepted, 'cleanup')
  assert.is((await admin(n1).repair()).accepted, 'repair')
})

let n4Tokens: string[] = []

test('during a bootstrap: repeat join is a no-op, a second join and other moves get 409', async () => {
  const [n1, n4, n5] = [node('n1'), node('n4'), node('n5')]
  await admin(n4).join()
  const s = await admin(n4).status()
  assert.is(s.state, 'BOOTSTRAPPING')
  n4Tokens = s.tokens
  assert.is(n4Tokens.length, 4)
  const again = await admin(n4).join()
  assert.equal((again.status as AdminStatus).tokens, n4Tokens, 'a repeated join keeps the tokens')
  const m = await rejects(admin(n5).join(), 409, 'BAD_STATE')
  assert.match(m, /n4 is BOOTSTRAPPING/)
  // Three AVAILABLE nodes: leaving would drop below RF whatever else goes on.
  await rejects(admin(n1).decommission(), 409, 'WOULD_LOSE_REPLICAS')
  await rejects(admin(n1).cleanup(), 409, 'BAD_STATE')
  await rejects(admin(n4).decommission(), 409, 'BAD_STATE')
  await rejects(admin(n4).cleanup(), 409, 'BAD_STATE')
  assert.is((await admin(n5).status()).state, 'JOINING')
})

test('a joining node killed mid-bootstrap restarts it with the same tokens; AVAILABLE only when complete', async () => {
  const n4 = node('n4')
  const n5 = node('n5')
  await waitFor('n4 streaming', async () => {
    const s = await admin(n4).status()
    return s.streaming.bytes > 0 && s.streaming.rangesDone < s.streaming.rangesTotal
  }, 30_000, 50)
  await n4.kill9()
  try {
    // Its BOOTSTRAPPING state lives on in gossip: still one change at a time.
    await rejects(admin(n5).join(), 409, 'BAD_STATE')
  } finally {
    n4.start()
  }
  const trace = new StateTrace(cluster, n4, 50)
  const first = await waitFor('n4 answers again', () => admin(n4).status())
  assert.is(first.state, 'BOOTSTRAPPING')
  assert.equal(first.tokens, n4Tokens, 'the restarted node announces the same tokens')
  await waitFor('n4 AVAILABLE', async () => (await admin(n4).status()).state === 'AVAILABLE', 90_000)
  await trace.stop()
  assert.equal(trace.states, ['BOOTSTRAPPING', 'AVAILABLE'])
  // Whenever it said AVAILABLE, every range had been streamed.
  for (const x of trace.samples) if (x.state === 'AVAILABLE') assert.is(x.streaming.rangesDone, x.streaming.rangesTotal)
  await assertHoldsItsRanges(n4, first.hostId!)
})

test('the streaming source dies mid-stream: the range is fetched from another replica', async () => {
  const n5 = node('n5')
  await waitFor('n5 may join', async () => {
    try {
      await admin(n5).join()
      return true
    } catch {
      return false
    }
  })
  const joining = await admin(n5).status()
  // Four AVAILABLE nodes could lose one, but not while n5 moves.
  assert.match(await rejects(admin(node('n2')).decommission(), 409, 'BAD_STATE'), /n5 is BOOTSTRAPPING/)
  const all = await statuses()
  const members = new Map(all.map((s) => [s.hostId!, { state: s.state, tokens: s.tokens.map(BigInt), address: '' }]))
  const gained = pendingRanges(Ring.current(members), Ring.future(members), RF).get(joining.hostId!)!.gained
  // Ranges of ~300 KB are one or two stream chunks: a kill would almost always fall between
  // chunks. The last range n5 streams is grown to many chunks (seconds at the throttle) while
  // the earlier ones stream, so the kill lands inside it.
  const last = gained.length - 1
  const big = gained[last]!
  const extra: string[] = []
  for (let i = 0; extra.length < 1200; i++) if (inRanges(`big${i}`, [big.range])) extra.push(`big${i}`)
  await pool(extra.length, 16, async (i) => {
    const v = valueFor(extra[i]!, VALUE_BYTES)
    await cluster.nodes[0]!.kv.put(extra[i]!, v, { consistency: 'quorum' })
    data.set(extra[i]!, v)
  })
  assert.ok((await admin(n5).status()).streaming.rangesDone < last, 'the extra keys were written before n5 reached their range')
  const src = all.find((x) => x.hostId === big.sources[0])!
  const victim = node(src.name)
  let entered: number | undefined
  await waitFor('n5 receiving the big range', async () => {
    const s = (await admin(n5).status()).streaming
    if (s.rangesDone !== last) return false
    entered ??= s.bytes
    return s.bytes > entered
  }, 60_000, 20)
  await victim.kill9()
  try {
    await waitFor('n5 AVAILABLE', async () => (await admin(n5).status()).state === 'AVAILABLE', 90_000)
    const log = readFileSync(n5.logFile, 'utf8')
    const failed = log.split('\n').filter((l) => l.includes('range stream failed; trying another replica')).map((l) => JSON.parse(l) as { receivedBytes: number; source: string })
    assert.ok(failed.some((f) => f.receivedBytes > 0 && f.source === victim.spec.name), `a stream from ${victim.spec.name} broke after data arrived: ${JSON.stringify(failed)}`)
  } finally {
    victim.start()
    await victim.ready()
  }
  await assertHoldsItsRanges(n5, joining.hostId!)
})

test('decommission while a peer is dead but not yet convicted waits for it, then completes', async () => {
  const [n1, n3, n4] = [node('n1'), node('n3'), node('n4')]
  await waitFor('everyone sees 5 up', async () => (await n1.kv.cluster()).nodes.filter((x) => x.up && x.state === 'AVAILABLE').length === 5)
  await n3.kill9()
  try {
    await admin(n4).decommission()
    // n3 may be a new owner of n4's ranges: nothing can finish while it is away.
    await sleep(4000)
    assert.is((await admin(n4).status()).state, 'LEAVING')
  } finally {
    n3.start()
  }
  await waitFor('n4 LEFT', async () => (await admin(n4).status()).state === 'LEFT', 120_000)
  const s = await admin(n4).status()
  assert.is(s.streaming.rangesDone, s.streaming.rangesTotal)
  await n3.ready()
})

test('a LEFT node restarted stays LEFT and refuses to serve or rejoin', async () => {
  const [n1, n4] = [node('n1'), node('n4')]
  await n4.stop()
  n4.start()
  await waitFor('n4 answers', () => admin(n4).status())
  assert.is((await admin(n4).status()).state, 'LEFT')
  assert.is((await fetch(`${n4.clientUrl}/readyz`)).status, 503)
  await rejects(admin(n4).join(), 409, 'BAD_STATE')
  await rejects(admin(n4).repair(), 409, 'BAD_STATE')
  assert.is((await admin(n4).decommission()).accepted, 'decommission')
  assert.is((await admin(n4).cleanup()).accepted, 'cleanup')
  await rejects(n4.kv.get('k1'), 503, 'UNAVAILABLE')
  const c = await n1.kv.cluster()
  assert.equal(c.nodes.filter((x) => x.state === 'AVAILABLE').map((x) => x.name).sort(), ['n1', 'n2', 'n3', 'n5'])
  assert.is((await missing(n1, data)).length, 0, 'every loaded key readable at QUORUM')
  await n4.stop()
})

test.run()
