/**
 * The serving side of the internode transport. It shares the peer port with the admin API:
 * a peer opens `GET /internal/v1/stream` with `Upgrade: ringkv-rpc` (plus the cluster token and
 * its host id), gets `101 Switching Protocols`, and from then on the socket carries frames.
 */
import { TokenCheck } from '../util/token-auth.js'
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { invariant, RingError } from '../errors.js'
import type { Logger } from '../log.js'
import { FrameConnection, unexpectedFrame } from './connection.js'
import { decodePayload, DEFAULT_MAX_FRAME_BYTES, FrameError, FrameKind, type Frame } from './frame.js'
import { CLUSTER_HEADER, HOST_HEADER, PROTO_HEADER, PROTOCOL_VERSION, STREAM_PATH, UPGRADE_PROTOCOL } from './handshake.js'
import { errorBodyOf, Handlers, isMessageType, isThenable, type MessageType } from './handlers.js'


/** Stream windows a client may ask for are clamped to this range. */
const MIN_WINDOW = 64 * 1024
const MAX_WINDOW = 64 * 1024 * 1024
/** Reply bytes a connection may have waiting for the peer to read before we stop reading it. */
const MAX_UNSENT_BYTES = 8 * 1024 * 1024

export interface PeerServerOptions {
  /** this node's host id, told to every peer in the 101 response */
  hostId: string
  handlers: Handlers
  logger: Logger
  /** when set (non-empty), every peer must present it as `Authorization: Bearer <token>` */
  clusterToken?: string | undefined
  /** when set here and by the peer, the two must match */
  clusterName?: string | undefined
  maxFrameBytes?: number
  /** requests a connection may have in progress before the server stops reading from it */
  maxInFlightPerConnection?: number
  /** a connection that sends nothing (not even a ping) for this long is closed */
  idleTimeoutMs?: number
}

export class PeerServer {
  private readonly sessions = new Set<ServerSession>()
  private readonly servers = new Map<Server, (req: IncomingMessage, socket: Socket, head: Buffer) => void>()
  private readonly token: TokenCheck | null
  private readonly maxFrameBytes: number
  private readonly maxInFlight: number
  private readonly idleTimeoutMs: number
  private readonly log: Logger

  constructor(private readonly opts: PeerServerOptions) {
    invariant(/^[\x21-\x7e]{1,256}$/.test(opts.hostId), 'host id must be 1..256 printable ASCII characters')
    this.token = opts.clusterToken ? new TokenCheck(opts.clusterToken) : null
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.maxInFlight = opts.maxInFlightPerConnection ?? 4096
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000
    this.log = opts.logger
  }

  /** Serve internode connections on `server`'s port next to whatever else it serves. */
  attach(server: Server): void {
    if (this.servers.has(server)) return
    const listener = (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(server, req, socket, head)
    this.servers.set(server, listener)
    server.on('upgrade', listener)
  }

  /** Number of open internode connections. */
  get connectionCount(): number {
    return this.sessions.size
  }

  /** Stop accepting internode connections and close the open ones. */
  close(): void {
    for (const [s, listener] of this.servers) s.off('upgrade', listener)
    this.servers.clear()
    for (const s of [...this.sessions]) s.conn.destroy('server closing')
  }

  private onUpgrade(server: Server, req: IncomingMessage, socket: Socket, head: Buffer): void {
    const path = (req.url ?? '').split('?', 1)[0]
    // Another 'upgrade' listener may own that path; if there is none, nobody else will answer.
    if (path !== STREAM_PATH && server.listenerCount('upgrade') > 1) return
    // An upgraded socket has no error listener of its own any more; an unhandled one would crash.
    socket.on('error', () => {})
    if (path !== STREAM_PATH) return refuse(socket, 404, 'NOT_FOUND', `no upgrade endpoint at ${path}`)
    const remote = { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort }
    if ((req.headers.upgrade ?? '').toLowerCase() !== UPGRADE_PROTOCOL) {
      return refuse(socket, 400, 'BAD_REQUEST', `${STREAM_PATH} expects Upgrade: ${UPGRADE_PROTOCOL}`)
    }
    const peerHost = header(req, HOST_HEADER)
    const auth = this.checkToken(req)
    if (auth !== 'ok') {
      this.log.warn({ ...remote, peerHost, reason: auth === 'missing' ? 'no cluster token' : 'wrong cluster token' }, 'refused internode connection: bad cluster token')
      return refuse(socket, 401, 'UNAUTHORIZED', 'missing or wrong cluster token; send Authorization: Bearer <cluster token> with the token this cluster uses')
    }
    const proto = header(req, PROTO_HEADER) ?? PROTOCOL_VERSION
    if (proto !== PROTOCOL_VERSION) {
      return refuse(socket, 400, 'BAD_REQUEST', `internode protocol version ${proto} is not supported; this node speaks ${PROTOCOL_VERSION}`)
    }
    if (!peerHost || !/^[\x21-\x7e]{1,256}$/.test(peerHost)) {
      return refuse(socket, 400, 'BAD_REQUEST', `send the caller's host id in ${HOST_HEADER}`)
    }
    const cluster = header(req, CLUSTER_HEADER)
    if (this.opts.clusterName && cluster && cluster !== this.opts.clusterName) {
      this.log.warn({ ...remote, peerHost, cluster, ours: this.opts.clusterName }, 'refused internode connection from another cluster')
      return refuse(socket, 403, 'UNAUTHORIZED', `this node belongs to cluster ${this.opts.clusterName}, not ${cluster}`)
    }

    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30_000)
    socket.setTimeout(this.idleTimeoutMs)
    socket.on('timeout', () => session.conn.destroy('idle timeout'))
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${UPGRADE_PROTOCOL}\r\nConnection: Upgrade\r\n` +
        `X-Ringkv-Host: ${this.opts.hostId}\r\nX-Ringkv-Proto: ${PROTOCOL_VERSION}\r\n\r\n`,
    )
    const session: ServerSession = new ServerSession(socket, peerHost, this.opts.handlers, this.log, this.maxFrameBytes, this.maxInFlight, () =>
      this.sessions.delete(session),
    )
    this.sessions.add(session)
    this.log.debug({ ...remote, peerHost }, 'internode connection accepted')
    session.conn.feed(head)
  }

  private checkToken(req: IncomingMessage): 'ok' | 'missing' | 'wrong' {
    if (!this.token) return 'ok'
    const m = /^Bearer +(.+)$/i.exec(req.headers.authorization ?? '')
    const given = m?.[1]?.trim()
    if (!given) return 'missing'
    return this.token.matches(given) ? 'ok' : 'wrong'
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Answer the handshake with an HTTP error in the API's JSON error shape, then close. */
function refuse(socket: Socket, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } })
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  )
}

/** One stream this node is sending: its remaining credit from the receiver. */
class OutStream {
  cancelled = false
  private wake: (() => void) | null = null
  constructor(public credit: number) {}

  addCredit(n: number): void {
    this.credit += n
    this.notify()
  }

  cancel(): void {
    this.cancelled = true
    this.notify()
  }

  waitForCredit(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve))
  }

  private notify(): void {
    const w = this.wake
    this.wake = null
    w?.()
  }
}

/** The server end of one internode connection: runs handlers and sends their answers. */
class ServerSession {
  readonly conn: FrameConnection
  private inFlight = 0
  private paused = false
  private draining = false
  private awaitingDrain = false
  /** requests read while at the in-flight limit; at most one socket read's worth */
  private readonly backlog: Frame[] = []
  private readonly streams = new Map<number, OutStream>()

  constructor(
    socket: Socket,
    private readonly peerHost: string,
    private readonly handlers: Handlers,
    private readonly log: Logger,
    maxFrameBytes: number,
    private readonly maxInFlight: number,
    onGone: () => void,
  ) {
    this.conn = new FrameConnection(socket, {
      maxFrameBytes,
      logger: log,
      onFrame: (f) => this.onFrame(f),
      onClose: (reason) => {
        for (const s of this.streams.values()) s.cancel()
        log.debug({ peerHost, reason }, 'internode connection closed')
        onGone()
      },
    })
  }

  private onFrame(f: Frame): void {
    switch (f.kind) {
      case FrameKind.REQUEST:
      case FrameKind.SEND:
      case FrameKind.STREAM_OPEN:
        // Overloaded, stop reading and hold what was already read: the peer's socket backs up
        // instead of our memory, and handler concurrency stays bounded.
        if (this.backlog.length > 0 || this.overloaded()) {
          this.backlog.push(f)
          this.holdReading()
          return
        }
        return this.dispatch(f)
      case FrameKind.CREDIT: {
        const n = decodePayload(f.payload)
        if (typeof n !== 'number' || !(n > 0)) throw new FrameError('FRAME_MALFORMED', 'CREDIT payload must be a positive byte count')
        this.streams.get(f.id)?.addCredit(n)
        return
      }
      case FrameKind.CANCEL:
        this.streams.get(f.id)?.cancel()
        return
      case FrameKind.PING:
        this.conn.send(FrameKind.PONG, f.id, null)
        return
      default:
        throw unexpectedFrame(f, 'server')
    }
  }

  private dispatch(f: Frame): void {
    const [type, body, window] = decodeCall(f)
    if (f.kind === FrameKind.REQUEST) return this.call(f.id, type, body)
    if (f.kind === FrameKind.SEND) return this.oneWay(type, body)
    if (this.streams.has(f.id)) throw new FrameError('FRAME_MALFORMED', `stream id ${f.id} is already open`)
    const w = typeof window === 'number' ? Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, window)) : MIN_WINDOW
    void this.stream(f.id, type, body, w)
  }

  private call(id: number, type: MessageType, body: unknown): void {
    const h = this.handlers.handler(type)
    if (!h) return this.fail(id, type, unknownType(type, this.handlers))
    this.begin()
    let r: unknown
    try {
      r = h(body, this.peerHost)
    } catch (err) {
      this.fail(id, type, err)
      return this.end()
    }
    if (!isThenable(r)) {
      this.reply(id, type, r)
      return this.end()
    }
    r.then(
      (v) => {
        this.reply(id, type, v)
        this.end()
      },
      (err) => {
        this.fail(id, type, err)
        this.end()
      },
    )
  }

  private oneWay(type: MessageType, body: unknown): void {
    const h = this.handlers.handler(type)
    if (!h) {
      this.log.warn({ peerHost: this.peerHost, type }, 'dropped a one-way internode message of an unknown type')
      return
    }
    this.begin()
    const failed = (err: unknown) => this.log.warn({ peerHost: this.peerHost, type, err }, 'one-way internode message failed')
    try {
      const r = h(body, this.peerHost)
      if (isThenable(r)) {
        r.then(() => this.end(), (err) => (failed(err), this.end()))
        return
      }
    } catch (err) {
      failed(err)
    }
    this.end()
  }

  private reply(id: number, type: MessageType, value: unknown): void {
    try {
      this.conn.send(FrameKind.RESPONSE, id, value)
    } catch (err) {
      this.fail(id, type, err)
    }
  }

  private fail(id: number, type: MessageType, err: unknown): void {
    this.conn.send(FrameKind.ERROR, id, errorBodyOf(err, this.log, { peerHost: this.peerHost, type }))
  }

  private async stream(id: number, type: MessageType, body: unknown, window: number): Promise<void> {
    const h = this.handlers.streamHandler(type)
    if (!h) return this.fail(id, type, unknownType(type, this.handlers))
    const st = new OutStream(window)
    this.streams.set(id, st)
    this.begin()
    const live = () => !st.cancelled && !this.conn.closed
    let it: AsyncIterator<unknown> | Iterator<unknown> | undefined
    let finished = false
    try {
      it = iteratorOf(await h(body, this.peerHost))
      while (live()) {
        // Ask the source for the next chunk only when the receiver has room and the socket
        // wants more, so nothing piles up here or in the socket for a slow receiver.
        if (st.credit <= 0) {
          await st.waitForCredit()
          continue
        }
        await this.conn.whenWritable()
        if (!live()) break
        const r = await it.next()
        if (r.done) {
          finished = true
          this.conn.send(FrameKind.STREAM_END, id, null)
          break
        }
        if (!live()) break
        st.credit -= this.conn.send(FrameKind.STREAM_CHUNK, id, r.value)
      }
    } catch (err) {
      finished = true
      if (live()) this.fail(id, type, err)
    } finally {
      this.streams.delete(id)
      this.end()
      if (!finished && it?.return) {
        try {
          await it.return()
        } catch (err) {
          this.log.warn({ peerHost: this.peerHost, type, err }, 'closing a cancelled stream source failed')
        }
      }
    }
  }

  private begin(): void {
    this.inFlight++
  }

  private end(): void {
    this.inFlight--
    this.pump()
  }

  /**
   * Too many calls running, or too many reply bytes the peer has not read (a peer that sends
   * requests but never reads replies would otherwise grow our socket buffer without bound).
   */
  private overloaded(): boolean {
    return this.inFlight >= this.maxInFlight || this.conn.pendingWriteBytes > MAX_UNSENT_BYTES
  }

  private holdReading(): void {
    if (!this.paused) {
      this.paused = true
      this.conn.socket.pause()
    }
    if (this.conn.pendingWriteBytes > MAX_UNSENT_BYTES && !this.awaitingDrain) {
      this.awaitingDrain = true
      void this.conn.whenWritable().then(() => {
        this.awaitingDrain = false
        this.pump()
      })
    }
  }

  /** Run held requests while there is room; read again once everything held has run. */
  private pump(): void {
    if (this.draining || this.conn.closed) return
    this.draining = true
    try {
      while (this.backlog.length > 0 && !this.overloaded()) this.dispatch(this.backlog.shift()!)
    } catch (err) {
      this.conn.fail(err)
    } finally {
      this.draining = false
    }
    if (!this.paused) return
    // Still held back by unsent replies: wait for the socket to drain (no-op if already waiting).
    if (this.backlog.length > 0 || this.conn.pendingWriteBytes > MAX_UNSENT_BYTES) return this.holdReading()
    if (this.inFlight <= this.maxInFlight / 2) {
      this.paused = false
      this.conn.socket.resume()
    }
  }
}

function decodeCall(f: Frame): [MessageType, unknown, unknown] {
  const v = decodePayload(f.payload)
  if (!Array.isArray(v) || v.length < 2 || !isMessageType(v[0])) {
    throw new FrameError('FRAME_MALFORMED', 'a request payload must be [type, body, ...]')
  }
  return [v[0], v[1], v[2]]
}

function unknownType(type: MessageType, handlers: Handlers): RingError {
  const hint = handlers.streamHandler(type) ? ' (it is a stream type; use requestStream)' : handlers.handler(type) ? ' (it is a request type; use request)' : ''
  return new RingError('BAD_REQUEST', `no handler for message type ${String(type)}${hint}; is the peer running an older version?`)
}

function iteratorOf(src: unknown): AsyncIterator<unknown> | Iterator<unknown> {
  const s = src as Partial<AsyncIterable<unknown> & Iterable<unknown>> | null
  const asyncIt = s?.[Symbol.asyncIterator]
  if (typeof asyncIt === 'function') return asyncIt.call(s)
  const syncIt = s?.[Symbol.iterator]
  if (typeof syncIt === 'function') return syncIt.call(s)
  throw new Error('a stream handler must return an AsyncIterable or an Iterable')
}
