import { RingError, invariant } from '../errors.js'
import type { StoredRecord } from './record.js'
import type { VersionVector } from '../replication/version.js'

/**
 * Binary form of a StoredRecord, on disk and on the wire. Hand-laid rather than msgpack:
 * measured ~2-3x faster to encode and ~1.5-2x to decode on this hot path (bench/storage-engines.ts
 * --codec), and it lets the value be returned as a view instead of a copy.
 *
 *   u8      format (1)
 *   u8      flags: bit 0 tombstone, bit 1 has expiry
 *   u48 BE  ts.wall
 *   varint  ts.logical
 *   str     ts.node
 *   u48 BE  expiresAt                 only with flag bit 1
 *   str     contentType
 *   varint  n, then n x (str node, varint counter)   version vector, sorted by node
 *   varint  value length, value bytes  must end exactly at the end of the buffer
 *
 * str = varint byte length + UTF-8. varint = unsigned LEB128 up to 2^53 - 1.
 * The encoding is canonical (vector entries sorted), so equal records encode to equal bytes
 * and replicas can compare records bytewise.
 */
export const RECORD_FORMAT = 1
const HINT_FORMAT = 1

const FLAG_TOMBSTONE = 1
const FLAG_EXPIRY = 2
const KNOWN_FLAGS = FLAG_TOMBSTONE | FLAG_EXPIRY
const U48 = 2 ** 48

function corrupt(reason: string, buf: Buffer): RingError {
  return new RingError('INTERNAL', `corrupt record encoding (${reason}, ${buf.length} bytes); the data on this node is damaged, run a repair of its ranges`, { reason })
}

function varintSize(n: number): number {
  let size = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    size++
  }
  return size
}

function writeVarint(buf: Buffer, off: number, n: number): number {
  while (n >= 0x80) {
    buf[off++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  buf[off++] = n
  return off
}

/** Reads from a buffer, turning every out-of-bounds or malformed field into a clear error. */
class Reader {
  off = 0
  constructor(readonly buf: Buffer) {}

  u8(): number {
    if (this.off >= this.buf.length) throw corrupt('truncated', this.buf)
    return this.buf[this.off++]!
  }

  u48(): number {
    if (this.off + 6 > this.buf.length) throw corrupt('truncated', this.buf)
    const v = this.buf.readUIntBE(this.off, 6)
    this.off += 6
    return v
  }

  varint(): number {
    let n = 0
    let mul = 1
    for (let i = 0; i < 8; i++) {
      const b = this.u8()
      n += (b & 0x7f) * mul
      if (b < 0x80) {
        if (n > Number.MAX_SAFE_INTEGER) break
        return n
      }
      mul *= 0x80
    }
    throw corrupt('bad varint', this.buf)
  }

  bytes(): Buffer {
    const len = this.varint()
    if (len > this.buf.length - this.off) throw corrupt('truncated', this.buf)
    const out = this.buf.subarray(this.off, this.off + len)
    this.off += len
    return out
  }

  str(): string {
    const len = this.varint()
    if (len > this.buf.length - this.off) throw corrupt('truncated', this.buf)
    const s = this.buf.toString('utf8', this.off, this.off + len)
    this.off += len
    return s
  }
}

function checkU48(n: number, what: string): void {
  invariant(Number.isInteger(n) && n >= 0 && n < U48, `${what} ${n} is not an integer in [0, 2^48)`)
}

/** Node ids of a version vector in canonical (code unit) order. */
export function sortedNodes(vv: VersionVector): string[] {
  return Object.keys(vv).sort()
}

export function encodeRecord(rec: StoredRecord): Buffer {
  const { ts, vv, value } = rec
  checkU48(ts.wall, 'ts.wall')
  invariant(Number.isSafeInteger(ts.logical) && ts.logical >= 0, 'ts.logical must be a non-negative integer')
  const hasExpiry = rec.expiresAt !== undefined
  if (hasExpiry) checkU48(rec.expiresAt!, 'expiresAt')

  const nodes = sortedNodes(vv)
  const nodeLen = Buffer.byteLength(ts.node)
  const ctLen = Buffer.byteLength(rec.contentType)
  let size = 2 + 6 + varintSize(ts.logical) + varintSize(nodeLen) + nodeLen + (hasExpiry ? 6 : 0)
  size += varintSize(ctLen) + ctLen + varintSize(nodes.length)
  const vvLens: number[] = new Array(nodes.length)
  for (let i = 0; i < nodes.length; i++) {
    const c = vv[nodes[i]!]!
    invariant(Number.isSafeInteger(c) && c >= 0, `version vector counter ${c} is not a non-negative integer`)
    const l = Buffer.byteLength(nodes[i]!)
    vvLens[i] = l
    size += varintSize(l) + l + varintSize(c)
  }
  size += varintSize(value.length) + value.length

  const buf = Buffer.allocUnsafe(size)
  buf[0] = RECORD_FORMAT
  buf[1] = (rec.tombstone ? FLAG_TOMBSTONE : 0) | (hasExpiry ? FLAG_EXPIRY : 0)
  buf.writeUIntBE(ts.wall, 2, 6)
  let off = writeVarint(buf, 8, ts.logical)
  off = writeVarint(buf, off, nodeLen)
  off += buf.write(ts.node, off, 'utf8')
  if (hasExpiry) {
    buf.writeUIntBE(rec.expiresAt!, off, 6)
    off += 6
  }
  off = writeVarint(buf, off, ctLen)
  off += buf.write(rec.contentType, off, 'utf8')
  off = writeVarint(buf, off, nodes.length)
  for (let i = 0; i < nodes.length; i++) {
    off = writeVarint(buf, off, vvLens[i]!)
    off += buf.write(nodes[i]!, off, 'utf8')
    off = writeVarint(buf, off, vv[nodes[i]!]!)
  }
  off = writeVarint(buf, off, value.length)
  off += value.copy(buf, off)
  invariant(off === size, `encoded ${off} bytes, expected ${size}`)
  return buf
}

/** Decodes a record; its `value` is a view into `buf` (no copy). */
export function decodeRecord(buf: Buffer): StoredRecord {
  const r = new Reader(buf)
  const format = r.u8()
  if (format !== RECORD_FORMAT) throw corrupt(`unknown format ${format}`, buf)
  const flags = r.u8()
  if ((flags & ~KNOWN_FLAGS) !== 0) throw corrupt(`unknown flags ${flags}`, buf)
  const wall = r.u48()
  const logical = r.varint()
  const node = r.str()
  const expiresAt = flags & FLAG_EXPIRY ? r.u48() : undefined
  const contentType = r.str()
  const n = r.varint()
  // every entry takes at least 3 bytes; a huge count is corruption, not a big vector
  if (n * 3 > buf.length - r.off) throw corrupt('truncated', buf)
  const vv: VersionVector = {}
  let prev: string | undefined
  for (let i = 0; i < n; i++) {
    const k = r.str()
    if (k === '__proto__') throw corrupt('bad vector entry', buf)
    if (prev !== undefined && !(prev < k)) throw corrupt('vector entries out of order', buf)
    prev = k
    vv[k] = r.varint()
  }
  const value = r.bytes()
  if (r.off !== buf.length) throw corrupt(`${buf.length - r.off} trailing bytes`, buf)
  const rec: StoredRecord = { value, contentType, vv, ts: { wall, logical, node }, tombstone: (flags & FLAG_TOMBSTONE) !== 0 }
  if (expiresAt !== undefined) rec.expiresAt = expiresAt
  return rec
}

export interface HintEntry {
  key: Buffer
  rec: StoredRecord
  /** ms since epoch after which the hint is dropped instead of replayed */
  expiresAt: number
}

/** u8 format, u48 BE expiresAt, varint key length, key, encoded record (rest). */
export function encodeHint(key: Buffer, rec: StoredRecord | Buffer, expiresAt: number): Buffer {
  checkU48(expiresAt, 'hint expiresAt')
  const recBuf = Buffer.isBuffer(rec) ? rec : encodeRecord(rec)
  const head = 1 + 6 + varintSize(key.length)
  const buf = Buffer.allocUnsafe(head + key.length + recBuf.length)
  buf[0] = HINT_FORMAT
  buf.writeUIntBE(expiresAt, 1, 6)
  let off = writeVarint(buf, 7, key.length)
  off += key.copy(buf, off)
  recBuf.copy(buf, off)
  return buf
}

export function decodeHint(buf: Buffer): HintEntry {
  const r = new Reader(buf)
  const format = r.u8()
  if (format !== HINT_FORMAT) throw corrupt(`unknown hint format ${format}`, buf)
  const expiresAt = r.u48()
  const key = r.bytes()
  return { key, rec: decodeRecord(buf.subarray(r.off)), expiresAt }
}
