/**
 * 507 INSUFFICIENT_STORAGE for real: the node's data dir on a 4 MiB tmpfs fills up. Needs
 * root (mount); otherwise it says so and checks nothing.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { freePort, tempDir, TestNode } from '../../helpers/cluster.js'
import { assertError, http } from './helpers.js'

function sh(cmd: string, args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return { ok: r.status === 0, err: (r.stderr || String(r.error ?? '')).trim() }
}

test('a full disk: writes answer 507 INSUFFICIENT_STORAGE, reads go on, acknowledged data survives', async () => {
  const dir = tempDir('ringkv-full-')
  // The mount is the data dir itself, so the node's log (next to it) does not fill it.
  const dataDir = join(dir, 'data')
  mkdirSync(dataDir)
  const m = sh('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dataDir])
  if (!m.ok) {
    console.log(`    skipped: cannot mount a small tmpfs here (${m.err}); 507 needs a disk that fills up`)
    rmSync(dir, { recursive: true, force: true })
    return
  }
  const node = new TestNode({ name: 'full', dataDir, clientPort: await freePort(), peerPort: await freePort(), seeds: [], rf: 1, args: ['--log-level', 'warn'] })
  try {
    node.start()
    await node.ready()
    const url = node.clientUrl
    const value = (i: number) => Buffer.alloc(200_000, i)
    const acked: number[] = []
    let full: Awaited<ReturnType<typeof http>> | undefined
    for (let i = 0; i < 40 && !full; i++) {
      const r = await http(`${url}/v1/kv/v${i}`, { method: 'PUT', body: value(i) })
      if (r.status === 204) acked.push(i)
      else full = r
    }
    assert.ok(full, 'the disk filled up within 40 writes of 200 kB')
    assertError(full!, 507, 'INSUFFICIENT_STORAGE', 'PUT on a full disk')
    assert.ok(acked.length >= 5, `${acked.length} writes fit before it was full`)
    assertError(await http(`${url}/v1/kv/small`, { method: 'PUT', body: 'x' }), 507, 'INSUFFICIENT_STORAGE', 'a small PUT too')
    assertError(await http(`${url}/v1/kv/v0`, { method: 'DELETE' }), 507, 'INSUFFICIENT_STORAGE', 'DELETE writes a tombstone')
    for (const i of acked) {
      const r = await http(`${url}/v1/kv/v${i}`)
      assert.is(r.status, 200, `read v${i} from the full node`)
      assert.ok(r.body.equals(value(i)))
    }
    assert.is((await http(`${url}/healthz`)).status, 200)

    // More room and a restart: everything acknowledged is there and writes work again.
    await node.kill9()
    assert.ok(sh('mount', ['-o', 'remount,size=64m', dataDir]).ok)
    node.start()
    await node.ready()
    for (const i of acked) assert.ok((await http(`${url}/v1/kv/v${i}`)).body.equals(value(i)), `v${i} after the restart`)
    assert.is((await http(`${url}/v1/kv/small`, { method: 'PUT', body: 'x' })).status, 204)
  } finally {
    await node.kill9()
    sh('umount', [dataDir])
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
