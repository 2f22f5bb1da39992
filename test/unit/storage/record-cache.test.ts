import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RecordCache } from '../../../node/storage/record-cache.js'
import { Store } from '../../../node/storage/store.js'
import { decodeRecord } from '../../../node/storage/codec.js'
import { cleanupDirs, record, tempDir } from './helpers.js'

test('the cache stays within its byte budget, evicting the least recently used', () => {
  const c = new RecordCache(1000)
  for (let i = 0; i < 100; i++) c.set(`k${i}`, Buffer.alloc(50))
  assert.ok(c.size <= 1000 / 52, `size ${c.size}`)
  assert.ok(c.get('k99'), 'the newest entry is kept')
  assert.is(c.get('k0'), undefined, 'the oldest entry is gone')
})

test('a read that raced a write does not put its older value in the cache', () => {
  const c = new RecordCache(1 << 20)
  const epoch = c.epoch
  c.set('k', Buffer.from('new'))
  c.fill('k', Buffer.from('old'), epoch)
  assert.is(c.get('k')!.toString(), 'new')
  c.delete('k')
  const e2 = c.epoch
  c.fill('k', Buffer.from('fresh'), e2)
  assert.is(c.get('k')!.toString(), 'fresh')
})

test('store reads never see an older version than the last acknowledged write (cache on)', async () => {
  const s = await Store.open(tempDir('cache'), { durable: false })
  try {
    const key = Buffer.from('hot')
    let acked = 0
    const reads: Promise<void>[] = []
    for (let i = 1; i <= 300; i++) {
      // Reads start before and while each write runs; each must see at least what was acked
      // before the read began.
      const floor = acked
      reads.push(s.get(key).then((r) => {
        const seen = r ? r.vv.n1! : 0
        assert.ok(seen >= floor, `read saw ${seen}, but ${floor} was acknowledged before it began`)
      }))
      await s.apply(key, record(`v${i}`, { n1: i }))
      acked = i
    }
    await Promise.all(reads)
    assert.is((await s.get(key))!.value.toString(), 'v300')
    // update() builds from the current version under the key's lock
    const r = await s.update(key, (cur) => record('next', { n1: cur!.vv.n1! + 1 }))
    assert.is(r.stored.vv.n1, 301)
    // a range drop clears cached records too
    await s.dropRange(0n, 0n)
    assert.is(await s.get(key), undefined)
    assert.is(await s.getRaw(key), undefined)
  } finally {
    await s.close()
  }
})

test('with the cache off, the store behaves the same', async () => {
  const s = await Store.open(tempDir('nocache'), { durable: false, cacheBytes: 0 })
  try {
    await s.apply(Buffer.from('a'), record('1', { n1: 1 }))
    await s.update(Buffer.from('a'), (cur) => record('2', { n1: cur!.vv.n1! + 1 }))
    assert.is(decodeRecord((await s.getRaw(Buffer.from('a')))!).value.toString(), '2')
  } finally {
    await s.close()
  }
})

test.after(cleanupDirs)
test.run()
