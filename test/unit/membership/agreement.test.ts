import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { judgeConfirm, judgeStart, tokenDigest, type PeerAnswer, type SelfReport } from '../../../node/membership/agreement.js'
import { ClusterView, type MemberInfo } from '../../../node/membership/view.js'
import type { NodeState } from '../../../node/ring/state.js'

function member(hostId: string, state: NodeState, tokens: bigint[], up = true): MemberInfo {
  return { hostId, name: `n-${hostId}`, address: `${hostId}:7000`, clientAddress: '', state, tokens, up, load: 0, generation: 1 }
}

function self(m: MemberInfo, over: Partial<SelfReport> = {}): SelfReport {
  return { hostId: m.hostId, name: m.name, state: m.state, tokens: tokenDigest(m.tokens), streaming: false, ...over }
}

const a = member('a', 'AVAILABLE', [10n])
const b = member('b', 'AVAILABLE', [20n])
const x = member('x', 'JOINING', [])

function viewOf(selfId: string, ...ms: MemberInfo[]): ClusterView {
  const v = new ClusterView(selfId, 3)
  v.update(ms)
  return v
}

test('judgeStart: ok when peers report what the view holds', () => {
  const v = viewOf('x', a, b, x)
  const peers: PeerAnswer[] = [{ peer: a, answer: { self: self(a) } }, { peer: b, answer: { self: self(b) } }]
  assert.equal(judgeStart(v, peers), { ok: true })
})

test('judgeStart: a peer that reports itself moving makes it busy, even if gossip has not shown it', () => {
  const v = viewOf('x', a, b, x)
  const r = judgeStart(v, [{ peer: a, answer: { self: self(a, { state: 'LEAVING' }) } }, { peer: b, answer: undefined }])
  assert.is(r.ok, false)
  assert.is((r as { busy: string }).busy, 'n-a')
})

test('judgeStart: a view behind the peers (tokens or state) is stale; silent peers are not judged', () => {
  const v = viewOf('x', a, b, x)
  const r = judgeStart(v, [{ peer: a, answer: { self: self(a, { tokens: '10,11' }) } }, { peer: b, answer: undefined }])
  assert.equal((r as { stale: string[] }).stale, ['n-a'])
  const mover = member('m', 'BOOTSTRAPPING', [5n], false)
  assert.is((judgeStart(viewOf('x', a, mover, x), []) as { busy: string }).busy, 'n-m')
})

const want = { hostId: 'x', state: 'BOOTSTRAPPING' as NodeState, tokens: '30' }
const seen = { state: 'BOOTSTRAPPING', tokens: '30' }

test('judgeConfirm: waits for every answering peer to see us, then goes', () => {
  const lagging: PeerAnswer[] = [{ peer: a, answer: { ...seen, self: self(a) } }, { peer: b, answer: { state: 'JOINING', tokens: '', self: self(b) } }]
  assert.equal(judgeConfirm(want, lagging, [], false), { kind: 'wait', waitingFor: ['n-b'] })
  const silent: PeerAnswer[] = [{ peer: a, answer: { ...seen, self: self(a) } }, { peer: b, answer: undefined }]
  assert.equal(judgeConfirm(want, silent, [], false), { kind: 'wait', waitingFor: ['n-b'] })
  const all: PeerAnswer[] = [{ peer: a, answer: { ...seen, self: self(a) } }, { peer: b, answer: { ...seen, self: self(b) } }]
  assert.equal(judgeConfirm(want, all, [], false), { kind: 'go' })
})

test('judgeConfirm: two simultaneous movers — at most one goes on', () => {
  const y = member('y', 'BOOTSTRAPPING', [40n])
  const w = member('w', 'BOOTSTRAPPING', [50n])
  // Before claiming: a smaller unclaimed id wins; a larger one does not stop us.
  assert.is(judgeConfirm(want, [{ peer: w, answer: { ...seen, self: self(w) } }], [], false).kind, 'back-off')
  assert.is(judgeConfirm(want, [{ peer: y, answer: { ...seen, self: self(y) } }], [], false).kind, 'go')
  // After claiming, only another claim (or a mover we cannot ask) stops us.
  assert.is(judgeConfirm(want, [{ peer: w, answer: { ...seen, self: self(w) } }], [], true).kind, 'go')
  assert.is(judgeConfirm(want, [{ peer: y, answer: { ...seen, self: self(y, { streaming: true }) } }], [], true).kind, 'back-off')
  assert.is(judgeConfirm(want, [], [member('z', 'LEAVING', [60n], false)], true).kind, 'back-off')
  // Our own entry in the view is not a competitor.
  assert.is(judgeConfirm(want, [], [member('x', 'BOOTSTRAPPING', [30n], false)], true).kind, 'go')
})

test('judgeConfirm: exhaustive interleavings of two claim-then-read movers never let both go', () => {
  // Each mover: publish (moving, unclaimed) → claim → read the other. Its read sees the other's
  // self-report at that instant. Enumerate every order of the four events.
  const events = ['pX', 'cX', 'pY', 'cY'] as const
  const orders: string[][] = []
  const permute = (rest: string[], acc: string[]) => {
    if (!rest.length) return orders.push(acc)
    for (const e of rest) permute(rest.filter((r) => r !== e), [...acc, e])
  }
  permute([...events], [])
  for (const order of orders) {
    if (order.indexOf('pX') > order.indexOf('cX') || order.indexOf('pY') > order.indexOf('cY')) continue
    const goes: string[] = []
    for (const [me, other] of [['X', 'Y'], ['Y', 'X']] as const) {
      // `me` reads right after its claim: the other's state at that point in the order.
      const at = order.indexOf(`c${me}`)
      const otherMoving = order.indexOf(`p${other}`) < at
      const otherClaimed = order.indexOf(`c${other}`) < at
      const o = member(other.toLowerCase(), otherMoving ? 'BOOTSTRAPPING' : 'JOINING', [])
      const v = judgeConfirm({ hostId: me.toLowerCase(), state: 'BOOTSTRAPPING', tokens: '' }, [{ peer: o, answer: { state: 'BOOTSTRAPPING', tokens: '', self: self(o, { streaming: otherClaimed }) } }], [], true)
      if (v.kind === 'go') goes.push(me)
    }
    assert.ok(goes.length <= 1, `order ${order.join(' ')}: both went on`)
  }
})

test.run()
