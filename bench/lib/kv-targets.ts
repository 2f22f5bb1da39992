/**
 * Key-value systems under test, behind one small interface so a driver can alternate them.
 *
 *   const ks = new KeySpace(10_000, 100, createRng('values'))
 *   const ringkv = await startRingkv({ nodes: 3, rf: 3 }, ks, { connections: 32, consistency: 'quorum' })
 *   const etcd = await startEtcd({ members: 3 }, ks, { connections: 32 })
 *   await ringkv.put(17, 3)   // key #17 := value #3 of the key space
 *   await etcd.get(17)        // throws unless the record is there with a full-size value
 *   await ringkv.stop()
 *
 * Every request goes over keep-alive HTTP through MemberPools (round-robin over all members).
 * Each call checks its answer (status, and for reads the value's size), so a fast error never
 * passes for a fast operation.
 */
import { invariant, RingError } from '../../node/errors.js'
import type { Rng } from '../../node/util/rng.js'
import { TestCluster, waitFor } from '../../test/helpers/cluster.js'
import { EtcdCluster, type EtcdOptions } from './etcd.js'
import { MemberPools } from './pools.js'

/** Record keys and a pool of random values, pre-encoded for both wire formats. */
export class KeySpace {
  readonly keys: string[]
  readonly keysB64: string[]
  readonly values: Buffer[]
  readonly valuesB64: string[]

  constructor(readonly records: number, readonly valueBytes: number, rng: Rng, distinctValues = 256) {
    invariant(records >= 1 && valueBytes >= 1, 'KeySpace needs at least one record of at least one byte')
    // Fixed-width keys, like YCSB's "user" + number, so every key costs the same to route.
    this.keys = Array.from({ length: records }, (_, i) => `user${String(i).padStart(12, '0')}`)
    this.keysB64 = this.keys.map((k) => Buffer.from(k).toString('base64'))
    this.values = Array.from({ length: distinctValues }, () => {
      const b = Buffer.allocUnsafe(valueBytes)
      for (let i = 0; i < valueBytes; i++) b[i] = rng.int(256)
      return b
    })
    this.valuesB64 = this.values.map((v) => v.toString('base64'))
  }
}

export interface KvTarget {
  readonly name: string
  /** server processes, for CPU accounting and profiling */
  readonly pids: number[]
  readonly urls: string[]
  put(key: number, value: number): Promise<void>
  get(key: number): Promise<void>
  stop(): Promise<void>
}

export interface ClientOptions {
  /** keep-alive connections per member */
  connections: number
}

function unexpected(system: string, op: string, status: number, body: string): RingError {
  return new RingError('INTERNAL', `${system} ${op} answered HTTP ${status}: ${body.slice(0, 200)}`)
}

export interface RingkvOptions {
  nodes: number
  rf: number
  /** fsync the WAL (group commit) before acknowledging */
  durable?: boolean
  /** write a V8 CPU profile of every node into this dir (on graceful stop) */
  cpuProfDir?: string
  /** more flags for the node runtime, e.g. --perf-basic-prof for `perf record` */
  nodeFlags?: string[]
  logLevel?: string
}

export async function startRingkv(o: RingkvOptions, ks: KeySpace, c: ClientOptions & { consistency: 'one' | 'quorum' | 'all'; name?: string }): Promise<KvTarget> {
  const cluster = await TestCluster.start({
    nodes: o.nodes,
    rf: o.rf,
    // The harness sets debug logging for tests; a later flag wins with commander.
    args: ['--log-level', o.logLevel ?? 'warn', '--durable', String(o.durable ?? false)],
  })
  const flags = [...(o.nodeFlags ?? [])]
  if (o.cpuProfDir) flags.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`)
  if (flags.length) {
    // Node refuses --cpu-prof and --perf-* in NODE_OPTIONS, so restart each node with them on
    // the command line (same ports and data dir).
    await Promise.all(cluster.nodes.map((n) => n.stop()))
    for (const n of cluster.nodes) {
      const args = n.args.bind(n)
      const name = o.cpuProfDir ? [`--cpu-prof-name=${n.spec.name}-${process.pid}-${Date.now()}.cpuprofile`] : []
      n.args = () => [...flags, ...name, ...args()]
      n.start()
    }
    await Promise.all(cluster.nodes.map((n) => n.ready()))
  }
  // Ready is per node; a QUORUM bench needs every node to see the whole ring first.
  await waitFor(`every node to see ${o.nodes} AVAILABLE members up`, async () => {
    for (const n of cluster.nodes) {
      const view = await n.kv.cluster()
      if (view.nodes.length !== o.nodes || !view.nodes.every((m) => m.up && m.state === 'AVAILABLE')) return false
    }
    return true
  }, 60_000)
  const urls = cluster.nodes.map((n) => n.clientUrl)
  const pools = new MemberPools(urls, c)
  const suffix = `?consistency=${c.consistency}`
  const name = c.name ?? `ringkv${o.durable ? '-durable' : ''}`
  return {
    name,
    urls,
    get pids() {
      return cluster.nodes.map((n) => n.proc!.pid!)
    },
    async put(key, value) {
      const r = await pools.next().request({
        path: `/v1/kv/${ks.keys[key]!}${suffix}`,
        method: 'PUT',
        body: ks.values[value]!,
        headers: { 'content-type': 'application/octet-stream' },
      })
      if (r.statusCode !== 204) throw unexpected(name, 'PUT', r.statusCode, await r.body.text())
      await r.body.dump()
    },
    async get(key) {
      const r = await pools.next().request({ path: `/v1/kv/${ks.keys[key]!}${suffix}`, method: 'GET' })
      if (r.statusCode !== 200) throw unexpected(name, 'GET', r.statusCode, await r.body.text())
      const body = await r.body.arrayBuffer()
      if (body.byteLength !== ks.valueBytes) throw new RingError('INTERNAL', `${name} GET returned ${body.byteLength} bytes, expected ${ks.valueBytes}`)
    },
    async stop() {
      await pools.close()
      // Graceful, so --cpu-prof profiles get written.
      await Promise.all(cluster.nodes.map((n) => n.stop()))
      await cluster.destroy()
    },
  }
}

export async function startEtcd(o: EtcdOptions, ks: KeySpace, c: ClientOptions & { serializable: boolean }): Promise<KvTarget> {
  const etcd = await EtcdCluster.start(o)
  const urls = etcd.clientUrls
  const pools = new MemberPools(urls, c)
  const headers = { 'content-type': 'application/json' }
  const serializable = c.serializable ? ',"serializable":true' : ''
  const b64Bytes = Math.ceil(ks.valueBytes / 3) * 4
  return {
    name: 'etcd',
    urls,
    pids: etcd.pids,
    async put(key, value) {
      const r = await pools.next().request({
        path: '/v3/kv/put',
        method: 'POST',
        headers,
        body: `{"key":"${ks.keysB64[key]!}","value":"${ks.valuesB64[value]!}"}`,
      })
      const text = await r.body.text()
      if (r.statusCode !== 200) throw unexpected('etcd', 'put', r.statusCode, text)
    },
    async get(key) {
      const r = await pools.next().request({
        path: '/v3/kv/range',
        method: 'POST',
        headers,
        body: `{"key":"${ks.keysB64[key]!}"${serializable}}`,
      })
      const text = await r.body.text()
      if (r.statusCode !== 200) throw unexpected('etcd', 'range', r.statusCode, text)
      const kv = (JSON.parse(text) as { kvs?: { value?: string }[] }).kvs?.[0]
      if (kv?.value?.length !== b64Bytes) throw new RingError('INTERNAL', `etcd range returned ${kv ? `a ${kv.value?.length ?? 0}-char value` : 'no record'}, expected ${b64Bytes} base64 chars`)
    },
    async stop() {
      await pools.close()
      await etcd.stop()
    },
  }
}
