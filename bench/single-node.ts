/**
 * One ringkv node (RF 1) against a bare node:http server doing the same work in memory, in
 * one invocation: what the node's hot path costs on top of HTTP itself.
 *
 *   node dist/bench/single-node.js [--seconds 5] [--rounds 3] [--warmup 1] [--concurrency 32]
 *                                  [--records 10000] [--value-bytes 100] [--systems ringkv,bare,api]
 *                                  [--cpu-prof DIR]
 *
 * The bare server (a child process, like the node) answers GET and PUT /v1/kv/{key} from a Map:
 * decode the key, look it up or store the body with its Content-Type, 200/204/404. The node
 * does the same through its real path (key decoding, consistency, coordinator, RocksDB, ETag,
 * metrics). Both get identical requests — same keys, same 100-byte values, same keep-alive
 * connections (undici Pool, one per system, `--concurrency` connections), same closed loop —
 * GET runs and PUT runs alternating system by system, `--rounds` times; each cell is the
 * median over rounds, each ratio the median of the rounds' ratios. Server CPU per operation (from /proc) is printed too: on a shared
 * machine it moves less with other people's load than throughput does.
 *
 * `--systems` may add `api`: the node's own client server (kv-handler, metrics, ETags) over a Map
 * in a child process — what the HTTP layer costs without coordinator and RocksDB.
 * `--cpu-prof DIR` writes V8 CPU profiles of both servers into DIR (see bench/lib/cpuprofile-top.ts);
 * `--systems ringkv` runs the node alone.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { createClientServer } from '../node/api/client-server.js'
import type { KvService } from '../node/api/service.js'
import { RingError } from '../node/errors.js'
import { Metrics } from '../node/metrics/metrics.js'
import { HlcClock, incrementVV } from '../node/replication/version.js'
import type { StoredRecord } from '../node/storage/record.js'
import { createRng } from '../node/util/rng.js'
import { runClosedLoop, runCount, type LoopResult } from './lib/closed-loop.js'
import { KeySpace, startRingkv, type KvTarget } from './lib/kv-targets.js'
import { MemberPools } from './lib/pools.js'
import { cpuSeconds } from './lib/proc-cpu.js'

type Op = 'get' | 'put'
const OPS: readonly Op[] = ['get', 'put']

/** The baseline: the least a server can do for this API over node:http. */
function serveBare(): void {
  const store = new Map<string, { value: Buffer; contentType: string }>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url!
    const q = url.indexOf('?')
    const key = decodeURIComponent(url.slice('/v1/kv/'.length, q < 0 ? undefined : q))
    if (req.method === 'GET') {
      const rec = store.get(key)
      if (!rec) {
        res.writeHead(404, { 'content-type': 'application/json', 'content-length': 2 })
        return void res.end('{}')
      }
      res.writeHead(200, { 'content-type': rec.contentType, 'content-length': rec.value.length })
      return void res.end(rec.value)
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      store.set(key, { value: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), contentType: req.headers['content-type'] ?? 'application/octet-stream' })
      res.writeHead(204)
      res.end()
    })
  })
  server.keepAliveTimeout = 65_000
  announce(server)
}

/**
 * The diagnostic middle: the node's real client server (kv-handler, metrics, ETags) over a
 * Map instead of coordinator and RocksDB, so a gap splits into HTTP layer and storage path.
 */
function serveApi(): void {
  const store = new Map<string, StoredRecord>()
  const clock = new HlcClock('bench-api')
  const service: KvService = {
    get: async (key) => store.get(key.toString('latin1')),
    write: async (key, w) => {
      const k = key.toString('latin1')
      const rec: StoredRecord = { value: w.value ?? Buffer.alloc(0), contentType: w.contentType ?? '', vv: incrementVV(store.get(k)?.vv ?? {}, 'bench-api'), ts: clock.tick(), tombstone: w.value === undefined }
      store.set(k, rec)
      return rec
    },
    nodeView: () => ({ name: 'api', hostId: 'bench-api', address: '', clientAddress: '', state: 'AVAILABLE', up: true, ownership: 1, load: 0, tokens: 0 }),
    clusterView: () => ({ replicationFactor: 1, nodes: [] }),
    isReady: () => true,
  }
  const server = createClientServer(service, new Metrics('api'), pino({ level: 'warn' }), 1 << 20)
  announce(server)
}

function announce(server: Server): void {
  server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'))
  // The parent closes our stdin when it is done (or dies); then we go too.
  process.stdin.resume()
  process.stdin.on('end', () => process.exit(0))
}

/** A child process serving `--serve-<kind>`, driven like a node. */
async function startChild(kind: 'bare' | 'api', ks: KeySpace, connections: number, cpuProfDir?: string): Promise<KvTarget> {
  const prof = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${kind}-${process.pid}-${Date.now()}.cpuprofile`] : []
  const child: ChildProcess = spawn(process.execPath, [...prof, fileURLToPath(import.meta.url), `--serve-${kind}`], { stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!).port)
    })
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)))
  })
  const url = `http://127.0.0.1:${port}`
  const pools = new MemberPools([url], { connections })
  // The same path as startRingkv sends, query included, so both parse the same bytes.
  const suffix = '?consistency=quorum'
  const fail = (op: string, status: number) => new RingError('INTERNAL', `${kind} ${op} answered HTTP ${status}`)
  return {
    name: kind,
    urls: [url],
    pids: [child.pid!],
    async put(key, value) {
      const r = await pools.next().request({ path: `/v1/kv/${ks.keys[key]!}${suffix}`, method: 'PUT', body: ks.values[value]!, headers: { 'content-type': 'application/octet-stream' } })
      await r.body.dump()
      if (r.statusCode !== 204) throw fail('PUT', r.statusCode)
    },
    async get(key) {
      const r = await pools.next().request({ path: `/v1/kv/${ks.keys[key]!}${suffix}`, method: 'GET' })
      const body = await r.body.arrayBuffer()
      if (r.statusCode !== 200) throw fail('GET', r.statusCode)
      if (body.byteLength !== ks.valueBytes) throw new RingError('INTERNAL', `${kind} GET returned ${body.byteLength} bytes`)
    },
    async stop() {
      await pools.close()
      child.stdin!.end()
      await new Promise((r) => child.once('exit', r))
    },
  }
}

interface Cell {
  system: string
  op: Op
  opsPerSec: number
  p50: number
  p99: number
  /** server CPU µs per operation */
  cpuUs: number
  errors: number
  firstError?: string
}

function parse() {
  const { values } = parseArgs({
    options: {
      'serve-bare': { type: 'boolean', default: false },
      'serve-api': { type: 'boolean', default: false },
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '32' },
      records: { type: 'string', default: '10000' },
      'value-bytes': { type: 'string', default: '100' },
      systems: { type: 'string', default: 'ringkv,bare' },
      'cpu-prof': { type: 'string' },
    },
  })
  const num = (name: 'seconds' | 'rounds' | 'warmup' | 'concurrency' | 'records' | 'value-bytes', min: number) => {
    const v = Number(values[name])
    if (!Number.isFinite(v) || v < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${values[name]}`)
    return v
  }
  const systems = values.systems.split(',').map((s) => s.trim())
  for (const s of systems) if (s !== 'ringkv' && s !== 'bare' && s !== 'api') throw new Error(`unknown system ${s}; use ringkv, bare, api`)
  return {
    serveBare: values['serve-bare'],
    serveApi: values['serve-api'],
    seconds: num('seconds', 0.1),
    rounds: Math.floor(num('rounds', 1)),
    warmup: num('warmup', 0),
    concurrency: Math.floor(num('concurrency', 1)),
    records: Math.floor(num('records', 1)),
    valueBytes: Math.floor(num('value-bytes', 1)),
    systems,
    cpuProf: values['cpu-prof'],
  }
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

async function measure(t: KvTarget, op: Op, ms: number, concurrency: number, records: number, seed: string): Promise<Cell> {
  const rng = createRng(seed)
  const values = 256
  const cpu0 = cpuSeconds(t.pids)
  const r: LoopResult<Op> = await runClosedLoop({
    concurrency,
    durationMs: ms,
    types: OPS,
    maxErrors: 100,
    next: () => {
      const key = rng.int(records)
      return op === 'get' ? { type: 'get', exec: () => t.get(key) } : { type: 'put', exec: () => t.put(key, rng.int(values)) }
    },
  })
  const s = r.ops[op]
  return {
    system: t.name,
    op,
    opsPerSec: s.count / r.seconds,
    p50: s.histogram.quantileMs(0.5),
    p99: s.histogram.quantileMs(0.99),
    cpuUs: ((cpuSeconds(t.pids) - cpu0) * 1e6) / Math.max(1, s.count),
    errors: s.errors,
    ...(s.firstError ? { firstError: s.firstError } : {}),
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function main(): Promise<void> {
  const o = parse()
  if (o.serveBare) return serveBare()
  if (o.serveApi) return serveApi()
  const ks = new KeySpace(o.records, o.valueBytes, createRng('single-node/values'))
  log(`${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  const targets: KvTarget[] = []
  const cells: Cell[] = []
  try {
    for (const s of o.systems) {
      if (s === 'ringkv') targets.push(await startRingkv({ nodes: 1, rf: 1, ...(o.cpuProf ? { cpuProfDir: o.cpuProf } : {}) }, ks, { connections: o.concurrency, consistency: 'quorum' }))
      else targets.push(await startChild(s as 'bare' | 'api', ks, o.concurrency, o.cpuProf))
    }
    for (const t of targets) {
      const { seconds } = await runCount(o.records, o.concurrency, (i) => t.put(i, i % ks.values.length))
      log(`${t.name}: loaded ${o.records} records in ${seconds.toFixed(1)} s`)
      if (o.warmup > 0) for (const op of OPS) await measure(t, op, o.warmup * 1000, o.concurrency, o.records, `warmup/${op}`)
    }
    for (let round = 0; round < o.rounds; round++) {
      // Alternate who goes first, so a drift in machine load does not favour one side.
      const order = round % 2 === 0 ? targets : [...targets].reverse()
      for (const op of OPS) {
        for (const t of order) {
          const c = await measure(t, op, o.seconds * 1000, o.concurrency, o.records, `round${round}/${op}`)
          cells.push(c)
          log(`round ${round + 1} ${op.toUpperCase().padEnd(3)} ${t.name.padEnd(6)} ${c.opsPerSec.toFixed(0).padStart(6)} ops/s  p50 ${c.p50.toFixed(2)} ms  p99 ${c.p99.toFixed(2)} ms  server CPU ${c.cpuUs.toFixed(0)} µs/op${c.errors ? `  ${c.errors} errors: ${c.firstError}` : ''}`)
        }
      }
    }
  } finally {
    for (const t of targets) await t.stop()
  }
  const cell = (system: string, op: Op, f: (c: Cell) => number) => median(cells.filter((c) => c.system === system && c.op === op).map(f))
  const lines = ['| op | system | ops/s | p50 ms | p99 ms | server CPU µs/op |', '|---|---|---|---|---|---|']
  for (const op of OPS) {
    for (const s of o.systems) lines.push(`| ${op.toUpperCase()} | ${s} | ${cell(s, op, (c) => c.opsPerSec).toFixed(0)} | ${cell(s, op, (c) => c.p50).toFixed(2)} | ${cell(s, op, (c) => c.p99).toFixed(2)} | ${cell(s, op, (c) => c.cpuUs).toFixed(0)} |`)
  }
  console.log(`\n${lines.join('\n')}`)
  if (o.systems.includes('ringkv') && o.systems.includes('bare')) {
    console.log('\n| op | throughput node/bare | p99 node/bare | server CPU per op node/bare |\n|---|---|---|---|')
    for (const sys of o.systems.filter((x) => x !== 'bare')) {
      for (const op of OPS) {
        // Paired by round (the two ran back to back), then the median: load from other work
        // moves both sides of a pair together far more than it moves one round against another.
        const ratio = (f: (c: Cell) => number) => {
          const mine = cells.filter((c) => c.system === sys && c.op === op)
          const base = cells.filter((c) => c.system === 'bare' && c.op === op)
          return median(mine.map((c, i) => f(c) / f(base[i]!)))
        }
        console.log(`| ${op.toUpperCase()}${sys === 'ringkv' ? '' : ` (${sys})`} | ${ratio((c) => c.opsPerSec).toFixed(2)}x | ${ratio((c) => c.p99).toFixed(2)}x | ${ratio((c) => c.cpuUs).toFixed(2)}x |`)
      }
    }
  }
  const errors = cells.reduce((n, c) => n + c.errors, 0)
  console.log(`\n(median of ${o.rounds} alternating ${o.seconds} s runs per cell, ratios the median of per-round ratios; concurrency ${o.concurrency}; ${o.records} keys, ${o.valueBytes}-byte values; ${errors} errors; load average at the end ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`)
  if (errors) process.exitCode = 1
}

await main()
