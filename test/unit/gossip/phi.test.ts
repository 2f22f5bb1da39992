import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DEFAULT_PHI, PhiAccrualDetector } from '../../../node/gossip/phi.js'
import { createRng } from '../../../node/util/rng.js'

/** First time at or after `from` (10 ms steps) at which the detector convicts. */
function convictionTime(d: PhiAccrualDetector, from: number, limit = 60_000): number {
  for (let t = from; t < from + limit; t += 10) if (!d.isAvailable(t)) return t
  return Infinity
}

test('no heartbeat yet: phi 0; one heartbeat: not convicted early, convicted eventually', () => {
  const d = new PhiAccrualDetector()
  assert.is(d.phi(123_456), 0)
  d.heartbeat(1000)
  assert.ok(d.phi(1000) < 1e-6)
  const t = convictionTime(d, 1000)
  // Initial estimate 1 s +- 0.25 s, plus the 2 s acceptable pause: no conviction before ~3 s.
  assert.ok(t - 1000 >= 3000 && t - 1000 <= 8000, `convicted ${t - 1000} ms after the only heartbeat`)
})

test('jittered 1 s arrivals with occasional 3-5 s gaps: never convicted; silence convicted within budget', () => {
  const rng = createRng('phi-jitter')
  const d = new PhiAccrualDetector()
  let now = 0
  let maxPhiBeforeArrival = 0
  for (let i = 0; i < 20_000; i++) {
    // Mostly ~1 s +- 300 ms, like indirect gossip; one in 200 a gap of 3-5 s (lost messages).
    const gap = rng.next() < 0.005 ? 3000 + rng.next() * 2000 : 700 + rng.next() * 600
    now += gap
    maxPhiBeforeArrival = Math.max(maxPhiBeforeArrival, d.phi(now))
    assert.ok(d.isAvailable(now), `false conviction at arrival ${i} after a ${gap.toFixed(0)} ms gap (phi ${d.phi(now)})`)
    d.heartbeat(now)
  }
  const silentFor = convictionTime(d, now) - now
  console.log(`    max phi just before an arrival: ${maxPhiBeforeArrival.toFixed(2)}; silence convicted after ${silentFor} ms`)
  assert.ok(silentFor >= 4000, `convicted too early: ${silentFor} ms`)
  assert.ok(silentFor <= 7000, `convicted too late for a 10 s budget: ${silentFor} ms`)
})

test('phi grows monotonically with silence and stays finite', () => {
  const d = new PhiAccrualDetector()
  for (let t = 0; t <= 30_000; t += 1000) d.heartbeat(t)
  let last = -1
  for (let t = 30_000; t < 30_000 + 1e9; t = t * 1.5) {
    const p = d.phi(t)
    assert.ok(Number.isFinite(p), `phi at ${t} is ${p}`)
    assert.ok(p >= last, `phi fell from ${last} to ${p} at ${t}`)
    last = p
  }
  assert.ok(last > 1000)
})

test('an outage is not learned as an interval; a bounded window follows a slower rhythm', () => {
  const d = new PhiAccrualDetector({ windowSize: 50 })
  let now = 0
  for (let i = 0; i < 100; i++) d.heartbeat((now += 1000))
  now += 60_000 // convicted meanwhile
  assert.not.ok(d.isAvailable(now))
  d.heartbeat(now)
  assert.ok(Math.abs(d.stats.meanMs - 1000) < 1, `mean ${d.stats.meanMs} after an outage`)
  // Now heartbeats every 2 s: after a window's worth the mean is 2 s, nothing older counts.
  for (let i = 0; i < 50; i++) d.heartbeat((now += 2000))
  assert.is(d.stats.samples, 50)
  assert.ok(Math.abs(d.stats.meanMs - 2000) < 1e-6)
  assert.ok(d.stats.stdDevMs < 1e-3)
})

test('rearm forgets silence that was our own pause', () => {
  const d = new PhiAccrualDetector()
  for (let t = 0; t <= 10_000; t += 1000) d.heartbeat(t)
  assert.not.ok(d.isAvailable(40_000))
  d.rearm(40_000)
  assert.ok(d.isAvailable(41_000))
  assert.is(d.threshold, DEFAULT_PHI.threshold)
})

test.run()
