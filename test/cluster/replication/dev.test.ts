/**
 * `ringkv dev` the way `npm start` runs it: three real nodes on 127.0.0.1, `ringkv status`
 * shows them UP, Ctrl-C (SIGINT to the whole foreground process group, as a terminal sends it)
 * stops every node gracefully with exit 0, and the next start finds the data again.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { MAIN, tempDir, waitFor } from '../../helpers/cluster.js'
import { KvClient } from '../../../node/client/kv-client.js'
import { SLOW } from './support.js'

const dir = tempDir('ringkv-dev-')
let basePort = 0
let basePeerPort = 0
let dev: { proc: ChildProcess; out: () => string; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } | undefined

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** The first of three consecutive free ports, probed from a random start. */
async function threeFree(avoid: number[]): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000)
    if (avoid.some((p) => Math.abs(p - base) < 3)) continue
    if ((await portFree(base)) && (await portFree(base + 1)) && (await portFree(base + 2))) return base
  }
  throw new Error('no three consecutive free ports found')
}

function startDev(): NonNullable<typeof dev> {
  // Its own process group, so the test can signal it the way a terminal's Ctrl-C does.
  const proc = spawn(process.execPath, [MAIN, 'dev', '--data-dir', dir, '--base-port', String(basePort), '--base-peer-port', String(basePeerPort)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })))
  return { proc, out: () => out, exit }
}

function ctrlC(d: NonNullable<typeof dev>): void {
  process.kill(-d.proc.pid!, 'SIGINT')
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const clients = () => [0, 1, 2].map((i) => new KvClient(`http://127.0.0.1:${basePort + i}`))

async function statusTable(): Promise<string> {
  return waitFor('`ringkv status` to list three nodes UP', () => {
    const r = cli('status', '--server', `http://127.0.0.1:${basePort}`)
    const rows = r.stdout.split('\n').filter((l) => /node[123]/.test(l))
    return r.status === 0 && rows.length === 3 && rows.every((l) => /\bUP\b/.test(l) && /AVAILABLE/.test(l)) ? r.stdout : false
  }, SLOW.convergeMs, 500)
}

async function stopWithCtrlC(): Promise<void> {
  const d = dev!
  ctrlC(d)
  const timer = setTimeout(() => process.kill(-d.proc.pid!, 'SIGKILL'), 60_000)
  const { code, signal } = await d.exit
  clearTimeout(timer)
  assert.is(signal, null, `dev ended by ${signal}:\n${d.out()}`)
  assert.is(code, 0, `dev exit code:\n${d.out()}`)
  assert.match(d.out(), /all nodes stopped/)
  for (const i of [1, 2, 3]) {
    const log = readFileSync(join(dir, `node${i}.log`), 'utf8').trim().split('\n')
    assert.match(log[log.length - 1]!, /"msg":"stopped"/, `node${i} stopped gracefully; its last log line: ${log[log.length - 1]}`)
  }
  for (let i = 0; i < 3; i++) {
    assert.ok(await portFree(basePort + i), `client port ${basePort + i} released`)
    assert.ok(await portFree(basePeerPort + i), `peer port ${basePeerPort + i} released`)
  }
  dev = undefined
}

test.before(async () => {
  basePort = await threeFree([])
  basePeerPort = await threeFree([basePort])
})

test.after(() => {
  if (dev && dev.proc.exitCode === null) {
    try {
      process.kill(-dev.proc.pid!, 'SIGKILL')
    } catch {}
  }
  if (!process.env.RINGKV_KEEP_TEST_DATA) rmSync(dir, { recursive: true, force: true })
})

let hostIds: string[] = []

test('dev forms a three-node cluster that `ringkv status` shows UP', async () => {
  dev = startDev()
  await waitFor('dev to say the cluster is ready', () => /cluster ready/.test(dev!.out()) || (dev!.proc.exitCode !== null ? Promise.reject(new Error(dev!.out())) : false), SLOW.readyMs, 250)
  const table = await statusTable()
  assert.match(table, /Replication factor: 3/)
  const put = cli('put', 'greeting', 'hello from dev', '--server', `http://127.0.0.1:${basePort}`)
  assert.is(put.status, 0, put.stderr)
  for (let i = 0; i < 20; i++) await clients()[i % 3]!.put(`dev-${i}`, `value ${i}`)
  const get = cli('get', 'greeting', '--server', `http://127.0.0.1:${basePort + 2}`)
  assert.is(get.stdout, 'hello from dev')
  hostIds = (await clients()[0]!.cluster()).nodes.map((n) => n.hostId).sort()
})

test('Ctrl-C stops every node gracefully and dev exits 0', async () => {
  await stopWithCtrlC()
})

test('a second start finds the same nodes and the data again', async () => {
  dev = startDev()
  await waitFor('dev to say the cluster is ready again', () => /cluster ready/.test(dev!.out()) || (dev!.proc.exitCode !== null ? Promise.reject(new Error(dev!.out())) : false), SLOW.readyMs, 250)
  await statusTable()
  assert.equal((await clients()[0]!.cluster()).nodes.map((n) => n.hostId).sort(), hostIds, 'same host ids: the nodes kept their identity')
  for (let i = 0; i < 20; i++) {
    const r = await clients()[(i + 1) % 3]!.get(`dev-${i}`, { consistency: 'all' })
    assert.is(r?.value.toString(), `value ${i}`)
  }
  assert.is((await clients()[1]!.get('greeting'))?.value.toString(), 'hello from dev')
  await stopWithCtrlC()
})

test.run()
