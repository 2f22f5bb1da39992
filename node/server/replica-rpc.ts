import type { ClientWrite, Consistency } from '../api/service.js'
import { RingError } from '../errors.js'
import type { ClusterView } from '../membership/view.js'
import type { Coordinator, ReplicaChannel } from '../replication/coordinator.js'
import { decodeRecord, encodeRecord } from '../storage/codec.js'
import type { StoredRecord } from '../storage/record.js'
import type { Store } from '../storage/store.js'
import { PeerError, type Transport } from '../transport/index.js'

/** Internode message types of replication. */
export const MSG = {
  apply: 'replica.apply',
  read: 'replica.read',
  forwardWrite: 'kv.write',
  forwardRead: 'kv.read',
} as const

/** `to`: the host id the coordinator means. A new process at an old address (a node that lost
 *  its disk comes back as a new identity) must not answer for the replica that was there. */
interface ApplyReq { key: Buffer; rec: Buffer; to?: string }
interface ReadReq { key: Buffer; to?: string }
interface ForwardWriteReq { key: Buffer; value?: Buffer; contentType?: string; context?: Record<string, number>; expiresAt?: number; cl: Consistency }
interface ForwardReadReq { key: Buffer; cl: Consistency }

/**
 * The coordinator's replica operations over the transport. A peer's own error answer becomes
 * its RingError (final); an unreachable or silent peer stays a PeerError (worth another replica).
 */
export class TransportChannel implements ReplicaChannel {
  constructor(
    private readonly transport: Transport,
    private readonly view: ClusterView,
  ) {}

  private address(hostId: string): string {
    const m = this.view.member(hostId)
    if (!m) throw new PeerError('PEER_UNREACHABLE', hostId, `node ${hostId} is not in this node's view of the cluster`)
    return m.address
  }

  private async call<R>(hostId: string, type: string, payload: unknown, timeoutMs: number): Promise<R> {
    try {
      return await this.transport.request<R>(this.address(hostId), type, payload, { timeoutMs })
    } catch (e) {
      if (e instanceof PeerError && e.code === 'PEER_ERROR') throw e.toRingError()
      throw e
    }
  }

  async apply(hostId: string, key: Buffer, rec: StoredRecord, timeoutMs: number): Promise<void> {
    await this.call(hostId, MSG.apply, { key, rec: encodeRecord(rec), to: hostId } satisfies ApplyReq, timeoutMs)
  }

  async read(hostId: string, key: Buffer, timeoutMs: number): Promise<StoredRecord | undefined> {
    const r = await this.call<{ rec?: Buffer }>(hostId, MSG.read, { key, to: hostId } satisfies ReadReq, timeoutMs)
    return r.rec ? decodeRecord(r.rec) : undefined
  }

  async forwardWrite(hostId: string, key: Buffer, w: ClientWrite, cl: Consistency, timeoutMs: number): Promise<StoredRecord> {
    const req: ForwardWriteReq = { key, cl, ...w }
    // The replica coordinating it may first spend up to half a timeout fetching the If-Match
    // versions it lacks (Coordinator.catchUp), then a whole one waiting for acks.
    const r = await this.call<{ rec: Buffer }>(hostId, MSG.forwardWrite, req, Math.ceil(timeoutMs * 1.5) + 1000)
    return decodeRecord(r.rec)
  }

  async forwardRead(hostId: string, key: Buffer, cl: Consistency, timeoutMs: number): Promise<StoredRecord | undefined> {
    const r = await this.call<{ rec?: Buffer }>(hostId, MSG.forwardRead, { key, cl } satisfies ForwardReadReq, timeoutMs + 1000)
    return r.rec ? decodeRecord(r.rec) : undefined
  }
}

/** Serves the replication messages on this node. */
export function registerReplicaHandlers(transport: Transport, coordinator: Coordinator, store: Store, accepting: () => void): void {
  const self = store.hostId()
  const checkTarget = (to: string | undefined) => {
    if (to !== undefined && to !== self) throw new RingError('UNAVAILABLE', `this is node ${self}, not ${to}: that replica is gone from this address`, { required: 1, alive: 0 })
  }
  transport.on<ApplyReq>(MSG.apply, async (req) => {
    if (!Buffer.isBuffer(req?.key) || !Buffer.isBuffer(req.rec)) throw new RingError('BAD_REQUEST', 'replica.apply needs key and rec buffers')
    checkTarget(req.to)
    await coordinator.applyReplica(req.key, decodeRecord(req.rec))
    return { ok: true }
  })
  transport.on<ReadReq>(MSG.read, async (req) => {
    if (!Buffer.isBuffer(req?.key)) throw new RingError('BAD_REQUEST', 'replica.read needs a key buffer')
    checkTarget(req.to)
    const rec = await store.getRaw(req.key)
    return rec ? { rec } : {}
  })
  transport.on<ForwardWriteReq>(MSG.forwardWrite, async (req) => {
    accepting()
    const w: ClientWrite = {}
    if (req.value !== undefined) w.value = req.value
    if (req.contentType !== undefined) w.contentType = req.contentType
    if (req.context !== undefined) w.context = req.context
    if (req.expiresAt !== undefined) w.expiresAt = req.expiresAt
    const rec = await coordinator.write(req.key, w, req.cl, true)
    return { rec: encodeRecord(rec) }
  })
  transport.on<ForwardReadReq>(MSG.forwardRead, async (req) => {
    const rec = await coordinator.read(req.key, req.cl)
    return rec ? { rec: encodeRecord(rec) } : {}
  })
}
