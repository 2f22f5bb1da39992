/**
 * YCSB-style workloads against a 3-node ringkv cluster (RF 3, QUORUM) and a 3-member etcd
 * cluster, in one invocation, alternating system by system within each workload.
 *
 *   node dist/bench/ycsb.js [--seconds 12] [--warmup 2] [--concurrency 32] [--records 10000]
 *                           [--value-bytes 100] [--distribution zipfian|uniform] [--workloads A,B,C] [--systems ringkv,ringkv-durable,etcd]
 *                           [--seed ycsb] [--cpu-prof DIR] [--node-flags=--perf-basic-prof] [--json FILE]
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
 * `--cpu-prof DIR` writes V8 CPU profiles of the ringkv nodes into DIR when they stop;
 * `--node-flags` passes runtime flags to the ringkv nodes (e.g. --perf-basic-prof for perf).
 *
 *   node dist/bench/ycsb.js --summarize run1.json run2.json run3.json
 *
 * sums up several `--json` outputs: per cell the median across runs and the range, with the
 * ratios to etcd taken within each run (the systems of one run shared the machine's state).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { createRng } from '../node/util/rng.js'
import { runClosedLoop, runCount, type LoopResult, type Operation } from './lib/closed-loop.js'
import { EtcdCluster } from './lib/etcd.js'
import { KeySpace, startEtcd, startRingkv, type KvTarget } from './lib/kv-targets.js'
import { cpuSeconds } from './lib/proc-cpu.js'
import { ScrambledZipfianChooser, UniformChooser, type KeyChooser } from './lib/zipfian.js'

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
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      summarize: { type: 'boolean', default: false },
      seconds: { type: 'string', default: '12' },
      warmup: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '32' },
      records: { type: 'string', default: '10000' },
      'value-bytes': { type: 'string', default: '100' },
      workloads: { type: 'string', default: 'A,B,C' },
      systems: { type: 'string', default: SYSTEMS.join(',') },
      seed: { type: 'string', default: 'ycsb' },
      distribution: { type: 'string', default: 'zipfian' },
      'cpu-prof': { type: 'string' },
      'node-flags': { type: 'string', default: '' },
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
  if (values.distribution !== 'zipfian' && values.distribution !== 'uniform') throw new Error(`--distribution must be zipfian or uniform, got ${values.distribution}`)
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
    distribution: values.distribution === 'uniform' ? 'uniform' as const : 'zipfian' as const,
    cpuProf: values['cpu-prof'],
    nodeFlags: values['node-flags'].split(' ').filter(Boolean),
    json: values.json,
    summarize: values.summarize ? positionals : undefined,
  }
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

function workloadOps(t: KvTarget, ks: KeySpace, workload: string, seed: string, distribution: 'zipfian' | 'uniform'): () => Operation<OpType> {
  // Same seed per workload, so every system draws the same key and op sequence.
  const rng = createRng(`${seed}/${workload}`)
  const keys: KeyChooser = distribution === 'zipfian' ? new ScrambledZipfianChooser(ks.records, rng.fork('keys')) : new UniformChooser(ks.records, rng.fork('keys'))
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** median (min–max) */
function spread(xs: number[], digits: number, unit = ''): string {
  if (xs.length === 1) return `${fmt(xs[0]!, digits)}${unit}`
  return `${fmt(median(xs), digits)}${unit} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`
}

function summarizeRuns(files: string[], baseline: string): string {
  const runs = files.map((f) => (JSON.parse(readFileSync(f, 'utf8')) as { cells: Cell[] }).cells)
  const lines = [
    `| workload | op | system | ops/s | p50 ms | p99 ms | server CPU ms/op | ops/s ÷ etcd | p99 ÷ etcd p99 | CPU/op ÷ etcd |`,
    '|---|---|---|---|---|---|---|---|---|---|',
  ]
  const first = runs[0]!
  const cpuPerOp = (c: Cell) => (c.serverCpuSeconds * 1000) / (c.ops.read.count + c.ops.update.count)
  for (const w of [...new Set(first.map((c) => c.workload))]) {
    for (const t of OP_TYPES) {
      for (const system of [...new Set(first.map((c) => c.system))]) {
        const cells = runs.map((r) => r.find((c) => c.workload === w && c.system === system)).filter((c): c is Cell => !!c && c.ops[t].count > 0)
        if (!cells.length) continue
        const ratios = { ops: [] as number[], p99: [] as number[], cpu: [] as number[] }
        for (const r of runs) {
          const c = r.find((x) => x.workload === w && x.system === system)
          const b = r.find((x) => x.workload === w && x.system === baseline)
          if (!c || !b || system === baseline || !c.ops[t].count || !b.ops[t].count) continue
          ratios.ops.push(c.ops[t].opsPerSec / b.ops[t].opsPerSec)
          ratios.p99.push(c.ops[t].p99 / b.ops[t].p99)
          ratios.cpu.push(cpuPerOp(c) / cpuPerOp(b))
        }
        const vs = ratios.ops.length ? [spread(ratios.ops, 2, 'x'), spread(ratios.p99, 2, 'x'), spread(ratios.cpu, 2, 'x')] : ['', '', '']
        lines.push(`| ${w} | ${t} | ${system} | ${spread(cells.map((c) => c.ops[t].opsPerSec), 0)} | ${spread(cells.map((c) => c.ops[t].p50), 1)} | ${spread(cells.map((c) => c.ops[t].p99), 1)} | ${spread(cells.map(cpuPerOp), 3)} | ${vs.join(' | ')} |`)
      }
    }
  }
  return `${lines.join('\n')}\n\n${runs.length} runs: median (min–max); ratios are taken within each run, then summarized.`
}

async function main(): Promise<void> {
  const o = parse()
  if (o.summarize) return void console.log(summarizeRuns(o.summarize, 'etcd'))
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
        : await startRingkv({ nodes: 3, rf: 3, durable: s === 'ringkv-durable', nodeFlags: o.nodeFlags, ...(o.cpuProf ? { cpuProfDir: o.cpuProf } : {}) }, ks, { ...client, consistency: 'quorum', name: s })
      targets.push(t)
      log(`${s} up in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${t.urls.join(' ')} (pids ${t.pids.join(' ')})`)
    }
    for (const t of targets) {
      const { seconds } = await runCount(o.records, o.concurrency, (i) => t.put(i, i % ks.values.length))
      log(`load ${t.name}: ${o.records} records in ${seconds.toFixed(1)} s (${(o.records / seconds).toFixed(0)} inserts/s)`)
    }
    for (const w of o.workloads) {
      for (const t of targets) {
        if (o.warmup > 0) await runClosedLoop({ concurrency: o.concurrency, durationMs: o.warmup * 1000, types: OP_TYPES, next: workloadOps(t, ks, w, `${o.seed}/warmup`, o.distribution), maxErrors: 100 })
        const cpu0 = cpuSeconds(t.pids)
        const r = await runClosedLoop({ concurrency: o.concurrency, durationMs: o.seconds * 1000, types: OP_TYPES, next: workloadOps(t, ks, w, o.seed, o.distribution), maxErrors: 1000 })
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
  console.log(`\n${o.seconds} s per run after ${o.warmup} s warm-up, concurrency ${o.concurrency}, ${o.records} records of ${o.valueBytes} bytes, ${o.distribution === 'zipfian' ? 'scrambled zipfian 0.99' : 'uniform keys'}${errors ? `, ${errors} FAILED operations (not timed)` : ''}`)
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, etcdVersion, cells }, null, 2))
  if (errors) process.exitCode = 1
}

await main()
