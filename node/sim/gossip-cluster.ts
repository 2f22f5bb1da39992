/**
 * A simulated cluster of Gossipers on a SimNetwork, for tests and experiments.
 *
 * Public API:
 *   new GossipSim({ seed, seedCount?: 3, loss?, latency?, tickIntervalMs?: 1000, gossip?, serialize? })
 *   GossipSim.address(i) / GossipSim.hostId(i)    node i's peer address and host id
 *   sim.net                                       the SimNetwork (partition, heal, at, run, ...)
 *   sim.start(i, app?) -> Gossiper                a fresh process: next generation of host i
 *   sim.kill(i) / sim.restart(i) -> Gossiper      restart keeps the host id and application state
 *   sim.gossiper(i) / sim.live(): [i, Gossiper][]
 *   sim.signature(g): string                      g's membership view without heartbeats:
 *                                                 every endpoint's generation and entry versions
 *   sim.converged(among?): boolean                all live nodes (or `among`) share one signature
 *   sim.waitFor(pred, maxMs, everyMs?): number | undefined   virtual time pred became true
 *   sim.stateHash(): string                       signatures and up/down views of all live nodes
 *   options.onEvents(i, events, now)              each node's gossip events as they happen
 */
import { createHash } from 'node:crypto'
import { type GossipEvent, Gossiper, type GossiperOptions } from '../gossip/gossiper.js'
import type { GossipMessage } from '../gossip/messages.js'
import type { Rng } from '../util/rng.js'
import { SimNetwork } from './network.js'

export interface GossipSimOptions {
  seed: string | number
  seedCount?: number
  loss?: number
  latency?: (rng: Rng) => number
  tickIntervalMs?: number
  tickJitterMs?: number
  gossip?: Partial<Pick<GossiperOptions, 'fanout' | 'phi' | 'leftRetentionMs' | 'pauseGraceMs' | 'cluster'>>
  serialize?: boolean
  /** called with each node's gossip events right after the tick or message that caused them */
  onEvents?: (i: number, events: GossipEvent[], now: number) => void
}

export class GossipSim {
  readonly net: SimNetwork<GossipMessage>
  readonly tickIntervalMs: number
  private readonly opts: GossipSimOptions
  private readonly nodes = new Map<number, Gossiper>()
  private readonly generations = new Map<number, number>()
  private readonly seeds: string[]

  constructor(opts: GossipSimOptions) {
    this.opts = opts
    this.tickIntervalMs = opts.tickIntervalMs ?? 1000
    this.net = new SimNetwork<GossipMessage>({
      seed: opts.seed,
      tickIntervalMs: this.tickIntervalMs,
      tickJitterMs: opts.tickJitterMs ?? 0,
      latency: opts.latency,
      loss: opts.loss ?? 0,
      serialize: opts.serialize ?? true,
    })
    this.seeds = Array.from({ length: opts.seedCount ?? 3 }, (_, i) => GossipSim.address(i))
  }

  static address(i: number): string {
    return `10.0.${i >> 8}.${i & 255}:7000`
  }

  static hostId(i: number): string {
    return `host-${String(i).padStart(4, '0')}`
  }

  start(i: number, app: Record<string, string> = {}): Gossiper {
    const generation = (this.generations.get(i) ?? 0) + 1
    this.generations.set(i, generation)
    const g = new Gossiper({
      ...this.opts.gossip,
      self: { hostId: GossipSim.hostId(i), address: GossipSim.address(i), generation },
      seeds: this.seeds,
      rng: this.net.rng.fork(`node-${i}-gen-${generation}`),
      app,
    })
    this.nodes.set(i, g)
    // Events are drained after every step so they never pile up in a long simulation.
    const flush = (now: number): void => {
      const events = g.drainEvents()
      if (events.length) this.opts.onEvents?.(i, events, now)
    }
    this.net.start(GossipSim.address(i), {
      tick: (now) => {
        const out = g.tick(now)
        flush(now)
        return out
      },
      receive: (from, msg, now) => {
        const out = g.receive(from, msg, now)
        flush(now)
        return out
      },
    })
    return g
  }

  kill(i: number): void {
    this.net.kill(GossipSim.address(i))
    this.nodes.delete(i)
  }

  restart(i: number): Gossiper {
    const old = this.nodes.get(i)
    const app: Record<string, string> = {}
    if (old) for (const [k, v] of old.endpoint(old.hostId)!.app) app[k] = v.value
    if (old) this.kill(i)
    return this.start(i, app)
  }

  gossiper(i: number): Gossiper | undefined {
    return this.nodes.get(i)
  }

  live(): [number, Gossiper][] {
    return [...this.nodes.entries()]
  }

  signature(g: Gossiper): string {
    return g
      .endpoints()
      .map((e) => `${e.hostId}@${e.generation}{${[...e.app].map(([k, v]) => `${k}:${v.version}`).join(',')}}`)
      .sort()
      .join(' ')
  }

  converged(among: Gossiper[] = [...this.nodes.values()]): boolean {
    if (among.length === 0) return true
    const first = this.signature(among[0]!)
    return among.every((g) => this.signature(g) === first)
  }

  waitFor(pred: () => boolean, maxMs: number, everyMs = 100): number | undefined {
    const deadline = this.net.now + maxMs
    for (;;) {
      if (pred()) return this.net.now
      if (this.net.now >= deadline) return undefined
      this.net.run(Math.min(deadline, this.net.now + everyMs))
    }
  }

  stateHash(): string {
    const h = createHash('sha256')
    for (const [i, g] of [...this.nodes.entries()].sort((a, b) => a[0] - b[0])) {
      const ups = g.endpoints().filter((e) => e.up).map((e) => e.hostId).sort()
      h.update(`${i} ${this.signature(g)} up=${ups.join(',')}\n`)
    }
    return h.digest('hex')
  }
}
