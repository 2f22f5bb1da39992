/**
 * Child processes of the k8s test harness: each runs in its own process group (so a kill takes
 * its descendants too), logs to a file, and is registered for teardown. Three layers make sure
 * nothing outlives the test process:
 *  - `stop()` / `stopAll()` — the orderly path (SIGTERM, then SIGKILL after a grace period);
 *  - exit and signal handlers — SIGKILL every registered group when the test process ends;
 *  - a reaper — a detached shell started once per test process that waits for that process to
 *    disappear (even by SIGKILL, when no handler runs) and then kills the groups listed in a file.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync, closeSync, writeFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface ProcessSpec {
  name: string
  command: string
  args: string[]
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** stdout and stderr are appended here (a restarted process appends to the same file). */
  logFile: string
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export class ManagedProcess {
  readonly exited: Promise<Exit>
  private exitInfo: Exit | undefined

  constructor(
    readonly spec: ProcessSpec,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        registry.forget(this)
        resolve(this.exitInfo)
      })
    })
  }

  get pid(): number {
    return this.child.pid as number
  }

  get exit(): Exit | undefined {
    return this.exitInfo
  }

  get running(): boolean {
    return this.exitInfo === undefined
  }

  /** Signals the whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return
    try {
      process.kill(-this.pid, sig)
    } catch {
      // The group is already gone.
    }
  }

  /** SIGTERM, then SIGKILL once `graceMs` has passed; resolves when the process has exited. */
  async stop(graceMs = 5_000): Promise<Exit> {
    if (!this.running) return this.exitInfo as Exit
    this.signal('SIGTERM')
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs)
    const exit = await this.exited
    clearTimeout(timer)
    // Descendants that ignored SIGTERM may outlive the leader; the group goes with it.
    try {
      process.kill(-this.pid, 'SIGKILL')
    } catch {
      // nothing left
    }
    return exit
  }

  /** The last `bytes` of the log file, for failure messages. */
  tail(bytes = 4_000): string {
    try {
      const text = readFileSync(this.spec.logFile, 'utf8')
      return text.slice(-bytes)
    } catch {
      return ''
    }
  }
}

/** Starts a process in its own group and registers it for teardown. */
export function startProcess(spec: ProcessSpec): ManagedProcess {
  mkdirSync(dirname(spec.logFile), { recursive: true })
  const fd = openSync(spec.logFile, 'a')
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    })
    // A spawn failure (ENOENT) is reported as an 'error' event and then an exit; the exit
    // promise covers both, so the error needs no handler of its own beyond not throwing.
    child.on('error', (err) => {
      writeFileSync(spec.logFile, `[harness] cannot start ${spec.command}: ${err.message}\n`, { flag: 'a' })
    })
    const proc = new ManagedProcess(spec, child)
    if (child.pid !== undefined) registry.add(proc)
    return proc
  } finally {
    closeSync(fd)
  }
}

/** Stops every process this test process started and has not stopped yet. */
export async function stopAll(graceMs = 3_000): Promise<void> {
  await Promise.all([...registry.live].map((p) => p.stop(graceMs)))
}

class Registry {
  readonly live = new Set<ManagedProcess>()
  private reaperFile: string | undefined

  add(p: ManagedProcess): void {
    this.ensureHandlers()
    this.live.add(p)
    this.writeReaperFile()
  }

  forget(p: ManagedProcess): void {
    this.live.delete(p)
    this.writeReaperFile()
  }

  killAllNow(): void {
    for (const p of this.live) p.signal('SIGKILL')
    this.live.clear()
    this.writeReaperFile()
  }

  private writeReaperFile(): void {
    if (!this.reaperFile) return
    writeFileSync(this.reaperFile, [...this.live].map((p) => String(p.pid)).join('\n') + '\n')
  }

  private ensureHandlers(): void {
    if (this.reaperFile) return
    const dir = mkdtempSync(join(tmpdir(), 'ringkv-reaper-'))
    this.reaperFile = join(dir, 'pgids')
    writeFileSync(this.reaperFile, '')
    // The reaper outlives us by design: it polls for our pid and, once we are gone, kills
    // what we left behind and removes its own directory.
    const script =
      'while kill -0 "$1" 2>/dev/null; do sleep 1; done; ' +
      'for g in $(cat "$2"); do kill -9 -- "-$g" 2>/dev/null; done; rm -rf "$3"'
    const reaper = spawn('sh', ['-c', script, 'reaper', String(process.pid), this.reaperFile, dir], {
      detached: true,
      stdio: 'ignore',
    })
    reaper.unref()
    process.on('exit', () => this.killAllNow())
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        this.killAllNow()
        process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1))
      })
    }
  }
}

const registry = new Registry()

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 200 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v as T
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`)
    }
    await sleep(intervalMs)
  }
}

/** Removes a directory tree, ignoring a tree that is already gone. */
export function removeTree(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}
