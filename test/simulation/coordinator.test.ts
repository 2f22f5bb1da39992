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
import { canonicalVV, resolve } from '../../node/replication/resolve.js'
import { compareVV, HlcClock, incrementVV, mergeVV } from '../../node/replication/version.js'
import { encodeRecord } from '../../node/storage/codec.js'
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
