import { StartupError } from '../errors.js'

/**
 * Versions: a version vector (causality) plus a hybrid logical clock timestamp (only to break
 * true concurrency deterministically). Wall clocks never order causally related writes.
 *
 * Vector entries are keyed by the coordinating node's host id. Coordinators are always replicas
 * of the key, so a vector has at most as many entries as the key has ever had replicas.
 */
export type VersionVector = Record<string, number>

export interface Hlc {
  /** physical component, ms since epoch */
  wall: number
  /** logical counter within one wall ms */
  logical: number
  /** host id of the node that issued it: the last tie-breaker */
  node: string
}

export type Order = 'before' | 'after' | 'equal' | 'concurrent'

/** How a relates to b causally. */
export function compareVV(a: VersionVector, b: VersionVector): Order {
  let aBigger = false
  let bBigger = false
  for (const k in a) {
    const av = a[k]!
    const bv = b[k] ?? 0
    if (av > bv) aBigger = true
    else if (av < bv) bBigger = true
  }
  for (const k in b) {
    if (!(k in a) && b[k]! > 0) bBigger = true
  }
  if (aBigger && bBigger) return 'concurrent'
  if (aBigger) return 'after'
  if (bBigger) return 'before'
  return 'equal'
}

export function mergeVV(a: VersionVector, b: VersionVector): VersionVector {
  const out: VersionVector = { ...a }
  for (const k in b) {
    const v = b[k]!
    if ((out[k] ?? 0) < v) out[k] = v
  }
  return out
}

/**
 * The counter a coordinator gives its own entry when it mints a version: above the one it
 * supersedes and above anything this node minted earlier for any key, because it follows the
 * node's clock (wall ms x 1024 + logical, < 2^53 until the year 2248). A counter taken only
 * from the local copy would go back to 1 once that copy is gone (a purged tombstone or expired
 * value), and the new write would lose to the old version still on another replica (Riak's
 * KV679).
 */
export function mintCounter(previous: number | undefined, ts: Hlc): number {
  return Math.max((previous ?? 0) + 1, ts.wall * 1024 + Math.min(ts.logical, 1023))
}

export function incrementVV(vv: VersionVector, node: string): VersionVector {
  return { ...vv, [node]: (vv[node] ?? 0) + 1 }
}

export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1
  if (a.node !== b.node) return a.node < b.node ? -1 : 1
  return 0
}

/**
 * Shifts this process's HLC physical time by that many ms (may be negative). For tests of
 * clock skew only: it lets a real node process run with a clock that is wrong, the way a
 * production machine's may be, without touching the machine's clock.
 */
export const CLOCK_SKEW_ENV = 'RINGKV_CLOCK_SKEW_MS'

/** The physical time source of a node: Date.now, shifted by RINGKV_CLOCK_SKEW_MS when set. */
export function systemTime(env: NodeJS.ProcessEnv = process.env): () => number {
  const raw = env[CLOCK_SKEW_ENV]
  if (raw === undefined || raw === '') return Date.now
  const skew = Number(raw)
  if (!Number.isSafeInteger(skew)) throw new StartupError(`${CLOCK_SKEW_ENV} "${raw}" must be a whole number of milliseconds`)
  return skew === 0 ? Date.now : () => Date.now() + skew
}

/** The clock a node stamps writes with. Injected time source so simulations are deterministic. */
export class HlcClock {
  private last: Hlc

  constructor(
    readonly node: string,
    private readonly now: () => number = systemTime(),
  ) {
    this.last = { wall: 0, logical: 0, node }
  }

  /** A timestamp for a local event, strictly greater than every one issued or observed before. */
  tick(): Hlc {
    const pt = this.now()
    if (pt > this.last.wall) this.last = { wall: pt, logical: 0, node: this.node }
    else this.last = { wall: this.last.wall, logical: this.last.logical + 1, node: this.node }
    return this.last
  }

  /** The last timestamp issued or observed. */
  peek(): Hlc {
    return this.last
  }

  /** Fold in a timestamp seen on a message so later ticks are greater than it. */
  observe(remote: Hlc): void {
    const pt = this.now()
    const wall = Math.max(pt, this.last.wall, remote.wall)
    let logical: number
    if (wall === this.last.wall && wall === remote.wall) logical = Math.max(this.last.logical, remote.logical) + 1
    else if (wall === this.last.wall) logical = this.last.logical + 1
    else if (wall === remote.wall) logical = remote.logical + 1
    else logical = 0
    this.last = { wall, logical, node: this.node }
  }
}
