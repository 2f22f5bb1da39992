/**
 * A closed-loop load driver: `concurrency` workers, each issuing its next operation as soon as
 * the previous one answers, for a fixed time. Latency is recorded per operation type in a
 * Histogram; failed operations are counted (with their first message) and not timed.
 *
 *   const r = await runClosedLoop({
 *     concurrency: 32, durationMs: 10_000,
 *     next: () => rng.next() < 0.5 ? { type: 'read', exec: () => get(k) } : { type: 'update', exec: () => put(k) },
 *   })
 *   r.ops.read.histogram.quantileMs(0.99); r.ops.read.count / r.seconds
 *
 * Closed loop means throughput and latency are two views of one queue (Little's law: in-flight
 * = throughput × latency); compare systems at equal concurrency, as this driver does.
 */
import { invariant } from '../../node/errors.js'
import { Histogram } from './histogram.js'

export interface Operation<T extends string> {
  type: T
  exec: () => Promise<void>
}

export interface OpStats {
  histogram: Histogram
  /** successful operations */
  count: number
  errors: number
  firstError?: string
}

export interface LoopResult<T extends string> {
  seconds: number
  ops: Record<T, OpStats>
  /** this process's CPU seconds (user + system) during the run */
  driverCpuSeconds: number
}

export interface LoopOptions<T extends string> {
  concurrency: number
  durationMs: number
  /** the operation types that may occur, so each has an entry even if never drawn */
  types: readonly T[]
  next: () => Operation<T>
  /** stop early once this many operations failed (default: no limit) */
  maxErrors?: number
}

export async function runClosedLoop<T extends string>(o: LoopOptions<T>): Promise<LoopResult<T>> {
  invariant(o.concurrency >= 1 && o.durationMs > 0, 'runClosedLoop needs concurrency ≥ 1 and a positive duration')
  const ops = {} as Record<T, OpStats>
  for (const t of o.types) ops[t] = { histogram: new Histogram(), count: 0, errors: 0 }
  let errors = 0
  const maxErrors = o.maxErrors ?? Infinity
  const cpu0 = process.cpuUsage()
  const started = performance.now()
  const until = started + o.durationMs

  async function worker(): Promise<void> {
    while (performance.now() < until && errors < maxErrors) {
      const op = o.next()
      const s = ops[op.type]
      invariant(s !== undefined, `operation type ${op.type} is not in types`)
      const t = performance.now()
      try {
        await op.exec()
        s.histogram.recordMs(performance.now() - t)
        s.count++
      } catch (e) {
        s.errors++
        errors++
        s.firstError ??= (e as Error).message
      }
    }
  }

  await Promise.all(Array.from({ length: o.concurrency }, worker))
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { seconds, ops, driverCpuSeconds: (cpu.user + cpu.system) / 1e6 }
}

/** Run `count` operations (index 0..count-1) with `concurrency` in flight, e.g. a load phase. */
export async function runCount(count: number, concurrency: number, exec: (i: number) => Promise<void>): Promise<{ seconds: number }> {
  let nextIndex = 0
  const started = performance.now()
  async function worker(): Promise<void> {
    while (nextIndex < count) await exec(nextIndex++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return { seconds: (performance.now() - started) / 1000 }
}
