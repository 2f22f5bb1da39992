/**
 * Shared pieces of the membership cluster tests: a bounded continuous QUORUM writer that
 * remembers every acknowledged write, bulk load and verification, the admin CLI as a
 * subprocess, and a look into a stopped node's RocksDB.
 */
import { spawn } from 'node:child_process'
import * as assert from 'uvu/assert'
import { ApiError } from '../../../node/client/http.js'
import { Ring } from '../../../node/ring/ring.js'
import { tokenOf } from '../../../node/ring/token.js'
import { rangeContains, type Range } from '../../../node/ring/range.js'
import { Store } from '../../../node/storage/store.js'
import type { AdminClient, AdminStatus } from '../../../node/client/admin-client.js'
import { MAIN, type TestCluster, type TestNode } from '../../helpers/cluster.js'

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function valueFor(key: string, bytes: number): string {
  const head = `${key}|`
  return head + 'x'.repeat(Math.max(0, bytes - head.length))
}

/** Runs `fn(i)` for i in [0, n) with `concurrency` workers. */
export async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await fn(next++)
  }))
}

/** Writes `count` keys `${prefix}${i}` at QUORUM through `node`; returns their total key+value bytes. */
export async function load(node: TestNode, prefix: string, count: number, valueBytes: number, concurrency = 16): Promise<number> {
  let bytes = 0
  const kv = node.kv
  await pool(count, concurrency, async (i) => {
    const key = `${prefix}${i}`
    const value = valueFor(key, valueBytes)
    await kv.put(key, value, { consistency: 'quorum' })
    bytes += key.length + value.length
  })
  return bytes
}

/**
 * Continuous QUORUM writes of fresh keys through whichever nodes `coordinators()` names, until
 * stopped (and never past `maxMs`). Every 204 is remembered; failures are counted, not retried,
 * because an unacknowledged write promises nothing.
 */
export class Writer {
  readonly acked = new Map<string, string>()
  failures = 0
  readonly errors = new Map<string, number>()
  /** the first failures, for the log of a run */
  readonly firstFailures: string[] = []
  private stopping = false
  private done: Promise<void> | undefined
  private seq = 0
  /** completed writes per 250 ms bucket since start */
  readonly timeline: number[] = []
  private t0 = 0

  constructor(
    private readonly coordinators: () => TestNode[],
    private readonly o: { prefix: string; concurrency: number; valueBytes: number; maxMs: number; pauseMs?: number },
  ) {}

  start(): this {
    this.t0 = Date.now()
    const deadline = this.t0 + this.o.maxMs
    this.done = Promise.all(Array.from({ length: this.o.concurrency }, async () => {
      while (!this.stopping && Date.now() < deadline) {
        const nodes = this.coordinators().filter((n) => n.running)
        const node = nodes[this.seq % nodes.length]
        const key = `${this.o.prefix}${this.seq++}`
        if (!node) {
          await sleep(50)
          continue
        }
        const value = valueFor(key, this.o.valueBytes)
        try {
          await node.kv.put(key, value, { consistency: 'quorum' })
          this.acked.set(key, value)
          const b = Math.floor((Date.now() - this.t0) / 250)
          this.timeline[b] = (this.timeline[b] ?? 0) + 1
        } catch (e) {
          this.failures++
          const code = e instanceof ApiError ? e.code : (e as Error).message
          this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
          if (this.firstFailures.length < 10) this.firstFailures.push(`${new Date().toISOString()} via ${node.spec.name}: ${code} ${(e as Error).message}`)
        }
        if (this.o.pauseMs) await sleep(this.o.pauseMs)
      }
    })).then(() => {})
    return this
  }

  /** Writes per second between two instants (ms since start). */
  rate(fromMs: number, toMs: number): number {
    let n = 0
    for (let b = Math.floor(fromMs / 250); b < Math.floor(toMs / 250); b++) n += this.timeline[b] ?? 0
    return (n * 1000) / Math.max(1, toMs - fromMs)
  }

  elapsed(): number {
    return Date.now() - this.t0
  }

  async stop(): Promise<void> {
    this.stopping = true
    await this.done
  }
}

/** Reads every key at QUORUM through `node`; returns the keys whose value is missing or wrong. */
export async function missing(node: TestNode, expected: Map<string, string>, concurrency = 16): Promise<string[]> {
  const keys = [...expected.keys()]
  const bad: string[] = []
  const kv = node.kv
  await pool(keys.length, concurrency, async (i) => {
    const k = keys[i]!
    const r = await kv.get(k, { consistency: 'quorum' })
    if (!r || r.value.toString() !== expected.get(k)) bad.push(k)
  })
  return bad
}

/** Runs `ringkv admin <op> --node <peer url>` to completion (it waits with its progress bar). */
export function adminCli(cluster: TestCluster, op: string, node: TestNode, timeoutMs = 120_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const args = [MAIN, 'admin', op, '--node', node.peerUrl, ...(cluster.tokenFile ? ['--cluster-token-file', cluster.tokenFile] : [])]
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('close', (code) => {
      clearTimeout(t)
      resolve({ code, out })
    })
  })
}

/** Asserts that `p` fails with an ApiError of this status and code; returns its message. */
export async function rejects(p: Promise<unknown>, status: number, code: string): Promise<string> {
  try {
    await p
  } catch (e) {
    assert.instance(e, ApiError, `expected ApiError ${code}, got ${String(e)}`)
    const a = e as ApiError
    assert.is(a.code, code, `expected ${code}, got ${a.code}: ${a.message}`)
    assert.is(a.status, status)
    return a.message
  }
  assert.unreachable(`expected ${status} ${code}, but it succeeded`)
  return ''
}

/** The current ring as the nodes themselves report it (AVAILABLE and LEAVING own). */
export function ringOf(statuses: AdminStatus[]): Ring {
  const members = new Map(statuses.map((s) => [s.hostId!, { state: s.state, tokens: s.tokens.map(BigInt), address: '' }]))
  return Ring.current(members)
}

export function inRanges(key: string, ranges: readonly Range[]): boolean {
  const t = tokenOf(Buffer.from(key))
  return ranges.some((r) => rangeContains(r, t))
}

/** Every data key in a stopped node's RocksDB, with its stored bytes (key + record). */
export async function storedKeys(node: TestNode): Promise<Map<string, number>> {
  assert.not.ok(node.running, 'open the store of a stopped node only')
  const store = await Store.open(node.spec.dataDir, { durable: false })
  const out = new Map<string, number>()
  try {
    for await (const e of store.scanRange(0n, 0n)) out.set(e.key.toString(), e.key.length + e.raw.length)
  } finally {
    await store.close()
  }
  return out
}

/** sleep() that does not keep the process alive (a failed test must not leave a poller running). */
const idleSleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref())

/** Polls a node's admin status and records every state it passes through. */
export class StateTrace {
  readonly states: string[] = []
  readonly samples: AdminStatus[] = []
  private stopped = false
  private done: Promise<void>

  private readonly admin: AdminClient

  constructor(cluster: TestCluster, node: TestNode, everyMs = 100) {
    this.admin = cluster.admin(node)
    this.done = (async () => {
      while (!this.stopped) {
        await this.sample()
        await idleSleep(everyMs)
      }
    })()
  }

  private async sample(): Promise<void> {
    try {
      const s = await this.admin.status(2000)
      this.samples.push(s)
      if (this.states[this.states.length - 1] !== s.state) this.states.push(s.state)
    } catch {}
  }

  /** Stops sampling after one last sample, so the state the caller just waited for is in. */
  async stop(): Promise<void> {
    this.stopped = true
    await this.done
    await this.sample()
  }
}
