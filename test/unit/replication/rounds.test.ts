import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RingError } from '../../../node/errors.js'
import { planWrite, WriteRound } from '../../../node/replication/rounds.js'

const up = (...ids: string[]) => (id: string) => ids.includes(id)

// A join: D takes over a range from C. Now {A,B,C}; after the move {A,B,D}.
const natural = ['A', 'B', 'C']
const future = ['A', 'B', 'D']

test('while a range moves, a QUORUM write needs a quorum of the replicas-to-be as well', () => {
  const plan = planWrite(natural, ['D'], up('A', 'B', 'C', 'D'), 'quorum', 3, future)
  assert.equal(plan.send.sort(), ['A', 'B', 'C', 'D'])
  const r = new WriteRound(new Set(natural), plan)
  assert.is(r.ack('A').done, false)
  // C (leaving the range) and A: a quorum now, but only A of the replicas-to-be
  assert.is(r.ack('C').done, false)
  // the pending replica's ack completes the future quorum; it never completed the current one
  assert.equal(r.ack('D'), { done: true, ok: true })
})

test('acks of the replicas both rings share satisfy both at once', () => {
  const plan = planWrite(natural, ['D'], up('A', 'B', 'C', 'D'), 'quorum', 3, future)
  const r = new WriteRound(new Set(natural), plan)
  r.ack('A')
  assert.equal(r.ack('B'), { done: true, ok: true })
})

test('pending acks alone never satisfy the current level', () => {
  const plan = planWrite(natural, ['D'], up('A', 'B', 'C', 'D'), 'quorum', 3, future)
  const r = new WriteRound(new Set(natural), plan)
  r.ack('D')
  assert.is(r.ack('A').done, false, 'A + D is a future quorum but only one current replica')
})

test('fails fast when the replicas-to-be cannot reach the level', () => {
  try {
    planWrite(natural, ['D'], up('A', 'C'), 'quorum', 3, future)
    assert.unreachable('planned')
  } catch (e) {
    assert.instance(e, RingError)
    assert.is((e as RingError).code, 'UNAVAILABLE')
    assert.is((e as RingError).details.alive, 1)
  }
  // and once the future replicas fail during the round
  const plan = planWrite(natural, ['D'], up('A', 'B', 'C', 'D'), 'quorum', 3, future)
  const r = new WriteRound(new Set(natural), plan)
  r.ack('A')
  r.ack('C')
  r.fail('B')
  const o = r.fail('D')
  assert.ok(o.done && !o.ok && o.error.code === 'UNAVAILABLE')
})

test('without a move the plan is the plain one', () => {
  const plan = planWrite(natural, [], up('A', 'B', 'C'), 'quorum', 3, natural)
  assert.is(plan.future, undefined)
  const r = new WriteRound(new Set(natural), plan)
  r.ack('A')
  assert.equal(r.ack('C'), { done: true, ok: true })
})

test.run()
