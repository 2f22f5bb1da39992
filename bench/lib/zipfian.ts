/**
 * Key choosers for YCSB-style workloads.
 *
 *   const z = new ZipfianChooser(10_000, createRng('ycsb'))   // theta 0.99, YCSB's constant
 *   z.next()        // an index in [0, n); index 0 is the most popular before scrambling
 *   const s = new ScrambledZipfianChooser(10_000, rng)
 *   s.next()        // same popularity curve, hot items scattered over the key space
 *
 * ZipfianChooser is the rejection-free method of Gray et al., "Quickly Generating
 * Billion-Record Synthetic Databases" (SIGMOD 1994), the same method YCSB uses: one O(n)
 * zeta sum at construction, O(1) per draw. Ranks 0 and 1 are exact; beyond them the method's
 * closed-form inverse is an approximation (rank 2 drawn ~15% too often at n = 10k, as in YCSB).
 *
 * Scrambling: YCSB hashes the zipfian index with FNV and takes it modulo n, which folds some
 * items together and leaves others never chosen. Here the index goes through a seeded random
 * permutation of [0, n) instead, so the popularity distribution is exactly zipfian and only the
 * placement of the hot items changes (they land on different nodes of a ring, not next to each
 * other). The permutation costs 4 bytes per item.
 */
import { invariant } from '../../node/errors.js'
import type { Rng } from '../../node/util/rng.js'

export const YCSB_ZIPFIAN_CONSTANT = 0.99

export interface KeyChooser {
  readonly items: number
  next(): number
}

/** Σ_{i=1..n} 1/i^theta */
export function zeta(n: number, theta: number): number {
  let sum = 0
  for (let i = 1; i <= n; i++) sum += 1 / Math.pow(i, theta)
  return sum
}

export class ZipfianChooser implements KeyChooser {
  private readonly alpha: number
  private readonly zetan: number
  private readonly eta: number
  private readonly twoCut: number

  constructor(readonly items: number, private readonly rng: Rng, readonly theta = YCSB_ZIPFIAN_CONSTANT) {
    invariant(Number.isInteger(items) && items >= 2, `a zipfian chooser needs at least 2 items, got ${items}`)
    invariant(theta > 0 && theta < 1, `theta must be in (0, 1), got ${theta}`)
    this.zetan = zeta(items, theta)
    const zeta2 = zeta(2, theta)
    this.alpha = 1 / (1 - theta)
    this.eta = (1 - Math.pow(2 / items, 1 - theta)) / (1 - zeta2 / this.zetan)
    this.twoCut = 1 + Math.pow(0.5, theta)
  }

  next(): number {
    const u = this.rng.next()
    const uz = u * this.zetan
    if (uz < 1) return 0
    if (uz < this.twoCut) return 1
    const i = Math.floor(this.items * Math.pow(this.eta * u - this.eta + 1, this.alpha))
    // Floating-point rounding can land exactly on n for u close to 1.
    return Math.min(i, this.items - 1)
  }
}

export class ScrambledZipfianChooser implements KeyChooser {
  private readonly zipf: ZipfianChooser
  private readonly perm: Uint32Array

  constructor(readonly items: number, rng: Rng, theta = YCSB_ZIPFIAN_CONSTANT) {
    this.zipf = new ZipfianChooser(items, rng.fork('zipfian'), theta)
    this.perm = new Uint32Array(items)
    for (let i = 0; i < items; i++) this.perm[i] = i
    const shuffle = rng.fork('permutation')
    for (let i = items - 1; i > 0; i--) {
      const j = shuffle.int(i + 1)
      const t = this.perm[i]!
      this.perm[i] = this.perm[j]!
      this.perm[j] = t
    }
  }

  next(): number {
    return this.perm[this.zipf.next()]!
  }
}

export class UniformChooser implements KeyChooser {
  constructor(readonly items: number, private readonly rng: Rng) {
    invariant(Number.isInteger(items) && items >= 1, `a chooser needs at least 1 item, got ${items}`)
  }

  next(): number {
    return this.rng.int(this.items)
  }
}
