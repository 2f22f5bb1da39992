import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  decodePayload,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  encodePayload,
  FrameDecoder,
  FrameError,
  FrameKind,
  type Frame,
} from '../../../node/transport/index.js'

function collect(max?: number): { d: FrameDecoder; frames: Frame[] } {
  const frames: Frame[] = []
  return { d: new FrameDecoder((f) => frames.push(f), max), frames }
}

/** Deterministic pseudo-random numbers, so a failing split can be reproduced. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

test('payload round-trips Buffers, bigints, numbers and nested data', () => {
  const value = {
    key: Buffer.from([0, 1, 2, 255]),
    empty: Buffer.alloc(0),
    bytes: new Uint8Array([7, 8]),
    token: (1n << 64n) - 1n,
    small: 5n,
    negative: -(1n << 63n),
    huge: 1n << 100n,
    now: 1_795_000_000_000,
    safe: Number.MAX_SAFE_INTEGER,
    float: 1.25,
    neg: -3,
    text: 'ключ 🔑',
    nil: null,
    flag: true,
    list: [1, 'two', [3n]],
    vv: { 'host-a': 3, 'host-b': 1 },
  }
  const out = decodePayload(encodePayload(value)) as typeof value
  assert.ok(Buffer.isBuffer(out.key))
  assert.equal([...out.key], [0, 1, 2, 255])
  assert.ok(Buffer.isBuffer(out.empty))
  assert.is(out.empty.length, 0)
  assert.ok(Buffer.isBuffer(out.bytes))
  assert.equal([...out.bytes], [7, 8])
  for (const k of ['token', 'small', 'negative', 'huge'] as const) {
    assert.is(typeof out[k], 'bigint', k)
    assert.is(out[k], value[k], k)
  }
  for (const k of ['now', 'safe', 'float', 'neg'] as const) {
    assert.type(out[k], 'number', k)
    assert.is(out[k], value[k], k)
  }
  assert.is(out.text, value.text)
  assert.is(out.nil, null)
  assert.is(out.flag, true)
  assert.equal(out.list, [1, 'two', [3n]])
  assert.equal(out.vv, value.vv)
})

test('decoded Buffers own their memory (no view pins the received chunk)', () => {
  const { d, frames } = collect()
  const chunk = encodeFrame(FrameKind.REQUEST, 1, ['t', { v: Buffer.alloc(100, 9) }])
  d.push(chunk)
  const [, body] = decodePayload(frames[0]!.payload) as [string, { v: Buffer }]
  assert.ok(body.v.buffer !== chunk.buffer)
  chunk.fill(0)
  assert.is(body.v[0], 9)
})

test('one frame: header fields and payload', () => {
  const { d, frames } = collect()
  d.push(encodeFrame(FrameKind.RESPONSE, 0xfffffffe, { ok: 1 }))
  assert.is(frames.length, 1)
  assert.is(frames[0]!.kind, FrameKind.RESPONSE)
  assert.is(frames[0]!.id, 0xfffffffe)
  assert.equal(decodePayload(frames[0]!.payload), { ok: 1 })
  assert.is(d.bufferedBytes, 0)
})

test('coalesced: many frames in one chunk come out in order', () => {
  const { d, frames } = collect()
  const bufs = Array.from({ length: 1000 }, (_, i) => encodeFrame(FrameKind.REQUEST, i + 1, ['echo', i]))
  d.push(Buffer.concat(bufs))
  assert.is(frames.length, 1000)
  frames.forEach((f, i) => {
    assert.is(f.id, i + 1)
    assert.equal(decodePayload(f.payload), ['echo', i])
  })
})

test('partial: byte-by-byte and random splits give the same frames', () => {
  const bufs = Array.from({ length: 50 }, (_, i) => encodeFrame(FrameKind.STREAM_CHUNK, i, Buffer.alloc(i * 37, i)))
  const all = Buffer.concat(bufs)
  const byByte = collect()
  for (let i = 0; i < all.length; i++) byByte.d.push(all.subarray(i, i + 1))
  assert.is(byByte.frames.length, 50)
  const rand = rng(42)
  for (let round = 0; round < 20; round++) {
    const { d, frames } = collect()
    for (let i = 0; i < all.length; ) {
      const n = 1 + Math.floor(rand() * 300)
      d.push(all.subarray(i, i + n))
      i += n
    }
    assert.is(frames.length, 50)
    frames.forEach((f, i) => {
      assert.is(f.id, i)
      const b = decodePayload(f.payload) as Buffer
      assert.is(b.length, i * 37)
      assert.ok(b.every((x) => x === i))
    })
    assert.is(d.bufferedBytes, 0)
  }
})

test('a 16 MiB frame in 1 KiB chunks is assembled in linear time', () => {
  const big = Buffer.alloc(16 * 1024 * 1024)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
  const wire = encodeFrame(FrameKind.STREAM_CHUNK, 7, big)
  const { d, frames } = collect()
  const started = performance.now()
  for (let i = 0; i < wire.length; i += 1024) d.push(wire.subarray(i, i + 1024))
  const ms = performance.now() - started
  assert.is(frames.length, 1)
  assert.ok((decodePayload(frames[0]!.payload) as Buffer).equals(big))
  // Re-concatenating the buffered bytes per chunk would copy ~128 GB here and take minutes.
  assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`)
})

test('oversize: rejected as soon as the length is readable, before the body is buffered', () => {
  const { d, frames } = collect(1024)
  const header = Buffer.alloc(9)
  header.writeUInt32BE(1025, 0)
  header[4] = FrameKind.REQUEST
  let err: unknown
  try {
    d.push(header.subarray(0, 4))
  } catch (e) {
    err = e
  }
  assert.instance(err, FrameError)
  assert.is((err as FrameError).code, 'FRAME_TOO_LARGE')
  assert.is(frames.length, 0)
  // The decoder stays failed: the stream is out of sync and cannot be trusted.
  assert.throws(() => d.push(encodeFrame(FrameKind.REQUEST, 1, ['x', 1])), (e: unknown) => e instanceof FrameError)
})

test('oversize at the default limit and on the sending side', () => {
  const { d } = collect()
  const header = Buffer.alloc(4)
  header.writeUInt32BE(DEFAULT_MAX_FRAME_BYTES + 1, 0)
  assert.throws(() => d.push(header), (e: unknown) => e instanceof FrameError && e.code === 'FRAME_TOO_LARGE')
  assert.throws(
    () => encodeFrame(FrameKind.REQUEST, 1, Buffer.alloc(2000), 1000),
    (e: unknown) => e instanceof FrameError && e.code === 'FRAME_TOO_LARGE',
  )
  // exactly at the limit is allowed
  const payloadLen = encodePayload(Buffer.alloc(1000)).length
  const exact = encodeFrame(FrameKind.REQUEST, 1, Buffer.alloc(1000), payloadLen + 5)
  const ok = collect(payloadLen + 5)
  ok.d.push(exact)
  assert.is(ok.frames.length, 1)
})

test('a length shorter than the header is malformed', () => {
  const { d } = collect()
  assert.throws(() => d.push(Buffer.from([0, 0, 0, 4, 1, 0, 0, 0])), (e: unknown) => e instanceof FrameError && e.code === 'FRAME_MALFORMED')
})

test('garbage payload is reported as malformed, not as a crash elsewhere', () => {
  for (const bad of [[0x92, 0x01], [0x01, 0x02], [], [0xd9, 0x10, 0x41]]) {
    assert.throws(() => decodePayload(Buffer.from(bad)), (e: unknown) => e instanceof FrameError && e.code === 'FRAME_MALFORMED', String(bad))
  }
})

test.run()
