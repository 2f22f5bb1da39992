/**
 * Internode transport vs HTTP keep-alive, same server process, same invocation.
 *
 * A child process serves both on one port: the transport on the HTTP upgrade, and a bare
 * node:http handler for `POST /bench/echo` (no framework, the fastest HTTP path this project
 * has). Both decode a small MessagePack payload and echo it. This process drives them with
 * the transport client and an undici Pool, alternating runs so drift in machine load hits both.
 *
 *   node dist/bench/transport.js [--duration-ms 1500] [--rounds 3] [--concurrency 1,64] [--kinds transport,http]
 *
 * `--kinds transport` alone is for profiling one side (node --cpu-prof); ratios need both.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { Pool } from 'undici'
import { decodePayload, encodePayload, Transport } from '../node/transport/index.js'

interface Run {
  kind: 'transport' | 'http'
  concurrency: number
  ops: number
  seconds: number
  p50: number
  p99: number
}

const payload = { key: Buffer.from('user:0000001234'), value: Buffer.alloc(64, 7), ts: { wall: 1_795_000_000_000, logical: 3, node: 'host-a' } }

async function serve(): Promise<void> {
  const transport = new Transport({ hostId: 'bench-server', logger: pino({ level: 'warn' }) })
  transport.on('echo', (p) => p)
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/bench/echo') {
      res.statusCode = 404
      return void res.end()
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = encodePayload(decodePayload(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
      res.writeHead(200, { 'content-type': 'application/msgpack', 'content-length': body.length })
      res.end(body)
    })
  })
  transport.attach(server)
  server.keepAliveTimeout = 60_000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n')
  // The parent closes our stdin when it is done (or dies); then we go too.
  process.stdin.resume()
  process.stdin.on('end', () => process.exit(0))
}

function startServer(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const line = out.split('\n')[0]
      if (out.includes('\n')) resolve({ child, port: JSON.parse(line!).port })
    })
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)))
  })
}

/** Keep `concurrency` calls outstanding for `durationMs`; record each call's latency. */
async function drive(kind: Run['kind'], concurrency: number, durationMs: number, call: () => Promise<unknown>): Promise<Run> {
  const lat: number[] = []
  const started = performance.now()
  const until = started + durationMs
  async function worker(): Promise<void> {
    while (performance.now() < until) {
      const t = performance.now()
      await call()
      lat.push(performance.now() - t)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - started) / 1000
  lat.sort((a, b) => a - b)
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!
  return { kind, concurrency, ops: lat.length, seconds, p50: q(0.5), p99: q(0.99) }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'boolean', default: false },
      'duration-ms': { type: 'string', default: '1500' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '1,64' },
      kinds: { type: 'string', default: 'transport,http' },
    },
  })
  if (values.serve) return serve()
  const durationMs = Number(values['duration-ms'])
  const rounds = Number(values.rounds)
  const levels = values.concurrency.split(',').map(Number)
  const kinds = values.kinds.split(',') as Array<Run['kind']>

  const { child, port } = await startServer()
  const address = `127.0.0.1:${port}`
  const transport = new Transport({ hostId: 'bench-client', logger: pino({ level: 'warn' }) })
  const pool = new Pool(`http://${address}`, { connections: Math.max(...levels), pipelining: 1 })
  const body = encodePayload(payload)
  const viaTransport = () => transport.request(address, 'echo', payload)
  const viaHttp = async () => {
    const res = await pool.request({ path: '/bench/echo', method: 'POST', body, headers: { 'content-type': 'application/msgpack' } })
    const buf = Buffer.from(await res.body.arrayBuffer())
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`)
    return decodePayload(buf)
  }
  // Both replies must be the payload, or the comparison means nothing.
  for (const r of [await viaTransport(), await viaHttp()] as Array<typeof payload>) {
    if (!r.key.equals(payload.key) || !r.value.equals(payload.value)) throw new Error('echo mismatch')
  }

  const runs: Run[] = []
  try {
    for (const c of levels) {
      for (const kind of kinds) await drive(kind, c, 300, kind === 'transport' ? viaTransport : viaHttp) // warm-up
      for (let r = 0; r < rounds; r++) {
        for (const kind of r % 2 === 0 ? kinds : [...kinds].reverse()) {
          const run = await drive(kind, c, durationMs, kind === 'transport' ? viaTransport : viaHttp)
          runs.push(run)
          console.error(`  c=${c} ${kind.padEnd(9)} ${(run.ops / run.seconds).toFixed(0).padStart(7)} ops/s  p50 ${run.p50.toFixed(3)} ms  p99 ${run.p99.toFixed(3)} ms`)
        }
      }
    }
  } finally {
    transport.close()
    await pool.close()
    child.stdin!.end()
  }

  if (kinds.length < 2) return
  console.log(`\n| concurrency | transport ops/s | HTTP ops/s | ratio | transport p99 ms | HTTP p99 ms | p99 ratio (HTTP/transport) |`)
  console.log(`|---|---|---|---|---|---|---|`)
  for (const c of levels) {
    const median = (kind: Run['kind'], f: (r: Run) => number) => {
      const xs = runs.filter((r) => r.kind === kind && r.concurrency === c).map(f).sort((a, b) => a - b)
      return xs[Math.floor(xs.length / 2)]!
    }
    const tOps = median('transport', (r) => r.ops / r.seconds)
    const hOps = median('http', (r) => r.ops / r.seconds)
    const tP99 = median('transport', (r) => r.p99)
    const hP99 = median('http', (r) => r.p99)
    console.log(`| ${c} | ${tOps.toFixed(0)} | ${hOps.toFixed(0)} | ${(tOps / hOps).toFixed(2)}x | ${tP99.toFixed(3)} | ${hP99.toFixed(3)} | ${(hP99 / tP99).toFixed(2)}x |`)
  }
  console.log(`\n(median of ${rounds} alternating ${durationMs} ms runs per cell; server in a child process; payload ${body.length} bytes)`)
}

await main()
