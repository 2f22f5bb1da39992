/**
 * A seeded discrete-event simulator for sans-I/O protocol nodes: a virtual clock, periodic
 * ticks, message delivery with latency, loss and partitions, node kill and restart. The same
 * seed and the same scenario give the same run, event for event.
 *
 * Public API:
 *   interface SimNode<M> { tick(now): Outbound<M>[]; receive(from, msg: unknown, now): Outbound<M>[] }
 *   new SimNetwork<M>({ seed, tickIntervalMs?: 1000, tickJitterMs?: 0,
 *                       latency?: (rng) => ms (default uniform 1..10), loss?: 0,
 *                       serialize?: true (JSON round trip per message), trace?: true })
 *   net.now                         virtual time in ms
 *   net.start(address, node, { phaseMs? })   first tick at now + phase (default random in one interval)
 *   net.kill(address)               no more ticks; messages to it are dropped from now on
 *   net.isRunning(address) / net.node(address) / net.addresses()
 *   net.partition(...groups)        messages between different groups are dropped (addresses
 *                                   in no group reach everyone); net.heal() removes it
 *   net.setLoss(p) / net.setLatency(fn)
 *   net.at(time, fn)                run fn(now) at a virtual time (scenario steps)
 *   net.run(untilMs, stopWhen?)     process events up to untilMs, or until stopWhen(event)
 *                                   returns true after an event; returns true if it stopped early
 *   net.stats                       { sent, delivered, lost, partitioned, toDead, ticks }
 *   net.traceHash()                 sha256 over every tick and delivery so far
 *
 * A restart is kill(address) then start(address, newNode): messages already in flight reach
 * the new incarnation, as they would on a real network. Messages are JSON round-tripped by
 * default, which also proves they are plain data and shares no objects between nodes.
 */
import { createHash, type Hash } from 'node:crypto'
import { invariant } from '../errors.js'
import { createRng, type Rng } from '../util/rng.js'

export interface Outbound<M> {
  to: string
  msg: M
}

export interface SimNode<M> {
  tick(now: number): Outbound<M>[]
  receive(from: string, msg: unknown, now: number): Outbound<M>[]
}

export interface SimNetworkOptions {
  seed: string | number
  tickIntervalMs?: number
  tickJitterMs?: number
  latency?: (rng: Rng) => number
  loss?: number
  serialize?: boolean
  trace?: boolean
}

export type SimEvent =
  | { kind: 'tick'; time: number; address: string; incarnation: number }
  | { kind: 'deliver'; time: number; from: string; to: string; payload: unknown }
  | { kind: 'call'; time: number; fn: (now: number) => void }

interface Queued {
  time: number
  seq: number
  ev: SimEvent
}

interface Running<M> {
  node: SimNode<M>
  incarnation: number
}

export class SimNetwork<M> {
  now = 0
  readonly rng: Rng
  readonly stats = { sent: 0, delivered: 0, lost: 0, partitioned: 0, toDead: 0, ticks: 0 }
  private readonly heap: Queued[] = []
  private seq = 0
  private readonly nodes = new Map<string, Running<M>>()
  private incarnations = 0
  private readonly tickIntervalMs: number
  private readonly tickJitterMs: number
  private latency: (rng: Rng) => number
  private loss: number
  private readonly serialize: boolean
  private readonly hash: Hash | undefined
  private groups: Map<string, number> | undefined

  constructor(options: SimNetworkOptions) {
    this.rng = createRng(`sim/${options.seed}`)
    this.tickIntervalMs = options.tickIntervalMs ?? 1000
    this.tickJitterMs = options.tickJitterMs ?? 0
    this.latency = options.latency ?? ((rng) => 1 + rng.next() * 9)
    this.loss = options.loss ?? 0
    this.serialize = options.serialize ?? true
    this.hash = options.trace === false ? undefined : createHash('sha256')
    invariant(this.tickIntervalMs > 0, 'tick interval must be positive')
  }

  start(address: string, node: SimNode<M>, opts: { phaseMs?: number } = {}): void {
    invariant(!this.nodes.has(address), `${address} is already running`)
    const incarnation = ++this.incarnations
    this.nodes.set(address, { node, incarnation })
    const phase = opts.phaseMs ?? this.rng.next() * this.tickIntervalMs
    this.push(this.now + phase, { kind: 'tick', time: this.now + phase, address, incarnation })
  }

  kill(address: string): void {
    invariant(this.nodes.has(address), `${address} is not running`)
    this.nodes.delete(address)
  }

  isRunning(address: string): boolean {
    return this.nodes.has(address)
  }

  node(address: string): SimNode<M> | undefined {
    return this.nodes.get(address)?.node
  }

  addresses(): string[] {
    return [...this.nodes.keys()]
  }

  partition(...groups: string[][]): void {
    this.groups = new Map()
    groups.forEach((g, i) => g.forEach((a) => this.groups!.set(a, i)))
  }

  heal(): void {
    this.groups = undefined
  }

  setLoss(p: number): void {
    invariant(p >= 0 && p <= 1, 'loss is a probability')
    this.loss = p
  }

  setLatency(fn: (rng: Rng) => number): void {
    this.latency = fn
  }

  at(time: number, fn: (now: number) => void): void {
    invariant(time >= this.now, 'cannot schedule in the past')
    this.push(time, { kind: 'call', time, fn })
  }

  run(untilMs: number, stopWhen?: (ev: SimEvent) => boolean): boolean {
    while (this.heap.length > 0 && this.heap[0]!.time <= untilMs) {
      const { ev, time } = this.pop()
      this.now = time
      if (!this.process(ev)) continue
      if (stopWhen?.(ev)) return true
    }
    this.now = Math.max(this.now, untilMs)
    return false
  }

  traceHash(): string {
    invariant(this.hash, 'tracing is off')
    return this.hash.copy().digest('hex')
  }

  /** Handles one event; false when it had no effect (a dead node's tick or message). */
  private process(ev: SimEvent): boolean {
    switch (ev.kind) {
      case 'call':
        ev.fn(this.now)
        return true
      case 'tick': {
        const r = this.nodes.get(ev.address)
        if (!r || r.incarnation !== ev.incarnation) return false
        this.stats.ticks++
        this.hash?.update(`${this.now} tick ${ev.address}\n`)
        const next = this.now + this.tickIntervalMs + (this.tickJitterMs ? this.rng.next() * this.tickJitterMs : 0)
        this.push(next, { kind: 'tick', time: next, address: ev.address, incarnation: ev.incarnation })
        this.send(ev.address, r.node.tick(this.now))
        return true
      }
      case 'deliver': {
        const r = this.nodes.get(ev.to)
        if (!r) {
          this.stats.toDead++
          return false
        }
        this.stats.delivered++
        const text = this.serialize ? (ev.payload as string) : undefined
        this.hash?.update(`${this.now} ${ev.from}>${ev.to} ${text ?? JSON.stringify(ev.payload)}\n`)
        const msg = text !== undefined ? JSON.parse(text) : ev.payload
        this.send(ev.to, r.node.receive(ev.from, msg, this.now))
        return true
      }
    }
  }

  private send(from: string, out: Outbound<M>[]): void {
    for (const { to, msg } of out) {
      this.stats.sent++
      if (this.loss > 0 && this.rng.next() < this.loss) {
        this.stats.lost++
        continue
      }
      if (this.groups) {
        const a = this.groups.get(from)
        const b = this.groups.get(to)
        if (a !== undefined && b !== undefined && a !== b) {
          this.stats.partitioned++
          continue
        }
      }
      const time = this.now + Math.max(0, this.latency(this.rng))
      this.push(time, { kind: 'deliver', time, from, to, payload: this.serialize ? JSON.stringify(msg) : msg })
    }
  }

  private push(time: number, ev: SimEvent): void {
    const h = this.heap
    h.push({ time, seq: this.seq++, ev })
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  private pop(): Queued {
    const h = this.heap
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l]!, h[m]!)) m = l
        if (r < h.length && before(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return top
  }
}

/** Earlier time first; equal times in scheduling order, so runs are reproducible. */
function before(a: Queued, b: Queued): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}
