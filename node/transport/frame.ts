/**
 * Internode framing: every frame is
 *
 *   [u32 length][u8 kind][u32 request id][payload]
 *
 * big-endian, where `length` counts the bytes after itself (5 + payload bytes). The payload is
 * MessagePack. The kind says what the frame is to the transport (request, reply, stream chunk…);
 * the application's message type travels inside the payload.
 *
 * Payload convention: plain data (objects with string keys, arrays, strings, numbers, booleans,
 * null, undefined, Buffers, Dates and bigints). Buffers and Uint8Arrays come back as Buffers that
 * own their memory (copyBuffers), so a decoded value never pins the socket chunk it arrived in.
 * Bigints come back as bigints of any size; numbers stay numbers. Maps come back as objects.
 */
import { Packr } from 'msgpackr'
import { invariant } from '../errors.js'

export const FrameKind = {
  /** payload [type, body]; answered by RESPONSE or ERROR with the same id */
  REQUEST: 1,
  RESPONSE: 2,
  /** payload {code, message, details}; ends a request or a stream */
  ERROR: 3,
  /** one-way message, id 0; payload [type, body] */
  SEND: 4,
  /** payload [type, body, windowBytes]; answered by STREAM_CHUNK* then STREAM_END or ERROR */
  STREAM_OPEN: 5,
  STREAM_CHUNK: 6,
  STREAM_END: 7,
  /** receiver → sender: payload = bytes consumed, which the sender may send again */
  CREDIT: 8,
  /** receiver → sender: stop this stream */
  CANCEL: 9,
  PING: 10,
  PONG: 11,
} as const
export type FrameKindValue = (typeof FrameKind)[keyof typeof FrameKind]

const KIND_NAMES = new Map<number, string>(Object.entries(FrameKind).map(([k, v]) => [v, k]))
export function kindName(kind: number): string {
  return KIND_NAMES.get(kind) ?? `UNKNOWN(${kind})`
}

/** Bytes before the payload: length, kind, id. */
export const HEADER_BYTES = 9
/** What `length` covers besides the payload: kind and id. */
const LENGTH_OVERHEAD = 5
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
export const MAX_REQUEST_ID = 0xffffffff

export interface Frame {
  kind: number
  id: number
  /** the raw MessagePack payload; may be a view of a received chunk, so decode it promptly */
  payload: Buffer
}

/** A frame that breaks the protocol. The connection it came from cannot be trusted any more. */
export class FrameError extends Error {
  readonly code: 'FRAME_TOO_LARGE' | 'FRAME_MALFORMED'
  constructor(code: FrameError['code'], message: string) {
    super(message)
    this.name = 'FrameError'
    this.code = code
  }
}

const packr = new Packr({
  useRecords: false,
  copyBuffers: true,
  int64AsType: 'bigint',
  useBigIntExtension: true,
})

export function encodePayload(value: unknown): Buffer {
  return packr.pack(value)
}

export function decodePayload(payload: Buffer): unknown {
  try {
    return packr.unpack(payload)
  } catch (err) {
    throw new FrameError('FRAME_MALFORMED', `payload is not valid MessagePack: ${(err as Error).message}`)
  }
}

/**
 * The 9 header bytes of a frame whose payload is `payloadBytes` long. Kept apart from the
 * payload so a large payload is written as it is, never copied only to prepend nine bytes.
 */
export function frameHeader(kind: number, id: number, payloadBytes: number, maxFrameBytes: number): Buffer {
  invariant(Number.isInteger(id) && id >= 0 && id <= MAX_REQUEST_ID, `request id ${id} out of u32 range`)
  invariant(kind > 0 && kind < 256, `frame kind ${kind} out of u8 range`)
  const length = LENGTH_OVERHEAD + payloadBytes
  if (length > maxFrameBytes) {
    throw new FrameError('FRAME_TOO_LARGE', `a frame of ${length} bytes exceeds the limit of ${maxFrameBytes} bytes`)
  }
  const h = Buffer.allocUnsafe(HEADER_BYTES)
  h.writeUInt32BE(length, 0)
  h[4] = kind
  h.writeUInt32BE(id, 5)
  return h
}

/** One whole frame in one buffer (tests and one-off writes; the connection keeps the two parts apart). */
export function encodeFrame(kind: number, id: number, value: unknown, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  const payload = encodePayload(value)
  return Buffer.concat([frameHeader(kind, id, payload.length, maxFrameBytes), payload])
}

/**
 * Turns a byte stream into frames. Chunks are queued as they arrive and each byte is copied at
 * most once: a frame that lies inside one chunk is handed out as a view of it, a frame that spans
 * chunks is assembled into a buffer of exactly its size once all of it has arrived. The size limit
 * is checked as soon as a length is readable, before any of the frame's body is buffered.
 */
export class FrameDecoder {
  private readonly chunks: Buffer[] = []
  /** index of the first unconsumed chunk in `chunks` */
  private head = 0
  /** bytes of chunks[head] already consumed */
  private offset = 0
  private buffered = 0
  /** total bytes of the frame being collected (4 + length), or -1 while its length is unknown */
  private need = -1
  private failed: FrameError | null = null

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    private readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
  ) {}

  /** Bytes received but not yet handed out as a frame. */
  get bufferedBytes(): number {
    return this.buffered
  }

  /** Feed one chunk; calls onFrame for every frame it completes. Throws FrameError on a bad frame. */
  push(chunk: Buffer): void {
    if (this.failed) throw this.failed
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) return
        const length = this.peekLength()
        if (length > this.maxFrameBytes) {
          this.failed = new FrameError('FRAME_TOO_LARGE', `peer announced a frame of ${length} bytes; the limit is ${this.maxFrameBytes}`)
          throw this.failed
        }
        if (length < LENGTH_OVERHEAD) {
          this.failed = new FrameError('FRAME_MALFORMED', `frame length ${length} is shorter than its header`)
          throw this.failed
        }
        this.need = 4 + length
      }
      if (this.buffered < this.need) return
      const bytes = this.take(this.need)
      this.need = -1
      this.onFrame({ kind: bytes[4]!, id: bytes.readUInt32BE(5), payload: bytes.subarray(HEADER_BYTES) })
    }
  }

  private peekLength(): number {
    const first = this.chunks[this.head]!
    if (first.length - this.offset >= 4) return first.readUInt32BE(this.offset)
    let v = 0
    let got = 0
    for (let i = this.head; got < 4; i++) {
      const c = this.chunks[i]!
      for (let j = i === this.head ? this.offset : 0; j < c.length && got < 4; j++, got++) v = v * 256 + c[j]!
    }
    return v
  }

  private take(n: number): Buffer {
    this.buffered -= n
    const first = this.chunks[this.head]!
    const avail = first.length - this.offset
    if (avail >= n) {
      const out = first.subarray(this.offset, this.offset + n)
      this.advance(n, avail)
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[this.head]!
      const left = c.length - this.offset
      const k = Math.min(left, n - filled)
      c.copy(out, filled, this.offset, this.offset + k)
      filled += k
      this.advance(k, left)
    }
    return out
  }

  /** Consume k bytes of chunks[head], which had `left` unconsumed bytes. */
  private advance(k: number, left: number): void {
    if (k < left) {
      this.offset += k
      return
    }
    this.chunks[this.head] = undefined as unknown as Buffer
    this.head++
    this.offset = 0
    // Drop consumed slots now and then so the array does not grow without bound.
    if (this.head === this.chunks.length) {
      this.chunks.length = 0
      this.head = 0
    } else if (this.head >= 1024) {
      this.chunks.splice(0, this.head)
      this.head = 0
    }
  }
}
