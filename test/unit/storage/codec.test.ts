import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeHint, decodeRecord, encodeHint, encodeRecord } from '../../../node/storage/codec.js'
import type { StoredRecord } from '../../../node/storage/record.js'
import { isLive } from '../../../node/storage/record.js'
import { RingError } from '../../../node/errors.js'

function rec(over: Partial<StoredRecord> = {}): StoredRecord {
  return {
    value: Buffer.from('hello'),
    contentType: 'text/plain',
    vv: { aaaa: 3, bbbb: 1 },
    ts: { wall: 1_760_000_000_123, logical: 7, node: 'aaaa' },
    tombstone: false,
    ...over,
  }
}

function roundTrip(r: StoredRecord): StoredRecord {
  const back = decodeRecord(encodeRecord(r))
  assert.ok(back.value.equals(r.value), 'value')
  assert.is(back.contentType, r.contentType)
  assert.equal(back.vv, r.vv)
  assert.equal(back.ts, r.ts)
  assert.is(back.tombstone, r.tombstone)
  assert.is(back.expiresAt, r.expiresAt)
  assert.is('expiresAt' in back, r.expiresAt !== undefined, 'expiresAt present only when set')
  return back
}

test('round trip: plain record', () => {
  roundTrip(rec())
})

test('round trip: empty value, empty content type, empty vv', () => {
  roundTrip(rec({ value: Buffer.alloc(0), contentType: '', vv: {} }))
})

test('round trip: tombstone', () => {
  const back = roundTrip(rec({ value: Buffer.alloc(0), tombstone: true }))
  assert.ok(back.tombstone)
})

test('round trip: expiry, including 0 and the largest 48-bit time', () => {
  roundTrip(rec({ expiresAt: 1_760_000_100_000 }))
  roundTrip(rec({ expiresAt: 0 }))
  roundTrip(rec({ expiresAt: 2 ** 48 - 1, ts: { wall: 2 ** 48 - 1, logical: 0, node: 'n' } }))
})

test('round trip: large value (1 MiB + 1) with every byte value', () => {
  const value = Buffer.alloc((1 << 20) + 1)
  for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff
  roundTrip(rec({ value }))
})

test('round trip: unicode content type, node ids and value', () => {
  roundTrip(rec({ contentType: 'text/plain; charset=utf-8; name="naïve-日本語-🚀"', value: Buffer.from('значение ✓', 'utf8'), vv: { 'nœud-é': 2, 'ノード': 5 }, ts: { wall: 1, logical: 0, node: 'nœud-é' } }))
})

test('round trip: many vv entries and large counters', () => {
  const vv: Record<string, number> = {}
  for (let i = 0; i < 300; i++) vv[`host-${i.toString(16).padStart(4, '0')}`] = i * 1_000_003 + 1
  vv['huge'] = Number.MAX_SAFE_INTEGER
  roundTrip(rec({ vv, ts: { wall: 5, logical: 2 ** 40, node: 'x' } }))
})

test('the encoding is canonical: vv insertion order does not matter', () => {
  const a = encodeRecord(rec({ vv: { zz: 1, aa: 2, mm: 3 } }))
  const b = encodeRecord(rec({ vv: { mm: 3, zz: 1, aa: 2 } }))
  assert.ok(a.equals(b))
})

test('decoded value is a view of the input (no copy)', () => {
  const buf = encodeRecord(rec({ value: Buffer.from('abc') }))
  const back = decodeRecord(buf)
  assert.is(back.value.buffer, buf.buffer)
})

test('every truncation of a record fails with a clear error', () => {
  const buf = encodeRecord(rec({ expiresAt: 123456, value: Buffer.from('some value bytes') }))
  for (let len = 0; len < buf.length; len++) {
    try {
      decodeRecord(buf.subarray(0, len))
      assert.unreachable(`decoded a record truncated to ${len} of ${buf.length} bytes`)
    } catch (e) {
      assert.instance(e, RingError)
      assert.match((e as Error).message, /corrupt record encoding/)
    }
  }
})

test('trailing bytes, unknown format and unknown flags are rejected', () => {
  const buf = encodeRecord(rec())
  const cases: [Buffer, RegExp][] = [
    [Buffer.concat([buf, Buffer.from([0])]), /trailing/],
    [Buffer.concat([Buffer.from([9]), buf.subarray(1)]), /unknown format 9/],
    [Buffer.concat([buf.subarray(0, 1), Buffer.from([0x80]), buf.subarray(2)]), /unknown flags/],
    [Buffer.alloc(0), /truncated/],
  ]
  for (const [b, re] of cases) {
    assert.throws(() => decodeRecord(b), (e: Error) => e instanceof RingError && re.test(e.message))
  }
})

test('random corruption never yields a record that re-encodes differently', () => {
  // A flipped byte may still decode (e.g. inside the value); then it must decode to exactly
  // what its bytes say, never to something half-read.
  const buf = encodeRecord(rec({ expiresAt: 99, vv: { a: 1, b: 2, c: 3 } }))
  let rejected = 0
  for (let i = 0; i < buf.length; i++) {
    for (const x of [0x01, 0x80, 0xff]) {
      const bad = Buffer.from(buf)
      bad[i]! ^= x
      let back: StoredRecord
      try {
        back = decodeRecord(bad)
      } catch (e) {
        assert.instance(e, RingError)
        rejected++
        continue
      }
      assert.ok(encodeRecord(back).equals(bad), `byte ${i} ^ ${x} decoded to a different record`)
    }
  }
  assert.ok(rejected > buf.length, `only ${rejected} corruptions detected`)
})

test('encode refuses out-of-range numbers (a bug, not data)', () => {
  assert.throws(() => encodeRecord(rec({ ts: { wall: -1, logical: 0, node: 'a' } })), /invariant/)
  assert.throws(() => encodeRecord(rec({ ts: { wall: 1.5, logical: 0, node: 'a' } })), /invariant/)
  assert.throws(() => encodeRecord(rec({ expiresAt: 2 ** 48 })), /invariant/)
  assert.throws(() => encodeRecord(rec({ vv: { a: -1 } })), /invariant/)
})

test('hint round trip and truncation', () => {
  const r = rec({ expiresAt: 42 })
  const buf = encodeHint(Buffer.from('user-key'), r, 1_760_000_000_999)
  const h = decodeHint(buf)
  assert.is(h.key.toString(), 'user-key')
  assert.is(h.expiresAt, 1_760_000_000_999)
  assert.ok(encodeRecord(h.rec).equals(encodeRecord(r)))
  assert.throws(() => decodeHint(buf.subarray(0, buf.length - 1)), (e: Error) => e instanceof RingError)
  assert.throws(() => decodeHint(buf.subarray(0, 5)), (e: Error) => e instanceof RingError)
})

test('isLive: tombstones and expired records read as absent', () => {
  const now = 1000
  assert.ok(isLive(rec(), now))
  assert.not.ok(isLive(rec({ tombstone: true }), now))
  assert.ok(isLive(rec({ expiresAt: 1001 }), now))
  assert.not.ok(isLive(rec({ expiresAt: 1000 }), now))
})

test.run()
