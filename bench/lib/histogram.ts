/**
 * Log-bucketed latency histogram (HDR-style, written here; no dependency).
 *
 *   const h = new Histogram()        // 7 sub-bucket bits: relative error under 0.8%
 *   h.recordMs(performance.now() - t)
 *   h.quantileMs(0.99); h.count; h.meanMs; h.maxMs; h.merge(other)
 *
 * Values are whole microseconds. Below 2^b they are counted exactly; above, each power of two
 * is split into 2^b equal buckets, so memory is fixed (~3.5k counters) however many values are
 * recorded, which keeps a long run's latency record off the garbage collector, unlike an array
 * of every sample.
 */
import { invariant } from '../../node/errors.js'

const MAX_US = 2 ** 31 - 1 // ~36 minutes; anything longer is clamped

export class Histogram {
  private readonly sub: number
  private readonly counts: Float64Array
  count = 0
  private sumUs = 0
  private minUs = Infinity
  private maxUs = 0

  constructor(readonly subBucketBits = 7) {
    invariant(Number.isInteger(subBucketBits) && subBucketBits >= 1 && subBucketBits <= 16, `subBucketBits must be 1..16, got ${subBucketBits}`)
    this.sub = 2 ** subBucketBits
    this.counts = new Float64Array(this.indexOf(MAX_US) + 1)
  }

  /** Bucket of a value: exact below 2^b, then (shift, top b+1 bits) laid out contiguously. */
  private indexOf(us: number): number {
    if (us < this.sub) return us
    const shift = 31 - Math.clz32(us) - this.subBucketBits
    return shift * this.sub + (us >>> shift)
  }

  /** Midpoint of a bucket, in microseconds. */
  private valueOf(index: number): number {
    if (index < this.sub) return index
    const shift = Math.floor(index / this.sub) - 1
    const lower = (index - shift * this.sub) * 2 ** shift
    return lower + (2 ** shift - 1) / 2
  }

  recordUs(us: number): void {
    const v = Math.min(MAX_US, Math.max(0, Math.round(us)))
    this.counts[this.indexOf(v)]++
    this.count++
    this.sumUs += v
    if (v < this.minUs) this.minUs = v
    if (v > this.maxUs) this.maxUs = v
  }

  recordMs(ms: number): void {
    this.recordUs(ms * 1000)
  }

  /** The value at quantile q (0..1]: the smallest bucket holding at least ceil(q * count) values. */
  quantileUs(q: number): number {
    invariant(q > 0 && q <= 1, `quantile must be in (0, 1], got ${q}`)
    if (this.count === 0) return NaN
    const rank = Math.ceil(q * this.count)
    if (rank >= this.count) return this.maxUs
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!
      // Clamp to the observed extremes so p100 is the real maximum, not a bucket midpoint.
      if (seen >= rank) return Math.min(this.maxUs, Math.max(this.minUs, this.valueOf(i)))
    }
    return this.maxUs
  }

  quantileMs(q: number): number {
    return this.quantileUs(q) / 1000
  }

  get meanMs(): number {
    return this.count === 0 ? NaN : this.sumUs / this.count / 1000
  }

  get minMs(): number {
    return this.count === 0 ? NaN : this.minUs / 1000
  }

  get maxMs(): number {
    return this.count === 0 ? NaN : this.maxUs / 1000
  }

  merge(other: Histogram): this {
    invariant(other.subBucketBits === this.subBucketBits, 'merging histograms of different precision')
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i]!
    this.count += other.count
    this.sumUs += other.sumUs
    this.minUs = Math.min(this.minUs, other.minUs)
    this.maxUs = Math.max(this.maxUs, other.maxUs)
    return this
  }
}
