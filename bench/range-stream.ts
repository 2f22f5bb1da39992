/**
 * One range stream, isolated: a source process (its own RocksDB, the real transport on a
 * loopback HTTP upgrade, registerRangeStreaming) and this process as the receiver. Per round:
 *   - `discard`: the stream is read and dropped — the ceiling set by the source's snapshot
 *     scan, the framing and the socket;
 *   - `apply`: fetchRange into a fresh store, as a bootstrapping node does.
 * Rounds alternate so machine drift hits both; the apply/discard ratio is what the receiving
 * side costs. Receiver CPU per MB (this process) is printed too.
 *
 *   node dist/bench/range-stream.js [--records 6000] [--value-bytes 8192] [--rounds 3]
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { Store } from '../node/storage/store.js'
import { fetchRange, registerRangeStreaming, STREAM_RANGE } from '../node/streaming/range-stream.js'
import { Transport } from '../node/transport/index.js'
import type { StoredRecord } from '../node/storage/record.js'

const { values: opt } = parseArgs({
  options: {
    records: { type: 'string', default: '6000' },
    'value-bytes': { type: 'string', default: '8192' },
    rounds: { type: 'string', default: '3' },
    serve: { type: 'boolean', default: false },
  },
})
const RECORDS = Number(opt.records)
const VALUE_BYTES = Number(opt['value-bytes'])
const logger = pino({ level: 'warn' })
const FULL = { start: 0n, end: 0n }

async function serve(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-bench-src-'))
  const store = await Store.open(dir, { durable: false })
  const value = Buffer.alloc(VALUE_BYTES, 'v')
  for (let i = 0; i < RECORDS; i += 500) {
    const batch: Promise<unknown>[] = []
    for (let j = i; j < Math.min(RECORDS, i + 500); j++) {
      const rec: StoredRecord = { value, contentType: 'application/octet-stream', vv: { src: j + 1 }, ts: { wall: 1_795_000_000_000 + j, logical: 0, node: 'src' }, tombstone: false }
      batch.push(store.apply(Buffer.from(`key-${j}`), rec))
    }
    await Promise.all(batch)
  }
  const transport = new Transport({ hostId: 'bench-src', logger })
  registerRangeStreaming(transport, store)
  const server = createServer((_q, s) => s.end())
  transport.attach(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n')
  process.stdin.resume()
  process.stdin.on('end', async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  })
}

async function drive(): Promise<void> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', '--records', String(RECORDS), '--value-bytes', String(VALUE_BYTES)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port))
    child.once('exit', (c) => reject(new Error(`source exited ${c}`)))
  })
  const address = `127.0.0.1:${port}`
  const transport = new Transport({ hostId: 'bench-sink', logger })
  const results: Record<'discard' | 'apply', { mbps: number; cpuMsPerMB: number }[]> = { discard: [], apply: [] }
  for (let round = 0; round < Number(opt.rounds); round++) {
    for (const kind of ['discard', 'apply'] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'ringkv-bench-sink-'))
      const sink = await Store.open(dir, { durable: false })
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      let bytes = 0
      if (kind === 'discard') {
        for await (const c of transport.requestStream<{ keys: Buffer[]; raws: Buffer[] }>(address, STREAM_RANGE, FULL, { timeoutMs: 30_000 })) {
          for (let i = 0; i < c.keys.length; i++) bytes += c.keys[i]!.length + c.raws[i]!.length
        }
      } else {
        bytes = await fetchRange(transport, address, FULL, sink, () => {})
      }
      const secs = (performance.now() - t0) / 1000
      const cpu = process.cpuUsage(cpu0)
      const mb = bytes / 1e6
      results[kind].push({ mbps: mb / secs, cpuMsPerMB: (cpu.user + cpu.system) / 1000 / mb })
      await sink.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  transport.close()
  child.stdin!.end()
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const row = (k: 'discard' | 'apply') => ({ mbps: median(results[k].map((r) => r.mbps)), cpu: median(results[k].map((r) => r.cpuMsPerMB)) })
  const d = row('discard')
  const a = row('apply')
  console.log(`records ${RECORDS} x ${VALUE_BYTES} B (${((RECORDS * VALUE_BYTES) / 1e6).toFixed(1)} MB), ${opt.rounds} rounds, medians`)
  console.log(`| mode | MB/s | receiver CPU ms per MB |`)
  console.log(`|---|---:|---:|`)
  console.log(`| discard (scan + transport) | ${d.mbps.toFixed(1)} | ${d.cpu.toFixed(2)} |`)
  console.log(`| apply (fetchRange into a store) | ${a.mbps.toFixed(1)} | ${a.cpu.toFixed(2)} |`)
  console.log(`apply / discard throughput: ${(a.mbps / d.mbps).toFixed(2)}x`)
}

if (opt.serve) await serve()
else await drive()
