/**
 * One replica's disk fills up (its data dir is an 8 MiB tmpfs) while the other two have room.
 * A full node refuses what it cannot store, but it must not take the cluster's writes down
 * with it: writes sent to it are coordinated by another replica, which counts it as one
 * failed replica and keeps a hint for it. Needs root (mount); otherwise it says so and checks
 * nothing.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, statfsSync } from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TestCluster, type TestNode } from '../../helpers/cluster.js'
import { apiError, SLOW } from './support.js'

const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return { ok: r.status === 0, err: (r.stderr || String(r.error ?? '')).trim() }
}

let mounted: string | undefined
let cluster: TestCluster | undefined

test.after(async () => {
  // The mount goes before the cluster's temp dir can be removed.
  for (const n of cluster?.nodes ?? []) await n.kill9()
  if (mounted) sh('umount', [mounted])
  await cluster?.destroy()
})

test('a replica with a full disk: QUORUM writes through it still succeed, coordinated by another replica', async () => {
  let skip: string | undefined
  cluster = await TestCluster.start({
    nodes: 3,
    rf: 3,
    wait: false,
    prepare: (spec) => {
      if (spec.name !== 'n3') return
      mkdirSync(spec.dataDir, { recursive: true })
      const m = sh('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', spec.dataDir])
      if (m.ok) mounted = spec.dataDir
      else skip = m.err
    },
  })
  await Promise.all(cluster.nodes.map((n) => n.ready(SLOW.readyMs)))
  if (skip) {
    console.log(`    skipped: cannot mount a small tmpfs here (${skip}); a full disk needs a disk that fills up`)
    return
  }
  await cluster.converged(SLOW.convergeMs)
  const [n1, n2, n3] = cluster.nodes as [TestNode, TestNode, TestNode]

  // Fill n3 through n1: the writes succeed on n1 and n2; n3's copies fail once its disk is full.
  const big = (i: number) => Buffer.alloc(400_000, i % 251)
  const free = () => {
    const st = statfsSync(mounted!)
    return st.bavail * st.bsize
  }
  for (let i = 0; free() > 200_000 && i < 100; i++) await n1.kv.put(`fill-${i}`, big(i), { consistency: 'quorum' })
  assert.ok(free() <= 200_000, `n3's disk filled up (${free()} bytes free)`)
  // Smaller writes still fit for a while: go on at ALL until one fails — n3 cannot store any more.
  let refused: string | undefined
  for (let i = 0; !refused && i < 400; i++) {
    refused = await n1.kv.put(`small-${i}`, Buffer.alloc(10_000, 1), { consistency: 'all' }).then(() => undefined, (e) => (e as { code?: string }).code ?? 'error')
  }
  assert.ok(refused, 'n3 refused a write')
  // n3 cannot mint a version of its own now (the first step of coordinating a write)...
  const direct = await n3.kv.put('probe', 'x', { consistency: 'one' }).then(() => 'stored', (e) => (e as { code?: string }).code)

  // ...yet writes through it succeed at ONE and QUORUM: another replica coordinates them.
  assert.is(direct, 'stored', 'a ONE write through the full node')
  for (let i = 0; i < 20; i++) await n3.kv.put(`q${i}`, `v${i}`, { consistency: 'quorum' })
  for (let i = 0; i < 20; i++) {
    assert.is((await n1.kv.get(`q${i}`, { consistency: 'quorum' }))?.value.toString(), `v${i}`)
    assert.is((await n3.kv.get(`q${i}`, { consistency: 'quorum' }))?.value.toString(), `v${i}`, 'reads through the full node work')
  }
  assert.ok((await cluster.admin(n1).status()).hintsPending + (await cluster.admin(n2).status()).hintsPending > 0, 'hints kept for n3')
  // ALL cannot succeed while a replica cannot store: the client hears it, nothing is hidden.
  const e = await apiError(n3.kv.put('all', 'x', { consistency: 'all' }), [503, 504, 507], 'ALL with a full replica')
  assert.ok(['TIMEOUT', 'UNAVAILABLE', 'INSUFFICIENT_STORAGE'].includes(e.code), e.code)
})

test.run()
