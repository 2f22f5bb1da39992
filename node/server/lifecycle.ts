import type { AdminStatus } from '../client/admin-client.js'
import { invariant, RingError } from '../errors.js'
import type { Logger } from '../log.js'
import { judgeConfirm, judgeStart, MOVING, seesAnswer, tokenDigest, type PeerAnswer, type SeesAnswer } from '../membership/agreement.js'
import type { ClusterView } from '../membership/view.js'
import { allocateTokens, evenTokens } from '../ring/allocate.js'
import { replacementFor } from '../membership/replace.js'
import { pendingRanges } from '../ring/pending.js'
import { mergeContiguous, type Range } from '../ring/range.js'
import type { NodeState } from '../ring/state.js'
import type { Store } from '../storage/store.js'
import { fetchRange } from '../streaming/range-stream.js'
import type { Transport } from '../transport/index.js'

export { tokenDigest }

export const MSG_SEES = 'membership.sees'
export const MSG_PULL = 'stream.pull'

/** How long join/decommission wait for this node's view to match what peers report. */
const SETTLE_MS = 5000
/** Per-peer answer time of a `membership.sees` round. */
const ASK_TIMEOUT_MS = 2000

export interface LifecycleDeps {
  hostId: string
  name: string
  rf: number
  numTokens: number
  autoJoin: boolean
  /** whether this node is one of its own seeds: only a seed founds a cluster on its own */
  mayFoundCluster(): boolean
  gossipIntervalMs: number
  /** the coordinators' request timeout: bounds how long a write planned on the old ring can
   *  still be on its way (see ringDelay) */
  requestTimeoutMs: number
  log: Logger
  store: Store
  transport: Transport
  view: ClusterView
  /** persists (fsynced) then gossips state, tokens and the host id this node replaces */
  publish(state: NodeState, tokens: readonly bigint[], replaces?: string): Promise<void>
  /** hands this node's hints to their targets or to another live node */
  handOffHints(): Promise<void>
  repair(): Promise<void>
}

interface Operation {
  type: 'join' | 'decommission' | 'cleanup' | 'repair' | 'drain'
  phase: 'running' | 'done' | 'failed'
  error?: string
  startedAt: string
}

/** A pull a leaving node asks a new owner to make: one range, its sources in preference order. */
export interface PullRequest {
  ranges: { start: bigint; end: bigint; sources: string[] }[]
}

/**
 * The node state machine JOINING → BOOTSTRAPPING → AVAILABLE → LEAVING → LEFT and the
 * operations that move it. Every entry point is idempotent and checks the state it is called
 * in; long work (streaming) runs in the background and reports progress in status().
 *
 * A move (bootstrap or leave) goes: check that nobody else moves and that our ring is the
 * peers' ring (judgeStart) → publish the new state and tokens → wait until every live peer
 * reports it, claim, check again (judgeConfirm; a move that loses a race is undone) → stream
 * → publish the final state. Only after the confirmation does any snapshot get taken, so every
 * write a coordinator accepts after a snapshot also reaches the pending replica (§4.1).
 */
export class Lifecycle {
  private stateNow: NodeState = 'JOINING'
  private tokensNow: bigint[] = []
  /** the dead member (same name, lost disk) this node bootstraps in place of */
  private replacesNow: string | undefined
  private op: Operation | null = null
  private progress = { rangesTotal: 0, rangesDone: 0, bytes: 0 }
  private startedAt = Date.now()
  private busy: Promise<void> | null = null
  /** past the confirmation of the current move: our snapshot may be taken, we never back off */
  private claimed = false
  /** serialises the start of join and decommission (each re-checks the state it finds) */
  private gate: Promise<unknown> = Promise.resolve()
  draining = false

  constructor(private readonly d: LifecycleDeps) {}

  get state(): NodeState {
    return this.stateNow
  }

  get tokens(): readonly bigint[] {
    return this.tokensNow
  }

  /** Restores the persisted state; resumes an interrupted bootstrap or decommission. */
  async restore(state: NodeState | undefined, tokens: bigint[], replaces?: string): Promise<void> {
    this.startedAt = Date.now()
    this.replacesNow = replaces
    if (!state || state === 'JOINING') {
      this.replacesNow = undefined
      this.stateNow = 'JOINING'
      await this.d.publish('JOINING', [])
      return
    }
    // The same tokens as before the restart: peers already route pending writes by them.
    this.tokensNow = tokens
    this.stateNow = state
    await this.publish(state)
    // A bootstrap cut short restarts from the beginning (streams are idempotent), so the node is
    // never AVAILABLE with part of its data.
    if (state === 'BOOTSTRAPPING') this.background('join', () => this.bootstrap())
    if (state === 'LEAVING') this.background('decommission', () => this.leave())
  }

  /** Repair reports its ranges and bytes here while the admin operation runs. */
  setRepairProgress(p: { rangesTotal: number; rangesDone: number; bytes: number }): void {
    if (this.op?.type === 'repair' && this.op.phase === 'running') this.progress = { ...p }
  }

  status(up: boolean, hintsPending: number): AdminStatus {
    return {
      name: this.d.name,
      hostId: this.d.hostId,
      state: this.stateNow,
      tokens: this.tokensNow.map(String),
      up,
      streaming: { ...this.progress },
      hintsPending,
      operation: this.op,
      ...(this.replacesNow ? { replaces: this.replacesNow } : {}),
    }
  }

  /**
   * Another node took this one's place (it was thought to have lost its disk and was replaced
   * while this process was away): its ranges are served by the replacement now, so this node
   * must not serve them too. It becomes LEFT; its data dir is stale.
   */
  async retire(by: string): Promise<void> {
    if (this.stateNow === 'LEFT') return
    this.d.log.error({ replacedBy: by }, 'this node was replaced by another with its name while it was away; it is LEFT now — wipe its data dir to bring it back as a new node')
    this.stateNow = 'LEFT'
    this.draining = true
    await this.publish('LEFT')
  }

  /** This node's answer to `membership.sees`: how it sees `asker`, and itself. */
  sees(asker: string): SeesAnswer {
    return seesAnswer(this.d.view, asker, { hostId: this.d.hostId, name: this.d.name, state: this.stateNow, tokens: tokenDigest(this.tokensNow), streaming: this.claimed })
  }

  /** Called every gossip round: auto-join when it is this node's turn. */
  private warnedNoSeed = false

  tick(): void {
    if (!this.d.autoJoin || this.stateNow !== 'JOINING' || this.busy) return
    // Let gossip find the others before deciding anything (a few rounds).
    if (!this.settledSinceStart()) return
    const view = this.d.view
    // A dead member with our name stuck mid-move does not block us: replacing it ends the move.
    const r = replacementFor(view.all(), { hostId: this.d.hostId, name: this.d.name })
    const replacing = r.kind === 'replace' ? r.old.hostId : undefined
    if (view.all().some((m) => m.hostId !== this.d.hostId && m.hostId !== replacing && MOVING.includes(m.state))) return
    if (view.ring.size === 0 && !this.d.mayFoundCluster()) {
      // A non-seed that reaches no seed (down, wrong address or cluster token) must not start a
      // cluster of its own: it would take writes that the real cluster never sees.
      if (!this.warnedNoSeed) this.d.log.warn('no seed answers and this node is not a seed; waiting in JOINING (check --seeds and the cluster token)')
      this.warnedNoSeed = true
      return
    }
    // Auto-joining nodes take turns by name, so two never allocate tokens against the same ring.
    // Nodes waiting for an operator's /admin/join are not in the turn-taking.
    const waiting = view.withState('JOINING').filter((m) => (m.up && m.autoJoin !== false) || m.hostId === this.d.hostId)
    const first = waiting.map((m) => m.name).sort()[0]
    if (first !== this.d.name) return
    this.join().catch((e) => this.d.log.info({ reason: (e as Error).message }, 'auto-join not started; will retry'))
  }

  join(): Promise<void> {
    return this.serially(async () => {
      const s = this.stateNow
      if (s === 'BOOTSTRAPPING' || s === 'AVAILABLE') return
      if (s !== 'JOINING') throw new RingError('BAD_STATE', `node is ${s}; only a JOINING node can join (a node that left must be started with an empty data dir to rejoin)`, { state: s })
      this.refuseWhileBusy('join')
      if (!this.settledSinceStart()) throw new RingError('BAD_STATE', 'node started moments ago and is still discovering its peers by gossip; retry in a few seconds', { state: s })
      const replacing = this.replacement()
      await this.checkStart('a topology change', replacing?.old.hostId)
      const view = this.d.view
      this.progress = { rangesTotal: 0, rangesDone: 0, bytes: 0 }
      if (view.ring.size === 0) {
        // The first node of a cluster has nothing to stream: it owns everything at once.
        this.tokensNow = evenTokens(this.d.hostId, this.d.numTokens)
        this.stateNow = 'AVAILABLE'
        await this.publish('AVAILABLE')
        this.op = { type: 'join', phase: 'done', startedAt: new Date().toISOString() }
        this.d.log.info({ tokens: this.tokensNow.length }, 'formed a new cluster: AVAILABLE')
        return
      }
      if (replacing) {
        // Same name, new host id: this node lost its disk. It bootstraps into the old tokens,
        // streaming their ranges from the other replicas; the old identity leaves the ring
        // when this node is AVAILABLE (membership/replace.ts).
        this.replacesNow = replacing.old.hostId
        this.d.log.warn({ replaces: replacing.old.hostId, tokens: replacing.tokens.length }, 'a dead member has this node’s name: replacing it (its data comes from the other replicas)')
      }
      this.tokensNow = replacing?.tokens.length ? [...replacing.tokens] : allocateTokens(view.futureRing, this.d.hostId, this.d.numTokens, this.d.rf)
      this.stateNow = 'BOOTSTRAPPING'
      await this.publish('BOOTSTRAPPING')
      this.background('join', () => this.bootstrap())
    })
  }

  decommission(): Promise<void> {
    return this.serially(async () => {
      const s = this.stateNow
      if (s === 'LEAVING' || s === 'LEFT') return
      if (s !== 'AVAILABLE') throw new RingError('BAD_STATE', `node is ${s}; only an AVAILABLE node can be decommissioned`, { state: s })
      const view = this.d.view
      const remaining = view.withState('AVAILABLE').filter((m) => m.hostId !== this.d.hostId).length
      if (remaining < this.d.rf) {
        throw new RingError('WOULD_LOSE_REPLICAS', `only ${remaining} nodes would remain for replication factor ${this.d.rf}; add a node first`, { remaining, replicationFactor: this.d.rf })
      }
      await this.checkStart()
      this.refuseWhileBusy('decommission')
      this.progress = { rangesTotal: 0, rangesDone: 0, bytes: 0 }
      this.stateNow = 'LEAVING'
      await this.publish('LEAVING')
      this.background('decommission', () => this.leave())
    })
  }

  async cleanup(): Promise<void> {
    if (this.stateNow !== 'AVAILABLE' && this.stateNow !== 'LEFT') throw new RingError('BAD_STATE', `node is ${this.stateNow}; cleanup runs on AVAILABLE (or LEFT) nodes`, { state: this.stateNow })
    // Dropping data while ranges move deletes what a bootstrapping node may still need; our
    // gossip view may lag, so the peers are asked too.
    await this.checkStart('cleanup')
    const view = this.d.view
    await this.exclusive('cleanup', async () => {
      const mine = this.stateNow === 'LEFT' ? [] : mergeContiguous(sortRanges(view.ring.rangesOf(this.d.hostId, this.d.rf)))
      const drop = complement(mine)
      for (const r of drop) {
        // A move that started meanwhile may be streaming into these very ranges: stop.
        if (view.rangesPending || this.pulling > 0) throw new RingError('BAD_STATE', 'a node started joining or leaving during cleanup; cleanup stopped — run it again after the move')
        await this.d.store.dropRange(r.start, r.end)
      }
      this.d.log.info({ dropped: drop.length }, 'cleanup done')
    })
  }

  async repair(): Promise<void> {
    if (this.stateNow !== 'AVAILABLE') throw new RingError('BAD_STATE', `node is ${this.stateNow}; repair runs on AVAILABLE nodes`, { state: this.stateNow })
    if (this.op?.type === 'repair' && this.op.phase === 'running') return
    this.refuseWhileBusy('repair')
    this.background('repair', () => this.d.repair())
  }

  async drain(): Promise<void> {
    this.draining = true
    await this.exclusive('drain', () => this.d.handOffHints())
  }

  /**
   * Every live peer now routes new writes for the moving ranges here too, but a write planned on
   * the old ring just before its coordinator's view changed may still be on its way. Snapshots
   * taken before it lands would miss it, so wait it out before streaming (Cassandra's
   * RING_DELAY). A write that has not reached its replicas within the request timeout was not
   * acknowledged (its client got TIMEOUT), so the timeout bounds the wait.
   */
  private ringDelay(): Promise<void> {
    return sleep(this.d.requestTimeoutMs + 2 * this.d.gossipIntervalMs)
  }

  /**
   * The start of every move: get the peers' ring, have every live peer confirm `state` (undoing
   * it with `revert` if a competing move won), then the ring delay. Streaming may start after.
   */
  private async claimMove(state: 'BOOTSTRAPPING' | 'LEAVING', revert: () => Promise<void>): Promise<void> {
    this.progress = { rangesTotal: 0, rangesDone: 0, bytes: 0 }
    await this.awaitView()
    const lost = await this.confirm(state)
    if (lost) {
      await revert()
      throw new RingError('BAD_STATE', lost)
    }
    await this.ringDelay()
  }

  private async bootstrap(): Promise<void> {
    await this.claimMove('BOOTSTRAPPING', async () => {
      this.stateNow = 'JOINING'
      this.tokensNow = []
      this.replacesNow = undefined
      await this.publish('JOINING')
    })
    const view = this.d.view
    invariant(view.ring.size > 0, 'bootstrapping against an empty ring')
    const mv = pendingRanges(view.ring, view.futureRing, this.d.rf).get(this.d.hostId)
    const gained = mv?.gained ?? []
    this.progress.rangesTotal = gained.length
    for (const g of gained) {
      await this.streamIn(g.range, g.sources, (n) => (this.progress.bytes += n))
      this.progress.rangesDone++
    }
    this.stateNow = 'AVAILABLE'
    this.claimed = false
    await this.publish('AVAILABLE')
    this.d.log.info({ ranges: gained.length, bytes: this.progress.bytes }, 'bootstrap done: AVAILABLE')
  }

  private async leave(): Promise<void> {
    await this.claimMove('LEAVING', async () => {
      this.stateNow = 'AVAILABLE'
      await this.publish('AVAILABLE')
    })
    const view = this.d.view
    const moves = [...pendingRanges(view.ring, view.futureRing, this.d.rf).entries()].filter(([, m]) => m.gained.length > 0)
    this.progress.rangesTotal = moves.reduce((n, [, m]) => n + m.gained.length, 0)
    // Each new owner pulls its ranges one at a time (progress per range), from us first (we
    // hold all of them), then from the other current replicas if we cannot serve. One pull at
    // a time in all: pulls to several owners at once starved foreground traffic (benchmarks.md).
    for (const [host, m] of moves) {
      for (const g of m.gained) {
        const sources = [this.d.hostId, ...g.sources.filter((s) => s !== this.d.hostId)]
        this.progress.bytes += await this.handOver(host, { ranges: [{ start: g.range.start, end: g.range.end, sources }] })
        this.progress.rangesDone++
      }
    }
    await this.d.handOffHints()
    // LEFT is gossiped first and reported here only once every live peer has it: the operator
    // deletes this node when it says LEFT, and a LEFT that died with it would leave the others
    // seeing a LEAVING node forever.
    // No more client writes from here on, so no new hints: the ones written since the hand-off
    // above go in a second one before this node says LEFT.
    this.draining = true
    await this.publish('LEFT')
    await this.confirm('LEFT')
    await this.d.handOffHints()
    this.stateNow = 'LEFT'
    this.claimed = false
    this.d.log.info({ ranges: this.progress.rangesDone, bytes: this.progress.bytes }, 'decommission done: LEFT')
  }

  /** Asks new owner `host` to pull ranges, retrying until it has them; resolves with its bytes. */
  private async handOver(host: string, req: PullRequest): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const member = this.d.view.member(host)
      try {
        if (!member) throw new Error(`new owner ${host} is not in the view`)
        const r = await this.d.transport.request<{ bytes: number }>(member.address, MSG_PULL, req, { timeoutMs: 24 * 3600_000 })
        return r.bytes
      } catch (e) {
        if (attempt % 10 === 0) this.d.log.warn({ err: e, host: member?.name ?? host }, 'range hand-over failed; retrying')
        await sleep(1000)
      }
    }
  }

  /** Serves a leaving node's request to take over ranges: pulls each from its sources. */
  async pull(ranges: PullRequest['ranges']): Promise<{ bytes: number }> {
    // A cleanup could drop what is streamed in (the ranges are not ours yet): the leaving node
    // retries the hand-over once it is done.
    if (this.op?.type === 'cleanup' && this.op.phase === 'running') throw new RingError('CONFLICT', 'cleanup is running on this node; retry the hand-over when it is done')
    this.pulling++
    try {
      let bytes = 0
      for (const r of ranges) bytes += await this.streamIn({ start: r.start, end: r.end }, r.sources, () => {})
      return { bytes }
    } finally {
      this.pulling--
    }
  }

  private pulling = 0

  /** Streams one range from the first source that can serve it, falling back on failure. */
  /**
   * Streams one range. The first source is the replica whose place this node takes: its copy
   * alone keeps the range exactly as consistent as before. If it cannot serve, one other replica
   * is not enough (a QUORUM write may be on the leaving replica and one other only), so the
   * range comes from every other live replica, merged (CASSANDRA-2434).
   */
  private async streamIn(range: Range, sources: readonly string[], onBytes: (n: number) => void): Promise<number> {
    const done = new Set<string>()
    let total = 0
    const pull = async (s: string): Promise<boolean> => {
      const m = this.d.view.member(s)
      if (!m) return false
      let got = 0
      try {
        total += await fetchRange(this.d.transport, m.address, range, this.d.store, (n) => {
          got += n
          onBytes(n)
        })
        return true
      } catch (e) {
        this.d.log.warn({ err: e, source: m.name, receivedBytes: got, range: { start: String(range.start), end: String(range.end) } }, 'range stream failed; trying another replica')
        return false
      }
    }
    const candidates = sources.filter((s) => s !== this.d.hostId)
    for (let attempt = 0; ; attempt++) {
      const preferred = candidates[0]
      if (done.size === 0 && preferred && this.d.view.isUp(preferred) && (await pull(preferred))) return total
      const others = candidates.slice(1).filter((s) => this.d.view.isUp(s))
      for (const s of others) if (!done.has(s) && (await pull(s))) done.add(s)
      if (others.length > 0 && others.every((s) => done.has(s))) return total
      if (attempt % 10 === 0) this.d.log.warn({ range: String(range.end), sources }, 'no replica could stream this range yet; waiting')
      await sleep(1000)
    }
  }


  /**
   * Waits until every live peer reports our `state` and tokens: only then do all coordinators
   * send writes for our pending ranges here, so the snapshot we stream from cannot miss one.
   * Returns why we lost a race against another move (undo ours), or undefined to go on.
   */
  private async confirm(state: NodeState): Promise<string | undefined> {
    const want = { hostId: this.d.hostId, state, tokens: tokenDigest(this.tokensNow) }
    // The member we replace shows as moving out while we bootstrap: not a competitor.
    const movers = () => this.d.view.all().filter((m) => MOVING.includes(m.state) && m.replacedBy !== this.d.hostId)
    let lastLog = Date.now()
    for (;;) {
      let answers = await this.askPeers()
      // Reporting LEFT only needs the peers to see it; no other move can compete any more.
      if (state === 'LEFT') answers = answers.map(({ peer, answer }) => ({ peer, answer: answer && { ...answer, self: undefined } }))
      const v = judgeConfirm(want, answers, state === 'LEFT' ? [] : movers(), this.claimed)
      if (v.kind === 'back-off') {
        this.claimed = false
        this.d.log.warn({ other: v.other }, v.message)
        return v.message
      }
      if (v.kind === 'go') {
        if (this.claimed || state === 'LEFT') return undefined
        // Claim, then look once more: of two movers that claim and then look, one sees the other.
        this.claimed = true
        continue
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now()
        this.d.log.info({ waitingFor: v.waitingFor }, `waiting for every live node to see this node ${state}`)
      }
      await sleep(Math.min(this.d.gossipIntervalMs, 500))
    }
  }

  /**
   * Waits until gossip has given us the ring the peers have. A move resumed after a restart
   * starts with an empty view: computed from it, a bootstrap would find no sources and a leave
   * would find nobody to hand its ranges to (and call itself LEFT with the data still here).
   */
  private async awaitView(): Promise<void> {
    let lastLog = Date.now()
    for (;;) {
      if (this.settledSinceStart() && this.d.view.all().some((m) => m.hostId !== this.d.hostId && m.up)) {
        const v = judgeStart(this.d.view, await this.askPeers())
        if (v.ok || 'busy' in v) return
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now()
        this.d.log.info('waiting for gossip to show the cluster before resuming the move')
      }
      await sleep(Math.min(this.d.gossipIntervalMs, 250))
    }
  }

  /** Asks every peer we see up (and not LEFT) how it sees us and itself. */
  private askPeers(): Promise<PeerAnswer[]> {
    const peers = this.d.view.all().filter((m) => m.hostId !== this.d.hostId && m.up && m.state !== 'LEFT')
    return Promise.all(
      peers.map((peer) =>
        this.d.transport.request<SeesAnswer>(peer.address, MSG_SEES, { hostId: this.d.hostId }, { timeoutMs: ASK_TIMEOUT_MS }).then(
          (answer) => ({ peer, answer }),
          () => ({ peer, answer: undefined }),
        ),
      ),
    )
  }

  /**
   * The dead member with this node's name that a join replaces, if any; refuses (409) when a
   * live member already has the name.
   */
  private replacement(): { old: { hostId: string }; tokens: readonly bigint[] } | undefined {
    const r = replacementFor(this.d.view.all(), { hostId: this.d.hostId, name: this.d.name })
    if (r.kind === 'conflict') {
      throw new RingError('BAD_STATE', `another node named ${this.d.name} is up (host id ${r.other.hostId}); node names must be unique — stop that node, or start this one with another --name`, { other: r.other.hostId })
    }
    return r.kind === 'replace' ? r : undefined
  }

  /** Refuses (409) while another node moves; waits a little for gossip to catch up with peers. */
  private async checkStart(what = 'a topology change', replacing?: string): Promise<void> {
    const deadline = Date.now() + SETTLE_MS
    for (;;) {
      const v = judgeStart(this.d.view, await this.askPeers(), replacing)
      if (v.ok) return
      if ('busy' in v) throw new RingError('BAD_STATE', what === 'cleanup' ? `ranges are moving (${v.message.split(';')[0]}); run cleanup after it finishes` : v.message, { busy: v.busy })
      if (Date.now() > deadline) throw new RingError('BAD_STATE', v.message, { stale: v.stale })
      await sleep(Math.min(this.d.gossipIntervalMs, 250))
    }
  }

  private publish(state: NodeState): Promise<void> {
    return this.d.publish(state, this.tokensNow, this.replacesNow)
  }

  private settledSinceStart(): boolean {
    return Date.now() - this.startedAt >= 3 * this.d.gossipIntervalMs
  }

  private refuseWhileBusy(what: string): void {
    if (this.busy) throw new RingError('CONFLICT', `${this.op?.type ?? 'an operation'} is running on this node; ${what} can start when it is done`)
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.gate.then(fn)
    this.gate = p.catch(() => {})
    return p
  }

  private background(type: Operation['type'], fn: () => Promise<void>): void {
    if (this.busy) return
    this.op = { type, phase: 'running', startedAt: new Date().toISOString() }
    this.busy = fn().then(
      () => {
        this.op = { ...this.op!, phase: 'done' }
      },
      (e: Error) => {
        this.op = { ...this.op!, phase: 'failed', error: e.message }
        this.d.log.error({ err: e }, `${type} failed`)
      },
    ).finally(() => {
      this.busy = null
    })
  }

  private async exclusive(type: Operation['type'], fn: () => Promise<void>): Promise<void> {
    if (this.busy) throw new RingError('CONFLICT', `${this.op?.type ?? 'an operation'} is running on this node; retry when it is done`)
    this.op = { type, phase: 'running', startedAt: new Date().toISOString() }
    const p = fn()
    this.busy = p.catch(() => {}).finally(() => (this.busy = null))
    try {
      await p
      this.op = { ...this.op, phase: 'done' }
    } catch (e) {
      this.op = { ...this.op, phase: 'failed', error: (e as Error).message }
      throw e
    }
  }

  /** Waits for background work (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.busy) await this.busy
  }
}

function sortRanges(rs: Range[]): Range[] {
  return [...rs].sort((a, b) => (a.end < b.end ? -1 : a.end > b.end ? 1 : 0))
}

/** The ring minus the given disjoint, merged ranges. */
export function complement(mine: Range[]): Range[] {
  if (mine.length === 0) return [{ start: 0n, end: 0n }]
  if (mine.length === 1 && mine[0]!.start === mine[0]!.end) return []
  const sorted = sortRanges(mine)
  const out: Range[] = []
  for (let i = 0; i < sorted.length; i++) {
    const cur = sorted[i]!
    const next = sorted[(i + 1) % sorted.length]!
    if (cur.end !== next.start) out.push({ start: cur.end, end: next.start })
  }
  return out
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
