/**
 * CPU time of server processes, from /proc (Linux). On a shared machine throughput alone says
 * little; CPU seconds per operation says what each system spent, whoever else was running.
 *
 *   const before = cpuSeconds(pids); ...; const used = cpuSeconds(pids) - before
 *
 * utime + stime in /proc/<pid>/stat cover every thread of the process (RocksDB's and Go's
 * background threads included), in clock ticks of 1/100 s (`getconf CLK_TCK` on Linux x86/arm).
 */
import { readFileSync } from 'node:fs'

const TICKS_PER_SECOND = 100

/** Summed user + system CPU seconds of the given processes; a gone process counts 0. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0
  for (const pid of pids) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      continue
    }
    // The command name (field 2) may hold spaces; fields are counted after its closing paren.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(rest[11]) + Number(rest[12]) // fields 14 and 15: utime, stime
  }
  return ticks / TICKS_PER_SECOND
}
