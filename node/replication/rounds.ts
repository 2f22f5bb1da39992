import { RingError, invariant } from '../errors.js'
import type { Consistency } from '../api/service.js'

/**
 * Coordinator decisions as pure state machines: a round is told which replicas answered,
 * failed or timed out, and says when the client can be answered and with what. The node's
 * coordinator does the I/O; the simulation drives the same rounds with virtual messages.
 */

export function blockFor(cl: Consistency, rf: number): number {
  if (cl === 'one') return 1
  if (cl === 'all') return rf
  return Math.floor(rf / 2) + 1
}

export interface WritePlan {
  /** replicas to send the write to now (live natural replicas + live pending replicas) */
  send: string[]
  /** replicas that get a hint instead (down natural or pending replicas) */
  hint: string[]
  /** acks from natural replicas needed before answering */
  blockFor: number
  /**
   * While the key's range moves: its replicas once the move is done. The write must then also
   * reach blockFor of these, or a QUORUM read after the move (from the new replicas) could miss
   * it. Pending replicas count only here, never towards the current level.
   */
  future?: string[]
}

/**
 * Plans a write. Fails fast with UNAVAILABLE (nothing written) when fewer natural replicas are
 * up than the level needs. Pending replicas receive the write but never count: a node still
 * streaming its ranges is not yet a replica, and hints are not replicas either.
 */
export function planWrite(natural: string[], pending: string[], isUp: (id: string) => boolean, cl: Consistency, rf: number, future?: string[]): WritePlan {
  const need = blockFor(cl, rf)
  const alive = natural.filter(isUp)
  if (alive.length < need) {
    throw new RingError('UNAVAILABLE', `only ${alive.length} of ${natural.length} replicas are up and consistency ${cl} needs ${need}; retry later or use a lower consistency`, { required: need, alive: alive.length })
  }
  const moving = future !== undefined && !sameMembers(future, natural)
  if (moving) {
    const futureAlive = future.filter(isUp).length
    if (futureAlive < need) {
      throw new RingError('UNAVAILABLE', `the key's range is moving and only ${futureAlive} of its ${future.length} replicas-to-be are up; consistency ${cl} needs ${need} of them too — retry later or use a lower consistency`, { required: need, alive: futureAlive })
    }
  }
  const send = [...alive]
  const hint = natural.filter((id) => !isUp(id))
  for (const p of pending) {
    if (natural.includes(p)) continue
    if (isUp(p)) send.push(p)
    else hint.push(p)
  }
  return moving ? { send, hint, blockFor: need, future: [...future] } : { send, hint, blockFor: need }
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x))
}

export type RoundOutcome = { done: false } | { done: true; ok: true } | { done: true; ok: false; error: RingError }

/**
 * Counts acks of the natural replicas the write was sent to; ready once blockFor acked, failed
 * as soon as that became impossible (a hinted replica was never sent the write and cannot ack),
 * answered exactly once. Acks of anyone else — a replica that got a hint, a pending replica, a
 * second ack of the same replica — change nothing: hints and pending replicas are not replicas.
 */
export class WriteRound {
  /** natural replicas that were sent the write: the only acks that count */
  private readonly counted: ReadonlySet<string>
  private readonly acked = new Set<string>()
  private readonly failed = new Set<string>()
  /** replicas-to-be that were sent the write, while the range moves */
  private readonly futureCounted: ReadonlySet<string> | undefined
  private readonly futureAcked = new Set<string>()
  private readonly futureFailed = new Set<string>()
  private settled = false

  constructor(natural: ReadonlySet<string>, private readonly plan: WritePlan) {
    invariant(plan.blockFor <= natural.size, 'blockFor cannot exceed the natural replicas')
    this.counted = new Set(plan.send.filter((id) => natural.has(id)))
    invariant(this.counted.size >= plan.blockFor, 'a plan sends to at least blockFor natural replicas')
    if (plan.future) {
      this.futureCounted = new Set(plan.send.filter((id) => plan.future!.includes(id)))
      invariant(this.futureCounted.size >= plan.blockFor, 'a plan sends to at least blockFor replicas-to-be')
    }
  }

  get acks(): number {
    return this.acked.size
  }

  ack(id: string): RoundOutcome {
    if (this.counted.has(id) && !this.failed.has(id)) this.acked.add(id)
    if (this.futureCounted?.has(id) && !this.futureFailed.has(id)) this.futureAcked.add(id)
    return this.outcome()
  }

  fail(id: string): RoundOutcome {
    if (this.counted.has(id) && !this.acked.has(id)) this.failed.add(id)
    if (this.futureCounted?.has(id) && !this.futureAcked.has(id)) this.futureFailed.add(id)
    return this.outcome()
  }

  private get enough(): boolean {
    return this.acked.size >= this.plan.blockFor && (!this.futureCounted || this.futureAcked.size >= this.plan.blockFor)
  }

  /** The deadline passed: answer now with whatever arrived (nothing, if already answered). */
  timeout(): RoundOutcome {
    if (this.settled) return { done: false }
    if (this.enough) return this.settle({ done: true, ok: true })
    return this.settle({ done: true, ok: false, error: this.timeoutError() })
  }

  private timeoutError(): RingError {
    return new RingError('TIMEOUT', `only ${this.acked.size} of the ${this.plan.blockFor} replica acks the consistency level needs arrived in time; the write may still be applied — retry (writes are idempotent by version) or read to check`, { acks: this.acked.size, required: this.plan.blockFor })
  }

  private outcome(): RoundOutcome {
    if (this.settled) return { done: false }
    if (this.enough) return this.settle({ done: true, ok: true })
    const reachable = Math.min(this.counted.size - this.failed.size, this.futureCounted ? this.futureCounted.size - this.futureFailed.size : Infinity)
    if (reachable < this.plan.blockFor) {
      return this.settle({
        done: true,
        ok: false,
        error: new RingError('UNAVAILABLE', `only ${this.acked.size} replicas acknowledged and ${this.failed.size} failed; consistency needs ${this.plan.blockFor}; the write may be applied on some replicas and will be repaired — retry`, { required: this.plan.blockFor, alive: reachable, acks: this.acked.size }),
      })
    }
    return { done: false }
  }

  private settle(o: RoundOutcome): RoundOutcome {
    this.settled = true
    return o
  }
}

/** Chooses which replicas a read asks: the local one first (cheapest), then live ones in ring order. */
export function planRead(natural: string[], self: string, isUp: (id: string) => boolean, cl: Consistency, rf: number): { ask: string[]; spare: string[]; blockFor: number } {
  const need = blockFor(cl, rf)
  const alive = natural.filter(isUp)
  if (alive.length < need) {
    throw new RingError('UNAVAILABLE', `only ${alive.length} of ${natural.length} replicas are up and consistency ${cl} needs ${need}; retry later or use a lower consistency`, { required: need, alive: alive.length })
  }
  const ordered = alive.includes(self) ? [self, ...alive.filter((id) => id !== self)] : alive
  return { ask: ordered.slice(0, need), spare: ordered.slice(need), blockFor: need }
}
