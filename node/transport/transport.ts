import type { Server } from 'node:http'
import type { Logger } from '../log.js'
import { PeerClient, type PeerClientOptions, type RequestOptions, type StreamOptions } from './client.js'
import { Handlers, type Handler, type MessageType, type StreamHandler } from './handlers.js'
import { PeerServer, type PeerServerOptions } from './peer-server.js'

export interface TransportOptions {
  hostId: string
  logger: Logger
  clusterToken?: string | undefined
  clusterName?: string | undefined
  maxFrameBytes?: number
  /** tuning of the calling side */
  client?: Omit<PeerClientOptions, 'hostId' | 'logger' | 'clusterToken' | 'clusterName' | 'maxFrameBytes'>
  /** tuning of the serving side */
  server?: Pick<PeerServerOptions, 'maxInFlightPerConnection' | 'idleTimeoutMs'>
}

/**
 * This node's end of internode traffic: the handlers it serves (attached to the peer port's
 * http.Server) and the client it calls other nodes with. The same token, cluster name and
 * frame limit apply both ways.
 */
export class Transport {
  readonly handlers = new Handlers()
  readonly client: PeerClient
  readonly server: PeerServer

  constructor(opts: TransportOptions) {
    const common = { hostId: opts.hostId, logger: opts.logger, clusterToken: opts.clusterToken, clusterName: opts.clusterName }
    const limit = opts.maxFrameBytes !== undefined ? { maxFrameBytes: opts.maxFrameBytes } : {}
    this.client = new PeerClient({ ...opts.client, ...common, ...limit })
    this.server = new PeerServer({ ...opts.server, ...common, ...limit, handlers: this.handlers })
  }

  /** Serve internode connections on the peer port (next to the admin API). */
  attach(server: Server): void {
    this.server.attach(server)
  }

  /** Serve requests and one-way messages of `type`; a thrown RingError reaches the caller with its code. */
  on<P = any, R = unknown>(type: MessageType, handler: Handler<P, R>): void {
    this.handlers.on(type, handler)
  }

  /** Serve stream requests of `type` with the chunks the handler's iterable yields. */
  onStream<P = any, C = unknown>(type: MessageType, handler: StreamHandler<P, C>): void {
    this.handlers.onStream(type, handler)
  }

  request<R = unknown>(address: string, type: MessageType, payload: unknown, opts?: RequestOptions): Promise<R> {
    return this.client.request<R>(address, type, payload, opts)
  }

  send(address: string, type: MessageType, payload: unknown): void {
    this.client.send(address, type, payload)
  }

  requestStream<C = unknown>(address: string, type: MessageType, payload: unknown, opts?: StreamOptions): AsyncGenerator<C, void, undefined> {
    return this.client.requestStream<C>(address, type, payload, opts)
  }

  /** Close both directions: outgoing calls fail with PEER_UNREACHABLE, incoming connections are closed. */
  close(): void {
    this.client.close()
    this.server.close()
  }
}
