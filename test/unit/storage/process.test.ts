import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Store } from '../../../node/storage/store.js'
import { STORE_CHILD, assertOpenFails, cleanupDirs, inUseMessage, tempDir } from './helpers.js'

test.after(cleanupDirs)

interface Child {
  proc: ChildProcess
  lines: string[]
  /** resolves with the first line matching, rejects if the child exits first */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
  /** resolves when the child has exited and its stdout is fully read */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function startChild(args: string[], ids?: { uid: number; gid: number }): Child {
  const proc = spawn(process.execPath, [STORE_CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...ids })
  const lines: string[] = []
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = []
  let stderr = ''
  proc.stderr!.on('data', (d) => (stderr += d))
  const rl = createInterface({ input: proc.stdout! })
  rl.on('line', (l) => {
    lines.push(l)
    for (const w of waiters.filter((w) => w.re.test(l))) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(l)
    }
  })
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
    let rlClosed = false
    const maybe = () => exit && rlClosed && resolve(exit)
    proc.on('exit', (code, signal) => {
      exit = { code, signal }
      maybe()
    })
    rl.on('close', () => {
      rlClosed = true
      maybe()
    })
  })
  const waitFor = (re: RegExp, timeoutMs = 20_000) =>
    new Promise<string>((resolve, reject) => {
      const hit = lines.find((l) => re.test(l))
      if (hit) return resolve(hit)
      const timer = setTimeout(() => reject(new Error(`child did not print ${re} in ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs)
      waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) })
      void closed.then(() => reject(new Error(`child exited before printing ${re}; stderr: ${stderr}`)))
    })
  return { proc, lines, waitFor, closed }
}

async function crashTest(durable: boolean): Promise<void> {
  const dir = tempDir(durable ? 'crash-durable' : 'crash-fast')
  const child = startChild(['write', dir, durable ? '1' : '0'])
  await child.waitFor(/^ready /)
  await child.waitFor(/^ack 600$/)
  child.proc.kill('SIGKILL')
  const { signal } = await child.closed
  assert.is(signal, 'SIGKILL', 'the child must die mid-way, not finish')
  const acked = child.lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)))
  assert.ok(acked.length >= 600 && acked.length < 50_000, `${acked.length} acks`)
  const s = await Store.open(dir, { durable })
  try {
    const got = await Promise.all(acked.map((i) => s.get(Buffer.from(`k${i}`))))
    const missing = acked.filter((_, j) => got[j]?.value.toString() !== `v${acked[j]}`)
    assert.equal(missing, [], `acknowledged writes lost after SIGKILL: ${missing.slice(0, 10).join(', ')}`)
  } finally {
    await s.close()
  }
}

test('SIGKILL mid-write (durable): every acknowledged write is there after reopen', async () => {
  await crashTest(true)
})

test('SIGKILL mid-write (not durable): the WAL is written before the ack, so a process crash loses nothing', async () => {
  await crashTest(false)
})

test('a data dir held by another process: clear StartupError', async () => {
  const dir = tempDir('held')
  const child = startChild(['hold', dir])
  try {
    await child.waitFor(/^ready /)
    await assertOpenFails(dir, inUseMessage(dir))
  } finally {
    child.proc.stdin!.end()
    await child.closed
  }
  // the lock went with the process
  const s = await Store.open(dir, { durable: false })
  await s.close()
})

test('a data dir the user cannot write: clear StartupError', async () => {
  const parent = tempDir('readonly')
  chmodSync(parent, 0o755)
  const dir = join(parent, 'data')
  mkdirSync(dir, { mode: 0o755 })
  const expected = `data dir ${dir} is not writable (EACCES); give the node's user write access to it or choose another --data-dir`
  if (process.getuid?.() === 0) {
    // root writes anywhere: run the open as the unprivileged user instead
    const child = startChild(['open', dir], { uid: 65534, gid: 65534 })
    const line = await child.waitFor(/^\{/)
    await child.closed
    assert.equal(JSON.parse(line), { ok: false, name: 'StartupError', message: expected })
  } else {
    chmodSync(dir, 0o555)
    try {
      await assertOpenFails(dir, expected)
    } finally {
      chmodSync(dir, 0o755)
    }
  }
})

test('a data dir path that is a file: clear StartupError', async () => {
  const file = join(tempDir('file'), 'not-a-dir')
  writeFileSync(file, 'x')
  const cases: [string, string][] = [
    [file, `data dir ${file} exists and is not a directory; remove it or choose another --data-dir`],
    [join(file, 'sub'), `data dir ${join(file, 'sub')} cannot be created: part of its path is a file; choose another --data-dir`],
  ]
  for (const [p, message] of cases) await assertOpenFails(p, message)
})

test.run()
