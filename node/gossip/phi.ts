/**
 * Phi-accrual failure detector (Hayashibara et al.) for one endpoint, fed with the times at
 * which a newer heartbeat of that endpoint was learned, directly or through other nodes.
 *
 * Public API:
 *   new PhiAccrualDetector(options?: PhiOptions)
 *   detector.heartbeat(now)   a newer heartbeat arrived at `now` (ms)
 *   detector.phi(now)         suspicion level; 0 right after a heartbeat, grows with silence
 *   detector.isAvailable(now) phi(now) < threshold
 *   detector.rearm(now)       forget the silence up to now (our own process was paused)
 *   detector.stats            { samples, meanMs, stdDevMs, lastMs }
 *   DEFAULT_PHI: Required<PhiOptions>
 *
 * Model: inter-arrival times are taken as normal with the window's mean and standard deviation
 * (floored at minStdDevMs), shifted right by acceptablePauseMs; phi = -log10 P(silence this
 * long). The tail uses the logistic approximation of the normal CDF, which is monotone and
 * has no overflow for very long silences. The window starts with warmupSamples synthetic
 * intervals around initialIntervalMs: a node seen once is not convicted at once, and the few
 * long gaps of a cluster that is still forming do not dominate the estimate (with only two
 * synthetic samples, a kill right after start-up took up to 10.6 s to be seen everywhere).
 * An interval that ends a period in which the endpoint was already convicted is an outage,
 * not jitter, and is not recorded (it would stretch the mean for a long time).
 *
 * Defaults (threshold 8, pause 1.5 s, min std-dev 0.5 s, initial interval 1 s, 20 warm-up
 * samples in a window of 100) were chosen with the gossip simulation, where heartbeats mostly
 * arrive indirectly: at a 1 s gossip interval, fanout 3 and 8-10% message loss, arrivals at
 * 128 nodes have mean ~1.1 s, p99.99 ~3.5 s and rare gaps of up to ~5 s. A silent endpoint
 * is convicted ~6-7 s after its last heartbeat arrived, a killed node is down everywhere
 * within ~8-9 s, with no false convictions in 300 simulated seconds of 120 nodes at 8% loss
 * (at 15% loss: about one false conviction per 200 s of 128 nodes). docs/benchmarks.md.
 */
import { invariant } from '../errors.js'

export interface PhiOptions {
  threshold?: number
  windowSize?: number
  minStdDevMs?: number
  acceptablePauseMs?: number
  initialIntervalMs?: number
  /** synthetic samples (initialIntervalMs +- 25%) the window starts with */
  warmupSamples?: number
}

export const DEFAULT_PHI: Required<PhiOptions> = {
  threshold: 8,
  windowSize: 100,
  minStdDevMs: 500,
  acceptablePauseMs: 1500,
  initialIntervalMs: 1000,
  warmupSamples: 20,
}

export class PhiAccrualDetector {
  private readonly opts: Required<PhiOptions>
  private readonly window: Float64Array
  private count = 0
  private next = 0
  private sum = 0
  private sumSq = 0
  private last: number | undefined

  constructor(options: PhiOptions = {}) {
    this.opts = { ...DEFAULT_PHI, ...options }
    invariant(this.opts.windowSize >= 2, 'phi window needs at least two samples')
    invariant(this.opts.warmupSamples >= 2 && this.opts.warmupSamples <= this.opts.windowSize, 'warm-up samples must fit the window')
    invariant(this.opts.threshold > 0 && this.opts.minStdDevMs > 0 && this.opts.initialIntervalMs > 0, 'phi options must be positive')
    this.window = new Float64Array(this.opts.windowSize)
  }

  get threshold(): number {
    return this.opts.threshold
  }

  heartbeat(now: number): void {
    if (this.last === undefined) {
      const i = this.opts.initialIntervalMs
      for (let k = 0; k < this.opts.warmupSamples; k += 2) {
        this.record(i - i / 4)
        this.record(i + i / 4)
      }
    } else if (now > this.last) {
      if (this.isAvailable(now)) this.record(now - this.last)
    } else {
      return // out of order or same instant: nothing learned about intervals
    }
    this.last = now
  }

  rearm(now: number): void {
    if (this.last !== undefined && now > this.last) this.last = now
  }

  phi(now: number): number {
    if (this.last === undefined) return 0
    const elapsed = now - this.last
    const mean = this.sum / this.count + this.opts.acceptablePauseMs
    const variance = Math.max(0, this.sumSq / this.count - (this.sum / this.count) ** 2)
    const std = Math.max(Math.sqrt(variance), this.opts.minStdDevMs)
    const y = (elapsed - mean) / std
    const e = Math.exp(-y * (1.5976 + 0.070566 * y * y))
    // For long silences e underflows towards 0; -log10(e) computed directly keeps phi finite
    // and growing instead of saturating at Infinity.
    if (elapsed > mean) return e > 0 ? -Math.log10(e / (1 + e)) : (y * (1.5976 + 0.070566 * y * y)) / Math.LN10
    return -Math.log10(1 - 1 / (1 + e))
  }

  isAvailable(now: number): boolean {
    return this.phi(now) < this.opts.threshold
  }

  get stats(): { samples: number; meanMs: number; stdDevMs: number; lastMs: number | undefined } {
    const mean = this.count ? this.sum / this.count : 0
    return {
      samples: this.count,
      meanMs: mean,
      stdDevMs: this.count ? Math.sqrt(Math.max(0, this.sumSq / this.count - mean * mean)) : 0,
      lastMs: this.last,
    }
  }

  private record(interval: number): void {
    if (this.count === this.window.length) {
      const old = this.window[this.next]!
      this.sum -= old
      this.sumSq -= old * old
    } else {
      this.count++
    }
    this.window[this.next] = interval
    this.next = (this.next + 1) % this.window.length
    this.sum += interval
    this.sumSq += interval * interval
    // Running sums drift with fractional intervals; resum once per lap of the window.
    if (this.next === 0) {
      this.sum = 0
      this.sumSq = 0
      for (let i = 0; i < this.count; i++) {
        this.sum += this.window[i]!
        this.sumSq += this.window[i]! * this.window[i]!
      }
    }
  }
}
