/**
 * The calling side of the internode transport: a few persistent connections per peer address,
 * opened on first use with the HTTP Upgrade handshake, many requests multiplexed on each by
 * request id. A peer that cannot be reached is retried with exponential backoff; while it backs
 * off, calls to it fail at once (the caller has hints and other replicas to turn to).
 */
import { request as httpRequest } from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from '../log.js'
import { RingError } from '../errors.js'
import { FrameConnection, unexpectedFrame } from './connection.js'
import { decodePayload, DEFAULT_MAX_FRAME_BYTES, FrameError, FrameKind, MAX_REQUEST_ID, type Frame } from './frame.js'
import type { MessageType } from './handlers.js'
import { isErrorBody, PeerError, type PeerErrorCode } from './peer-error.js'
import { PROTOCOL_VERSION, STREAM_PATH, UPGRADE_PROTOCOL } from './handshake.js'

export interface PeerClientOptions {
  /** this node's host id, sent in the handshake; handlers see it as `fromHostId` */
  hostId: string
  logger: Logger
  clusterToken?: string | undefined
  clusterName?: string | undefined
  /** connections kept per peer address (default 2) */
  connectionsPerPeer?: number
  connectTimeoutMs?: number
  /** default per-call timeout (default 5000) */
  requestTimeoutMs?: number
  backoffMinMs?: number
  backoffMaxMs?: number
  maxFrameBytes?: number
  /** how many bytes of a stream the peer may send ahead of the consumer (default 4 MiB) */
  streamWindowBytes?: number
  /** ping a connection quiet for this long; close it after three intervals of silence (0 = never) */
  pingIntervalMs?: number
}

export interface RequestOptions {
  timeoutMs?: number
}

export interface StreamOptions {
  /** longest wait for the next chunk while the consumer is waiting */
  timeoutMs?: number
  windowBytes?: number
}

type Resolved = Required<Omit<PeerClientOptions, 'clusterToken' | 'clusterName'>> & Pick<PeerClientOptions, 'clusterToken' | 'clusterName'>

export class PeerClient {
  private readonly o: Resolved
  private readonly pools = new Map<string, PeerPool>()
  private readonly pinger: NodeJS.Timeout | null
  private closed = false

  constructor(opts: PeerClientOptions) {
    this.o = {
      connectionsPerPeer: 2,
      connectTimeoutMs: 3000,
      requestTimeoutMs: 5000,
      backoffMinMs: 100,
      backoffMaxMs: 5000,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      streamWindowBytes: 4 * 1024 * 1024,
      pingIntervalMs: 5000,
      ...opts,
    }
    this.pinger = this.o.pingIntervalMs > 0 ? setInterval(() => this.checkLiveness(), this.o.pingIntervalMs).unref() : null
  }

  /** Send a request and wait for its reply. Rejects with PeerError, or RingError VALUE_TOO_LARGE for an oversize payload. */
  request<R = unknown>(address: string, type: MessageType, payload: unknown, opts: RequestOptions = {}): Promise<R> {
    const timeoutMs = opts.timeoutMs ?? this.o.requestTimeoutMs
    const c = this.pick(address)
    if (c instanceof ClientConn) return c.request(type, payload, timeoutMs) as Promise<R>
    const started = Date.now()
    return deadline(c, timeoutMs, () => new PeerError('PEER_TIMEOUT', address, `no connection to ${address} within ${timeoutMs} ms for ${String(type)}`)).then(
      (conn) => conn.request(type, payload, Math.max(1, timeoutMs - (Date.now() - started))) as Promise<R>,
    )
  }

  /** One-way message (gossip and the like): no reply, no error; dropped if the peer is unreachable. */
  send(address: string, type: MessageType, payload: unknown): void {
    const c = this.pick(address)
    if (c instanceof ClientConn) return c.sendOneWay(type, payload)
    c.then(
      (conn) => conn.sendOneWay(type, payload),
      (err: PeerError) => this.o.logger.debug({ address, type, err: err.message }, 'dropped a one-way message'),
    )
  }

  /**
   * Ask the peer for a sequence of chunks. At most about `windowBytes` (plus one chunk) are in
   * flight or buffered at any time, however slowly the caller consumes. Breaking out of the loop
   * cancels the stream at the peer.
   */
  async *requestStream<C = unknown>(address: string, type: MessageType, payload: unknown, opts: StreamOptions = {}): AsyncGenerator<C, void, undefined> {
    const timeoutMs = opts.timeoutMs ?? this.o.requestTimeoutMs
    const c = this.pick(address)
    const conn = c instanceof ClientConn ? c : await deadline(c, timeoutMs, () => new PeerError('PEER_TIMEOUT', address, `no connection to ${address} within ${timeoutMs} ms`))
    const rx = conn.openStream(type, payload, opts.windowBytes ?? this.o.streamWindowBytes, timeoutMs)
    try {
      for (;;) {
        const r = await rx.next()
        if (r.done) return
        yield r.value as C
      }
    } finally {
      rx.cancel()
    }
  }

  /** Forget a peer's backoff (gossip saw it come back): the next call connects at once. */
  resetBackoff(address: string): void {
    this.pools.get(address)?.resetBackoff()
  }

  /** Close the connections to a peer that is gone for good (it left the cluster) and forget it. */
  disconnect(address: string): void {
    const p = this.pools.get(address)
    if (!p) return
    this.pools.delete(address)
    p.close()
  }

  /** Open connections, to one address or to all. */
  connectionCount(address?: string): number {
    let n = 0
    for (const [a, p] of this.pools) if (address === undefined || a === address) n += p.conns.filter((c) => !c.conn.closed).length
    return n
  }

  /** Close every connection; calls in flight fail with PEER_UNREACHABLE, later calls too. */
  close(): void {
    this.closed = true
    if (this.pinger) clearInterval(this.pinger)
    for (const p of this.pools.values()) p.close()
  }

  private pick(address: string): ClientConn | Promise<ClientConn> {
    if (this.closed) return Promise.reject(new PeerError('PEER_UNREACHABLE', address, 'the transport is closed'))
    let p = this.pools.get(address)
    if (!p) {
      p = new PeerPool(address, this.o)
      this.pools.set(address, p)
    }
    return p.pick()
  }

  private checkLiveness(): void {
    const now = Date.now()
    for (const p of this.pools.values()) {
      for (const c of p.conns) {
        const quiet = now - c.conn.lastReceivedAt
        if (quiet >= 3 * this.o.pingIntervalMs) c.conn.destroy(`no traffic from the peer for ${quiet} ms`)
        else if (quiet >= this.o.pingIntervalMs) c.conn.send(FrameKind.PING, 0, null)
      }
    }
  }
}

/** The connections to one peer address and its reconnect backoff. */
class PeerPool {
  readonly conns: ClientConn[] = []
  private connecting: Promise<ClientConn> | null = null
  private failures = 0
  private retryAt = 0
  private lastError: PeerError | null = null
  private closed = false

  constructor(
    readonly address: string,
    private readonly o: Resolved,
  ) {}

  pick(): ClientConn | Promise<ClientConn> {
    // The least busy open connection; one being closed stays listed until its socket is gone.
    let best: ClientConn | null = null
    let open = 0
    for (const c of this.conns) {
      if (c.conn.closed) continue
      open++
      if (!best || c.load < best.load) best = c
    }
    if (best) {
      if (open < this.o.connectionsPerPeer && !this.connecting && Date.now() >= this.retryAt) {
        this.connect().catch(() => {})
      }
      return best
    }
    if (this.connecting) return this.connecting
    const wait = this.retryAt - Date.now()
    if (wait > 0 && this.lastError) {
      const e = this.lastError
      return Promise.reject(new PeerError(e.code, this.address, `${e.message} (next attempt in ${wait} ms)`))
    }
    return this.connect()
  }

  resetBackoff(): void {
    this.retryAt = 0
    this.failures = 0
  }

  close(): void {
    this.closed = true
    for (const c of [...this.conns]) c.conn.destroy('the transport is closed')
  }

  private connect(): Promise<ClientConn> {
    const p = openSocket(this.address, this.o).then(
      ({ socket, head, remoteHostId }) => {
        this.connecting = null
        if (this.closed) {
          socket.destroy()
          throw new PeerError('PEER_UNREACHABLE', this.address, 'the transport is closed')
        }
        if (this.failures > 0) this.o.logger.info({ address: this.address, after: this.failures }, 'internode connection re-established')
        this.failures = 0
        this.retryAt = 0
        const c: ClientConn = new ClientConn(socket, this.address, remoteHostId, this.o, () => {
          const i = this.conns.indexOf(c)
          if (i >= 0) this.conns.splice(i, 1)
        })
        this.conns.push(c)
        c.conn.feed(head)
        return c
      },
      (err: PeerError) => {
        this.connecting = null
        this.failures++
        const backoff = Math.min(this.o.backoffMaxMs, this.o.backoffMinMs * 2 ** (this.failures - 1))
        // Jitter keeps a cluster's nodes from reconnecting to a restarted peer in lockstep.
        this.retryAt = Date.now() + Math.round(backoff * (0.5 + Math.random() / 2))
        this.lastError = err
        const level = this.failures === 1 ? 'warn' : 'debug'
        this.o.logger[level]({ address: this.address, code: err.code, failures: this.failures, err: err.message }, 'internode connection failed')
        throw err
      },
    )
    this.connecting = p
    return p
  }
}

interface Pending {
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout
  type: MessageType
}

/** One connection to a peer: its calls in flight by request id. */
class ClientConn {
  readonly conn: FrameConnection
  private readonly pending = new Map<number, Pending>()
  readonly streams = new Map<number, StreamReceiver>()
  private nextId = 1

  constructor(
    socket: Socket,
    readonly address: string,
    readonly remoteHostId: string,
    private readonly o: Resolved,
    onGone: () => void,
  ) {
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30_000)
    socket.setTimeout(0)
    this.conn = new FrameConnection(socket, {
      maxFrameBytes: o.maxFrameBytes,
      logger: o.logger,
      onFrame: (f) => this.onFrame(f),
      onClose: (reason) => {
        onGone()
        this.failAll(reason)
      },
    })
  }

  get maxFrameBytes(): number {
    return this.o.maxFrameBytes
  }

  get load(): number {
    return this.pending.size + this.streams.size
  }

  request(type: MessageType, body: unknown, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.conn.closed) return reject(this.lost('closed'))
      const id = this.allocId()
      try {
        this.conn.send(FrameKind.REQUEST, id, [type, body])
      } catch (err) {
        return reject(localSendError(err))
      }
      this.pending.set(id, { resolve, reject, type, timer: setTimeout(timeOut, timeoutMs, this, id, timeoutMs) })
    })
  }

  sendOneWay(type: MessageType, body: unknown): void {
    try {
      this.conn.send(FrameKind.SEND, 0, [type, body])
    } catch (err) {
      this.o.logger.warn({ address: this.address, type, err: (err as Error).message }, 'could not send a one-way message')
    }
  }

  openStream(type: MessageType, body: unknown, windowBytes: number, timeoutMs: number): StreamReceiver {
    if (this.conn.closed) throw this.lost('closed')
    const id = this.allocId()
    try {
      this.conn.send(FrameKind.STREAM_OPEN, id, [type, body, windowBytes])
    } catch (err) {
      throw localSendError(err)
    }
    const rx = new StreamReceiver(this, id, type, windowBytes, timeoutMs)
    this.streams.set(id, rx)
    return rx
  }

  /** Called by the timer of request `id`. */
  expire(id: number, timeoutMs: number): void {
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    p.reject(new PeerError('PEER_TIMEOUT', this.address, `no reply from ${this.address} to ${String(p.type)} within ${timeoutMs} ms`))
  }

  lost(reason: string): PeerError {
    return new PeerError('PEER_UNREACHABLE', this.address, `connection to ${this.address} lost (${reason}); a call in flight may or may not have been applied`)
  }

  private onFrame(f: Frame): void {
    switch (f.kind) {
      case FrameKind.RESPONSE: {
        const p = this.pending.get(f.id)
        if (!p) return // answered after its timeout
        const v = decodePayload(f.payload)
        this.pending.delete(f.id)
        clearTimeout(p.timer)
        return p.resolve(v)
      }
      case FrameKind.ERROR: {
        const body = decodePayload(f.payload)
        if (!isErrorBody(body)) throw new FrameError('FRAME_MALFORMED', 'an ERROR payload must be {code, message}')
        const err = new PeerError('PEER_ERROR', this.address, body.message, { remoteCode: body.code, details: body.details ?? {} })
        const p = this.pending.get(f.id)
        if (p) {
          this.pending.delete(f.id)
          clearTimeout(p.timer)
          return p.reject(err)
        }
        return this.streams.get(f.id)?.fail(err)
      }
      case FrameKind.STREAM_CHUNK: {
        const rx = this.streams.get(f.id)
        if (rx) rx.push(decodePayload(f.payload), f.payload.length)
        return
      }
      case FrameKind.STREAM_END:
        return this.streams.get(f.id)?.end()
      case FrameKind.PONG:
        return
      default:
        throw unexpectedFrame(f, 'client')
    }
  }

  private allocId(): number {
    for (;;) {
      const id = this.nextId
      this.nextId = id === MAX_REQUEST_ID ? 1 : id + 1
      if (!this.pending.has(id) && !this.streams.has(id)) return id
    }
  }

  private failAll(reason: string): void {
    const pending = [...this.pending.values()]
    this.pending.clear()
    for (const p of pending) {
      clearTimeout(p.timer)
      p.reject(this.lost(reason))
    }
    for (const rx of [...this.streams.values()]) rx.fail(this.lost(reason))
  }
}

function timeOut(c: ClientConn, id: number, timeoutMs: number): void {
  c.expire(id, timeoutMs)
}

/** An encoding failure on our side is the caller's problem, not the peer's. */
function localSendError(err: unknown): Error {
  if (err instanceof FrameError && err.code === 'FRAME_TOO_LARGE') return new RingError('VALUE_TOO_LARGE', err.message)
  return err as Error
}

/**
 * The receiving end of one stream. Chunks queue here until the consumer takes them; taking them
 * is what returns credit to the sender, so the queue never holds much more than the window.
 */
class StreamReceiver {
  private readonly queue: Array<{ value: unknown; bytes: number }> = []
  private queueHead = 0
  private buffered = 0
  private consumed = 0
  private done = false
  private error: PeerError | null = null
  private waiter: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null

  constructor(
    private readonly owner: ClientConn,
    private readonly id: number,
    private readonly type: MessageType,
    private readonly window: number,
    private readonly timeoutMs: number,
  ) {}

  push(value: unknown, bytes: number): void {
    if (this.done || this.error) return
    const w = this.waiter
    if (w) {
      this.waiter = null
      clearTimeout(w.timer)
      this.credit(bytes)
      return w.resolve({ value, done: false })
    }
    this.queue.push({ value, bytes })
    this.buffered += bytes
    // The sender must stop at the window; one that does not is broken, and we will not buffer for it.
    if (this.buffered > this.window + this.owner.maxFrameBytes) {
      this.owner.conn.destroy(`stream ${this.id} overran its flow-control window`)
    }
  }

  end(): void {
    this.done = true
    this.owner.streams.delete(this.id)
    const w = this.waiter
    if (w && this.queueHead === this.queue.length) {
      this.waiter = null
      clearTimeout(w.timer)
      w.resolve({ value: undefined, done: true })
    }
  }

  fail(err: PeerError): void {
    if (this.done) return
    this.error = err
    this.done = true
    this.owner.streams.delete(this.id)
    const w = this.waiter
    if (w) {
      this.waiter = null
      clearTimeout(w.timer)
      w.reject(err)
    }
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.queueHead < this.queue.length) {
      const item = this.queue[this.queueHead]!
      this.queue[this.queueHead++] = undefined as never
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0
        this.queueHead = 0
      }
      this.buffered -= item.bytes
      this.credit(item.bytes)
      return Promise.resolve({ value: item.value, done: false })
    }
    if (this.error) return Promise.reject(this.error)
    if (this.done) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new PeerError('PEER_TIMEOUT', this.owner.address, `no chunk of stream ${String(this.type)} from ${this.owner.address} within ${this.timeoutMs} ms`))
        this.sendCancel()
      }, this.timeoutMs)
      this.waiter = { resolve, reject, timer }
    })
  }

  /** The consumer is finished with the stream, whether or not it reached the end. */
  cancel(): void {
    if (!this.done) {
      this.done = true
      this.owner.streams.delete(this.id)
      this.sendCancel()
    }
    this.queue.length = 0
    this.queueHead = 0
  }

  private sendCancel(): void {
    this.owner.conn.send(FrameKind.CANCEL, this.id, null)
  }

  private credit(bytes: number): void {
    this.consumed += bytes
    // Returning credit in halves of the window keeps the sender busy without a frame per chunk.
    if (this.consumed >= this.window / 2 && !this.done) {
      this.owner.conn.send(FrameKind.CREDIT, this.id, this.consumed)
      this.consumed = 0
    }
  }
}

interface Opened {
  socket: Socket
  head: Buffer
  remoteHostId: string
}

/** Connect and perform the upgrade handshake. */
function openSocket(address: string, o: Resolved): Promise<Opened> {
  return new Promise((resolve, reject) => {
    let target: { host: string; port: number }
    try {
      target = parseAddress(address)
    } catch (err) {
      return reject(new PeerError('PEER_UNREACHABLE', address, (err as Error).message))
    }
    const headers: Record<string, string> = {
      Connection: 'Upgrade',
      Upgrade: UPGRADE_PROTOCOL,
      'X-Ringkv-Host': o.hostId,
      'X-Ringkv-Proto': PROTOCOL_VERSION,
    }
    if (o.clusterToken) headers.Authorization = `Bearer ${o.clusterToken}`
    if (o.clusterName) headers['X-Ringkv-Cluster'] = o.clusterName
    const req = httpRequest({ ...target, path: STREAM_PATH, method: 'GET', headers, agent: false })
    let settled = false
    const fail = (code: PeerErrorCode, message: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      reject(new PeerError(code, address, message))
    }
    const timer = setTimeout(() => fail('PEER_UNREACHABLE', `connecting to ${address} took longer than ${o.connectTimeoutMs} ms`), o.connectTimeoutMs)
    req.on('upgrade', (res, socket, head) => {
      if (settled) return void socket.destroy()
      settled = true
      clearTimeout(timer)
      resolve({ socket, head, remoteHostId: String(res.headers['x-ringkv-host'] ?? '') })
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        if (body.length < 4096) body += d
      })
      res.on('end', () => {
        const status = res.statusCode ?? 0
        const why = errorMessageOf(body)
        if (status === 401 || status === 403) {
          fail('PEER_UNAUTHORIZED', `${address} refused this node (HTTP ${status}${why ? `: ${why}` : ''}); every node must use the same cluster token`)
        } else {
          fail('PEER_UNREACHABLE', `${address} answered the internode handshake with HTTP ${status}${why ? `: ${why}` : ''}; is it a ringkv peer port?`)
        }
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => fail('PEER_UNREACHABLE', `cannot connect to ${address}: ${err.code ?? err.message}`))
    req.end()
  })
}

function errorMessageOf(body: string): string {
  try {
    return String(JSON.parse(body)?.error?.message ?? '')
  } catch {
    return ''
  }
}

/** `host:port` or `[v6]:port`. */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address)
  const port = m ? Number(m[3]) : NaN
  if (!m || !(port > 0 && port < 65536)) throw new Error(`peer address ${JSON.stringify(address)} is not host:port`)
  return { host: (m[1] ?? m[2])!, port }
}

function deadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms)
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    )
  })
}
