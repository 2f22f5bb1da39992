import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Store, settledAt } from '../../../node/storage/store.js'
import { tombstone, value } from './fixture.js'

const T0 = 1_700_000_000_000
const dirs: string[] = []
test.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

async function open(): Promise<Store> {
  const d = mkdtempSync(join(tmpdir(), 'ringkv-purge-'))
  dirs.push(d)
  return Store.open(d, { durable: false })
}

test('settledAt: tombstones when written, expiring records at the later of write and expiry, live never', () => {
  assert.is(settledAt(tombstone({ a: 1 }, T0)), T0)
  assert.is(settledAt(value('v', { a: 1 }, T0, { expiresAt: T0 + 50 })), T0 + 50)
  assert.is(settledAt(value('v', { a: 1 }, T0, { expiresAt: T0 - 50 })), T0)
  assert.is(settledAt(value('v', { a: 1 }, T0)), undefined)
})

test('purgeTombstones drops exactly the records settled before the cutoff', async () => {
  const s = await open()
  const k = (n: string) => Buffer.from(n)
  await s.apply(k('old-del'), tombstone({ a: 1 }, T0))
  await s.apply(k('new-del'), tombstone({ a: 1 }, T0 + 10_000))
  await s.apply(k('expired'), value('v', { a: 1 }, T0 - 5000, { expiresAt: T0 - 1 }))
  await s.apply(k('expires-later'), value('v', { a: 1 }, T0 - 5000, { expiresAt: T0 + 20_000 }))
  await s.apply(k('live'), value('v', { a: 1 }, 1))
  assert.is(await s.purgeTombstones(T0 + 1), 2)
  assert.is(await s.get(k('old-del')), undefined)
  assert.is(await s.get(k('expired')), undefined)
  for (const n of ['new-del', 'expires-later', 'live']) assert.ok(await s.get(k(n)), n)
  assert.is(await s.purgeTombstones(T0 + 1), 0)
  await s.close()
})

test('a record rewritten while the purge runs is kept', async () => {
  const s = await open()
  const n = 3000
  for (let i = 0; i < n; i++) await s.apply(Buffer.from(`k${i}`), tombstone({ a: 1 }, T0))
  // rewrite every key with a newer live version while the purge scans its snapshot
  const purge = s.purgeTombstones(T0 + 1)
  await Promise.all(Array.from({ length: n }, (_, i) => s.apply(Buffer.from(`k${i}`), value('back', { a: 2 }, T0 + 5))))
  const purged = await purge
  let live = 0
  for await (const e of s.scanRange(0n, 0n)) {
    assert.not.ok((await s.get(e.key))!.tombstone)
    live++
  }
  // every key is either purged before its rewrite (then the rewrite stored it) or kept as rewritten
  assert.is(live, n)
  assert.ok(purged < n)
  await s.close()
})

test.run()
