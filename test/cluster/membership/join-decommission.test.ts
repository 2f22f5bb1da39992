/**
 * 3 → 4 → 3 nodes with real processes and RocksDB, continuous QUORUM writes throughout:
 * a node started with --auto-join=false waits in JOINING owning nothing, `ringkv admin join`
 * bootstraps it (progress bar), ownership is balanced after, the bytes it streamed are its
 * share of the data, cleanup drops only ranges a node no longer replicates, `ringkv admin
 * decommission` takes a node to LEFT, and every acknowledged write is readable at QUORUM.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TestCluster, waitFor, type TestNode } from '../../helpers/cluster.js'
import { hintsGone } from '../replication/support.js'
import { adminCli, inRanges, load, missing, rejects, ringOf, StateTrace, storedKeys, valueFor, Writer } from './helpers.js'

const RF = 3
const INITIAL_KEYS = 3000
const VALUE_BYTES = 1000

let cluster: TestCluster
let initial: Map<string, string>
let writer: Writer
/** Coordinators the writer may use: a client (or a Service) only talks to ready nodes. */
const serving = new Set<TestNode>()

test.before(async () => {
  cluster = await TestCluster.start({ nodes: 3, rf: RF })
})

test.after(async () => {
  await writer?.stop()
  await cluster?.destroy()
})

const original = () => cluster.nodes.slice(0, 3)

test('3 nodes: load data, then keep writing at QUORUM', async () => {
  const [n1] = cluster.nodes
  await load(n1!, 'init-', INITIAL_KEYS, VALUE_BYTES)
  initial = new Map(Array.from({ length: INITIAL_KEYS }, (_, i) => [`init-${i}`, valueFor(`init-${i}`, VALUE_BYTES)]))
  for (const n of cluster.nodes) serving.add(n)
  writer = new Writer(() => [...serving], { prefix: 'live-', concurrency: 4, valueBytes: 200, maxMs: 240_000, pauseMs: 5 }).start()
  await waitFor('writes flowing', () => writer.acked.size > 50)
})

test('--auto-join=false: the new node gossips JOINING, owns nothing, is not ready', async () => {
  const n4 = await cluster.add(['--auto-join', 'false'])
  await waitFor('n4 seen JOINING by n1', async () => {
    const c = await cluster.nodes[0]!.kv.cluster()
    return c.nodes.find((n) => n.name === 'n4' && n.state === 'JOINING' && n.up)
  })
  // Several gossip rounds later it is still waiting, with no tokens and no ownership.
  await new Promise((r) => setTimeout(r, 4000))
  const s = await cluster.admin(n4).status()
  assert.is(s.state, 'JOINING')
  assert.equal(s.tokens, [])
  const c = await cluster.nodes[0]!.kv.cluster()
  assert.is(c.nodes.find((n) => n.name === 'n4')!.ownership, 0)
  assert.is((await fetch(`${n4.clientUrl}/readyz`)).status, 503)
  // JOINING can neither leave nor clean up.
  await rejects(cluster.admin(n4).decommission(), 409, 'BAD_STATE')
  await rejects(cluster.admin(n4).cleanup(), 409, 'BAD_STATE')
})

let joinStatus: Awaited<ReturnType<ReturnType<TestCluster['admin']>['status']>>
/** writes acknowledged by the time the new node said AVAILABLE */
let ackedAtJoin: Map<string, string>
/** when ackedAtJoin was taken */
let joinedAt: number
/** the nodes' --request-timeout (the default): how long a coordinator's send to a replica can take to fail */
const REQUEST_TIMEOUT_MS = 5_000

test('admin join: BOOTSTRAPPING → AVAILABLE under writes, progress bar until done', async () => {
  const n4 = cluster.nodes[3]!
  const trace = new StateTrace(cluster, n4)
  const writesBefore = writer.acked.size
  const cli = await adminCli(cluster, 'join', n4)
  ackedAtJoin = new Map(writer.acked)
  joinedAt = Date.now()
  await trace.stop()
  assert.ok(ackedAtJoin.size - writesBefore > 50, `writes went on during the join (${ackedAtJoin.size - writesBefore})`)
  assert.is(cli.code, 0, cli.out)
  assert.match(cli.out, /join finished: node n4 is AVAILABLE/)
  assert.match(cli.out, /ranges/)
  assert.equal(trace.states.filter((s) => s !== 'JOINING'), ['BOOTSTRAPPING', 'AVAILABLE'], `states seen: ${trace.states}`)
  joinStatus = await cluster.admin(n4).status()
  const { rangesTotal, rangesDone, bytes } = joinStatus.streaming
  assert.ok(rangesTotal > 0 && rangesDone === rangesTotal, `ranges ${rangesDone}/${rangesTotal}`)
  // Progress never went backwards while it streamed.
  const done = trace.samples.filter((x) => x.state === 'BOOTSTRAPPING').map((x) => x.streaming.rangesDone)
  assert.ok(done.every((d, i) => i === 0 || d >= done[i - 1]!), 'rangesDone is monotonic')
  assert.ok(bytes > 0)
  await waitFor('every node sees n4 AVAILABLE', async () => {
    for (const n of cluster.nodes) {
      const c = await n.kv.cluster()
      if (c.nodes.find((x) => x.name === 'n4')?.state !== 'AVAILABLE') return false
    }
    return true
  })
  serving.add(n4)
})

test('trap 1: the new node itself holds every write acknowledged before it was AVAILABLE, in its ranges', async () => {
  // Reads cannot show this: a QUORUM read finds the write on the old replicas and repairs the
  // new one. So look into its RocksDB, before any verification read could repair it. A send to
  // n4 that failed became a hint on its coordinator: once every send of a write acknowledged
  // before the join has had its request timeout to fail, wait for the hints to be delivered.
  const n4 = cluster.nodes[3]!
  await new Promise((r) => setTimeout(r, Math.max(0, joinedAt + REQUEST_TIMEOUT_MS - Date.now())))
  await hintsGone(cluster, 15_000, cluster.nodes.filter((n) => n !== n4))
  const statuses = await Promise.all(cluster.nodes.map((n) => cluster.admin(n).status()))
  const mine = ringOf(statuses).rangesOf(joinStatus.hostId!, RF)
  serving.delete(n4)
  await n4.stop()
  const keys = await storedKeys(n4)
  n4.start()
  const expected = [...initial.keys(), ...ackedAtJoin.keys()].filter((k) => inRanges(k, mine))
  const absent = expected.filter((k) => !keys.has(k))
  const live = expected.filter((k) => k.startsWith('live-')).length
  console.log(`n4 holds ${expected.length - absent.length}/${expected.length} keys of its ranges (${live} written by the live writer)`)
  assert.is(absent.length, 0, `n4 lacks ${absent.length} acknowledged writes of its ranges, e.g. ${absent.slice(0, 5)} … ${absent.slice(-5)}`)
  await n4.ready()
  await new Promise((r) => setTimeout(r, 3000))
  serving.add(n4)
})

test('after the join: ownership within the balance goal; streamed bytes ≈ the new node’s share', async () => {
  const c = await cluster.nodes[0]!.kv.cluster()
  const owners = c.nodes.filter((n) => n.state === 'AVAILABLE').map((n) => n.ownership)
  assert.is(owners.length, 4)
  const mean = owners.reduce((a, b) => a + b, 0) / owners.length
  const ratio = Math.max(...owners) / mean
  console.log(`ownership after join: ${owners.map((o) => o.toFixed(4)).join(' ')}; max/mean ${ratio.toFixed(4)}`)
  assert.ok(ratio <= 1.1, `max/mean ownership ${ratio}`)
  // n4 replicates ownership × RF of the ring, so that share of the distinct data must have
  // come over (plus encoding overhead); the initial keys dominate what existed at the snapshot.
  const n4Share = c.nodes.find((n) => n.name === 'n4')!.ownership * RF
  const distinct = INITIAL_KEYS * (VALUE_BYTES + 10) + ackedAtJoin.size * 210
  const streamed = joinStatus.streaming.bytes
  const perNode = streamed / (distinct * RF)
  console.log(`join streamed ${streamed} B = ${(perNode * 100).toFixed(1)}% of ~${distinct * RF} B replicated data (1/N = 25%); expected share ${(n4Share / RF * 100).toFixed(1)}%`)
  assert.ok(perNode > 0.2 && perNode < 0.33, `streamed ${(perNode * 100).toFixed(1)}% of the replicated data`)
})

test('cleanup drops exactly the ranges the node no longer replicates', async () => {
  const n1 = cluster.nodes[0]!
  const res = await cluster.admin(n1).cleanup()
  assert.is(res.accepted, 'cleanup')
  const statuses = await Promise.all(cluster.nodes.map((n) => cluster.admin(n).status()))
  const mine = ringOf(statuses).rangesOf(statuses[0]!.hostId!, RF)
  // Look into n1's RocksDB: stop it (writes continue at QUORUM on the other three replicas).
  serving.delete(n1)
  await n1.stop()
  const keys = await storedKeys(n1)
  n1.start()
  const foreign = [...keys.keys()].filter((k) => !inRanges(k, mine))
  assert.is(foreign.length, 0, `n1 still holds ${foreign.length} keys outside its ranges, e.g. ${foreign.slice(0, 3)}`)
  const expectedInit = [...initial.keys()].filter((k) => inRanges(k, mine))
  assert.ok(expectedInit.length < INITIAL_KEYS * 0.9, 'n1 gave up about a quarter of the ring')
  const lost = expectedInit.filter((k) => !keys.has(k))
  assert.is(lost.length, 0, `cleanup dropped ${lost.length} keys n1 still replicates`)
  await n1.ready()
  // Ready means AVAILABLE, which a restarted node is at once; give gossip a few rounds to
  // bring its ring back before clients use it (see the report: readiness before the view).
  await new Promise((r) => setTimeout(r, 3000))
  serving.add(n1)
})

test('admin decommission: LEAVING → LEFT under writes; the LEFT node stops serving data', async () => {
  const n2 = cluster.nodes[1]!
  serving.delete(n2)
  const trace = new StateTrace(cluster, n2)
  const cli = await adminCli(cluster, 'decommission', n2)
  await trace.stop()
  assert.is(cli.code, 0, cli.out)
  assert.match(cli.out, /decommission finished: node n2 is LEFT/)
  assert.equal(trace.states, ['AVAILABLE', 'LEAVING', 'LEFT'].slice(trace.states[0] === 'AVAILABLE' ? 0 : 1), `states seen: ${trace.states}`)
  const s = await cluster.admin(n2).status()
  assert.ok(s.streaming.rangesTotal > 0 && s.streaming.rangesDone === s.streaming.rangesTotal, JSON.stringify(s.streaming))
  assert.ok(s.streaming.bytes > 0)
  assert.is(s.hintsPending, 0, 'hints handed off')
  // By the time n2 says LEFT, every live node already knows it.
  for (const n of cluster.nodes.filter((x) => x !== n2)) {
    const c = await n.kv.cluster()
    assert.is(c.nodes.find((x) => x.name === 'n2')!.state, 'LEFT', `${n.spec.name} sees n2 LEFT`)
  }
  await rejects(n2.kv.put('after-left', 'x'), 503, 'UNAVAILABLE')
  await rejects(n2.kv.get('init-1'), 503, 'UNAVAILABLE')
  assert.is((await fetch(`${n2.clientUrl}/readyz`)).status, 503)
  // Idempotent; and a LEFT node cannot rejoin with its old data.
  assert.is((await cluster.admin(n2).decommission()).accepted, 'decommission')
  await rejects(cluster.admin(n2).join(), 409, 'BAD_STATE')
})

test('the LEFT node is stopped; 3 nodes remain and refuse to go below RF', async () => {
  const n2 = cluster.nodes[1]!
  await n2.stop()
  const rest = cluster.nodes.filter((n) => n !== n2)
  await new Promise((r) => setTimeout(r, 3000))
  for (const n of rest) {
    const c = await n.kv.cluster()
    const ring = c.nodes.filter((x) => x.state === 'AVAILABLE')
    assert.equal(ring.map((x) => x.name).sort(), ['n1', 'n3', 'n4'])
    assert.is(c.nodes.find((x) => x.name === 'n2')?.state ?? 'LEFT', 'LEFT')
  }
  await rejects(cluster.admin(rest[0]!).decommission(), 409, 'WOULD_LOSE_REPLICAS')
})

test('every acknowledged write is readable at QUORUM', async () => {
  await writer.stop()
  console.log(`writer: ${writer.acked.size} acknowledged, ${writer.failures} failed ${JSON.stringify(Object.fromEntries(writer.errors))}`)
  for (const f of writer.firstFailures) console.log(`  ${f}`)
  assert.ok(writer.acked.size > 500, 'the writer kept writing')
  // Every node stayed up: a refusal (UNAVAILABLE) is a bug in routing around a moving node;
  // only a rare TIMEOUT on a loaded machine is tolerated (below).
  assert.is(writer.errors.get('UNAVAILABLE') ?? 0, 0, 'no write refused while nodes joined and left')
  const n1 = cluster.nodes[0]!
  const all = new Map([...initial, ...writer.acked])
  const bad = await missing(n1, all)
  assert.is(bad.length, 0, `${bad.length} acknowledged writes not readable, e.g. ${bad.slice(0, 5)}`)
  const n4 = cluster.nodes[3]!
  assert.is((await missing(n4, writer.acked)).length, 0, 'through the new node as well')
  // Failures must be rare: the membership changes never block writes.
  assert.ok(writer.failures <= writer.acked.size * 0.01, `${writer.failures} failed writes`)
})

test.run()
