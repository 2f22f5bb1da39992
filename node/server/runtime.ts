import { createServer, type Server } from 'node:http'
import { createClientServer } from '../api/client-server.js'
import type { ClientWrite, ClusterView as ClusterJson, Consistency, KvService, NodeView } from '../api/service.js'
import type { NodeConfig } from '../config/node-config.js'
import { RingError } from '../errors.js'
import { APP, Gossiper } from '../gossip/gossiper.js'
import { decodeTokens } from '../gossip/messages.js'
import { publishState, publishTokens } from '../gossip/members.js'
import type { Logger } from '../log.js'
import { ClusterView, type MemberInfo } from '../membership/view.js'
import { Metrics } from '../metrics/metrics.js'
import { Coordinator } from '../replication/coordinator.js'
import { HlcClock } from '../replication/version.js'
import { isNodeState, type NodeState } from '../ring/state.js'
import { Store } from '../storage/store.js'
import type { StoredRecord } from '../storage/record.js'
import { registerRangeStreaming } from '../streaming/range-stream.js'
import { Repairer } from '../streaming/repair.js'
import { Transport } from '../transport/index.js'
import { createRng } from '../util/rng.js'
import { createAdminApp } from './admin-app.js'
import { HintDelivery } from './hints.js'
import { Lifecycle, MSG_PULL, MSG_SEES } from './lifecycle.js'
import { loadNodeMeta, loadPeers, nextGeneration, saveNodeMeta, savePeers } from './node-meta.js'
import { registerReplicaHandlers, TransportChannel } from './replica-rpc.js'
import { expandSeeds, type Seeds } from './seeds.js'
import { ensureWritableDir, listen } from './startup.js'

const APP_NAME = 'name'
const APP_CLIENT = 'client'
const APP_AUTO_JOIN = 'autojoin'
const APP_REPLACES = 'replaces'
export const META_CLOCK_LEASE = 'hlc-lease'
const CLOCK_LEASE_MS = 10_000
const MSG_GOSSIP = 'gossip'

/**
 * One running node: storage, gossip, ring, replication, streaming, the client port and the
 * peer port. Owns every timer and socket; the protocol cores it drives do no I/O themselves.
 */
export class NodeRuntime {
  private timers: NodeJS.Timeout[] = []
  /** the seeds as last resolved */
  seeds: Seeds = { peers: [], selfIsSeed: true }
  private stopping: Promise<void> | null = null
  /** membership changed since the peer table was last persisted */
  private peersDirty = false
  private peersSaving: Promise<void> | undefined

  private constructor(
    readonly cfg: NodeConfig,
    readonly log: Logger,
    readonly store: Store,
    readonly metrics: Metrics,
    readonly transport: Transport,
    readonly gossiper: Gossiper,
    readonly view: ClusterView,
    readonly coordinator: Coordinator,
    readonly clock: HlcClock,
    readonly lifecycle: Lifecycle,
    readonly hints: HintDelivery,
    readonly repairer: Repairer,
    readonly clientServer: Server,
    readonly peerServer: Server,
  ) {}

  static async start(cfg: NodeConfig, log: Logger): Promise<NodeRuntime> {
    ensureWritableDir(cfg.dataDir)
    const store = await Store.open(cfg.dataDir, { durable: cfg.durable })
    try {
      return await NodeRuntime.assemble(cfg, log, store)
    } catch (e) {
      await store.close().catch(() => {})
      throw e
    }
  }

  private static async assemble(cfg: NodeConfig, log: Logger, store: Store): Promise<NodeRuntime> {
    const hostId = store.hostId()
    const persisted = await loadNodeMeta(store)
    const generation = nextGeneration(persisted?.generation, Date.now())
    const metrics = new Metrics(cfg.name)
    const transport = new Transport({ hostId, logger: log.child({ sub: 'transport' }), clusterToken: cfg.clusterToken })
    const seeds = await expandSeeds(cfg.seeds, cfg.advertise)
    const gossiper = new Gossiper({
      self: { hostId, address: cfg.advertise, generation },
      seeds: seeds.peers,
      rng: createRng(`${hostId}:${generation}`),
      // The detector's defaults assume 1 s rounds; scale them with the configured interval.
      phi: { initialIntervalMs: cfg.gossipIntervalMs, acceptablePauseMs: 1.5 * cfg.gossipIntervalMs, minStdDevMs: cfg.gossipIntervalMs / 2 },
      pauseGraceMs: Math.max(5000, 5 * cfg.gossipIntervalMs),
      app: { [APP_NAME]: cfg.name, [APP_CLIENT]: clientAddress(cfg), [APP.RF]: String(cfg.replicationFactor), [APP_AUTO_JOIN]: String(cfg.autoJoin) },
    })
    const remembered = await loadPeers(store, gossiper.cluster).catch((e) => {
      log.warn({ err: e }, 'the remembered peer table is unreadable; relying on gossip from the seeds')
      return []
    })
    const restored = gossiper.restore(remembered, Date.now())
    const view = new ClusterView(hostId, cfg.replicationFactor)
    const clock = new HlcClock(hostId)
    // Never stamp (or mint counters) below what this node issued before a restart, even if the
    // wall clock went back: start from the persisted lease (see persistClockLease).
    const lease = await store.getMeta(META_CLOCK_LEASE)
    if (lease) clock.observe({ wall: Number(lease.toString()), logical: 0, node: hostId })
    const channel = new TransportChannel(transport, view)
    const coordinator = new Coordinator({
      topology: view,
      channel,
      local: store,
      clock,
      timeoutMs: cfg.requestTimeoutMs,
      hintWindowMs: cfg.hintWindowMs,
      hooks: {
        onConcurrent: () => metrics.concurrentVersions.add(1),
        onReadRepair: (n) => metrics.readRepairs.add(n),
        onHint: () => metrics.hintsWritten.add(1),
      },
    })
    const hints = new HintDelivery({ store, transport, view, log: log.child({ sub: 'hints' }), onDelivered: () => metrics.hintsReplayed.add(1) })
    const repairer = new Repairer({
      hostId,
      rf: cfg.replicationFactor,
      store,
      transport,
      view,
      log: log.child({ sub: 'repair' }),
      tombstoneGraceMs: cfg.tombstoneGraceMs,
      onBytes: (n) => metrics.streamedBytes.add(n),
      onProgress: (p) => rt?.lifecycle.setRepairProgress(p),
    })
    let rt: NodeRuntime | undefined
    const lifecycle = new Lifecycle({
      hostId,
      name: cfg.name,
      rf: cfg.replicationFactor,
      numTokens: cfg.numTokens,
      autoJoin: cfg.autoJoin,
      gossipIntervalMs: cfg.gossipIntervalMs,
      requestTimeoutMs: cfg.requestTimeoutMs,
      log: log.child({ sub: 'lifecycle' }),
      store,
      transport,
      view,
      publish: async (state, tokens, replaces) => {
        await saveNodeMeta(store, { state, tokens: tokens.map(String), generation, ...(replaces ? { replaces } : {}) })
        // Ahead of the state that uses it, like the tokens: a peer that sees us BOOTSTRAPPING
        // in a dead member's tokens also sees whom we replace.
        gossiper.setLocal(APP_REPLACES, replaces ?? '')
        publishTokens(gossiper, tokens)
        publishState(gossiper, state)
        rt?.refreshView()
        log.info({ state, tokens: tokens.length }, 'state')
      },
      handOffHints: () => hints.handOff(),
      mayFoundCluster: () => rt?.seeds.selfIsSeed ?? false,
      repair: () => repairer.repairAll(),
    })

    const service = new NodeService(() => rt!)
    const clientServer = createClientServer(service, metrics, log.child({ sub: 'api' }), cfg.maxValueBytes)
    const adminApp = createAdminApp(
      {
        status: () => lifecycle.status(true, store.countHints()),
        join: () => lifecycle.join(),
        decommission: () => lifecycle.decommission(),
        cleanup: () => lifecycle.cleanup(),
        repair: () => lifecycle.repair(),
        drain: () => lifecycle.drain(),
      },
      cfg.clusterToken,
      log.child({ sub: 'admin' }),
    )
    const peerServer = createServer({ keepAliveTimeout: 65_000 }, adminApp)
    transport.attach(peerServer)

    rt = new NodeRuntime(cfg, log, store, metrics, transport, gossiper, view, coordinator, clock, lifecycle, hints, repairer, clientServer, peerServer)
    rt.seeds = seeds

    registerReplicaHandlers(transport, coordinator, store, () => service.checkAccepting())
    registerRangeStreaming(transport, store)
    repairer.register()
    transport.on<{ from: string; msg: unknown }>(MSG_GOSSIP, (p) => {
      rt!.onGossip(p.from, p.msg)
      return null
    })
    transport.on<{ hostId: string }>(MSG_SEES, (p) => lifecycle.sees(p.hostId))
    transport.on<{ ranges: { start: bigint; end: bigint; sources: string[] }[] }>(MSG_PULL, (p) => lifecycle.pull(p.ranges))

    metrics.gauge('ringkv_hints_pending', 'hints stored for replicas that were down', () => store.countHints())
    metrics.gauge('ringkv_storage_bytes', 'estimated bytes of live data', () => store.approximateSize())
    metrics.gauge('ringkv_cluster_nodes_up', 'members this node sees up', () => view.all().filter((m) => m.up).length)

    await listen(peerServer, cfg.peerListen, 'peer-listen')
    try {
      await listen(clientServer, cfg.listen, 'listen')
    } catch (e) {
      peerServer.close()
      throw e
    }

    const tokens = (persisted?.tokens ?? []).map((t) => BigInt(t))
    const state = persisted && isNodeState(persisted.state) ? persisted.state : undefined
    await lifecycle.restore(state, tokens, persisted?.replaces)
    await rt.persistClockLease()
    rt.startLoops()
    log.info({ hostId, generation, state: lifecycle.state, client: clientAddress(cfg), peer: cfg.advertise, seeds, rememberedPeers: restored }, 'node started')
    return rt
  }

  private startLoops(): void {
    const every = (ms: number, fn: () => void | Promise<void>) => {
      const t = setInterval(() => {
        Promise.resolve()
          .then(fn)
          .catch((e) => this.log.warn({ err: e }, 'background task failed'))
      }, ms)
      t.unref()
      this.timers.push(t)
    }
    every(this.cfg.gossipIntervalMs, () => this.gossipRound())
    every(1000, () => this.persistPeers())
    every(CLOCK_LEASE_MS / 2, () => this.persistClockLease())
    every(Math.max(1000, this.cfg.gossipIntervalMs), () => this.hints.deliverDue())
    every(10_000, () => this.gossiper.setLocal(APP.LOAD, String(this.store.approximateSize())))
    every(30_000, async () => {
      this.seeds = await expandSeeds(this.cfg.seeds, this.cfg.advertise)
      this.gossiper.setSeeds(this.seeds.peers)
    })
    every(this.cfg.repairIntervalMs, async () => {
      if (this.lifecycle.state === 'AVAILABLE' && !this.view.rangesPending) await this.repairer.repairAll()
    })
    this.refreshView()
  }

  private readonly startedAt = Date.now()
  /** whether the view was last built inside the start-up grace */
  private viewInGrace = true

  /**
   * Right after a start the failure detector has judged nobody yet: gossip reports every peer
   * down until it answers. For that short window (3 gossip rounds) peers count as up, so a
   * restarted node does not refuse writes with UNAVAILABLE for replicas that are fine (a peer
   * that really is down fails the request and gets a hint); /readyz waits it out.
   */
  get inStartupGrace(): boolean {
    return Date.now() - this.startedAt < 3 * this.cfg.gossipIntervalMs
  }

  /** Persists a bound above every timestamp this node can issue before the next call. */
  private persistClockLease(): Promise<void> {
    const bound = this.clock.tick().wall + CLOCK_LEASE_MS
    return this.store.putMeta(META_CLOCK_LEASE, Buffer.from(String(bound)))
  }

  /**
   * Writes the peer table when membership changed (at most once a second): what a restart
   * needs to keep a dead member in the ring (gossiper.ts, "Restart"). Heartbeats and load do
   * not count as changes, so a quiet cluster writes nothing.
   */
  private persistPeers(): Promise<void> {
    if (this.peersSaving) return this.peersSaving
    if (!this.peersDirty) return Promise.resolve()
    this.peersDirty = false
    this.peersSaving = savePeers(this.store, this.gossiper.cluster, this.gossiper.snapshot())
      .catch((e) => {
        this.peersDirty = true
        throw e
      })
      .finally(() => {
        this.peersSaving = undefined
      })
    return this.peersSaving
  }

  private gossipRound(): void {
    if (this.viewInGrace && !this.inStartupGrace) this.refreshView()
    for (const o of this.gossiper.tick(Date.now())) this.transport.send(o.to, MSG_GOSSIP, { from: this.cfg.advertise, msg: o.msg })
    this.afterGossip()
    this.lifecycle.tick()
  }

  onGossip(from: string, msg: unknown): void {
    for (const o of this.gossiper.receive(from, msg, Date.now())) this.transport.send(o.to, MSG_GOSSIP, { from: this.cfg.advertise, msg: o.msg })
    this.afterGossip()
  }

  private afterGossip(): void {
    const events = this.gossiper.drainEvents()
    let changed = false
    for (const e of events) {
      if (e.type === 'changed' && e.key === APP.LOAD) continue
      changed = true
      if (e.type !== 'up' && e.type !== 'down' && e.type !== 'conflict' && e.hostId !== this.gossiper.hostId) this.peersDirty = true
      if (e.type === 'up' || e.type === 'restarted') {
        const ep = this.gossiper.endpoint(e.hostId)
        if (ep) this.transport.client.resetBackoff(ep.address)
        this.log.info({ host: this.gossiper.get(e.hostId, APP_NAME), hostId: e.hostId }, e.type === 'up' ? 'peer up' : 'peer restarted')
      } else if (e.type === 'down') {
        this.log.warn({ host: this.gossiper.get(e.hostId, APP_NAME), hostId: e.hostId }, 'peer down')
      } else if (e.type === 'conflict') {
        this.log.error({ hostId: e.hostId }, 'another process gossips this node’s host id with a newer generation; two nodes share a data dir copy')
      }
    }
    if (changed) this.refreshView()
  }

  refreshView(): void {
    const grace = (this.viewInGrace = this.inStartupGrace)
    const members: MemberInfo[] = []
    for (const ep of this.gossiper.endpoints()) {
      if (!ep.state) continue
      let tokens: bigint[] = []
      try {
        tokens = decodeTokens(ep.app.get(APP.TOKENS)?.value ?? '')
      } catch {}
      members.push({
        hostId: ep.hostId,
        name: ep.app.get(APP_NAME)?.value ?? ep.hostId,
        address: ep.address,
        clientAddress: ep.app.get(APP_CLIENT)?.value ?? '',
        state: ep.state,
        tokens,
        up: ep.self || ep.up || (grace && ep.state !== 'LEFT'),
        load: Number(ep.app.get(APP.LOAD)?.value ?? 0),
        generation: ep.generation,
        autoJoin: ep.app.get(APP_AUTO_JOIN)?.value !== 'false',
        replaces: ep.app.get(APP_REPLACES)?.value || undefined,
      })
    }
    this.view.update(members)
    const replacedBy = this.view.member(this.view.selfId)?.replacedBy
    if (replacedBy) this.lifecycle.retire(replacedBy).catch((e) => this.log.error({ err: e }, 'retiring a replaced node failed'))
  }

  /** Graceful stop: no new connections, in-flight requests finish, RocksDB closes cleanly. */
  stop(reason: string): Promise<void> {
    if (this.stopping) return this.stopping
    this.stopping = (async () => {
      this.log.info({ reason }, 'stopping')
      for (const t of this.timers) clearInterval(t)
      const closed = (s: Server) => new Promise<void>((r) => s.close(() => r()))
      const client = closed(this.clientServer)
      this.clientServer.closeIdleConnections()
      const force = setTimeout(() => this.clientServer.closeAllConnections(), 10_000)
      await client
      clearTimeout(force)
      this.transport.close()
      const peer = closed(this.peerServer)
      this.peerServer.closeIdleConnections()
      setTimeout(() => this.peerServer.closeAllConnections(), 2000).unref()
      await peer
      // twice: a save in flight may predate the last change
      await this.persistPeers().catch(() => {})
      await this.persistPeers().catch((e) => this.log.warn({ err: e }, 'could not persist the peer table'))
      await this.store.close()
      await this.metrics.shutdown()
      this.log.info('stopped')
    })()
    return this.stopping
  }
}

function clientAddress(cfg: NodeConfig): string {
  const host = cfg.listen.host === '0.0.0.0' || cfg.listen.host === '::' ? cfg.advertise.slice(0, cfg.advertise.lastIndexOf(':')) : cfg.listen.host
  return `${host}:${cfg.listen.port}`
}

/** The client API's view of the node: coordinated reads/writes and JSON views. */
class NodeService implements KvService {
  constructor(private readonly rt: () => NodeRuntime) {}

  checkAccepting(): void {
    const r = this.rt()
    if (r.lifecycle.state === 'LEFT') throw new RingError('UNAVAILABLE', 'this node has left the cluster; send requests to another node', { required: 1, alive: 0 })
    if (r.lifecycle.draining) throw new RingError('UNAVAILABLE', 'this node is draining before shutdown; send requests to another node', { required: 1, alive: 0 })
  }

  async get(key: Buffer, cl: Consistency): Promise<StoredRecord | undefined> {
    const r = this.rt()
    if (r.lifecycle.state === 'LEFT') this.checkAccepting()
    this.checkRingKnown()
    return r.coordinator.read(key, cl)
  }

  /**
   * A restarted node knows only itself until its first gossip exchange: with that ring every key
   * would be "its own", and a ONE write would land on this node alone. Until a peer has told
   * it the ring (or it has no peers to ask), it coordinates nothing.
   */
  private checkRingKnown(): void {
    const r = this.rt()
    if (r.gossiper.exchanged) return
    const others = r.view.all().some((m) => m.hostId !== r.view.selfId)
    // Peers remembered from before the restart give the last ring this node knew; a few
    // gossip rounds usually bring the current one. If nobody answers by then (every peer
    // down), the remembered ring is the best there is, as with Cassandra's system.peers.
    if (others ? !r.inStartupGrace : r.seeds.peers.length === 0) return
    throw new RingError('UNAVAILABLE', 'this node has not heard from any peer yet, so it does not know the ring; retry in a moment or use another node', { required: 1, alive: 0 })
  }

  // async: a refusal must reject the promise, not throw past the PUT handler's .then()
  async write(key: Buffer, w: ClientWrite, cl: Consistency): Promise<StoredRecord> {
    this.checkAccepting()
    this.checkRingKnown()
    return this.rt().coordinator.write(key, w, cl)
  }

  isReady(): boolean {
    const r = this.rt()
    return r.lifecycle.state === 'AVAILABLE' && !r.lifecycle.draining && !r.inStartupGrace
  }

  nodeView(): NodeView {
    const r = this.rt()
    return this.toView(r.view.member(r.view.selfId), r)
  }

  clusterView(): ClusterJson {
    const r = this.rt()
    // A replaced identity is gone once its replacement is AVAILABLE: one entry per name.
    const nodes = r.view.all().filter((m) => !(m.replacedBy && m.state === 'LEFT')).map((m) => this.toView(m, r)).sort((a, b) => a.name.localeCompare(b.name))
    return { replicationFactor: r.cfg.replicationFactor, nodes }
  }

  private toView(m: MemberInfo | undefined, r: NodeRuntime): NodeView {
    const own = r.view.ring.ownership(r.cfg.replicationFactor)
    if (!m) {
      return { name: r.cfg.name, hostId: r.view.selfId, address: r.cfg.advertise, clientAddress: '', state: r.lifecycle.state as NodeState, up: true, ownership: 0, load: r.store.approximateSize(), tokens: 0 }
    }
    const self = m.hostId === r.view.selfId
    return {
      name: m.name,
      hostId: m.hostId,
      address: m.address,
      clientAddress: m.clientAddress,
      state: m.state,
      up: m.up,
      ownership: own.get(m.hostId) ?? 0,
      load: self ? r.store.approximateSize() : m.load,
      tokens: m.tokens.length,
      generation: m.generation,
    }
  }
}
