import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { applyReplacements, replacementFor, type Replaceable } from '../../../node/membership/replace.js'
import { pendingRanges } from '../../../node/ring/pending.js'
import { Ring } from '../../../node/ring/ring.js'
import type { NodeState } from '../../../node/ring/state.js'

const m = (hostId: string, name: string, state: NodeState, tokens: bigint[], up = true, replaces?: string): Replaceable & { address: string } => ({
  hostId, name, state, tokens, up, address: `${name}:7000`, ...(replaces ? { replaces } : {}),
})

const base = () => [m('a', 'n1', 'AVAILABLE', [100n, 400n]), m('b', 'n2', 'AVAILABLE', [200n, 500n]), m('c', 'n3', 'AVAILABLE', [300n, 600n], false)]
const ringsOf = (ms: readonly (Replaceable & { address: string })[]) => {
  const map = new Map(ms.map((x) => [x.hostId, x]))
  return { current: Ring.current(map), future: Ring.future(map) }
}

test('a joining node named like a dead member replaces it, with its tokens', () => {
  const r = replacementFor(base(), { hostId: 'c2', name: 'n3' })
  assert.is(r.kind, 'replace')
  if (r.kind !== 'replace') return
  assert.is(r.old.hostId, 'c')
  assert.equal(r.tokens, [300n, 600n])
})

test('no replacement for a new name, for the node itself, or for a member that LEFT', () => {
  assert.is(replacementFor(base(), { hostId: 'd', name: 'n4' }).kind, 'none')
  assert.is(replacementFor(base(), { hostId: 'c', name: 'n3' }).kind, 'none')
  const left = [...base().slice(0, 2), m('c', 'n3', 'LEFT', [300n, 600n], false)]
  assert.is(replacementFor(left, { hostId: 'c2', name: 'n3' }).kind, 'none')
})

test('a live member with the same name is a conflict, never replaced', () => {
  const r = replacementFor(base(), { hostId: 'a2', name: 'n1' })
  assert.is(r.kind, 'conflict')
})

test('a dead member that never owned anything is replaced without its (empty) tokens', () => {
  const ms = [...base(), m('d', 'n4', 'JOINING', [], false)]
  const r = replacementFor(ms, { hostId: 'd2', name: 'n4' })
  assert.is(r.kind, 'replace')
  if (r.kind === 'replace') assert.equal(r.tokens, [])
})

test('while the replacement bootstraps, the old member leaves: the replacement gains exactly its ranges', () => {
  const ms = applyReplacements([...base(), m('c2', 'n3', 'BOOTSTRAPPING', [300n, 600n], true, 'c')])
  const old = ms.find((x) => x.hostId === 'c')!
  assert.is(old.state, 'LEAVING')
  assert.is(old.replacedBy, 'c2')
  const { current, future } = ringsOf(ms)
  const moves = pendingRanges(current, future, 2)
  assert.equal([...moves.keys()].filter((h) => moves.get(h)!.gained.length > 0), ['c2'])
  // In the future ring the replacement stands exactly where the old member stood.
  for (const t of [0n, 150n, 250n, 350n, 450n, 550n, 650n]) {
    assert.equal(future.replicasFor(t, 2).map((h) => (h === 'c2' ? 'c' : h)), current.replicasFor(t, 2))
  }
})

test('once the replacement is AVAILABLE the old member is LEFT and out of both rings', () => {
  const ms = applyReplacements([...base(), m('c2', 'n3', 'AVAILABLE', [300n, 600n], true, 'c')])
  assert.is(ms.find((x) => x.hostId === 'c')!.state, 'LEFT')
  const { current, future } = ringsOf(ms)
  assert.ok(current.replicasFor(350n, 3).includes('c2'))
  assert.not.ok(current.replicasFor(350n, 3).includes('c'))
  assert.not.ok(future.replicasFor(350n, 3).includes('c'))
  assert.is(replacementFor(ms, { hostId: 'c3', name: 'n3' }).kind, 'conflict', 'the replacement now holds the name')
})

test('a dead member that died bootstrapping owns nothing while its replacement bootstraps', () => {
  const ms = applyReplacements([...base().slice(0, 2), m('c', 'n3', 'AVAILABLE', [300n]), m('d', 'n4', 'BOOTSTRAPPING', [450n], false), m('d2', 'n4', 'BOOTSTRAPPING', [450n], true, 'd')])
  const old = ms.find((x) => x.hostId === 'd')!
  assert.is(old.state, 'JOINING')
  assert.equal(old.tokens, [])
})

test('a replacer still JOINING (not yet announced) changes nothing', () => {
  const ms = applyReplacements([...base(), m('c2', 'n3', 'JOINING', [], true, 'c')])
  assert.is(ms.find((x) => x.hostId === 'c')!.state, 'AVAILABLE')
})

test.run()
