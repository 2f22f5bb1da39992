/**
 * Membership changes: streaming throughput and foreground throughput during a join.
 *
 * Real node processes on 127.0.0.1 (RF 3, RocksDB in a temp dir): load 3 nodes, run a
 * fixed-concurrency QUORUM read/write mix for a steady-state window, then join a 4th node with
 * the same load running, then decommission it, still under load. Reports
 *   - streaming MB/s: bytes the move streamed / time from its first streamed range to done,
 *   - foreground ops/s during the move as a share of steady state.
 *
 *   node dist/bench/streaming.js [--keys 6000] [--value-bytes 8192] [--concurrency 16] [--steady-ms 8000]
 */
import { parseArgs } from 'node:util'
import type { AdminStatus } from '../node/client/admin-client.js'
import { TestCluster, waitFor, type TestNode } from '../test/helpers/cluster.js'

const { values: opt } = parseArgs({
  options: {
    keys: { type: 'string', default: '6000' },
    'value-bytes': { type: 'string', default: '8192' },
    concurrency: { type: 'string', default: '16' },
    'steady-ms': { type: 'string', default: '8000' },
  },
})
const KEYS = Number(opt.keys)
const VALUE_BYTES = Number(opt['value-bytes'])
const CONCURRENCY = Number(opt.concurrency)
const STEADY_MS = Number(opt['steady-ms'])
const SMALL = Buffer.alloc(200, 'f')

/** A QUORUM read/write mix (1:1) over fresh and loaded keys; counts completions per 100 ms. */
class Foreground {
  private stopped = false
  private done: Promise<void> = Promise.resolve()
  private readonly buckets: number[] = []
  private t0 = 0
  errors = 0
  readonly errorCodes = new Map<string, number>()

  start(nodes: () => TestNode[]): void {
    this.t0 = Date.now()
    let seq = 0
    this.done = Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (!this.stopped) {
        const i = seq++
        const list = nodes()
        const kv = list[i % list.length]!.kv
        try {
          if (i % 2) await kv.put(`fg-${i}`, SMALL, { consistency: 'quorum' })
          else await kv.get(`k${i % KEYS}`, { consistency: 'quorum' })
          const b = Math.floor((Date.now() - this.t0) / 100)
          this.buckets[b] = (this.buckets[b] ?? 0) + 1
        } catch (e) {
          this.errors++
          const code = `${(e as { code?: string }).code} ${(e as Error).message.slice(0, 120)}`
          this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1)
        }
      }
    })).then(() => {})
  }

  /** ops/s between two wall-clock instants */
  rate(from: number, to: number): number {
    let n = 0
    for (let b = Math.ceil((from - this.t0) / 100); b < Math.floor((to - this.t0) / 100); b++) n += this.buckets[b] ?? 0
    return (n * 1000) / Math.max(1, Math.floor((to - this.t0) / 100) * 100 - Math.ceil((from - this.t0) / 100) * 100)
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.done
  }
}

interface Move {
  bytes: number
  ranges: number
  streamMs: number
  totalMs: number
  mbps: number
  fgRatio: number
  fgOps: number
}

/**
 * Polls `node` while `start()` runs the move, until `done(status)`. Streaming is timed from the
 * first status that shows the move's ranges (set once peers confirmed it) to done; the
 * foreground rate is taken over that same window.
 */
async function measureMove(cluster: TestCluster, node: TestNode, fg: Foreground, steady: number, start: () => Promise<unknown>, done: (s: AdminStatus) => boolean): Promise<Move> {
  const admin = cluster.admin(node)
  const t0 = Date.now()
  await start()
  let streamAt = 0
  let last: AdminStatus
  for (;;) {
    last = await admin.status()
    if (!streamAt && last.streaming.rangesTotal > 0) streamAt = Date.now()
    if (done(last)) break
    await new Promise((r) => setTimeout(r, 25))
  }
  const t1 = Date.now()
  const streamMs = t1 - (streamAt || t0)
  const fgOps = fg.rate(streamAt || t0, t1)
  return {
    bytes: last.streaming.bytes,
    ranges: last.streaming.rangesTotal,
    streamMs,
    totalMs: t1 - t0,
    mbps: last.streaming.bytes / 1e6 / (streamMs / 1000),
    fgRatio: fgOps / steady,
    fgOps,
  }
}

async function main(): Promise<void> {
  const cluster = await TestCluster.start({ nodes: 3, rf: 3 })
  try {
    const [n1] = cluster.nodes
    const value = Buffer.alloc(VALUE_BYTES, 'v')
    const loadStart = Date.now()
    let next = 0
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < KEYS) {
        const i = next++
        await n1!.kv.put(`k${i}`, value, { consistency: 'quorum' })
      }
    }))
    const loadMs = Date.now() - loadStart
    const distinct = KEYS * VALUE_BYTES
    console.log(`loaded ${KEYS} x ${VALUE_BYTES} B = ${(distinct / 1e6).toFixed(1)} MB distinct (x3 replicas) in ${(loadMs / 1000).toFixed(1)} s`)

    const n4 = await cluster.add(['--auto-join', 'false'])
    await waitFor('n4 up', () => cluster.admin(n4).status())
    const serving = cluster.nodes.slice(0, 3)
    const fg = new Foreground()
    fg.start(() => serving)
    // --concurrency 0: streaming alone, no foreground load (no ratio)
    const idle = CONCURRENCY === 0
    if (!idle) await new Promise((r) => setTimeout(r, 1000))
    const s0 = Date.now()
    if (!idle) await new Promise((r) => setTimeout(r, STEADY_MS))
    const steady = idle ? NaN : fg.rate(s0, Date.now())
    console.log(`steady state: ${steady.toFixed(0)} ops/s (QUORUM, 1:1 read/write, concurrency ${CONCURRENCY})`)

    // A node refuses to join in its first gossip rounds; ask until it accepts.
    const joinNow = () => waitFor('n4 accepts join', () => cluster.admin(n4).join().then(() => true))
    const join = await measureMove(cluster, n4, fg, steady, joinNow, (s) => s.state === 'AVAILABLE')
    console.log(`join: ${(join.bytes / 1e6).toFixed(1)} MB in ${join.ranges} ranges; streaming ${(join.streamMs / 1000).toFixed(2)} s = ${join.mbps.toFixed(1)} MB/s; whole join ${(join.totalMs / 1000).toFixed(2)} s; foreground ${join.fgOps.toFixed(0)} ops/s = ${(join.fgRatio * 100).toFixed(0)}% of steady`)
    console.log(`  moved ${((join.bytes / (distinct * 3)) * 100).toFixed(1)}% of the replicated data (1/N = 25%)`)

    await new Promise((r) => setTimeout(r, 2000))
    const s1 = Date.now()
    if (!idle) await new Promise((r) => setTimeout(r, STEADY_MS / 2))
    const steady2 = idle ? NaN : fg.rate(s1, Date.now())
    const leave = await measureMove(cluster, n4, fg, steady2, () => cluster.admin(n4).decommission(), (s) => s.state === 'LEFT')
    console.log(`decommission: ${(leave.bytes / 1e6).toFixed(1)} MB in ${leave.ranges} ranges; streaming ${(leave.streamMs / 1000).toFixed(2)} s = ${leave.mbps.toFixed(1)} MB/s; whole ${(leave.totalMs / 1000).toFixed(2)} s; foreground ${(leave.fgRatio * 100).toFixed(0)}% of steady (${steady2.toFixed(0)} ops/s before)`)
    await fg.stop()
    console.log(`foreground errors: ${fg.errors}${fg.errors ? ` (${[...fg.errorCodes].map(([c, n]) => `${c}: ${n}`).join(', ')})` : ''}`)
  } finally {
    await cluster.destroy()
  }
}

await main()
