import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { resolve } from '../../../node/replication/resolve.js'
import { HlcClock, compareHlc, compareVV, incrementVV, mergeVV, type VersionVector } from '../../../node/replication/version.js'
import type { StoredRecord } from '../../../node/storage/record.js'
import { encodeRecord } from '../../../node/storage/codec.js'
import { createRng, type Rng } from '../../../node/util/rng.js'

function rec(value: string, vv: VersionVector, wall: number, node = 'n1', logical = 0): StoredRecord {
  return { value: Buffer.from(value), contentType: 'text/plain', vv, ts: { wall, logical, node }, tombstone: false }
}

const bytes = (r: StoredRecord) => encodeRecord(r)

test('causally newer wins even when its wall clock is far behind', () => {
  const old = rec('old', { a: 1 }, 2_000_000)
  const newer = rec('new', { a: 1, b: 1 }, 1_000) // coordinator b's clock is hours behind
  for (const [x, y] of [[old, newer], [newer, old]] as const) {
    const r = resolve(x, y)
    assert.is(r.winner.value.toString(), 'new')
    assert.is(r.concurrent, false)
    assert.equal(r.winner.vv, { a: 1, b: 1 })
  }
  // a tombstone that causally follows a write deletes it, whatever the clocks say
  const del: StoredRecord = { ...rec('', { a: 2 }, 5), tombstone: true }
  assert.ok(resolve(rec('v', { a: 1 }, 9_999_999), del).winner.tombstone)
})

test('equal versions: the existing record is kept, not concurrent', () => {
  const a = rec('same', { a: 3 }, 100)
  const b = rec('same', { a: 3 }, 100)
  const r = resolve(a, b)
  assert.is(r.winner, a)
  assert.is(r.concurrent, false)
})

test('equal vectors with different contents (counter reuse) converge by HLC', () => {
  const a = rec('first', { a: 3 }, 100)
  const b = rec('second', { a: 3 }, 200)
  assert.ok(bytes(resolve(a, b).winner).equals(bytes(resolve(b, a).winner)))
  assert.is(resolve(a, b).winner.value.toString(), 'second')
  assert.is(resolve(a, b).concurrent, true)
})

test('concurrent: greater HLC wins, its vector merges both, node id breaks HLC ties', () => {
  const a = rec('from-a', { a: 2, b: 1 }, 500, 'a')
  const b = rec('from-b', { a: 1, b: 2 }, 400, 'b')
  for (const [x, y] of [[a, b], [b, a]] as const) {
    const r = resolve(x, y)
    assert.is(r.concurrent, true)
    assert.is(r.winner.value.toString(), 'from-a')
    assert.equal(r.winner.vv, { a: 2, b: 2 })
    assert.is(compareVV(r.winner.vv, a.vv), 'after')
    assert.is(compareVV(r.winner.vv, b.vv), 'after')
  }
  const tieA = rec('tie-a', { a: 1 }, 700, 'a')
  const tieB = rec('tie-b', { b: 1 }, 700, 'b')
  assert.is(resolve(tieA, tieB).winner.value.toString(), 'tie-b')
  assert.is(resolve(tieB, tieA).winner.value.toString(), 'tie-b')
})

/** A random history: coordinators with skewed clocks write versions descending from earlier ones. */
function history(rng: Rng, n: number): StoredRecord[] {
  const coords = ['c1', 'c2', 'c3', 'c4']
  let now = 1_700_000_000_000
  const skew: Record<string, number> = { c1: 0, c2: -120_000, c3: 90_000, c4: -5 }
  const clocks = Object.fromEntries(coords.map((c) => [c, new HlcClock(c, () => now + skew[c]!)]))
  const out: StoredRecord[] = []
  // A coordinator is a replica and stores every version it coordinates, so its own counter
  // never goes back: a new write's entry is above every one it issued before.
  const issued: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    now += rng.int(3)
    const c = rng.pick(coords)
    const clock = clocks[c]!
    // read 0, 1 or 2 earlier versions (a client's causal context), then write over them
    const parents = out.length === 0 ? [] : Array.from({ length: rng.int(3) }, () => rng.pick(out))
    let vv: VersionVector = {}
    for (const p of parents) {
      vv = mergeVV(vv, p.vv)
      clock.observe(p.ts)
    }
    const ts = clock.tick()
    const tombstone = rng.int(5) === 0
    vv = incrementVV({ ...vv, [c]: Math.max(vv[c] ?? 0, issued[c] ?? 0) }, c)
    issued[c] = vv[c]!
    out.push({ value: Buffer.from(tombstone ? '' : `v${i}`), contentType: 'text/plain', vv, ts, tombstone })
  }
  return out
}

/** 200 pairs of versions drawn from random histories. */
function forRandomPairs(seed: string, f: (a: StoredRecord, b: StoredRecord, round: number) => void): void {
  const rng = createRng(seed)
  for (let round = 0; round < 200; round++) {
    const h = history(rng, 10)
    f(rng.pick(h), rng.pick(h), round)
  }
}

test('property: resolve is symmetric to the byte', () => {
  forRandomPairs('resolve-symmetric', (a, b, round) => {
    const ab = resolve(a, b)
    const ba = resolve(b, a)
    assert.ok(bytes(ab.winner).equals(bytes(ba.winner)), `round ${round}`)
    assert.is(ab.concurrent, ba.concurrent)
  })
})

test('property: causally newer always wins; concurrent winner dominates both', () => {
  forRandomPairs('resolve-causal', (a, b) => {
    const order = compareVV(a.vv, b.vv)
    const r = resolve(a, b)
    if (order === 'after') assert.is(r.winner, a)
    else if (order === 'before') assert.is(r.winner, b)
    else if (order === 'concurrent') {
      assert.ok(r.concurrent)
      const ca = compareVV(r.winner.vv, a.vv)
      const cb = compareVV(r.winner.vv, b.vv)
      assert.ok(ca === 'after' && cb === 'after', `merged vv must dominate both (${ca}, ${cb})`)
      const hlcWinner = compareHlc(a.ts, b.ts) > 0 ? a : b
      assert.ok(r.winner.value.equals(hlcWinner.value))
    }
  })
})

test('property: replicas that see the same versions in any order store identical bytes', () => {
  const rng = createRng('resolve-converge')
  for (let round = 0; round < 100; round++) {
    const h = history(rng, 12)
    const results = [0, 1, 2, 3].map(() => {
      const order = rng.shuffle([...h])
      return order.slice(1).reduce((acc, r) => resolve(acc, r).winner, order[0]!)
    })
    for (const r of results.slice(1)) assert.ok(bytes(r).equals(bytes(results[0]!)), `round ${round}`)
    // and the survivor is the newest by HLC, carrying every version's history
    const newest = h.reduce((x, y) => (compareHlc(x.ts, y.ts) >= 0 ? x : y))
    assert.ok(results[0]!.value.equals(newest.value))
    assert.equal(results[0]!.vv, h.reduce((v, r) => mergeVV(v, r.vv), {} as VersionVector))
  }
})

test.run()
