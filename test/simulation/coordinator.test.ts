/**
 * The coordinator's pure decisions under thousands of seeded random scenarios: write plans
 * and rounds against random up/down sets, pending replicas and ack/fail/timeout orders (with
 * hinted and pending replicas "acking" too, which must never count); read plans; and version
 * resolution over histories minted by coordinators with skewed clocks, delivered in random
 * orders. SIM_SEED=... reproduces a run; every failure message names its scenario.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Consistency } from '../../node/api/service.js'
import { RingError } from '../../node/errors.js'
import { blockFor, planRead, planWrite, WriteRound, type RoundOutcome } from '../../node/replication/rounds.js'
import { Coordinator, type LocalReplica, type ReplicaChannel } from '../../node/replication/coordinator.js'
import { canonicalVV, resolve } from '../../node/replication/resolve.js'
import { compareVV, HlcClock, incrementVV, mergeVV, type VersionVector } from '../../node/replication/version.js'
import { decodeRecord, encodeRecord } from '../../node/storage/codec.js'
import type { StoredRecord } from '../../node/storage/record.js'
import { createRng, type Rng } from '../../node/util/rng.js'

const SEED = process.env.SIM_SEED ?? 'coordinator'
const LEVELS: Consistency[] = ['one', 'quorum', 'all']

interface Scenario {
  natural: string[]
  pending: string[]
  up: Set<string>
  cl: Consistency
  rf: number
}

/** A key's replicas on a random cluster: rf natural, up to two pending, each node up or not. */
function scenario(rng: Rng): Scenario {
  const size = 1 + rng.int(8)
  const nodes = Array.from({ length: size }, (_, i) => `h${i}`)
  rng.shuffle(nodes)
  const rf = 1 + rng.int(Math.min(size, 5))
  const natural = nodes.slice(0, rf)
  const pending = nodes.slice(rf, rf + rng.int(3))
  const pUp = rng.pick([0.3, 0.7, 0.9, 1])
  const up = new Set(nodes.filter(() => rng.next() < pUp))
  // The coordinator is a live natural replica (others forward to one).
  up.add(natural[0]!)
  return { natural, pending, up, cl: rng.pick(LEVELS), rf }
}

function describeScenario(s: Scenario): string {
  return `natural=[${s.natural}] pending=[${s.pending}] up=[${[...s.up].sort()}] cl=${s.cl} rf=${s.rf}`
}

type Event = { kind: 'ack' | 'fail'; id: string } | { kind: 'timeout' }

test('write plans: UNAVAILABLE before anything is sent when too few natural replicas are up; otherwise every replica is sent to or hinted, never both', () => {
  const rng = createRng(`${SEED}:plan`)
  let refused = 0
  for (let i = 0; i < 5000; i++) {
    const s = scenario(rng)
    const need = blockFor(s.cl, s.rf)
    const alive = s.natural.filter((id) => s.up.has(id))
    const what = describeScenario(s)
    if (alive.length < need) {
      refused++
      const e = catchError(() => planWrite(s.natural, s.pending, (id) => s.up.has(id), s.cl, s.rf))
      assert.instance(e, RingError, what)
      assert.is(e.code, 'UNAVAILABLE', what)
      assert.is(e.status, 503, what)
      assert.equal([e.details?.required, e.details?.alive], [need, alive.length], what)
      continue
    }
    const plan = planWrite(s.natural, s.pending, (id) => s.up.has(id), s.cl, s.rf)
    assert.is(plan.blockFor, need, what)
    const all = [...s.natural, ...s.pending]
    assert.equal([...plan.send, ...plan.hint].sort(), all.sort(), `${what}: every replica is sent to or hinted`)
    assert.ok(plan.send.every((id) => s.up.has(id)), `${what}: only live replicas are sent to`)
    assert.ok(plan.hint.every((id) => !s.up.has(id)), `${what}: only down replicas are hinted`)
  }
  assert.ok(refused > 500 && refused < 4500, `both branches exercised (${refused} refused)`)
})

test('write rounds: success exactly when blockFor natural replicas that were sent the write acked; hints, pending replicas, duplicates and strangers never count', () => {
  const rng = createRng(`${SEED}:round`)
  const outcomes = { ok: 0, UNAVAILABLE: 0, TIMEOUT: 0 }
  for (let i = 0; i < 20_000; i++) {
    const s = scenario(rng)
    let plan
    try {
      plan = planWrite(s.natural, s.pending, (id) => s.up.has(id), s.cl, s.rf)
    } catch {
      continue
    }
    const round = new WriteRound(new Set(s.natural), plan)
    const sentNatural = plan.send.filter((id) => s.natural.includes(id))
    // What each sent replica does: ack, fail, or stay silent. Then noise that must not count.
    const events: Event[] = []
    for (const id of plan.send) {
      const r = rng.next()
      if (r < 0.6) events.push({ kind: 'ack', id })
      else if (r < 0.85) events.push({ kind: 'fail', id })
    }
    for (const id of plan.hint) if (rng.next() < 0.5) events.push({ kind: 'ack', id }) // a hint replayed early
    for (const id of s.pending) if (rng.next() < 0.5) events.push({ kind: 'ack', id })
    const ackers = events.filter((e) => e.kind === 'ack').map((e) => (e as { id: string }).id)
    for (let d = rng.int(3); d > 0; d--) events.push({ kind: 'ack', id: rng.pick([...ackers, 'stranger']) })
    rng.shuffle(events)
    events.splice(rng.int(events.length + 1), 0, { kind: 'timeout' })

    const acked = new Set<string>()
    const failed = new Set<string>()
    let answer: RoundOutcome | undefined
    const what = `${describeScenario(s)} events=${events.map((e) => (e.kind === 'timeout' ? 'T' : `${e.kind}:${e.id}`)).join(',')}`
    for (const ev of events) {
      const o = ev.kind === 'ack' ? round.ack(ev.id) : ev.kind === 'fail' ? round.fail(ev.id) : round.timeout()
      if (ev.kind !== 'timeout' && sentNatural.includes(ev.id)) {
        if (ev.kind === 'ack') acked.add(ev.id)
        else failed.add(ev.id)
      }
      if (answer) {
        assert.is(o.done, false, `${what}: a round answers once`)
        continue
      }
      const outstanding = sentNatural.filter((id) => !acked.has(id) && !failed.has(id)).length
      if (o.done) {
        answer = o
        if (o.ok) {
          assert.ok(acked.size >= plan.blockFor, `${what}: success with ${acked.size} of ${plan.blockFor} acks`)
          outcomes.ok++
        } else {
          assert.ok(acked.size < plan.blockFor, `${what}: failure although ${acked.size} acked`)
          outcomes[o.error.code as 'UNAVAILABLE' | 'TIMEOUT']++
          if (o.error.code === 'UNAVAILABLE') {
            assert.ok(acked.size + outstanding < plan.blockFor, `${what}: UNAVAILABLE while ${outstanding} replicas may still ack`)
            assert.is(o.error.status, 503)
          } else {
            assert.is(o.error.code, 'TIMEOUT', what)
            assert.is(ev.kind, 'timeout', `${what}: TIMEOUT only at the deadline`)
            assert.is(o.error.status, 504)
            assert.is(o.error.details?.acks, acked.size, what)
          }
        }
      } else {
        // Decisive: the client hears as soon as the outcome is known, not at the deadline.
        assert.ok(acked.size < plan.blockFor, `${what}: ${acked.size} acks reached blockFor ${plan.blockFor} without an answer`)
        assert.ok(acked.size + outstanding >= plan.blockFor, `${what}: the write cannot succeed any more (${acked.size} acked, ${outstanding} outstanding) but the round waits`)
        assert.ok(ev.kind !== 'timeout', `${what}: the deadline answers`)
      }
    }
    assert.ok(answer, `${what}: the deadline always answers`)
  }
  assert.ok(outcomes.ok > 1000 && outcomes.UNAVAILABLE > 100 && outcomes.TIMEOUT > 100, `all outcomes exercised: ${JSON.stringify(outcomes)}`)
})

test('read plans: the local replica first, exactly blockFor live replicas asked, the rest live spares, UNAVAILABLE when too few are up', () => {
  const rng = createRng(`${SEED}:read`)
  for (let i = 0; i < 5000; i++) {
    const s = scenario(rng)
    const self = s.natural[0]!
    const need = blockFor(s.cl, s.rf)
    const alive = s.natural.filter((id) => s.up.has(id))
    const what = describeScenario(s)
    if (alive.length < need) {
      const e = catchError(() => planRead(s.natural, self, (id) => s.up.has(id), s.cl, s.rf))
      assert.is(e.code, 'UNAVAILABLE', what)
      continue
    }
    const p = planRead(s.natural, self, (id) => s.up.has(id), s.cl, s.rf)
    assert.is(p.blockFor, need, what)
    assert.is(p.ask.length, need, what)
    assert.is(p.ask[0], self, `${what}: the local replica is asked first`)
    assert.equal([...p.ask, ...p.spare].sort(), [...alive].sort(), `${what}: asked + spares = the live natural replicas`)
    assert.ok(!p.ask.some((id) => s.pending.includes(id)), `${what}: pending replicas are never read`)
  }
})

// ---- resolution -----------------------------------------------------------------------

interface Minted {
  rec: StoredRecord
  /** versions this one was minted on top of (its causal past) */
  supersedes: Set<StoredRecord>
}

/**
 * A key's history as real coordinators make it: each write is minted by a replica from its
 * own current version (plus, sometimes, a context a client read elsewhere), stamped by its
 * own HLC — clocks skewed by up to an hour — and delivered to the other replicas in random
 * order, so concurrent versions arise whenever deliveries lag.
 */
function history(rng: Rng, writes: number): { minted: Minted[]; replicas: string[] } {
  const replicas = Array.from({ length: 2 + rng.int(4) }, (_, i) => `r${i}`)
  let now = 1_000_000
  const skew = new Map(replicas.map((r) => [r, rng.pick([0, 0, -3_600_000, 3_600_000, -5, 7])]))
  const clocks = new Map(replicas.map((r) => [r, new HlcClock(r, () => now + skew.get(r)!)]))
  const local = new Map<string, StoredRecord | undefined>()
  const minted: Minted[] = []
  const inflight: { to: string; rec: StoredRecord }[] = []
  const deliver = (to: string, rec: StoredRecord) => {
    clocks.get(to)!.observe(rec.ts)
    const cur = local.get(to)
    local.set(to, cur ? resolve(cur, rec).winner : rec)
  }
  for (let w = 0; w < writes; w++) {
    now += rng.int(3)
    // Deliver some of what is in flight, in random order.
    rng.shuffle(inflight)
    for (let d = rng.int(inflight.length + 1); d > 0; d--) {
      const m = inflight.pop()!
      deliver(m.to, m.rec)
    }
    const coord = rng.pick(replicas)
    // Sometimes the client sends If-Match of a version it read through another replica; the
    // coordinator fetches that version first when it does not have it (Coordinator.catchUp).
    const ctx = rng.next() < 0.3 ? local.get(rng.pick(replicas)) : undefined
    const before = local.get(coord)
    if (ctx && !(before && ['after', 'equal'].includes(compareVV(before.vv, ctx.vv)))) deliver(coord, ctx)
    const cur = local.get(coord)
    if (cur) clocks.get(coord)!.observe(cur.ts)
    let base = cur?.vv ?? {}
    if (ctx) base = mergeVV(base, ctx.vv)
    const rec: StoredRecord = {
      value: Buffer.from(`w${w}`),
      contentType: rng.pick(['text/plain', 'application/json']),
      vv: canonicalVV(incrementVV(base, coord)),
      ts: clocks.get(coord)!.tick(),
      tombstone: rng.next() < 0.1,
    }
    const seen = new Set<StoredRecord>()
    for (const m of minted) if (compareVV(m.rec.vv, rec.vv) === 'before') seen.add(m.rec)
    minted.push({ rec, supersedes: seen })
    deliver(coord, rec)
    for (const r of replicas) if (r !== coord) inflight.push({ to: r, rec })
  }
  return { minted, replicas }
}

const bytes = (r: StoredRecord) => encodeRecord(r).toString('hex')
const join = (a: StoredRecord, b: StoredRecord) => resolve(a, b).winner

test('resolution is commutative, associative and idempotent over coordinator-minted histories', () => {
  const rng = createRng(`${SEED}:resolve-laws`)
  let concurrent = 0
  for (let h = 0; h < 300; h++) {
    const { minted } = history(rng, 4 + rng.int(12))
    const recs = minted.map((m) => m.rec)
    for (let t = 0; t < 40; t++) {
      const [a, b, c] = [rng.pick(recs), rng.pick(recs), rng.pick(recs)]
      const ab = resolve(a, b)
      const ba = resolve(b, a)
      if (ab.concurrent) concurrent++
      assert.is(bytes(ab.winner), bytes(ba.winner), `commutative: ${bytes(a)} / ${bytes(b)}`)
      assert.is(ab.concurrent, ba.concurrent, 'the concurrency verdict is symmetric')
      assert.is(bytes(join(join(a, b), c)), bytes(join(a, join(b, c))), `associative: ${bytes(a)} / ${bytes(b)} / ${bytes(c)}`)
      assert.is(bytes(join(a, a)), bytes(a), 'idempotent')
      const order = compareVV(a.vv, b.vv)
      if (order === 'before') assert.is(ab.winner, b, 'a causally newer version wins whatever its clock says')
      if (order === 'after') assert.is(ab.winner, a, 'a causally newer version wins whatever its clock says')
    }
  }
  assert.ok(concurrent > 100, `concurrent pairs exercised (${concurrent})`)
})

test('resolution is deterministic: replicas that receive the same versions in any order end byte-identical, and a superseded write never wins', () => {
  const rng = createRng(`${SEED}:resolve-converge`)
  for (let h = 0; h < 400; h++) {
    const { minted } = history(rng, 3 + rng.int(14))
    const finals = new Set<string>()
    let winner: StoredRecord | undefined
    for (let order = 0; order < 6; order++) {
      const recs = rng.shuffle(minted.map((m) => m.rec))
      // Any fold tree, not only left to right: replicas merge what reaches them in batches.
      let parts = recs.map((r) => r)
      while (parts.length > 1) {
        const i = rng.int(parts.length - 1)
        parts.splice(i, 2, join(parts[i]!, parts[i + 1]!))
      }
      winner = parts[0]!
      finals.add(bytes(winner))
    }
    assert.is(finals.size, 1, `history ${h}: ${finals.size} different final versions`)
    const w = winner!
    // The winner's content is a version nobody superseded, and its vector covers every version.
    const source = minted.find((m) => m.rec.value.equals(w.value) && m.rec.ts.wall === w.ts.wall && m.rec.ts.logical === w.ts.logical && m.rec.ts.node === w.ts.node)
    assert.ok(source, 'the winner is one of the written versions')
    assert.ok(!minted.some((m) => m.supersedes.has(source!.rec)), `history ${h}: a superseded write ${source!.rec.value} won`)
    for (const m of minted) assert.ok(['after', 'equal'].includes(compareVV(w.vv, m.rec.vv)), 'the winner dominates every version')
  }
})

// ---- whole coordinators on a lossy in-process network ---------------------------------

/**
 * Real Coordinator objects for five nodes, wired by an in-process network that delays, loses
 * requests and replies (a lost reply means the replica applied the write and nobody heard),
 * and a failure detector that lags behind kills. Replica stores are maps merged with the
 * same resolve() as the RocksDB store; records cross the network encoded, as on the wire.
 */
class CoordinatorSim {
  readonly ids = ['n0', 'n1', 'n2', 'n3', 'n4']
  readonly alive = new Set(this.ids)
  /** what every node's failure detector says (lags behind kills) */
  readonly believed = new Set(this.ids)
  readonly data = new Map<string, Map<string, StoredRecord>>()
  readonly hints = new Map<string, { target: string; key: Buffer; rec: StoredRecord }[]>()
  readonly coords = new Map<string, Coordinator>()
  private readonly placement = new Map<string, string[]>()
  loss = Number(process.env.SIM_LOSS ?? 0.05)
  readonly timeoutMs = 40

  constructor(readonly rng: Rng, keys: string[], placement?: string[]) {
    for (const k of keys) this.placement.set(k, placement ?? rng.shuffle([...this.ids]).slice(0, 3))
    for (const id of this.ids) {
      this.data.set(id, new Map())
      this.hints.set(id, [])
      this.coords.set(id, this.coordinator(id))
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms))
  }

  /** Requests a scenario wants lost, whatever the loss rate says. */
  lose: (to: string, kind: string) => boolean = () => false

  /** One request/reply to `to`; fails like the transport does: refused, or silent until the timeout. */
  private async rpc<T>(to: string, timeoutMs: number, fn: () => Promise<T>, kind = 'other'): Promise<T> {
    await this.sleep(this.rng.int(3))
    if (!this.alive.has(to)) throw new Error(`${to} refused the connection`)
    if (this.rng.next() < this.loss || this.lose(to, kind)) {
      await this.sleep(timeoutMs)
      throw new Error(`request to ${to} lost`)
    }
    const r = await fn()
    if (this.rng.next() < this.loss || !this.alive.has(to)) {
      await this.sleep(timeoutMs)
      throw new Error(`reply from ${to} lost`)
    }
    await this.sleep(this.rng.int(3))
    return r
  }

  private wire(rec: StoredRecord): StoredRecord {
    return decodeRecord(encodeRecord(rec))
  }

  private coordinator(self: string): Coordinator {
    const store = this.data.get(self)!
    // No await between reading and writing a key: each call is atomic, like the store's key lock.
    const apply = (key: Buffer, rec: StoredRecord) => {
      const cur = store.get(key.toString())
      const r = cur ? resolve(cur, rec) : { winner: rec, concurrent: false }
      store.set(key.toString(), r.winner)
      return { stored: r.winner, changed: r.winner !== cur, concurrent: r.concurrent }
    }
    const local: LocalReplica = {
      get: async (key) => store.get(key.toString()),
      apply: async (key, rec) => apply(key, rec),
      update: async (key, make) => apply(key, make(store.get(key.toString()))),
      addHint: async (target, key, rec) => {
        this.hints.get(self)!.push({ target, key, rec })
      },
    }
    const channel: ReplicaChannel = {
      apply: (id, key, rec, t) => this.rpc(id, t, () => this.coords.get(id)!.applyReplica(key, this.wire(rec)), 'apply').then(() => {}),
      read: (id, key, t) => this.rpc(id, t, async () => {
        const r = this.data.get(id)!.get(key.toString())
        return r && this.wire(r)
      }),
      forwardWrite: (id, key, w, cl, t) => this.rpc(id, t * 2, () => this.coords.get(id)!.write(key, w, cl)),
      forwardRead: (id, key, cl, t) => this.rpc(id, t * 2, () => this.coords.get(id)!.read(key, cl)),
    }
    return new Coordinator({
      topology: { selfId: self, rf: 3, replicasFor: (key) => ({ natural: this.placement.get(key.toString())!, pending: [] }), isUp: (id) => this.believed.has(id) },
      channel,
      local,
      clock: new HlcClock(self),
      timeoutMs: this.timeoutMs,
      hintWindowMs: 3_600_000,
    })
  }

  kill(id: string, noticed = this.rng.next() < 0.5): void {
    this.alive.delete(id)
    // The detector notices now or only after a few more operations.
    if (noticed) this.believed.delete(id)
  }

  restart(id: string): void {
    this.alive.add(id)
    this.believed.add(id)
  }

  notice(): void {
    for (const id of this.ids) if (!this.alive.has(id)) this.believed.delete(id)
  }

  async replayHints(): Promise<void> {
    for (const [from, list] of this.hints) {
      if (!this.alive.has(from)) continue
      const keep = []
      for (const h of list) {
        if (!this.believed.has(h.target)) keep.push(h)
        else await this.rpc(h.target, this.timeoutMs, () => this.coords.get(h.target)!.applyReplica(h.key, this.wire(h.rec))).catch(() => keep.push(h))
      }
      this.hints.set(from, keep)
    }
  }
}

test('whole coordinators on a lossy network: an acknowledged QUORUM write is in every later QUORUM read, QUORUM reads never go backwards, replicas converge', async () => {
  const rng = createRng(`${SEED}:network`)
  const keys = ['k0', 'k1', 'k2']
  const stats = { writesOk: 0, writesFailed: 0, readsOk: 0, readsFailed: 0 }
  for (let sc = 0; sc < 30; sc++) {
    const sim = new CoordinatorSim(rng.fork(sc), keys)
    const acked = new Map<string, VersionVector>()
    const lastRead = new Map<string, VersionVector>()
    const lastSeen = new Map<string, string>()
    const log: string[] = []
    for (let op = 0; op < 50; op++) {
      const r = sim.rng.next()
      const down = sim.ids.filter((id) => !sim.alive.has(id))
      if (r < 0.06 && down.length < 2) sim.kill(sim.rng.pick(sim.ids.filter((id) => sim.alive.has(id))))
      else if (r < 0.12 && down.length) sim.restart(sim.rng.pick(down))
      else if (r < 0.16) sim.notice()
      else if (r < 0.2) await sim.replayHints()
      const key = sim.rng.pick(keys)
      const coord = sim.rng.pick(sim.ids.filter((id) => sim.alive.has(id)))
      const cl = sim.rng.pick(LEVELS)
      const where = `scenario ${sc} op ${op} ${key}@${coord}/${cl} down=[${sim.ids.filter((id) => !sim.alive.has(id))}]`
      if (sim.rng.next() < 0.5) {
        const w: { value: Buffer; context?: VersionVector } = { value: Buffer.from(`s${sc}o${op}`) }
        if (lastSeen.has(key) && sim.rng.next() < 0.6) w.context = JSON.parse(lastSeen.get(key)!)
        try {
          const rec = await sim.coords.get(coord)!.write(Buffer.from(key), w, cl)
          stats.writesOk++
          log.push(`${where} wrote ${JSON.stringify(rec.vv)}`)
          if (cl !== 'one') acked.set(key, mergeVV(acked.get(key) ?? {}, rec.vv))
        } catch (e) {
          if (!(e instanceof RingError)) throw e
          assert.ok(['UNAVAILABLE', 'TIMEOUT'].includes(e.code), `${where}: ${e.code}`)
          stats.writesFailed++
        }
      } else {
        try {
          const rec = await sim.coords.get(coord)!.read(Buffer.from(key), cl)
          stats.readsOk++
          log.push(`${where} read ${rec ? JSON.stringify(rec.vv) : 'nothing'}`)
          if (rec) lastSeen.set(key, JSON.stringify(rec.vv))
          if (cl === 'one') continue
          const history = log.slice(-12).join('\n  ')
          const must = acked.get(key)
          if (must) {
            assert.ok(rec && ['after', 'equal'].includes(compareVV(rec.vv, must)), `${where}: read ${rec ? JSON.stringify(rec.vv) : 'nothing'} misses acknowledged ${JSON.stringify(must)}\n  ${history}`)
          }
          const prev = lastRead.get(key)
          if (prev) {
            assert.ok(rec && ['after', 'equal'].includes(compareVV(rec.vv, prev)), `${where}: read ${rec ? JSON.stringify(rec.vv) : 'nothing'} went back from ${JSON.stringify(prev)}\n  ${history}`)
          }
          if (rec) lastRead.set(key, rec.vv)
        } catch (e) {
          if (!(e instanceof RingError)) throw e
          assert.ok(['UNAVAILABLE', 'TIMEOUT'].includes(e.code), `${where}: ${e.code}`)
          stats.readsFailed++
        }
      }
    }
    // Heal: everyone up, no loss, hints replayed, one ALL read per key repairs what is left.
    for (const id of sim.ids) sim.restart(id)
    sim.loss = 0
    await new Promise((r) => setTimeout(r, sim.timeoutMs * 3))
    await sim.replayHints()
    for (const key of keys) {
      await sim.coords.get(sim.ids[0]!)!.read(Buffer.from(key), 'all')
      const copies = sim.ids.map((id) => sim.data.get(id)!.get(key)).filter((r): r is StoredRecord => !!r)
      const distinct = new Set(copies.map((c) => encodeRecord(c).toString('hex')))
      assert.ok(copies.length === 0 || (copies.length >= 3 && distinct.size === 1), `scenario ${sc} ${key}: replicas differ after healing (${distinct.size} versions on ${copies.length})`)
    }
  }
  console.log(`    ${JSON.stringify(stats)}`)
  assert.ok(stats.writesOk > 300 && stats.writesFailed > 10 && stats.readsOk > 300 && stats.readsFailed > 10, `all outcomes exercised: ${JSON.stringify(stats)}`)
})

test('a QUORUM read whose repair could not reach a quorum fails rather than let the next read go backwards', async () => {
  const sim = new CoordinatorSim(createRng(`${SEED}:repair`), ['k'], ['n0', 'n1', 'n2'])
  sim.loss = 0
  const key = Buffer.from('k')
  const [a, b, c] = ['n0', 'n1', 'n2'].map((id) => sim.coords.get(id)!)
  await a!.write(key, { value: Buffer.from('old') }, 'all')
  // "new" reaches n0 only: n1 and n2 are dead, ONE succeeds, their hints stay undelivered.
  sim.kill('n1', true)
  sim.kill('n2', true)
  await a!.write(key, { value: Buffer.from('new') }, 'one')
  sim.restart('n1')
  sim.restart('n2')
  // n0 reads itself and n1, sees "new", and its repair of n1 is lost.
  sim.lose = (to, kind) => to === 'n1' && kind === 'apply'
  let first: StoredRecord | undefined
  try {
    first = await a!.read(key, 'quorum')
  } catch (e) {
    assert.instance(e, RingError)
    assert.is((e as RingError).code, 'TIMEOUT')
  }
  sim.lose = () => false
  // n0 dies; n1 and n2 form the next quorum. If the first read answered "new", so must this one.
  sim.kill('n0', true)
  const second = await b!.read(key, 'quorum')
  if (first) assert.is(second?.value.toString(), first.value.toString(), `the first read answered ${first.value}, the second ${second?.value}`)
  assert.ok(c)
})

test('a coordinator that knows too few replicas are up refuses before writing anything anywhere, hints included', async () => {
  const sim = new CoordinatorSim(createRng(`${SEED}:refuse`), ['k'], ['n0', 'n1', 'n2'])
  sim.loss = 0
  const key = Buffer.from('k')
  await sim.coords.get('n0')!.write(key, { value: Buffer.from('before') }, 'all')
  const before = sim.ids.map((id) => sim.data.get(id)!.get('k'))
  sim.kill('n1', true)
  sim.kill('n2', true)
  for (const [coord, cl] of [['n0', 'quorum'], ['n0', 'all'], ['n3', 'quorum']] as const) {
    try {
      await sim.coords.get(coord)!.write(key, { value: Buffer.from('refused') }, cl)
      assert.unreachable(`${cl} write through ${coord} succeeded`)
    } catch (e) {
      assert.instance(e, RingError)
      assert.is((e as RingError).code, 'UNAVAILABLE')
    }
  }
  assert.equal(sim.ids.map((id) => sim.data.get(id)!.get('k')), before, 'no replica changed')
  assert.equal([...sim.hints.values()].flat(), [], 'no hint stored')
})

function catchError(fn: () => unknown): RingError {
  try {
    fn()
  } catch (e) {
    if (e instanceof RingError) return e
    throw e
  }
  assert.unreachable('expected a RingError')
  throw new Error('unreachable')
}

test.run()
