import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { dataKey, hintBounds, hintKey, metaKey, parseDataKey, parseHintKey, rangeBounds, type KeyBounds } from '../../../node/storage/keys.js'
import { TOKEN_MAX, tokenOf } from '../../../node/ring/token.js'

const inBounds = (k: Buffer, bs: KeyBounds[]) => bs.some((b) => Buffer.compare(k, b.gte) >= 0 && Buffer.compare(k, b.lt) < 0)
const keyAt = (t: bigint) => dataKey(Buffer.from('k'), t)

test('data key: prefix, big-endian token, user key; parse inverts it', () => {
  const user = Buffer.from('hello')
  const k = dataKey(user)
  assert.is(k[0], 0x64)
  assert.is(k.readBigUInt64BE(1), tokenOf(user))
  const p = parseDataKey(k)
  assert.is(p.token, tokenOf(user))
  assert.ok(p.key.equals(user))
})

test('data keys sort by token first, then by user key', () => {
  const a = dataKey(Buffer.from('zzz'), 5n)
  const b = dataKey(Buffer.from('aaa'), 6n)
  const c = dataKey(Buffer.from('aab'), 6n)
  assert.ok(Buffer.compare(a, b) < 0 && Buffer.compare(b, c) < 0)
  assert.ok(Buffer.compare(dataKey(Buffer.alloc(0), 2n ** 63n), dataKey(Buffer.alloc(0), 2n ** 63n - 1n)) > 0)
})

test('(start, end]: exclusive start, inclusive end', () => {
  const bs = rangeBounds(10n, 20n)
  assert.is(bs.length, 1)
  assert.not.ok(inBounds(keyAt(10n), bs))
  assert.ok(inBounds(keyAt(11n), bs))
  assert.ok(inBounds(keyAt(20n), bs))
  assert.not.ok(inBounds(keyAt(21n), bs))
})

test('wrap-around gives two intervals covering (start, MAX] and [0, end]', () => {
  const bs = rangeBounds(TOKEN_MAX - 5n, 3n)
  assert.is(bs.length, 2)
  for (const t of [TOKEN_MAX - 4n, TOKEN_MAX, 0n, 3n]) assert.ok(inBounds(keyAt(t), bs), `token ${t}`)
  for (const t of [TOKEN_MAX - 5n, 4n, 2n ** 63n]) assert.not.ok(inBounds(keyAt(t), bs), `token ${t}`)
})

test('edges: start == end is the whole ring; start = MAX; end = MAX', () => {
  for (const t of [0n, 1n, TOKEN_MAX]) assert.ok(inBounds(keyAt(t), rangeBounds(7n, 7n)))
  const fromMax = rangeBounds(TOKEN_MAX, 5n) // (MAX, 5] = [0, 5]
  assert.ok(inBounds(keyAt(0n), fromMax))
  assert.not.ok(inBounds(keyAt(TOKEN_MAX), fromMax))
  const toMax = rangeBounds(5n, TOKEN_MAX)
  assert.ok(inBounds(keyAt(TOKEN_MAX), toMax))
  assert.not.ok(inBounds(keyAt(5n), toMax))
  // no interval strays outside the data keys
  for (const b of [...fromMax, ...toMax]) {
    assert.ok(b.gte[0]! >= 0x64 && Buffer.compare(b.lt, Buffer.from([0x65])) <= 0)
  }
  assert.throws(() => rangeBounds(-1n, 5n), RangeError)
  assert.throws(() => rangeBounds(0n, TOKEN_MAX + 1n), RangeError)
})

test('hint keys: contiguous per target, ordered by sequence, parse inverts', () => {
  const k1 = hintKey('host-a', 1n)
  const k2 = hintKey('host-a', 2n)
  const other = hintKey('host-ab', 0n) // a target whose id extends another's
  const b = hintBounds('host-a')
  assert.ok(Buffer.compare(k1, k2) < 0)
  for (const k of [k1, k2]) assert.ok(Buffer.compare(k, b.gte) >= 0 && Buffer.compare(k, b.lt) < 0)
  assert.not.ok(Buffer.compare(other, b.gte) >= 0 && Buffer.compare(other, b.lt) < 0)
  assert.equal(parseHintKey(k2), { target: 'host-a', seq: 2n })
  assert.throws(() => parseHintKey(metaKey('x')), RangeError)
  assert.throws(() => hintKey('bad\0id', 1n), /invariant/)
})

test('meta, hint and data keys live in disjoint prefixes', () => {
  assert.is(metaKey('host-id')[0], 0x6d)
  assert.is(hintKey('h', 0n)[0], 0x68)
  assert.is(dataKey(Buffer.from('m'))[0], 0x64)
})

test.run()
