/**
 * YCSB-style workloads against a 3-node ringkv cluster (RF 3, QUORUM) and a 3-member etcd
 * cluster, in one invocation, alternating system by system within each workload.
 *
 *   node dist/bench/ycsb.js [--seconds 12] [--warmup 2] [--concurrency 32] [--records 10000]
 *                           [--value-bytes 100] [--workloads A,B,C] [--systems ringkv,ringkv-durable,etcd]
 *                           [--seed ycsb] [--cpu-prof DIR] [--json FILE]
 *
 * Workloads (YCSB core): A 50% read / 50% update, B 95/5, C 100% read; keys scrambled-zipfian
 * with theta 0.99 over the loaded records. Load phase first: every system gets the same
 * records (100-byte random values by default). Each measured run is preceded by an unrecorded
 * warm-up of the same workload. Systems:
 *   ringkv          3 nodes, RF 3, QUORUM reads and writes, acknowledged after the WAL write (default)
 *   ringkv-durable  the same with --durable true: acknowledged after a group-committed fsync
 *   etcd            3 members (etcd-server on PATH), fsync on; puts and serializable ranges
 *                   through its JSON gateway (POST /v3/kv/put, /v3/kv/range)
 * All requests are keep-alive HTTP/1.1 from this one process, round-robin over every member.
 * `--cpu-prof DIR` writes V8 CPU profiles of the ringkv nodes into DIR when they stop.
 */
import { writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { createRng } from '../node/util/rng.js'
import { runClosedLoop, runCount, type LoopResult, type Operation } from './lib/closed-loop.js'
import { EtcdCluster } from './lib/etcd.js'
import { KeySpace, startEtcd, startRingkv, type KvTarget } from './lib/kv-targets.js'
import { cpuSeconds } from './lib/proc-cpu.js'
import { ScrambledZipfianChooser } from './lib/zipfian.js'

type OpType = 'read' | 'update'
const OP_TYPES: readonly OpType[] = ['read', 'update']
const READ_SHARE: Record<string, number> = { A: 0.5, B: 0.95, C: 1 }
const SYSTEMS = ['ringkv', 'ringkv-durable', 'etcd'] as const
type SystemName = (typeof SYSTEMS)[number]

interface Cell {
  workload: string
  system: string
  seconds: number
  serverCpuSeconds: number
  driverCpuSeconds: number
  ops: Record<OpType, { count: number; errors: number; firstError?: string; opsPerSec: number; p50: number; p99: number; mean: number; max: number }>
}

function parse() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '12' },
      warmup: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '32' },
      records: { type: 'string', default: '10000' },
      'value-bytes': { type: 'string', default: '100' },
      workloads: { type: 'string', default: 'A,B,C' },
      systems: { type: 'string', default: SYSTEMS.join(',') },
      seed: { type: 'string', default: 'ycsb' },
      'cpu-prof': { type: 'string' },
      json: { type: 'string' },
    },
  })
  const num = (name: keyof typeof values, min: number) => {
    const v = Number(values[name])
    if (!Number.isFinite(v) || v < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${values[name]}`)
    return v
  }
  const workloads = values.workloads.split(',').map((w) => w.trim().toUpperCase())
  for (const w of workloads) if (!(w in READ_SHARE)) throw new Error(`unknown workload ${w}; use A, B or C`)
  const systems = values.systems.split(',').map((s) => s.trim()) as SystemName[]
  for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`unknown system ${s}; use ${SYSTEMS.join(', ')}`)
  return {
    seconds: num('seconds', 0.1),
    warmup: num('warmup', 0),
    concurrency: Math.floor(num('concurrency', 1)),
    records: Math.floor(num('records', 2)),
    valueBytes: Math.floor(num('value-bytes', 1)),
    workloads,
    systems,
    seed: values.seed,
    cpuProf: values['cpu-prof'],
    json: values.json,
  }
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

function workloadOps(t: KvTarget, ks: KeySpace, workload: string, seed: string): () => Operation<OpType> {
  // Same seed per workload, so every system draws the same key and op sequence.
  const rng = createRng(`${seed}/${workload}`)
  const keys = new ScrambledZipfianChooser(ks.records, rng.fork('keys'))
  const mix = rng.fork('mix')
  const readShare = READ_SHARE[workload]!
  return () => {
    const key = keys.next()
    if (mix.next() < readShare) return { type: 'read', exec: () => t.get(key) }
    const value = mix.int(ks.values.length)
    return { type: 'update', exec: () => t.put(key, value) }
  }
}

function summarize(workload: string, system: string, r: LoopResult<OpType>, serverCpuSeconds: number): Cell {
  const ops = {} as Cell['ops']
  for (const t of OP_TYPES) {
    const s = r.ops[t]
    ops[t] = {
      count: s.count,
      errors: s.errors,
      ...(s.firstError ? { firstError: s.firstError } : {}),
      opsPerSec: s.count / r.seconds,
      p50: s.histogram.quantileMs(0.5),
      p99: s.histogram.quantileMs(0.99),
      mean: s.histogram.meanMs,
      max: s.histogram.maxMs,
    }
  }
  return { workload, system, seconds: r.seconds, serverCpuSeconds, driverCpuSeconds: r.driverCpuSeconds, ops }
}

function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '–'
}

function report(cells: Cell[], baseline: string): string {
  const lines = [
    '| workload | system | op | ops/s | p50 ms | p99 ms | server CPU ms/op | ops/s ÷ etcd | p99 ÷ etcd p99 |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for (const c of cells) {
    const total = c.ops.read.count + c.ops.update.count
    const base = cells.find((b) => b.workload === c.workload && b.system === baseline)
    for (const t of OP_TYPES) {
      const o = c.ops[t]
      if (o.count === 0 && o.errors === 0) continue
      const b = base?.ops[t]
      const vs = c.system !== baseline && b ? [`${fmt(o.opsPerSec / b.opsPerSec)}x`, `${fmt(o.p99 / b.p99)}x`] : ['', '']
      lines.push(`| ${c.workload} | ${c.system} | ${t} | ${o.opsPerSec.toFixed(0)} | ${fmt(o.p50)} | ${fmt(o.p99)} | ${fmt((c.serverCpuSeconds * 1000) / total, 3)} | ${vs.join(' | ')} |`)
    }
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  const o = parse()
  const etcdVersion = o.systems.includes('etcd') ? EtcdCluster.version() : undefined
  if (o.systems.includes('etcd') && !etcdVersion) throw new Error('etcd is not installed: apt-get install -y etcd-server (or leave it out of --systems)')
  log(`${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}${etcdVersion ? `, ${etcdVersion}` : ''}`)
  const ks = new KeySpace(o.records, o.valueBytes, createRng(`${o.seed}/values`))
  const client = { connections: o.concurrency }
  const targets: KvTarget[] = []
  const cells: Cell[] = []
  try {
    for (const s of o.systems) {
      const t0 = performance.now()
      const t = s === 'etcd'
        ? await startEtcd({ members: 3 }, ks, { ...client, serializable: true })
        : await startRingkv({ nodes: 3, rf: 3, durable: s === 'ringkv-durable', ...(o.cpuProf ? { cpuProfDir: o.cpuProf } : {}) }, ks, { ...client, consistency: 'quorum', name: s })
      targets.push(t)
      log(`${s} up in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${t.urls.join(' ')}`)
    }
    for (const t of targets) {
      const { seconds } = await runCount(o.records, o.concurrency, (i) => t.put(i, i % ks.values.length))
      log(`load ${t.name}: ${o.records} records in ${seconds.toFixed(1)} s (${(o.records / seconds).toFixed(0)} inserts/s)`)
    }
    for (const w of o.workloads) {
      for (const t of targets) {
        if (o.warmup > 0) await runClosedLoop({ concurrency: o.concurrency, durationMs: o.warmup * 1000, types: OP_TYPES, next: workloadOps(t, ks, w, `${o.seed}/warmup`), maxErrors: 100 })
        const cpu0 = cpuSeconds(t.pids)
        const r = await runClosedLoop({ concurrency: o.concurrency, durationMs: o.seconds * 1000, types: OP_TYPES, next: workloadOps(t, ks, w, o.seed), maxErrors: 1000 })
        const cell = summarize(w, t.name, r, cpuSeconds(t.pids) - cpu0)
        cells.push(cell)
        const parts = OP_TYPES.filter((k) => cell.ops[k].count + cell.ops[k].errors > 0).map((k) => {
          const x = cell.ops[k]
          return `${k} ${x.opsPerSec.toFixed(0)}/s p50 ${fmt(x.p50)} p99 ${fmt(x.p99)} ms${x.errors ? ` ERRORS ${x.errors} (${x.firstError})` : ''}`
        })
        log(`${w} ${t.name.padEnd(14)} ${parts.join(' | ')} | server CPU ${cell.serverCpuSeconds.toFixed(1)} s, driver CPU ${cell.driverCpuSeconds.toFixed(1)} s, load ${loadavg()[0]!.toFixed(2)}`)
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop()))
  }

  const errors = cells.flatMap((c) => OP_TYPES.map((t) => c.ops[t].errors)).reduce((a, b) => a + b, 0)
  console.log(report(cells, 'etcd'))
  console.log(`\n${o.seconds} s per run after ${o.warmup} s warm-up, concurrency ${o.concurrency}, ${o.records} records of ${o.valueBytes} bytes, scrambled zipfian 0.99${errors ? `, ${errors} FAILED operations (not timed)` : ''}`)
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, etcdVersion, cells }, null, 2))
  if (errors) process.exitCode = 1
}

await main()
