/**
 * Real-process durability of one node: SIGKILL in the middle of a stream of writes, restart
 * on the same data dir, and every acknowledged write is there with its value. And a data dir
 * belongs to one process: a second node on it is refused.
 */
import { createHash } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Pool } from 'undici'
import { freePort } from '../../helpers/cluster.js'
import { assertOneLine, http, runCli, singleNode } from './helpers.js'

/** The value written as version `v` of key `k`: derived, so a reader can tell which write it saw. */
function valueOf(k: number, v: number): Buffer {
  const h = createHash('sha256').update(`${k}:${v}`).digest()
  return Buffer.concat([Buffer.from(`${k}:${v}:`), h, Buffer.alloc((k * 37) % 700, v)])
}

interface Ledger {
  /** key → last acknowledged version */
  acked: Map<number, number>
  /** key → version in flight when the node died (may or may not have landed) */
  inFlight: Map<number, number>
  ackCount: number
}

/**
 * `workers` writers, each owning its keys (so the order of versions per key is known), writing
 * versions 0,1,2… of keys round-robin until the node dies under them.
 */
async function writeUntilDead(url: string, workers: number, keysPerWorker: number, onAck: (n: number) => void): Promise<Ledger> {
  const pool = new Pool(url, { connections: workers, pipelining: 1 })
  const ledger: Ledger = { acked: new Map(), inFlight: new Map(), ackCount: 0 }
  const worker = async (w: number) => {
    for (let round = 0; ; round++) {
      for (let i = 0; i < keysPerWorker; i++) {
        const k = w * keysPerWorker + i
        ledger.inFlight.set(k, round)
        let status: number
        try {
          const r = await pool.request({ path: `/v1/kv/key-${k}`, method: 'PUT', body: valueOf(k, round), headers: { 'content-type': 'application/x-test' } })
          await r.body.dump()
          status = r.statusCode
        } catch {
          return // the node is gone; this write's fate is unknown
        }
        if (status !== 204) throw new Error(`PUT key-${k} answered ${status}`)
        ledger.inFlight.delete(k)
        ledger.acked.set(k, round)
        onAck(++ledger.ackCount)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)))
  await pool.destroy()
  return ledger
}

async function checkLedger(url: string, ledger: Ledger): Promise<{ inFlightLanded: number }> {
  let inFlightLanded = 0
  const keys = new Set([...ledger.acked.keys(), ...ledger.inFlight.keys()])
  for (const k of keys) {
    const r = await http(`${url}/v1/kv/key-${k}`)
    const acked = ledger.acked.get(k)
    const pending = ledger.inFlight.get(k)
    if (r.status === 404) {
      assert.is(acked, undefined, `key-${k}: acknowledged version ${acked} is lost`)
      continue
    }
    assert.is(r.status, 200, `key-${k}`)
    assert.is(r.headers['content-type'], 'application/x-test')
    // Either the acknowledged version or the one that was in flight: nothing older, nothing torn.
    const candidates = [acked, pending].filter((v) => v !== undefined) as number[]
    const match = candidates.find((v) => valueOf(k, v).equals(r.body))
    assert.ok(match !== undefined, `key-${k}: stored value is none of versions ${candidates.join(', ')} (got ${r.body.subarray(0, 20).toString()}…)`)
    if (match !== acked) inFlightLanded++
  }
  return { inFlightLanded }
}

for (const durable of [false, true]) {
  test(`SIGKILL mid-stream (--durable ${durable}): after a restart every acknowledged write is there with its value`, async () => {
    const { cluster, node, url } = await singleNode(['--durable', String(durable)])
    try {
      const target = durable ? 1500 : 3000
      let killed: Promise<void> | undefined
      const ledger = await writeUntilDead(url, 16, 150, (n) => {
        if (n === target) killed = node.kill9()
      })
      await killed
      assert.ok(ledger.ackCount >= target, `${ledger.ackCount} writes acknowledged`)
      assert.ok(ledger.inFlight.size > 0, 'writes were in flight when the node died')
      const exit = await node.exit!
      assert.is(exit.signal, 'SIGKILL')

      node.start()
      await node.ready()
      const { inFlightLanded } = await checkLedger(url, ledger)
      console.log(`    durable=${durable}: ${ledger.ackCount} acknowledged writes to ${ledger.acked.size} keys all present; ${inFlightLanded}/${ledger.inFlight.size} unacknowledged in-flight writes landed`)
    } finally {
      await cluster.destroy()
    }
  })
}

test('a second node on a data dir already in use is refused: non-zero exit, one line on stderr', async () => {
  const { cluster, node, url } = await singleNode()
  try {
    await http(`${url}/v1/kv/still-here`, { method: 'PUT', body: 'yes' })
    const r = await runCli([
      'node', '--replication-factor', '1', '--data-dir', node.spec.dataDir,
      '--listen', `127.0.0.1:${await freePort()}`, '--peer-listen', `127.0.0.1:${await freePort()}`, '--advertise', '127.0.0.1:1',
    ], { timeoutMs: 15_000 })
    assertOneLine(r, /data dir .* is already in use by another ringkv node.*(stop|choose)/, 'second node on the same data dir')
    assert.ok(r.ms < 10_000, `refused in ${r.ms.toFixed(0)} ms`)
    // The first node is untouched.
    assert.ok(node.running)
    assert.is((await http(`${url}/v1/kv/still-here`)).body.toString(), 'yes')
    assert.is((await http(`${url}/v1/kv/new`, { method: 'PUT', body: 'ok' })).status, 204)
  } finally {
    await cluster.destroy()
  }
})

test.run()
