/**
 * A coordinator that is not a replica of the key forwards the request to one. Which one, and
 * what it does when that replica refuses, decides whether a decommission is visible to
 * clients: a leaving replica drains (refuses with UNAVAILABLE) before its LEFT reaches every
 * coordinator. Found by bench/streaming.ts (25 client errors per decommission under load).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RingError } from '../../../node/errors.js'
import { Coordinator, type ReplicaChannel } from '../../../node/replication/coordinator.js'
import { HlcClock } from '../../../node/replication/version.js'
import { Store } from '../../../node/storage/store.js'
import type { StoredRecord } from '../../../node/storage/record.js'

const dir = mkdtempSync(join(tmpdir(), 'ringkv-forward-'))
const store = await Store.open(dir, { durable: false })
const rec = (v: string): StoredRecord => ({ value: Buffer.from(v), contentType: 'text/plain', vv: { B: 1 }, ts: { wall: 1, logical: 0, node: 'B' }, tombstone: false })

/** Coordinator X (not a replica) in front of replicas B, C, D; `answer` says what each does. */
function coordinator(answer: Record<string, () => Promise<StoredRecord>>, leaving: string[] = []) {
  const calls: string[] = []
  const channel: ReplicaChannel = {
    apply: () => Promise.reject(new Error('X is no replica')),
    read: () => Promise.reject(new Error('X is no replica')),
    forwardWrite: (id) => (calls.push(id), answer[id]!()),
    forwardRead: (id) => (calls.push(id), answer[id]!()),
  }
  const c = new Coordinator({
    topology: {
      selfId: 'X',
      rf: 3,
      replicasFor: () => ({ natural: ['B', 'C', 'D'], pending: [] }),
      isUp: () => true,
      coordinates: (id) => !leaving.includes(id),
    },
    channel,
    local: store,
    clock: new HlcClock('X'),
    timeoutMs: 1000,
    hintWindowMs: 1000,
  })
  return { c, calls }
}

const ok = (v: string) => () => Promise.resolve(rec(v))
const refuse = () => Promise.reject(new RingError('UNAVAILABLE', 'this node is draining before shutdown; send requests to another node', { required: 1, alive: 0 }))

test('a leaving replica is asked last', async () => {
  const { c, calls } = coordinator({ B: ok('b'), C: ok('c'), D: ok('d') }, ['B'])
  assert.is((await c.read(Buffer.from('k'), 'quorum'))?.value.toString(), 'c')
  assert.equal(calls, ['C'])
})

test('a replica that refuses with UNAVAILABLE (draining) is skipped for the next one', async () => {
  const { c, calls } = coordinator({ B: refuse, C: ok('c'), D: ok('d') })
  const w = await c.write(Buffer.from('k'), { value: Buffer.from('x') }, 'quorum')
  assert.is(w.value.toString(), 'c')
  assert.equal(calls, ['B', 'C'])
})

test('a TIMEOUT is final: the write may be in place, another coordinator would make a second one', async () => {
  const timeout = () => Promise.reject(new RingError('TIMEOUT', 'timed out with 1 of 2 acks', { acks: 1 }))
  const { c, calls } = coordinator({ B: timeout, C: ok('c'), D: ok('d') })
  try {
    await c.write(Buffer.from('k'), { value: Buffer.from('x') }, 'quorum')
    assert.unreachable('the TIMEOUT should reach the client')
  } catch (e) {
    assert.instance(e, RingError)
    assert.is((e as RingError).code, 'TIMEOUT')
  }
  assert.equal(calls, ['B'])
})

test('when every replica refuses, the client gets the last refusal with its counts', async () => {
  const { c, calls } = coordinator({ B: refuse, C: refuse, D: refuse })
  try {
    await c.read(Buffer.from('k'), 'one')
    assert.unreachable('all refused')
  } catch (e) {
    assert.is((e as RingError).code, 'UNAVAILABLE')
    assert.match((e as RingError).message, /draining/)
  }
  assert.equal(calls, ['B', 'C', 'D'])
})

test.after(async () => {
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})
test.run()
