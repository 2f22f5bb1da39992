import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Store } from '../../../node/storage/store.js'
import { Coordinator, type ReplicaChannel } from '../../../node/replication/coordinator.js'
import { HlcClock, mintCounter } from '../../../node/replication/version.js'

const dirs: string[] = []
const open = () => {
  const d = mkdtempSync(join(tmpdir(), 'ringkv-counter-'))
  dirs.push(d)
  return Store.open(d, { durable: false })
}

test('mintCounter is above the superseded counter and follows the clock', () => {
  assert.is(mintCounter(undefined, { wall: 1000, logical: 0, node: 'a' }), 1000 * 1024)
  assert.is(mintCounter(5_000_000, { wall: 1000, logical: 3, node: 'a' }), 5_000_001)
  assert.ok(mintCounter(undefined, { wall: 1001, logical: 0, node: 'a' }) > mintCounter(undefined, { wall: 1000, logical: 7, node: 'a' }))
  assert.ok(Number.isSafeInteger(mintCounter(undefined, { wall: Date.UTC(2200, 0), logical: 1023, node: 'a' })))
})

// Riak's KV679: a coordinator whose local copy of a key was purged must not mint a counter
// that an older version on another replica dominates.
test('a write after a purged tombstone is not lost to the tombstone on another replica', async () => {
  const A = await open()
  const B = await open()
  const stores: Record<string, Store> = { A, B }
  const channel: ReplicaChannel = {
    apply: async (id, key, rec) => {
      await stores[id]!.apply(key, rec)
    },
    read: async (id, key) => stores[id]!.get(key),
    forwardWrite: () => Promise.reject(new Error('A is a replica; nothing is forwarded')),
    forwardRead: () => Promise.reject(new Error('A is a replica; nothing is forwarded')),
  }
  const coord = new Coordinator({
    topology: { selfId: 'A', rf: 2, replicasFor: () => ({ natural: ['A', 'B'], pending: [] }), isUp: () => true },
    channel,
    local: A,
    clock: new HlcClock('A'),
    timeoutMs: 2000,
    hintWindowMs: 1000,
  })
  const k = Buffer.from('session-42')
  for (let i = 1; i <= 3; i++) await coord.write(k, { value: Buffer.from(`v${i}`) }, 'all')
  await coord.write(k, {}, 'all')
  await new Promise((r) => setTimeout(r, 5))
  assert.is(await A.purgeTombstones(Date.now()), 1, 'A purged its tombstone; B has not yet')
  await coord.write(k, { value: Buffer.from('NEW') }, 'quorum')
  const onB = await B.get(k)
  assert.is(onB!.tombstone, false, 'B took the new write over the tombstone')
  const r = await coord.read(k, 'quorum')
  assert.is(r?.value.toString(), 'NEW')
  await A.close()
  await B.close()
})

test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
test.run()
