import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { Store } from '../../../node/storage/store.js'
import { RocksEngine } from '../../../node/storage/rocks-engine.js'
import { decodeRecord } from '../../../node/storage/codec.js'
import type { StoredRecord } from '../../../node/storage/record.js'
import { TOKEN_MAX, tokenOf } from '../../../node/ring/token.js'
import { createRng } from '../../../node/util/rng.js'
import { assertOpenFails, cleanupDirs, inUseMessage, record, tempDir } from './helpers.js'

test.after(cleanupDirs)

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

const hex = (b: Buffer) => b.toString('hex')

test('get/apply: absent, stored, causally newer replaces, older is ignored', async () => {
  const s = await Store.open(tempDir('apply'), { durable: false })
  const k = Buffer.from('k')
  assert.is(await s.get(k), undefined)
  let r = await s.apply(k, record('v1', { a: 1 }))
  assert.equal([r.changed, r.concurrent], [true, false])
  r = await s.apply(k, record('v2', { a: 2 }, 1)) // older wall clock, causally newer
  assert.equal([r.changed, r.stored.value.toString()], [true, 'v2'])
  r = await s.apply(k, record('v1', { a: 1 }))
  assert.equal([r.changed, r.stored.value.toString()], [false, 'v2'])
  r = await s.apply(k, record('v2', { a: 2 }, 1)) // the same version again
  assert.is(r.changed, false)
  r = await s.apply(k, record('other', { b: 1 }, 2_000_000_000_000)) // concurrent, greater HLC
  assert.equal([r.changed, r.concurrent, r.stored.value.toString()], [true, true, 'other'])
  assert.equal((await s.get(k))!.vv, { a: 2, b: 1 })
  await s.close()
})

test('concurrent applies to one key serialise: no merge is lost', async () => {
  const s = await Store.open(tempDir('one-key'), { durable: true })
  const k = Buffer.from('hot')
  // 40 mutually concurrent versions: the stored vector must end up with all 40 entries. A
  // read-resolve-write race would overwrite some merges with stale ones.
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => s.apply(k, record(`v${i}`, { [`node${i}`]: 1 }, 1_000 + i))))
  const final = (await s.get(k))!
  assert.is(Object.keys(final.vv).length, 40)
  assert.is(final.value.toString(), 'v39') // greatest HLC
  assert.ok(results.filter((r) => r.concurrent).length >= 39)
  await s.close()
})

test('group commit: concurrent durable writes share few fsyncs', async () => {
  const s = await Store.open(tempDir('group'), { durable: true })
  const before = s.writeStats()
  const N = 300
  await Promise.all(Array.from({ length: N }, (_, i) => s.apply(Buffer.from(`key-${i}`), record(`value-${i}`))))
  const st = s.writeStats()
  const syncs = st.syncWrites - before.syncWrites
  assert.is(st.opsWritten - before.opsWritten, N)
  assert.ok(syncs >= 1 && syncs <= N / 10, `${N} writes took ${syncs} sync writes`)
  assert.ok(st.largestBatch > 10, `largest batch ${st.largestBatch}`)
  for (let i = 0; i < N; i += 37) assert.is((await s.get(Buffer.from(`key-${i}`)))!.value.toString(), `value-${i}`)
  await s.close()
})

test('non-durable stores make no sync writes except for meta', async () => {
  const s = await Store.open(tempDir('fast'), { durable: false })
  const base = s.writeStats().syncWrites
  await Promise.all(Array.from({ length: 50 }, (_, i) => s.apply(Buffer.from(`k${i}`), record('v'))))
  assert.is(s.writeStats().syncWrites, base)
  await s.putMeta('tokens', Buffer.from('1,2,3'))
  assert.is(s.writeStats().syncWrites, base + 1)
  assert.is((await s.getMeta('tokens'))!.toString(), '1,2,3')
  assert.is(await s.getMeta('absent'), undefined)
  await s.close()
})

/** 1000 distinct random keys of 1..24 bytes. */
async function filled(label: string): Promise<{ s: Store; keys: Buffer[] }> {
  const s = await Store.open(tempDir(label), { durable: false })
  const unique = new Map<string, Buffer>()
  while (unique.size < 1000) {
    const k = randomBytes(1 + (randomBytes(1)[0]! % 24))
    unique.set(hex(k), k)
  }
  const keys = [...unique.values()]
  await Promise.all(keys.map((k) => s.apply(k, record(hex(k)))))
  return { s, keys }
}

/** Written independently of keys.ts: t in (start, end], start == end is the whole ring. */
function expectIn(t: bigint, start: bigint, end: bigint): boolean {
  if (start === end) return true
  return start < end ? start < t && t <= end : t > start || t <= end
}

function ranges(keys: Buffer[]): [bigint, bigint][] {
  const rng = createRng('scan-ranges')
  const tok = () => BigInt(rng.int(2 ** 30)) * (TOKEN_MAX / 2n ** 30n)
  const sorted = keys.map(tokenOf).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const out: [bigint, bigint][] = [
    [0n, 0n],
    [TOKEN_MAX, TOKEN_MAX],
    [0n, TOKEN_MAX],
    [TOKEN_MAX, 0n],
    [TOKEN_MAX / 2n, TOKEN_MAX / 4n], // wraps
    [sorted[100]!, sorted[200]!], // ends exactly on stored tokens
    [sorted[900]!, sorted[50]!], // wraps, ends on stored tokens
  ]
  for (let i = 0; i < 12; i++) out.push([tok(), tok()])
  return out
}

test('scanRange returns exactly the keys whose token is in (start, end], wrap-around included', async () => {
  const { s, keys } = await filled('scan')
  for (const [start, end] of ranges(keys)) {
    const got = await collect(s.scanRange(start, end))
    const want = new Set(keys.filter((k) => expectIn(tokenOf(k), start, end)).map(hex))
    assert.is(got.length, want.size, `(${start}, ${end}]`)
    for (const e of got) {
      assert.ok(want.has(hex(e.key)), `unexpected key in (${start}, ${end}]`)
      assert.is(e.token, tokenOf(e.key))
      assert.is(decodeRecord(e.raw).value.toString(), hex(e.key))
    }
    // token order within each interval: the wrapped part (from token 0) first
    const toks = got.map((e) => e.token)
    if (start < end || start === end) for (let i = 1; i < toks.length; i++) assert.ok(toks[i - 1]! <= toks[i]!)
  }
  await s.close()
})

test('dropRange removes exactly the keys of the range', async () => {
  const { s, keys } = await filled('drop')
  const sorted = keys.map(tokenOf).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const [start, end] = [sorted[800]!, sorted[150]!] // wraps
  await s.dropRange(start, end)
  for (const k of keys) {
    const present = (await s.get(k)) !== undefined
    assert.is(present, !expectIn(tokenOf(k), start, end))
  }
  assert.is((await collect(s.scanRange(start, end))).length, 0)
  assert.is((await collect(s.scanRange(0n, 0n))).length, keys.filter((k) => !expectIn(tokenOf(k), start, end)).length)
  await s.close()
})

test('scanRange reads a snapshot taken at the call; writes meanwhile are not seen and not blocked', async () => {
  const { s, keys } = await filled('snapshot')
  const last = keys.reduce((a, b) => (tokenOf(a) > tokenOf(b) ? a : b))
  const scan = s.scanRange(0n, 0n)
  // written after the call, before iteration starts
  await s.apply(Buffer.from('born-after-scan'), record('x'))
  const it = scan[Symbol.asyncIterator]()
  const first = await it.next()
  assert.not.ok(first.done)
  // written while the iterator is open: must complete, must not show up
  const t0 = Date.now()
  await s.apply(last, record('overwritten', { n1: 2 }))
  await s.apply(Buffer.from('born-during-scan'), record('y'))
  assert.ok(Date.now() - t0 < 2000)
  const rest: { key: Buffer; raw: Buffer }[] = [first.value]
  for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value)
  assert.is(rest.length, keys.length)
  const seenLast = rest.find((e) => e.key.equals(last))!
  assert.is(decodeRecord(seenLast.raw).value.toString(), hex(last))
  assert.not.ok(rest.some((e) => e.key.toString() === 'born-after-scan' || e.key.toString() === 'born-during-scan'))
  // and the store itself has the new writes
  assert.is((await s.get(last))!.value.toString(), 'overwritten')
  assert.is((await collect(s.scanRange(0n, 0n))).length, keys.length + 2)
  await s.close()
})

test('scan iterators are released on break, on return before iterating, and at the end', async () => {
  const dir = tempDir('release')
  const engine = await RocksEngine.open(dir)
  const s = await Store.open(dir, { durable: false, engine })
  await Promise.all(Array.from({ length: 200 }, (_, i) => s.apply(Buffer.from(`k${i}`), record('v'))))
  const wrap: [bigint, bigint] = [TOKEN_MAX / 2n, TOKEN_MAX / 4n] // two engine iterators
  for await (const _ of s.scanRange(...wrap)) break
  assert.is(engine.openIterators, 0, 'after break')
  const unstarted = s.scanRange(...wrap)
  assert.is(engine.openIterators, 2, 'snapshots are taken at the call')
  await unstarted[Symbol.asyncIterator]().return!()
  assert.is(engine.openIterators, 0, 'after return() without iterating')
  assert.is((await collect(s.scanRange(...wrap))).length + (await collect(s.scanRange(wrap[1], wrap[0]))).length, 200)
  assert.is(engine.openIterators, 0, 'after full iteration')
  await s.close()
})

test('purgeTombstones drops tombstones and expired records settled before the cutoff, nothing else', async () => {
  const s = await Store.open(tempDir('purge'), { durable: false })
  const put = (k: string, over: Partial<StoredRecord>) => s.apply(Buffer.from(k), { ...record(k, { n1: 1 }, 1_000), ...over })
  await put('live', {})
  await put('old-tombstone', { tombstone: true, value: Buffer.alloc(0), ts: { wall: 1_000, logical: 0, node: 'n1' } })
  await put('new-tombstone', { tombstone: true, value: Buffer.alloc(0), ts: { wall: 5_000, logical: 0, node: 'n1' } })
  await put('expired-long-ago', { expiresAt: 2_000 })
  await put('expires-later', { expiresAt: 9_000 })
  assert.is(await s.purgeTombstones(3_000), 2)
  const left = (await collect(s.scanRange(0n, 0n))).map((e) => e.key.toString()).sort()
  assert.equal(left, ['expires-later', 'live', 'new-tombstone'])
  await s.close()
})

test('hints: per target in order, counted, deleted once, and still there after reopen', async () => {
  const dir = tempDir('hints')
  let s = await Store.open(dir, { durable: true })
  const ids: Buffer[] = []
  for (let i = 0; i < 5; i++) ids.push(await s.addHint('target-a', Buffer.from(`k${i}`), record(`v${i}`), 1_000 + i))
  await s.addHint('target-b', Buffer.from('kb'), record('vb'), 5_000)
  assert.is(s.countHints(), 6)
  assert.is(s.countHints('target-a'), 5)
  assert.equal(s.hintTargets(), ['target-a', 'target-b'])
  const a = await collect(s.hintsFor('target-a'))
  assert.equal(a.map((h) => h.key.toString()), ['k0', 'k1', 'k2', 'k3', 'k4'])
  assert.equal(a.map((h) => h.expiresAt), [1000, 1001, 1002, 1003, 1004])
  assert.is(a[2]!.rec.value.toString(), 'v2')
  assert.ok(await s.deleteHint(ids[0]!))
  assert.not.ok(await s.deleteHint(ids[0]!))
  assert.is(s.countHints(), 5)
  await s.close()

  s = await Store.open(dir, { durable: true })
  assert.is(s.countHints(), 5)
  assert.is(s.countHints('target-a'), 4)
  assert.equal(s.hintTargets(), ['target-a', 'target-b'])
  const [b] = await collect(s.hintsFor('target-b'))
  assert.ok(await s.deleteHint(b!.id))
  assert.equal(s.hintTargets(), ['target-a'])
  // new hints after a restart sort after the old ones
  await s.addHint('target-a', Buffer.from('k-new'), record('new'), 9_999)
  const after = await collect(s.hintsFor('target-a'))
  assert.equal(after.map((h) => h.key.toString()), ['k1', 'k2', 'k3', 'k4', 'k-new'])
  await s.close()
})

test('host id: created once, kept across reopen, new for a new data dir', async () => {
  const dir = tempDir('hostid')
  const s1 = await Store.open(dir, { durable: true })
  const id = s1.hostId()
  assert.match(id, /^[0-9a-f]{16}$/)
  await s1.close()
  const s2 = await Store.open(dir, { durable: true })
  assert.is(s2.hostId(), id)
  await s2.close()
  const other = await Store.open(tempDir('hostid2'), { durable: true })
  assert.is.not(other.hostId(), id)
  await other.close()
})

test('a second open of a data dir in use fails with a clear StartupError', async () => {
  const dir = tempDir('locked')
  const s = await Store.open(dir, { durable: false })
  await assertOpenFails(dir, inUseMessage(dir))
  await s.close()
  // released on close
  const again = await Store.open(dir, { durable: false })
  await again.close()
})

test('close + reopen finds all data; approximateSize is non-zero before and after', async () => {
  const dir = tempDir('reopen')
  let s = await Store.open(dir, { durable: false })
  const keys = Array.from({ length: 2000 }, (_, i) => Buffer.from(`key-${i}`))
  const value = 'x'.repeat(200)
  await Promise.all(keys.map((k, i) => s.apply(k, { ...record(value + i), expiresAt: i % 2 ? 2_000_000_000_000 : undefined })))
  await s.apply(keys[0]!, { ...record('', { n1: 2 }), tombstone: true })
  const sizeBefore = s.approximateSize()
  assert.ok(sizeBefore > 2000 * 200, `approximateSize ${sizeBefore} after writing ~400 KB`)
  await s.close()
  s = await Store.open(dir, { durable: false })
  // RocksDB flushed the recovered WAL to a table file on open: the estimate now counts it
  assert.ok(s.approximateSize() > 100_000, `approximateSize after reopen ${s.approximateSize()}`)
  for (let i = 1; i < keys.length; i++) {
    const r = (await s.get(keys[i]!))!
    assert.is(r.value.toString(), value + i)
    assert.is(r.expiresAt, i % 2 ? 2_000_000_000_000 : undefined)
  }
  assert.ok((await s.get(keys[0]!))!.tombstone)
  await s.close()
})

test('applyRaw stores what a range stream sends, resolving against what is there', async () => {
  const src = await Store.open(tempDir('stream-src'), { durable: false })
  const dst = await Store.open(tempDir('stream-dst'), { durable: false })
  for (let i = 0; i < 50; i++) await src.apply(Buffer.from(`k${i}`), record(`old${i}`, { a: 1 }))
  // the destination already received a newer write for k7 (pending-range write)
  await dst.apply(Buffer.from('k7'), record('newer', { a: 2 }))
  for await (const e of src.scanRange(0n, 0n)) await dst.applyRaw(e.key, e.raw)
  assert.is((await dst.get(Buffer.from('k7')))!.value.toString(), 'newer')
  assert.is((await dst.get(Buffer.from('k8')))!.value.toString(), 'old8')
  await Promise.all([src.close(), dst.close()])
})

test('an injected engine is used as is (here: RocksDB with fsync on the calling thread)', async () => {
  const dir = tempDir('injected')
  const engine = await RocksEngine.open(dir, { syncInWorker: false, cacheSize: 8 << 20 })
  let s = await Store.open('(unused)', { durable: true, engine })
  await Promise.all(Array.from({ length: 20 }, (_, i) => s.apply(Buffer.from(`k${i}`), record(`v${i}`))))
  assert.ok(s.writeStats().syncWrites >= 2) // host id + data
  await s.close()
  s = await Store.open(dir, { durable: true })
  assert.is((await s.get(Buffer.from('k19')))!.value.toString(), 'v19')
  await s.close()
})

test('a closed store refuses work instead of crashing the binding', async () => {
  const s = await Store.open(tempDir('closed'), { durable: false })
  await s.close()
  await s.close() // idempotent
  await assert.not.throws(() => s.approximateSize())
  try {
    await s.get(Buffer.from('k'))
    assert.unreachable()
  } catch (e) {
    assert.match((e as Error).message, /closed/)
  }
})

test.run()
