import type { Socket } from 'node:net'
import type { Logger } from '../log.js'
import { encodePayload, FrameDecoder, FrameError, frameHeader, kindName, type Frame } from './frame.js'

/** Batches up to this size are concatenated into one write; larger ones go out corked. */
const CONCAT_LIMIT = 256 * 1024

export interface FrameConnectionOptions {
  maxFrameBytes: number
  logger: Logger
  /** Called for every received frame. A FrameError thrown here closes the connection as a protocol error. */
  onFrame: (frame: Frame) => void
  /** Called once, when the socket has closed, with why. */
  onClose: (reason: string) => void
}

/**
 * A socket that carries frames both ways. Frames queued during one tick leave in one write
 * (one syscall for a burst of replies), and a sender that must respect backpressure (a stream)
 * awaits `whenWritable()`.
 */
export class FrameConnection {
  /** Date.now() when bytes last arrived; liveness checks read it. */
  lastReceivedAt = Date.now()
  private out: Buffer[] = []
  private outBytes = 0
  private flushQueued = false
  private reason: string | null = null
  private readonly decoder: FrameDecoder
  private drainWaiters: Array<() => void> = []

  constructor(
    readonly socket: Socket,
    private readonly opts: FrameConnectionOptions,
  ) {
    this.decoder = new FrameDecoder(opts.onFrame, opts.maxFrameBytes)
    socket.on('data', (chunk: Buffer) => this.receive(chunk))
    socket.on('drain', () => this.wakeDrainWaiters())
    // A half-closed frame connection is useless either way; close it fully.
    socket.on('end', () => this.destroy('closed by peer'))
    socket.on('error', (err) => {
      this.reason ??= `socket error: ${err.message}`
    })
    socket.on('close', () => {
      this.reason ??= 'closed by peer'
      this.out = []
      this.outBytes = 0
      this.wakeDrainWaiters()
      opts.onClose(this.reason)
    })
    // The HTTP layer may have left the socket paused after the upgrade.
    socket.resume()
  }

  get closed(): boolean {
    return this.reason !== null || this.socket.destroyed
  }

  get remote(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`
  }

  /** Bytes queued here or in the socket and not yet handed to the kernel. */
  get pendingWriteBytes(): number {
    return this.outBytes + this.socket.writableLength
  }

  /**
   * Queue a frame for this tick's write. Returns the payload's size in bytes. Throws (and
   * queues nothing) when the value cannot be encoded or the frame would exceed the size limit.
   * On a closed connection it does nothing and returns 0.
   */
  send(kind: number, id: number, body: unknown): number {
    if (this.closed) return 0
    const payload = encodePayload(body)
    const header = frameHeader(kind, id, payload.length, this.opts.maxFrameBytes)
    this.out.push(header, payload)
    this.outBytes += header.length + payload.length
    if (!this.flushQueued) {
      this.flushQueued = true
      process.nextTick(flushConnection, this)
    }
    return payload.length
  }

  /** Hand everything queued to the socket now. */
  flush(): void {
    this.flushQueued = false
    if (this.out.length === 0 || this.closed) return
    const bufs = this.out
    const bytes = this.outBytes
    this.out = []
    this.outBytes = 0
    if (bytes <= CONCAT_LIMIT) {
      this.socket.write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs, bytes))
      return
    }
    this.socket.cork()
    for (const b of bufs) this.socket.write(b)
    this.socket.uncork()
  }

  /** Resolves once the socket wants more data (or has closed). */
  whenWritable(): Promise<void> {
    this.flush()
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  /** Close now; `reason` is what onClose reports and what in-flight callers are told. */
  destroy(reason: string): void {
    this.reason ??= reason
    this.socket.destroy()
  }

  /** Process bytes that arrived with the handshake, before the socket was handed over. */
  feed(chunk: Buffer): void {
    if (chunk.length > 0) this.receive(chunk)
  }

  /** Close the connection over an error in handling its frames (a FrameError is the peer's fault). */
  fail(err: unknown): void {
    if (err instanceof FrameError) {
      this.opts.logger.error({ remote: this.remote, code: err.code, err: err.message }, 'internode protocol error; closing the connection')
      this.destroy(`protocol error: ${err.message}`)
      return
    }
    this.opts.logger.error({ remote: this.remote, err }, 'internode frame handler failed; closing the connection')
    this.destroy(`internal error: ${(err as Error).message}`)
  }

  private receive(chunk: Buffer): void {
    this.lastReceivedAt = Date.now()
    try {
      this.decoder.push(chunk)
    } catch (err) {
      this.fail(err)
    }
  }

  private wakeDrainWaiters(): void {
    const ws = this.drainWaiters
    this.drainWaiters = []
    for (const w of ws) w()
  }
}

function flushConnection(c: FrameConnection): void {
  c.flush()
}

/** For protocol errors about a frame that should not have been sent. */
export function unexpectedFrame(frame: Frame, side: string): FrameError {
  return new FrameError('FRAME_MALFORMED', `unexpected ${kindName(frame.kind)} frame (id ${frame.id}) on the ${side} side`)
}
