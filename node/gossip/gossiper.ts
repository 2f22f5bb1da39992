/**
 * The gossip state machine of one node: membership, per-endpoint versioned application state,
 * heartbeats and failure detection. No I/O, no timers, no Math.random: the caller feeds ticks
 * and messages with an explicit `now` (ms) and sends what comes back.
 *
 * Public API:
 *   new Gossiper(options: GossiperOptions)
 *     self: { hostId, address, generation }   generation must grow across restarts of the
 *                                              same host id (e.g. max(start seconds, last + 1))
 *     seeds: addresses (host:port) for first contact and healing partitions
 *     rng: seeded Rng; cluster?: name checked on every message; fanout?: live peers per tick (3)
 *     phi?: PhiOptions; leftRetentionMs?: how long a LEFT endpoint is kept (3 days)
 *     pauseGraceMs?: a gap between our own ticks longer than this means *we* were paused;
 *                    nobody is convicted for that silence (default 5 s)
 *     probeIntervalMs?: least time between two pings to one down endpoint (default 0.5 s)
 *   gossiper.tick(now): Outbound[]               once per gossip interval (1 s)
 *   gossiper.receive(from, msg, now): Outbound[] `msg` is parsed/validated here
 *   gossiper.setLocal(key, value)                bumps that entry's version; spreads on next ticks
 *   gossiper.setSeeds(addresses)                 replace the seeds (re-resolved DNS names)
 *   gossiper.local(key) / gossiper.get(hostId, key)
 *   gossiper.endpoint(hostId) / gossiper.endpoints(): EndpointView[]   snapshots, self included
 *   gossiper.isUp(hostId), gossiper.liveAddresses()
 *   gossiper.drainEvents(): GossipEvent[]        changes since the last call (drain every tick)
 *   gossiper.snapshot(): EndpointDelta[]         every peer's full state, to persist
 *   gossiper.restore(deltas, now): number        peers remembered from disk, installed as down
 *   gossiper.exchanged                           a peer has answered a syn since the start
 *   APP.STATE | APP.TOKENS | APP.LOAD | APP.RF   well-known application state keys
 *
 * Protocol (Cassandra-style three-way exchange, only deltas travel):
 *   A -> B  syn   digests [hostId, generation, maxVersion] of everything A knows
 *   B -> A  ack   requests for what A has newer, deltas of what B has newer, and full states
 *                 of endpoints A did not mention (a newcomer learns everyone in one round)
 *   A -> B  ack2  the deltas B requested
 * Each tick A bumps its heartbeat and sends a syn to `fanout` random live peers, with
 * probability down/(live+1) also to one down endpoint, and, unless a seed was already picked,
 * with probability seeds/(live+down+1) to a seed (always, while it knows no live peer).
 *
 * Versions: one counter per incarnation numbers heartbeats and application entries alike, so
 * a digest's maxVersion summarises everything, and a receiver always holds a prefix of an
 * endpoint's history: if it has tokens of version 7 it has everything the sender had at 7.
 * Set TOKENS before STATE and every node sees the tokens no later than the state.
 *
 * Liveness: a newer heartbeat (learned directly or not) feeds the endpoint's phi detector;
 * tick() marks endpoints down whose phi passes the threshold. Down -> up needs a sign of life
 * from the endpoint itself: a newer heartbeat of a down endpoint (or a first sighting) only
 * triggers a ping to its address (again on later ticks while such news keeps coming, at most
 * one per probeIntervalMs), and its pong marks it up.
 * Gossip relayed after a partition heals carries heartbeats that may be long stale; trusting
 * them would mark a node up that died meanwhile, until phi convicted it again. A newer
 * generation replaces the old incarnation's state entirely and is up at once (a process that
 * restarted is news by construction).
 *
 * Restart: a node forgets nothing it gossiped about itself (the caller persists that), but peers
 * live only in memory. If a whole cluster restarts while one member is dead, nobody would
 * gossip that member any more and it would drop out of the ring without its ranges being
 * streamed anywhere. So the caller persists snapshot() when membership changes and hands it
 * to restore() before the first tick: remembered peers start down, are pinged, and come up
 * when they answer for the same generation (a newer one arrives through gossip anyway).
 *
 * LEFT: an endpoint whose state is LEFT is kept (and gossiped) for leftRetentionMs from when
 * this node learned it, then removed; its (hostId, generation) is remembered for as long
 * again, so stale gossip cannot bring it back, and a node still gossiping the old state is told
 * to drop it (ack.removed). A later generation of the same host id is a new incarnation and
 * is accepted.
 */
import { invariant } from '../errors.js'
import { isNodeState, type NodeState } from '../ring/state.js'
import type { Rng } from '../util/rng.js'
import {
  type AppEntryTuple,
  type Digest,
  type EndpointDelta,
  type GossipAck,
  type GossipMessage,
  parseGossipMessage,
} from './messages.js'
import { PhiAccrualDetector, type PhiOptions } from './phi.js'

export const APP = { STATE: 'state', TOKENS: 'tokens', LOAD: 'load', RF: 'rf' } as const

export const THREE_DAYS_MS = 3 * 24 * 3600 * 1000

/**
 * Live peers contacted per tick. Heartbeats reach most nodes indirectly, so the gaps between
 * a node learning newer heartbeats bound how fast phi can convict. Simulated at 128 nodes,
 * 10% loss, 1 s ticks: fanout 1 has gaps up to ~9 s (no 10 s detection without false
 * downs), fanout 3 keeps them under ~5 s for ~8 messages per node per second.
 */
export const DEFAULT_FANOUT = 3

export interface Outbound {
  to: string
  msg: GossipMessage
}

export interface SelfInfo {
  hostId: string
  address: string
  generation: number
}

export interface GossiperOptions {
  self: SelfInfo
  seeds?: readonly string[]
  rng: Rng
  cluster?: string
  fanout?: number
  phi?: PhiOptions
  leftRetentionMs?: number
  pauseGraceMs?: number
  probeIntervalMs?: number
  /** application state to publish from the start (versions in insertion order) */
  app?: Record<string, string>
}

export interface VersionedValue {
  readonly value: string
  readonly version: number
}

export interface EndpointView {
  readonly hostId: string
  readonly address: string
  readonly generation: number
  readonly heartbeat: number
  readonly maxVersion: number
  readonly up: boolean
  readonly self: boolean
  readonly app: ReadonlyMap<string, VersionedValue>
  /** the STATE entry when it is a valid node state */
  readonly state: NodeState | undefined
}

export type GossipEvent =
  | { type: 'joined'; hostId: string; address: string; generation: number }
  | { type: 'restarted'; hostId: string; address: string; generation: number }
  | { type: 'changed'; hostId: string; key: string; value: string; previous: string | undefined }
  | { type: 'up'; hostId: string }
  | { type: 'down'; hostId: string }
  | { type: 'removed'; hostId: string }
  /** someone gossips our host id with a newer generation: two processes share an identity */
  | { type: 'conflict'; hostId: string; generation: number }

interface Endpoint {
  hostId: string
  address: string
  generation: number
  heartbeat: number
  maxVersion: number
  app: Map<string, VersionedValue>
  up: boolean
  detector: PhiAccrualDetector | undefined
  leftAt: number | undefined
  probedAt: number | undefined
}

export class Gossiper {
  readonly hostId: string
  readonly address: string
  readonly generation: number
  readonly cluster: string
  private readonly rng: Rng
  private seeds: string[]
  private readonly fanout: number
  private readonly phiOptions: PhiOptions
  private readonly leftRetentionMs: number
  private readonly pauseGraceMs: number
  private readonly probeIntervalMs: number
  /** pings decided while handling a message, sent with its reply */
  private probes: Outbound[] = []
  private readonly eps = new Map<string, Endpoint>()
  private readonly removed = new Map<string, { generation: number; at: number }>()
  private readonly me: Endpoint
  private version = 0
  private lastTick: number | undefined
  private events: GossipEvent[] = []
  private answered = false

  constructor(options: GossiperOptions) {
    const { self } = options
    invariant(self.hostId.length > 0 && self.address.length > 0, 'gossiper needs a host id and an address')
    invariant(Number.isSafeInteger(self.generation) && self.generation >= 0, 'generation must be a non-negative integer')
    this.hostId = self.hostId
    this.address = self.address
    this.generation = self.generation
    this.cluster = options.cluster ?? 'ringkv'
    this.rng = options.rng
    this.seeds = [...new Set(options.seeds ?? [])].filter((s) => s !== self.address)
    this.fanout = options.fanout ?? DEFAULT_FANOUT
    invariant(Number.isInteger(this.fanout) && this.fanout >= 1, 'fanout must be a positive integer')
    this.phiOptions = options.phi ?? {}
    this.leftRetentionMs = options.leftRetentionMs ?? THREE_DAYS_MS
    this.pauseGraceMs = options.pauseGraceMs ?? 5000
    this.probeIntervalMs = options.probeIntervalMs ?? 500
    this.me = {
      hostId: self.hostId,
      address: self.address,
      generation: self.generation,
      heartbeat: 0,
      maxVersion: 0,
      app: new Map(),
      up: true,
      detector: undefined,
      leftAt: undefined,
      probedAt: undefined,
    }
    this.eps.set(self.hostId, this.me)
    for (const [k, v] of Object.entries(options.app ?? {})) this.setLocal(k, v)
  }

  // ---- local state -------------------------------------------------------------------

  setLocal(key: string, value: string): void {
    invariant(key.length > 0 && key.length <= 1024, 'application state keys are 1..1024 characters')
    const previous = this.me.app.get(key)?.value
    this.me.app.set(key, { value, version: ++this.version })
    this.me.maxVersion = this.version
    if (previous !== value) this.emit({ type: 'changed', hostId: this.hostId, key, value, previous })
  }

  /** Replaces the seed list (the I/O layer re-resolves DNS seeds now and then). */
  setSeeds(seeds: readonly string[]): void {
    this.seeds = [...new Set(seeds)].filter((s) => s !== this.address)
  }

  local(key: string): string | undefined {
    return this.me.app.get(key)?.value
  }

  get(hostId: string, key: string): string | undefined {
    return this.eps.get(hostId)?.app.get(key)?.value
  }

  // ---- views -------------------------------------------------------------------------

  endpoint(hostId: string): EndpointView | undefined {
    const ep = this.eps.get(hostId)
    return ep && this.view(ep)
  }

  endpoints(): EndpointView[] {
    return [...this.eps.values()].map((ep) => this.view(ep))
  }

  isUp(hostId: string): boolean {
    return this.eps.get(hostId)?.up ?? false
  }

  /** phi of an endpoint now (0 for self and endpoints without heartbeats yet) */
  phi(hostId: string, now: number): number {
    return this.eps.get(hostId)?.detector?.phi(now) ?? 0
  }

  liveAddresses(): string[] {
    return this.peers().filter((p) => p.up).map((p) => p.address)
  }

  drainEvents(): GossipEvent[] {
    const out = this.events
    this.events = []
    return out
  }

  /** Whether a peer has answered one of our syns (its ack carries what it knows). */
  get exchanged(): boolean {
    return this.answered
  }

  /** Every peer's complete state (self excluded), in the shape restore() takes back. */
  snapshot(): EndpointDelta[] {
    const out: EndpointDelta[] = []
    for (const ep of this.eps.values()) if (ep !== this.me) out.push(this.delta(ep, 0))
    return out
  }

  /**
   * Installs peers remembered from before a restart. Each starts down and is pinged; what
   * gossip already told us (a later or equal generation) or removed wins over memory.
   * Emits no events: the caller builds its view afterwards. Returns how many were installed.
   */
  restore(deltas: readonly EndpointDelta[], now: number): number {
    let n = 0
    for (const d of deltas) {
      if (d.id === this.hostId || d.since !== 0) continue
      const tomb = this.removed.get(d.id)
      if (tomb && d.generation <= tomb.generation) continue
      const cur = this.eps.get(d.id)
      if (cur && cur.generation >= d.generation) continue
      const ep = this.endpointFrom(d, now)
      if (ep.app.get(APP.STATE)?.value === 'LEFT') ep.leftAt = now
      this.eps.set(ep.hostId, ep)
      this.probe(ep, now)
      n++
    }
    return n
  }

  private view(ep: Endpoint): EndpointView {
    const s = ep.app.get(APP.STATE)?.value
    return {
      hostId: ep.hostId,
      address: ep.address,
      generation: ep.generation,
      heartbeat: ep.heartbeat,
      maxVersion: ep.maxVersion,
      up: ep.up,
      self: ep === this.me,
      app: new Map(ep.app),
      state: s !== undefined && isNodeState(s) ? s : undefined,
    }
  }

  // ---- driving -----------------------------------------------------------------------

  tick(now: number): Outbound[] {
    this.me.heartbeat = ++this.version
    this.me.maxVersion = this.version
    const paused = this.lastTick !== undefined && now - this.lastTick > this.pauseGraceMs
    this.lastTick = now
    for (const ep of this.eps.values()) {
      if (ep === this.me || !ep.detector) continue
      // After our own stall every peer looks silent; that silence says nothing about them.
      if (paused) ep.detector.rearm(now)
      else if (ep.up && !ep.detector.isAvailable(now)) this.setUp(ep, false)
      // A down endpoint with recent heartbeats may be back: keep asking until it answers
      // or the news goes stale.
      else if (!ep.up && ep.detector.isAvailable(now)) this.probe(ep, now)
    }
    this.expire(now)
    const out: Outbound[] = this.pickTargets().map((to) => ({ to, msg: this.syn() }))
    out.push(...this.probes)
    this.probes = []
    return out
  }

  receive(from: string, raw: unknown, now: number): Outbound[] {
    const msg = parseGossipMessage(raw)
    if (msg.cluster !== this.cluster) return []
    const out = this.handle(from, msg, now)
    if (this.probes.length === 0) return out
    const probes = this.probes
    this.probes = []
    return [...out, ...probes]
  }

  private handle(from: string, msg: GossipMessage, now: number): Outbound[] {
    switch (msg.type) {
      case 'ping':
        return [{ to: from, msg: { type: 'pong', cluster: this.cluster, sender: this.hostId, generation: this.generation } }]
      case 'pong': {
        const ep = this.eps.get(msg.sender)
        if (ep && ep !== this.me && ep.generation === msg.generation && !ep.up) {
          ep.detector!.heartbeat(now)
          this.setUp(ep, true)
        }
        return []
      }
      case 'syn':
        return [{ to: from, msg: this.onSyn(msg.digests) }]
      case 'ack': {
        this.answered = true
        for (const d of msg.deltas) this.apply(d, now)
        for (const [id, gen] of msg.removed) this.forgetRemoved(id, gen, now)
        const deltas: EndpointDelta[] = []
        for (const [id, gen, version] of msg.requests) {
          const ep = this.eps.get(id)
          if (!ep) continue
          if (ep.generation > gen) deltas.push(this.delta(ep, 0))
          else if (ep.generation === gen && ep.maxVersion > version) deltas.push(this.delta(ep, version))
        }
        return deltas.length ? [{ to: from, msg: { type: 'ack2', cluster: this.cluster, deltas } }] : []
      }
      case 'ack2':
        this.answered = true
        for (const d of msg.deltas) this.apply(d, now)
        return []
    }
  }

  private syn(): GossipMessage {
    const digests: Digest[] = []
    for (const ep of this.eps.values()) digests.push([ep.hostId, ep.generation, ep.maxVersion])
    return { type: 'syn', cluster: this.cluster, digests }
  }

  private onSyn(digests: Digest[]): GossipAck {
    const requests: Digest[] = []
    const deltas: EndpointDelta[] = []
    const removed: [string, number][] = []
    const mentioned = new Set<string>()
    for (const [id, gen, version] of digests) {
      mentioned.add(id)
      const tomb = this.removed.get(id)
      if (tomb && gen <= tomb.generation) {
        removed.push([id, tomb.generation])
        continue
      }
      const ep = this.eps.get(id)
      if (!ep || ep.generation < gen) requests.push([id, gen, 0])
      else if (ep.generation > gen) deltas.push(this.delta(ep, 0))
      else if (ep.maxVersion > version) deltas.push(this.delta(ep, version))
      else if (ep.maxVersion < version) requests.push([id, gen, ep.maxVersion])
    }
    for (const ep of this.eps.values()) if (!mentioned.has(ep.hostId)) deltas.push(this.delta(ep, 0))
    return { type: 'ack', cluster: this.cluster, requests, deltas, removed }
  }

  private delta(ep: Endpoint, since: number): EndpointDelta {
    const app: AppEntryTuple[] = []
    for (const [k, v] of ep.app) if (v.version > since) app.push([k, v.value, v.version])
    return { id: ep.hostId, address: ep.address, generation: ep.generation, heartbeat: ep.heartbeat, since, app }
  }

  private apply(d: EndpointDelta, now: number): void {
    if (d.id === this.hostId) {
      if (d.generation > this.generation) this.emit({ type: 'conflict', hostId: d.id, generation: d.generation })
      return
    }
    const tomb = this.removed.get(d.id)
    if (tomb && d.generation <= tomb.generation) return
    const ep = this.eps.get(d.id)
    if (!ep || d.generation > ep.generation) {
      // Only a complete state can start an incarnation; a partial one would leave holes
      // that later deltas (versions above what we hold) would never fill.
      if (d.since !== 0) return
      this.install(d, ep, now)
      return
    }
    if (d.generation < ep.generation || d.since > ep.maxVersion) return
    if (d.heartbeat > ep.heartbeat) {
      ep.heartbeat = d.heartbeat
      ep.detector!.heartbeat(now)
      if (!ep.up) this.probe(ep, now)
    }
    for (const [key, value, version] of d.app) {
      const cur = ep.app.get(key)
      if (cur && cur.version >= version) continue
      ep.app.set(key, { value, version })
      if (cur?.value !== value) this.onChanged(ep, key, value, cur?.value, now)
    }
    ep.maxVersion = Math.max(ep.maxVersion, d.heartbeat, ...d.app.map((e) => e[2]))
  }

  private endpointFrom(d: EndpointDelta, now: number): Endpoint {
    const ep: Endpoint = {
      hostId: d.id,
      address: d.address,
      generation: d.generation,
      heartbeat: d.heartbeat,
      maxVersion: Math.max(d.heartbeat, ...d.app.map((e) => e[2])),
      app: new Map(d.app.map(([k, value, version]) => [k, { value, version }])),
      up: false,
      detector: new PhiAccrualDetector(this.phiOptions),
      leftAt: undefined,
      probedAt: undefined,
    }
    ep.detector!.heartbeat(now)
    return ep
  }

  private install(d: EndpointDelta, old: Endpoint | undefined, now: number): void {
    const ep = this.endpointFrom(d, now)
    this.eps.set(ep.hostId, ep)
    if (old) {
      this.emit({ type: 'restarted', hostId: ep.hostId, address: ep.address, generation: ep.generation })
      // A new incarnation is live news by construction: that process exists.
      ep.up = old.up
      this.setUp(ep, true)
    } else {
      this.emit({ type: 'joined', hostId: ep.hostId, address: ep.address, generation: ep.generation })
    }
    for (const [key, { value }] of ep.app) {
      const previous = old?.app.get(key)?.value
      if (previous !== value) this.onChanged(ep, key, value, previous, now)
      else if (key === APP.STATE && value === 'LEFT') ep.leftAt = now
    }
    if (!ep.up) this.probe(ep, now)
  }

  private probe(ep: Endpoint, now: number): void {
    if (ep.app.get(APP.STATE)?.value === 'LEFT' || ep.address === this.address) return
    if (ep.probedAt !== undefined && now - ep.probedAt < this.probeIntervalMs) return
    ep.probedAt = now
    this.probes.push({ to: ep.address, msg: { type: 'ping', cluster: this.cluster, sender: this.hostId, generation: this.generation } })
  }

  private onChanged(ep: Endpoint, key: string, value: string, previous: string | undefined, now: number): void {
    if (key === APP.STATE) ep.leftAt = value === 'LEFT' ? now : undefined
    this.emit({ type: 'changed', hostId: ep.hostId, key, value, previous })
  }

  private setUp(ep: Endpoint, up: boolean): void {
    if (ep.up === up) return
    ep.up = up
    this.emit({ type: up ? 'up' : 'down', hostId: ep.hostId })
  }

  private forgetRemoved(id: string, generation: number, now: number): void {
    if (id === this.hostId) return
    const ep = this.eps.get(id)
    if (ep && ep.generation > generation) return
    this.remove(id, generation, now)
  }

  private remove(id: string, generation: number, now: number): void {
    const tomb = this.removed.get(id)
    if (!tomb || tomb.generation < generation) this.removed.set(id, { generation, at: now })
    if (this.eps.delete(id)) this.emit({ type: 'removed', hostId: id })
  }

  private expire(now: number): void {
    for (const ep of [...this.eps.values()]) {
      if (ep !== this.me && ep.leftAt !== undefined && now - ep.leftAt > this.leftRetentionMs) this.remove(ep.hostId, ep.generation, now)
    }
    for (const [id, tomb] of this.removed) if (now - tomb.at > this.leftRetentionMs) this.removed.delete(id)
  }

  private peers(): Endpoint[] {
    const out: Endpoint[] = []
    for (const ep of this.eps.values()) {
      if (ep === this.me || ep.app.get(APP.STATE)?.value === 'LEFT') continue
      out.push(ep)
    }
    return out
  }

  private pickTargets(): string[] {
    const peers = this.peers()
    const live = peers.filter((p) => p.up).map((p) => p.address)
    const down = peers.filter((p) => !p.up).map((p) => p.address)
    const targets = new Set<string>()
    const pool = [...live]
    for (let i = 0; i < this.fanout && pool.length > 0; i++) {
      const k = this.rng.int(pool.length)
      targets.add(pool[k]!)
      pool[k] = pool[pool.length - 1]!
      pool.pop()
    }
    if (down.length > 0 && this.rng.next() < down.length / (live.length + 1)) targets.add(this.rng.pick(down))
    if (this.seeds.length > 0 && !this.seeds.some((s) => targets.has(s))) {
      if (live.length === 0 || this.rng.next() < this.seeds.length / (live.length + down.length + 1)) targets.add(this.rng.pick(this.seeds))
    }
    targets.delete(this.address)
    return [...targets]
  }

  private emit(e: GossipEvent): void {
    this.events.push(e)
  }
}
