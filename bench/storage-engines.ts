/**
 * Compares the RocksDB bindings the design names, on this machine, and the record codec
 * against msgpackr. Results go to docs/decisions/storage-engine.md.
 *
 *   node dist/bench/storage-engines.js                 engines + codec + sync placement
 *   node dist/bench/storage-engines.js --only codec    one section: engines | codec | sync
 *   node dist/bench/storage-engines.js --repeat 5      engine runs per binding (median; default 3)
 *
 * `rocksdb` and `rocksdb-native` are not dependencies of ringkv. To include them, install
 * them outside the project and point RINGKV_BENCH_MODULES at that node_modules:
 *   mkdir /tmp/bd && cd /tmp/bd && npm init -y && npm install --no-save rocksdb rocksdb-native
 *   RINGKV_BENCH_MODULES=/tmp/bd/node_modules node dist/bench/storage-engines.js
 * Missing candidates are reported as skipped. Each engine runs in its own child process so
 * its RSS is its own. Workloads are bounded (tens of thousands of ops).
 */
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Packr } from 'msgpackr'
import { encodeRecord, decodeRecord } from '../node/storage/codec.js'
import type { StoredRecord } from '../node/storage/record.js'
import { RocksEngine } from '../node/storage/rocks-engine.js'
import { Store } from '../node/storage/store.js'

const N_PUT = 20_000
const N_SYNC = 300
const N_GET = 20_000
const CONCURRENCY = 16
const VALUE = Buffer.alloc(100, 7)

const localRequire = createRequire(import.meta.url)
const benchRequire = process.env.RINGKV_BENCH_MODULES
  ? createRequire(join(process.env.RINGKV_BENCH_MODULES, 'noop.js'))
  : localRequire

interface Adapter {
  name: string
  pkgVersion: string
  rocksVersion: string
  put(k: Buffer, v: Buffer, sync: boolean): Promise<void>
  get(k: Buffer): Promise<Buffer | undefined>
  /** all entries in [gte, lt) through an iterator created before `between` runs */
  scan(gte: Buffer, lt: Buffer, between?: () => Promise<void>): Promise<Buffer[]>
  /** undefined when the binding has no DeleteRange */
  deleteRange?(gte: Buffer, lt: Buffer): Promise<void>
  hasSync: boolean
  close(): Promise<void>
}

/** A package's folder, found from its main file (some packages do not export package.json). */
function pkgDir(req: NodeRequire, name: string): string {
  let dir = dirname(req.resolve(name))
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== name) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json for ${name}`)
    dir = up
  }
  return dir
}

function headerVersion(dir: string): string {
  const h = join(dir, 'deps/rocksdb/rocksdb/include/rocksdb/version.h')
  if (!existsSync(h)) return 'unknown'
  const src = readFileSync(h, 'utf8')
  const get = (part: string) => new RegExp(`#define ROCKSDB_${part} (\\d+)`).exec(src)?.[1]
  return `${get('MAJOR')}.${get('MINOR')}.${get('PATCH')}`
}

/** rocksdb-native ships no headers; its prebuilt addon carries the RocksDB git tag. */
function binaryTag(dir: string): string {
  const pre = join(dir, 'prebuilds', `${process.platform}-${process.arch}`)
  if (!existsSync(pre)) return 'unknown'
  for (const f of readdirSync(pre)) {
    const m = /rocksdb_build_git_tag:v?([\w.]+)/.exec(readFileSync(join(pre, f)).toString('latin1'))
    if (m) return m[1]!
  }
  return 'unknown'
}

async function nxtedition(dir: string, syncOnMainThread: boolean): Promise<Adapter> {
  const pdir = pkgDir(localRequire, '@nxtedition/rocksdb')
  // ringkv's engine, as the node runs it; put() without sync uses the binding directly.
  const engine = await RocksEngine.open(dir, { syncInWorker: !syncOnMainThread })
  return {
    name: syncOnMainThread ? '@nxtedition/rocksdb (fsync on main thread)' : '@nxtedition/rocksdb',
    pkgVersion: JSON.parse(readFileSync(join(pdir, 'package.json'), 'utf8')).version,
    rocksVersion: headerVersion(pdir),
    put: (k, v, sync) => engine.write([{ type: 'put', key: k, value: v }], { sync }),
    get: (k) => engine.get(k),
    async scan(gte, lt, between) {
      const it = engine.iterate({ gte, lt })
      await between?.()
      const out: Buffer[] = []
      for await (const [k] of it) out.push(k)
      return out
    },
    deleteRange: (gte, lt) => engine.deleteRange(gte, lt),
    hasSync: true,
    close: () => engine.close(),
  }
}

type Cb<T> = (err: Error | null | undefined, v?: T) => void
function cb<T>(f: (done: Cb<T>) => void): Promise<T> {
  return new Promise((res, rej) => f((e, v) => (e ? rej(e) : res(v as T))))
}

async function levelRocksdb(dir: string): Promise<Adapter> {
  const pdir = pkgDir(benchRequire, 'rocksdb')
  const db = benchRequire('rocksdb')(dir)
  await cb<void>((d) => db.open({ createIfMissing: true }, d))
  return {
    name: 'rocksdb',
    pkgVersion: JSON.parse(readFileSync(join(pdir, 'package.json'), 'utf8')).version,
    rocksVersion: headerVersion(pdir),
    put: (k, v, sync) => cb<void>((d) => db.put(k, v, { sync }, d)),
    get: (k) =>
      new Promise((res, rej) =>
        db.get(k, { asBuffer: true }, (e: Error & { code?: string }, v: Buffer) => (e ? (/NotFound/i.test(e.message) ? res(undefined) : rej(e)) : res(v))),
      ),
    async scan(gte, lt, between) {
      const it = db.iterator({ gte, lt, keyAsBuffer: true, valueAsBuffer: true })
      await between?.()
      const out: Buffer[] = []
      for (;;) {
        const k = await new Promise<Buffer | undefined>((res, rej) => it.next((e: Error, key: Buffer) => (e ? rej(e) : res(key))))
        if (k === undefined) break
        out.push(k)
      }
      await cb<void>((d) => it.end(d))
      return out
    },
    // clear() exists but walks the range deleting key by key: not a range tombstone
    hasSync: true,
    close: () => cb<void>((d) => db.close(d)),
  }
}

async function rocksdbNative(dir: string): Promise<Adapter> {
  const pdir = pkgDir(benchRequire, 'rocksdb-native')
  const RocksDB = benchRequire('rocksdb-native')
  const db = new RocksDB(dir)
  await db.ready()
  return {
    name: 'rocksdb-native',
    pkgVersion: JSON.parse(readFileSync(join(pdir, 'package.json'), 'utf8')).version,
    rocksVersion: binaryTag(pdir),
    // its write options carry no sync flag: `sync` cannot be honoured
    put: (k, v) => db.put(k, v),
    get: async (k) => (await db.get(k)) ?? undefined,
    async scan(gte, lt, between) {
      const snap = db.snapshot()
      const out: Buffer[] = []
      const it = snap.iterator({ gte, lt })
      await between?.()
      for await (const { key } of it) out.push(key)
      await snap.close()
      return out
    },
    deleteRange: (gte, lt) => db.deleteRange(gte, lt),
    hasSync: false,
    close: () => db.close(),
  }
}

const key = (i: number) => Buffer.from(`key${String(i).padStart(8, '0')}`)

async function pool(n: number, conc: number, f: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) await f(next++)
    }),
  )
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await f()
  return performance.now() - t
}

/** Runs in a child: one engine, every measurement, one JSON line on stdout. */
async function runEngine(which: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-bench-engine-'))
  const rssBefore = process.memoryUsage().rss
  try {
    const a = which === 'nxtedition' ? await nxtedition(dir, false)
      : which === 'nxtedition-main' ? await nxtedition(dir, true)
      : which === 'rocksdb' ? await levelRocksdb(dir)
      : await rocksdbNative(dir)
    const rssOpen = process.memoryUsage().rss
    const putMs = await timed(() => pool(N_PUT, CONCURRENCY, (i) => a.put(key(i), VALUE, false)))
    let syncMs: number | undefined
    let syncConcMs: number | undefined
    if (a.hasSync) {
      syncMs = await timed(async () => {
        for (let i = 0; i < N_SYNC; i++) await a.put(key(N_PUT + i), VALUE, true)
      })
      syncConcMs = await timed(() => pool(N_SYNC, CONCURRENCY, (i) => a.put(key(N_PUT + N_SYNC + i), VALUE, true)))
    }
    const getMs = await timed(() => pool(N_GET, CONCURRENCY, (i) => a.get(key((i * 7919) % N_PUT))))
    let scanned = 0
    const scanMs = await timed(async () => {
      scanned = (await a.scan(key(0), key(N_PUT))).length
    })
    // Snapshot semantics: a key written after the iterator exists must not show up.
    const late = key(N_PUT / 2).subarray(0, -1)
    const lateKey = Buffer.concat([late, Buffer.from('5x')])
    const seen = await a.scan(key(0), key(N_PUT), () => a.put(lateKey, VALUE, false))
    const snapshot = !seen.some((k) => k.equals(lateKey))
    let deleteRange = false
    if (a.deleteRange) {
      await a.deleteRange(key(0), key(1000))
      deleteRange = (await a.get(key(10))) === undefined && (await a.get(key(1000))) !== undefined
    }
    const rss = process.memoryUsage().rss
    await a.close()
    console.log(
      JSON.stringify({
        name: a.name,
        pkgVersion: a.pkgVersion,
        rocksVersion: a.rocksVersion,
        putOps: Math.round(N_PUT / (putMs / 1000)),
        syncSeqOps: syncMs && Math.round(N_SYNC / (syncMs / 1000)),
        syncConcOps: syncConcMs && Math.round(N_SYNC / (syncConcMs / 1000)),
        getOps: Math.round(N_GET / (getMs / 1000)),
        scanKeysPerS: Math.round(scanned / (scanMs / 1000)),
        scanned,
        snapshot,
        deleteRange,
        sync: a.hasSync,
        rssOpenMiB: +((rssOpen - rssBefore) / 2 ** 20).toFixed(1),
        rssMiB: +(rss / 2 ** 20).toFixed(1),
      }),
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function available(name: string): boolean {
  try {
    pkgDir(benchRequire, name)
    return true
  } catch {
    return false
  }
}

/** Median of each numeric field over runs of the same engine; other fields from the first run. */
function medianRow(runs: Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...runs[0] }
  for (const [k, v] of Object.entries(runs[0]!)) {
    if (typeof v !== 'number') continue
    const xs = runs.map((r) => r[k] as number).sort((a, b) => a - b)
    out[k] = xs[Math.floor(xs.length / 2)]
  }
  return out
}

function engines(repeat: number): void {
  const self = fileURLToPath(import.meta.url)
  const rows: Record<string, unknown>[] = []
  const kinds = ['nxtedition', 'nxtedition-main', 'rocksdb', 'rocksdb-native']
  for (const k of kinds) {
    if ((k === 'rocksdb' || k === 'rocksdb-native') && !available(k)) {
      console.log(`skipped ${k}: not installed (see the header of bench/storage-engines.ts)`)
      continue
    }
    const runs: Record<string, unknown>[] = []
    for (let i = 0; i < repeat; i++) {
      const r = spawnSync(process.execPath, [self, '--child', k], { encoding: 'utf8', env: process.env, timeout: 180_000 })
      const line = r.stdout.trim().split('\n').pop() ?? ''
      try {
        runs.push(JSON.parse(line))
      } catch {
        console.log(`${k} failed: ${r.stderr || r.stdout}`)
      }
    }
    if (runs.length) rows.push(medianRow(runs))
  }
  console.log(`\nengines (median of ${repeat} runs): ${N_PUT} puts / ${N_GET} gets of 100-byte values at concurrency ${CONCURRENCY}; ${N_SYNC} sync puts sequential and at concurrency ${CONCURRENCY}`)
  console.log('| binding | package | RocksDB | put ops/s | sync put ops/s (seq / conc 16) | get ops/s | scan keys/s | snapshot iterator | deleteRange | sync mode | RSS after open (MiB) | RSS at end (MiB) |')
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const r of rows) {
    const sync = r.sync ? `${r.syncSeqOps} / ${r.syncConcOps}` : 'n/a'
    console.log(`| ${r.name} | ${r.pkgVersion} | ${r.rocksVersion} | ${r.putOps} | ${sync} | ${r.getOps} | ${r.scanKeysPerS} | ${r.snapshot ? 'yes' : 'no'} | ${r.deleteRange ? 'yes' : 'no'} | ${r.sync ? 'yes' : 'no'} | ${r.rssOpenMiB} | ${r.rssMiB} |`)
  }
}

function sampleRecord(valueBytes: number, vvEntries: number): StoredRecord {
  const vv: Record<string, number> = {}
  for (let i = 0; i < vvEntries; i++) vv[`node${i}0000000000`.slice(0, 16)] = 1000 + i
  return {
    value: Buffer.alloc(valueBytes, 1),
    contentType: 'application/octet-stream',
    vv,
    ts: { wall: 1_760_000_000_000, logical: 3, node: 'node00000000000a' },
    tombstone: false,
    expiresAt: 1_760_000_100_000,
  }
}

function codec(): void {
  const packr = new Packr({ useRecords: false })
  const N = 200_000
  console.log(`\ncodec: ${N} encodes and decodes each, CPU ns/op, best of 5 rounds (msgpackr: Packr({useRecords:false}) of the record object)`)
  console.log('| record | hand encode | hand decode | msgpackr encode | msgpackr decode | hand bytes | msgpackr bytes |')
  console.log('|---|---|---|---|---|---|---|')
  for (const [vb, vve] of [[16, 3], [100, 3], [1000, 3], [100, 10]] as const) {
    const rec = sampleRecord(vb, vve)
    // CPU time of this process, not wall time: other work on a shared machine steals wall
    // time, not CPU time; best of 5 rounds
    const run = (f: () => unknown) => {
      for (let i = 0; i < 20_000; i++) f() // warm up
      let best = Infinity
      for (let r = 0; r < 5; r++) {
        const t = process.cpuUsage()
        for (let i = 0; i < N / 5; i++) f()
        const d = process.cpuUsage(t)
        best = Math.min(best, ((d.user + d.system) * 1000) / (N / 5))
      }
      return best
    }
    const hand = encodeRecord(rec)
    const mp = packr.pack(rec)
    const he = run(() => encodeRecord(rec))
    const hd = run(() => decodeRecord(hand))
    const me = run(() => packr.pack(rec))
    const md = run(() => packr.unpack(mp))
    console.log(`| ${vb} B value, ${vve} vv entries | ${he.toFixed(0)} | ${hd.toFixed(0)} | ${me.toFixed(0)} | ${md.toFixed(0)} | ${hand.length} | ${mp.length} |`)
  }
}

/** Durable group commit through the Store, fsync on the main thread vs on the sync thread. */
async function syncPlacement(): Promise<void> {
  console.log('\nstore: 2000 applies at concurrency 64; event-loop stall = longest gap seen by a 1 ms timer')
  console.log('| fsync on | applies/s | write calls | longest event-loop stall (ms) |')
  console.log('|---|---|---|---|')
  for (const mode of ['sync thread', 'main thread', 'none (durable: false)']) {
    const dir = mkdtempSync(join(tmpdir(), 'ringkv-bench-store-'))
    const durable = mode !== 'none (durable: false)'
    const store = await Store.open(dir, { durable, rocks: { syncInWorker: mode === 'sync thread' } })
    let last = performance.now()
    let worst = 0
    const timer = setInterval(() => {
      const now = performance.now()
      worst = Math.max(worst, now - last)
      last = now
    }, 1)
    const rec = sampleRecord(100, 3)
    const ms = await timed(() => pool(2000, 64, (i) => store.apply(key(i), rec)))
    clearInterval(timer)
    console.log(`| ${mode} | ${Math.round(2000 / (ms / 1000))} | ${store.writeStats().writeCalls} | ${worst.toFixed(1)} |`)
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const args = process.argv.slice(2)
const flag = (name: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
if (args[0] === '--child') {
  await runEngine(args[1]!)
} else {
  const only = flag('--only')
  const repeat = Number(flag('--repeat') ?? 3)
  if (!only || only === 'engines') engines(repeat)
  if (!only || only === 'codec') codec()
  if (!only || only === 'sync') await syncPlacement()
}
