/**
 * Seeded, deterministic pseudo-random numbers for the sans-I/O cores and the simulator.
 *
 * Public API:
 *   createRng(seed: number | string): Rng
 *   interface Rng {
 *     next(): number              // uniform in [0, 1), 53 bits
 *     int(n: number): number      // uniform integer in [0, n)
 *     pick<T>(items): T           // one element, uniformly
 *     shuffle<T>(items): T[]      // Fisher-Yates, in place, returns items
 *     fork(label): Rng            // an independent stream derived from (seed, label)
 *     readonly seed: string
 *   }
 *
 * The generator is xoshiro128** (32-bit arithmetic only, so it is fast without BigInt), seeded
 * by expanding a 32-bit hash of the seed with splitmix32. Not for cryptography. `fork` derives
 * from the seed and the label, not from the parent's position, so a simulated node's stream does
 * not change when some other part of a test draws one more number.
 */
import { invariant } from '../errors.js'

export interface Rng {
  readonly seed: string
  next(): number
  int(n: number): number
  pick<T>(items: readonly T[]): T
  shuffle<T>(items: T[]): T[]
  fork(label: string | number): Rng
}

/** FNV-1a over UTF-16 code units: a stable 32-bit digest of the seed text. */
function hash32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

class Xoshiro128 implements Rng {
  readonly seed: string
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: string) {
    this.seed = seed
    // splitmix32 spreads the one hashed word over the four state words; an all-zero state
    // would be a fixed point, which splitmix32 outputs cannot all be.
    let s = hash32(seed)
    const mix = (): number => {
      s = (s + 0x9e3779b9) | 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = mix()
    this.b = mix()
    this.c = mix()
    this.d = mix()
  }

  private u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return r
  }

  next(): number {
    // 27 + 26 bits make a double with a full 53-bit mantissa.
    const hi = this.u32() >>> 5
    const lo = this.u32() >>> 6
    return (hi * 67108864 + lo) / 9007199254740992
  }

  int(n: number): number {
    invariant(Number.isInteger(n) && n > 0, `rng.int needs a positive integer, got ${n}`)
    return Math.floor(this.next() * n)
  }

  pick<T>(items: readonly T[]): T {
    invariant(items.length > 0, 'rng.pick from an empty list')
    return items[this.int(items.length)]!
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = items[i]!
      items[i] = items[j]!
      items[j] = tmp
    }
    return items
  }

  fork(label: string | number): Rng {
    return new Xoshiro128(`${this.seed}/${label}`)
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

export function createRng(seed: number | string): Rng {
  return new Xoshiro128(String(seed))
}
