import { TOKEN_MAX, tokenOf } from '../ring/token.js'
import { invariant } from '../errors.js'

/**
 * Key layout in the engine. One ordered keyspace, split by a prefix byte:
 *
 *   'd' + token (u64 BE) + user key   data: a ring range is one contiguous key range, so
 *                                     streaming iterates it and cleanup drops it with one
 *                                     range delete
 *   'h' + target host id + 0x00 + seq (u64 BE)
 *                                     hints: all hints for one target are contiguous and in
 *                                     the order they were stored
 *   'm' + name                        meta: host id, tokens, state
 */
export const DATA_PREFIX = 0x64 // 'd'
export const HINT_PREFIX = 0x68 // 'h'
export const META_PREFIX = 0x6d // 'm'

const TOKEN_BYTES = 8
const DATA_HEADER = 1 + TOKEN_BYTES
const HINT_SEP = 0x00

export interface KeyBounds {
  gte: Buffer
  lt: Buffer
}

export function dataKey(userKey: Buffer, token: bigint = tokenOf(userKey)): Buffer {
  const k = Buffer.allocUnsafe(DATA_HEADER + userKey.length)
  k[0] = DATA_PREFIX
  k.writeBigUInt64BE(token, 1)
  userKey.copy(k, DATA_HEADER)
  return k
}

export function isDataKey(k: Buffer): boolean {
  return k.length >= DATA_HEADER && k[0] === DATA_PREFIX
}

/** Splits an engine data key; the user key is a view into `k`, not a copy. */
export function parseDataKey(k: Buffer): { token: bigint; key: Buffer } {
  invariant(isDataKey(k), 'not a data key')
  return { token: k.readBigUInt64BE(1), key: k.subarray(DATA_HEADER) }
}

/** The smallest data key whose token is >= t (t may be 2^64: the end of the data keyspace). */
function dataLowerBound(t: bigint): Buffer {
  if (t > TOKEN_MAX) return Buffer.from([DATA_PREFIX + 1])
  const b = Buffer.allocUnsafe(DATA_HEADER)
  b[0] = DATA_PREFIX
  b.writeBigUInt64BE(t, 1)
  return b
}

/** All data keys, whatever their token. */
export function allDataBounds(): KeyBounds {
  return { gte: Buffer.from([DATA_PREFIX]), lt: Buffer.from([DATA_PREFIX + 1]) }
}

/**
 * Engine key intervals holding the data of ring range (start, end] — exclusive start,
 * inclusive end, as in Cassandra. start == end is the whole ring. A range that wraps past
 * the top of the token space becomes two intervals, the one from token 0 first.
 */
export function rangeBounds(start: bigint, end: bigint): KeyBounds[] {
  checkToken(start)
  checkToken(end)
  if (start === end) return [allDataBounds()]
  // tokens t with start < t <= end, i.e. t in [start + 1, end + 1)
  if (start < end) return [{ gte: dataLowerBound(start + 1n), lt: dataLowerBound(end + 1n) }]
  const out: KeyBounds[] = [{ gte: dataLowerBound(0n), lt: dataLowerBound(end + 1n) }]
  if (start < TOKEN_MAX) out.push({ gte: dataLowerBound(start + 1n), lt: dataLowerBound(TOKEN_MAX + 1n) })
  return out
}

/** Whether token t lies in ring range (start, end], with the same conventions as rangeBounds. */
export function inRange(t: bigint, start: bigint, end: bigint): boolean {
  if (start === end) return true
  if (start < end) return t > start && t <= end
  return t > start || t <= end
}

function checkToken(t: bigint): void {
  if (t < 0n || t > TOKEN_MAX) throw new RangeError(`token ${t} is outside [0, 2^64)`)
}

function checkHostId(target: string): Buffer {
  const b = Buffer.from(target, 'utf8')
  // The separator must not occur inside a host id, or one target's hints would interleave
  // with another's.
  invariant(b.length > 0 && !b.includes(HINT_SEP), `host id ${JSON.stringify(target)} is empty or contains NUL`)
  return b
}

export function hintKey(target: string, seq: bigint): Buffer {
  const t = checkHostId(target)
  const k = Buffer.allocUnsafe(1 + t.length + 1 + 8)
  k[0] = HINT_PREFIX
  t.copy(k, 1)
  k[1 + t.length] = HINT_SEP
  k.writeBigUInt64BE(seq, 2 + t.length)
  return k
}

export function parseHintKey(k: Buffer): { target: string; seq: bigint } {
  const sep = k.length - 9
  if (k.length < 11 || k[0] !== HINT_PREFIX || k[sep] !== HINT_SEP) {
    throw new RangeError(`not a hint id: ${k.toString('hex')}`)
  }
  return { target: k.toString('utf8', 1, sep), seq: k.readBigUInt64BE(sep + 1) }
}

export function hintBounds(target: string): KeyBounds {
  const t = checkHostId(target)
  const prefix = Buffer.concat([Buffer.from([HINT_PREFIX]), t])
  return { gte: Buffer.concat([prefix, Buffer.from([HINT_SEP])]), lt: Buffer.concat([prefix, Buffer.from([HINT_SEP + 1])]) }
}

export function allHintBounds(): KeyBounds {
  return { gte: Buffer.from([HINT_PREFIX]), lt: Buffer.from([HINT_PREFIX + 1]) }
}

export function metaKey(name: string): Buffer {
  invariant(name.length > 0, 'meta name is empty')
  return Buffer.concat([Buffer.from([META_PREFIX]), Buffer.from(name, 'utf8')])
}
