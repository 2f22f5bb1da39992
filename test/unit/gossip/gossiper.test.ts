import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { APP, type GossipEvent, Gossiper, type GossiperOptions, type Outbound } from '../../../node/gossip/gossiper.js'
import { ringMembers, publishState, publishTokens } from '../../../node/gossip/members.js'
import {
  decodeGossipMessage,
  decodeTokens,
  encodeGossipMessage,
  encodeTokens,
  type GossipAck,
  type GossipMessage,
  parseGossipMessage,
} from '../../../node/gossip/messages.js'
import { TOKEN_MAX } from '../../../node/ring/token.js'
import { createRng } from '../../../node/util/rng.js'

/** Synchronous delivery among gossipers by address, JSON round-tripped, with a message log. */
class Router {
  readonly nodes = new Map<string, Gossiper>()
  readonly log: { from: string; to: string; msg: GossipMessage }[] = []
  blocked = new Set<string>()

  add(g: Gossiper): Gossiper {
    this.nodes.set(g.address, g)
    return g
  }

  deliver(from: string, out: Outbound[], now: number): void {
    for (const { to, msg } of out) {
      const wire = JSON.parse(JSON.stringify(msg)) as GossipMessage
      this.log.push({ from, to, msg: wire })
      const dest = this.nodes.get(to)
      if (!dest || this.blocked.has(to) || this.blocked.has(from)) continue
      this.deliver(to, dest.receive(from, wire, now), now)
    }
  }

  /** One gossip round: every node ticks once, in address order. */
  round(now: number): void {
    for (const [addr, g] of [...this.nodes].sort()) if (!this.blocked.has(addr)) this.deliver(addr, g.tick(now), now)
  }
}

function gossiper(name: string, generation = 1, extra: Partial<GossiperOptions> = {}): Gossiper {
  return new Gossiper({
    self: { hostId: `id-${name}`, address: `${name}:7000`, generation },
    seeds: ['a:7000'],
    rng: createRng(`${name}/${generation}`),
    ...extra,
  })
}

test('a newcomer learns every endpoint in one exchange with a seed, and both learn each other', () => {
  const r = new Router()
  const a = r.add(gossiper('a', 1, { app: { [APP.STATE]: 'AVAILABLE' } }))
  const b = r.add(gossiper('b', 1, { app: { [APP.STATE]: 'AVAILABLE' } }))
  const c = r.add(gossiper('c', 1, { app: { [APP.STATE]: 'JOINING' } }))
  r.deliver('b:7000', b.tick(0), 0) // b knows only the seed address: it must gossip there
  // The three-way exchange; each side then pings the endpoint it has just seen for the first
  // time, and the pong is what marks it up.
  assert.equal(r.log.map((m) => `${m.from}>${m.to}:${m.msg.type}`), [
    'b:7000>a:7000:syn',
    'a:7000>b:7000:ack',
    'b:7000>a:7000:ack2',
    'a:7000>b:7000:ping',
    'b:7000>a:7000:pong',
    'b:7000>a:7000:ping',
    'a:7000>b:7000:pong',
  ])
  assert.equal(a.endpoints().map((e) => e.hostId).sort(), ['id-a', 'id-b'])
  assert.equal(b.endpoints().map((e) => e.hostId).sort(), ['id-a', 'id-b'])
  assert.ok(a.isUp('id-b') && b.isUp('id-a'))
  r.deliver('c:7000', c.tick(10), 10)
  assert.equal(c.endpoints().map((e) => e.hostId).sort(), ['id-a', 'id-b', 'id-c'], 'c learned b from a at once')
  assert.is(c.get('id-b', APP.STATE), 'AVAILABLE')
  assert.is(a.get('id-c', APP.STATE), 'JOINING')
})

test('only deltas travel: a changed entry is the only application state in the exchange', () => {
  const r = new Router()
  const a = r.add(gossiper('a', 1, { app: { [APP.STATE]: 'AVAILABLE', [APP.TOKENS]: encodeTokens([1n, 2n, 3n]) } }))
  const b = r.add(gossiper('b', 1, { app: { [APP.STATE]: 'AVAILABLE', [APP.TOKENS]: encodeTokens([4n, 5n]) } }))
  for (let t = 0; t < 3000; t += 1000) r.round(t)
  assert.is(a.get('id-b', APP.TOKENS), '4,5')
  r.log.length = 0
  b.setLocal(APP.LOAD, '12345')
  r.round(3000)
  const entries = r.log.flatMap((m) => ('deltas' in m.msg ? m.msg.deltas : [])).flatMap((d) => d.app.map((e) => e[0]))
  assert.equal(entries, [APP.LOAD])
  assert.is(a.get('id-b', APP.LOAD), '12345')
  // With nothing new, an exchange carries no application state at all, only heartbeats.
  r.log.length = 0
  r.round(4000)
  assert.equal(r.log.flatMap((m) => ('deltas' in m.msg ? m.msg.deltas : [])).flatMap((d) => d.app), [])
})

test('events: joined, changed (with previous); up only when the endpoint itself answers; down after silence', () => {
  const r = new Router()
  const a = r.add(gossiper('a'))
  const b = r.add(gossiper('b', 1, { app: { [APP.STATE]: 'JOINING' } }))
  r.round(0)
  assert.ok(a.isUp('id-b'))
  // c learns of b through a while b is unreachable: the news may be old, so b stays down.
  const c = r.add(gossiper('c'))
  r.blocked.add('b:7000')
  r.deliver('c:7000', c.tick(500), 500)
  const first = c.drainEvents().filter((e) => e.hostId === 'id-b')
  assert.equal(first.map((e) => e.type), ['joined', 'changed'])
  assert.not.ok(c.isUp('id-b'))
  assert.ok(r.log.some((m) => m.from === 'c:7000' && m.to === 'b:7000' && m.msg.type === 'ping'), 'c asked b directly')
  // b is back: newer heartbeats reach c, c pings, b answers, b is up.
  r.blocked.delete('b:7000')
  for (let t = 1000; t < 4000 && !c.isUp('id-b'); t += 1000) r.round(t)
  assert.ok(c.isUp('id-b'))
  assert.equal(c.drainEvents(), [{ type: 'up', hostId: 'id-b' }])
  publishState(b, 'AVAILABLE')
  for (let t = 4000; t < 6000; t += 1000) r.round(t)
  assert.equal(
    c.drainEvents().filter((e) => e.type === 'changed'),
    [{ type: 'changed', hostId: 'id-b', key: APP.STATE, value: 'AVAILABLE', previous: 'JOINING' }],
  )
  // b goes silent: the others convict it within the budget.
  r.blocked.add('b:7000')
  let downAt = -1
  for (let t = 6000; t < 20_000 && downAt < 0; t += 1000) {
    r.round(t)
    if (c.drainEvents().some((e) => e.type === 'down' && e.hostId === 'id-b')) downAt = t
  }
  assert.ok(downAt > 6000 && downAt - 5000 <= 10_000, `down at ${downAt}`)
  assert.not.ok(c.isUp('id-b'))
  assert.ok(c.phi('id-b', downAt) >= 8)
})

test('a restart (higher generation) replaces the old state and is up at once; stale generations are ignored', () => {
  const r = new Router()
  const a = r.add(gossiper('a'))
  const b1 = r.add(gossiper('b', 1, { app: { [APP.STATE]: 'AVAILABLE', old: 'x' } }))
  for (let t = 0; t < 3000; t += 1000) r.round(t)
  r.blocked.add('b:7000')
  for (let t = 3000; t < 16_000; t += 1000) r.round(t)
  assert.not.ok(a.isUp('id-b'))
  a.drainEvents()
  r.blocked.delete('b:7000')
  const b2 = r.add(gossiper('b', 2, { app: { [APP.STATE]: 'JOINING' } }))
  r.deliver('b:7000', b2.tick(16_000), 16_000)
  const ev = a.drainEvents()
  assert.ok(ev.some((e) => e.type === 'restarted' && e.generation === 2))
  assert.ok(ev.some((e) => e.type === 'up' && e.hostId === 'id-b'))
  assert.ok(a.isUp('id-b'))
  assert.is(a.endpoint('id-b')!.generation, 2)
  assert.is(a.get('id-b', APP.STATE), 'JOINING')
  assert.is(a.get('id-b', 'old'), undefined, 'nothing of the old incarnation survives')
  // The old process (same address, old generation) cannot bring its state back.
  r.nodes.set('b:7000', b1)
  r.deliver('b:7000', b1.tick(17_000), 17_000)
  assert.is(a.endpoint('id-b')!.generation, 2)
  assert.is(b1.endpoint('id-b')!.generation, 1, 'b1 is told nothing that makes it think it is b2')
  assert.ok(b1.drainEvents().some((e) => e.type === 'conflict' && e.generation === 2), 'b1 learns its id is taken by a newer process')
})

test('deltas that would leave holes are refused', () => {
  const a = gossiper('a')
  const partial: GossipAck = {
    type: 'ack',
    cluster: 'ringkv',
    requests: [],
    removed: [],
    deltas: [{ id: 'id-z', address: 'z:7000', generation: 5, heartbeat: 9, since: 4, app: [[APP.STATE, 'AVAILABLE', 8]] }],
  }
  a.receive('z:7000', partial, 0)
  assert.is(a.endpoint('id-z'), undefined, 'a partial delta cannot start an endpoint')
  a.receive('z:7000', { ...partial, deltas: [{ ...partial.deltas[0]!, since: 0, app: [[APP.STATE, 'JOINING', 3]] }] }, 0)
  assert.is(a.get('id-z', APP.STATE), 'JOINING')
  // A delta starting above what we hold (version 9) is ignored, one continuing it applies.
  a.receive('z:7000', { ...partial, deltas: [{ ...partial.deltas[0]!, heartbeat: 20, since: 15, app: [[APP.STATE, 'LEAVING', 16]] }] }, 1)
  assert.is(a.get('id-z', APP.STATE), 'JOINING')
  a.receive('z:7000', { ...partial, deltas: [{ ...partial.deltas[0]!, heartbeat: 20, since: 9, app: [[APP.STATE, 'AVAILABLE', 12]] }] }, 1)
  assert.is(a.get('id-z', APP.STATE), 'AVAILABLE')
  assert.is(a.endpoint('id-z')!.maxVersion, 20)
})

test('LEFT is kept for the retention period, then removed, and not resurrected by stale gossip', () => {
  const r = new Router()
  const opts = { leftRetentionMs: 60_000 }
  const a = r.add(gossiper('a', 1, opts))
  const b = r.add(gossiper('b', 1, opts))
  const c = r.add(gossiper('c', 1, { ...opts, app: { [APP.STATE]: 'AVAILABLE' } }))
  for (let t = 0; t < 4000; t += 1000) r.round(t)
  // b is cut off before c leaves: b keeps c as AVAILABLE.
  r.blocked.add('b:7000')
  publishState(c, 'LEFT')
  for (let t = 4000; t < 8000; t += 1000) r.round(t)
  assert.is(a.get('id-c', APP.STATE), 'LEFT')
  r.nodes.delete('c:7000') // the process exits after LEFT
  let now = 8000
  for (; now < 70_000; now += 1000) r.round(now)
  assert.is(a.endpoint('id-c'), undefined, 'removed after the retention period')
  const removedEvents = a.drainEvents().filter((e: GossipEvent) => e.type === 'removed')
  assert.equal(removedEvents, [{ type: 'removed', hostId: 'id-c' }])
  assert.is(b.get('id-c', APP.STATE), 'AVAILABLE', 'b still holds the stale state')
  // b comes back: a does not re-learn c, and b is told to drop it.
  r.blocked.delete('b:7000')
  for (let i = 0; i < 5; i++, now += 1000) r.round(now)
  assert.is(a.endpoint('id-c'), undefined)
  assert.is(b.endpoint('id-c'), undefined)
  // A new incarnation of the same host id (it rejoins later) is accepted.
  const c2 = r.add(gossiper('c', 2, { ...opts, app: { [APP.STATE]: 'JOINING' } }))
  r.deliver('c:7000', c2.tick(now), now)
  assert.is(a.get('id-c', APP.STATE), 'JOINING')
})

test('peer choice: seeds while nothing is live, never itself, fanout live peers per tick', () => {
  const lonely = new Gossiper({ self: { hostId: 's', address: 's:1', generation: 1 }, seeds: ['s:1', 'x:1', 'y:1'], rng: createRng(1) })
  for (let t = 0; t < 20; t++) {
    const to = lonely.tick(t * 1000).map((o) => o.to)
    assert.is(to.length, 1)
    assert.ok(['x:1', 'y:1'].includes(to[0]!))
  }
  lonely.setSeeds(['z:1', 's:1', 'z:1'])
  for (let t = 20; t < 25; t++) assert.equal(lonely.tick(t * 1000).map((o) => o.to), ['z:1'])
  const r = new Router()
  const nodes = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => r.add(gossiper(n, 1, { fanout: 2 })))
  for (let t = 0; t < 5000; t += 1000) r.round(t)
  const a = nodes[0]!
  for (let t = 5000; t < 30_000; t += 1000) {
    const out = a.tick(t)
    const to = out.map((o) => o.to)
    assert.not.ok(to.includes('a:7000'))
    assert.ok(to.length >= 2 && to.length <= 3, `targets ${to}`)
    assert.is(new Set(to).size, to.length)
    r.deliver('a:7000', out, t)
    for (const g of nodes.slice(1)) r.deliver(g.address, g.tick(t), t)
  }
})

test('our own long pause convicts nobody', () => {
  const r = new Router()
  const a = r.add(gossiper('a'))
  r.add(gossiper('b'))
  for (let t = 0; t < 5000; t += 1000) r.round(t)
  assert.ok(a.isUp('id-b'))
  a.drainEvents()
  a.tick(60_000) // a was frozen (GC, SIGSTOP) for 55 s
  assert.ok(a.isUp('id-b'))
  assert.equal(a.drainEvents().filter((e) => e.type === 'down'), [])
})

test('messages from another cluster are ignored; malformed ones are rejected with BAD_REQUEST', () => {
  const a = gossiper('a')
  const other = new Gossiper({ self: { hostId: 'x', address: 'x:1', generation: 1 }, seeds: ['a:7000'], rng: createRng(2), cluster: 'other' })
  const syn = other.tick(0)[0]!.msg
  assert.equal(a.receive('x:1', JSON.parse(JSON.stringify(syn)), 0), [])
  assert.is(a.endpoint('x'), undefined)
  for (const junk of [null, 5, {}, { type: 'syn', cluster: 'ringkv' }, { type: 'syn', cluster: 'ringkv', digests: [['a', -1, 0]] }, { type: 'nope', cluster: 'ringkv' }]) {
    assert.throws(() => a.receive('x:1', junk, 0), (e: { code?: string }) => e.code === 'BAD_REQUEST')
  }
  const msg = gossiper('b').tick(0)[0]!.msg
  assert.equal(decodeGossipMessage(encodeGossipMessage(msg)), parseGossipMessage(msg))
  assert.throws(() => decodeGossipMessage(Buffer.from('{nope')), /not JSON/)
})

test('tokens travel as decimal strings and come back as ring members', () => {
  const tokens = [0n, 12345678901234567890n, TOKEN_MAX]
  assert.equal(decodeTokens(encodeTokens(tokens)), tokens)
  assert.equal(decodeTokens(''), [])
  assert.throws(() => decodeTokens('1,-2'))
  assert.throws(() => decodeTokens((TOKEN_MAX + 1n).toString()))
  const r = new Router()
  const a = r.add(gossiper('a'))
  const b = r.add(gossiper('b'))
  publishTokens(b, tokens)
  publishState(b, 'BOOTSTRAPPING')
  b.setLocal('junk-free', 'yes')
  for (let t = 0; t < 3000; t += 1000) r.round(t)
  const members = ringMembers(a.endpoints())
  assert.equal(members.get('id-b'), { state: 'BOOTSTRAPPING', tokens, address: 'b:7000' })
  assert.not.ok(members.has('id-a'), 'no state published, not a member yet')
})


test('a whole-cluster restart keeps a dead member that only the persisted peer tables remember', () => {
  const r = new Router()
  const mk = (n: string, gen: number) =>
    r.add(gossiper(n, gen, { app: { [APP.STATE]: 'AVAILABLE', [APP.TOKENS]: encodeTokens([BigInt(n.charCodeAt(0))]) } }))
  mk('a', 1), mk('b', 1), mk('c', 1)
  for (let t = 0; t < 10; t++) r.round(t * 1000)
  // snapshot() round-trips through the persistence format (a validated ack2).
  const saved = new Map([...r.nodes].map(([addr, g]) => [addr, parseGossipMessage(JSON.parse(JSON.stringify({ type: 'ack2', cluster: 'ringkv', deltas: g.snapshot() })))]))
  // Every process stops; c never comes back. a and b restart with new generations.
  r.nodes.clear()
  const a = mk('a', 2)
  const b = mk('b', 2)
  const deltas = (addr: string) => {
    const m = saved.get(addr)
    if (m?.type !== 'ack2') throw new Error('saved table is not an ack2')
    return m.deltas
  }
  const restoredA = a.restore(deltas('a:7000'), 100_000)
  const restoredB = b.restore(deltas('b:7000'), 100_000)
  assert.is(restoredA, 2)
  assert.is(restoredB, 2)
  assert.not.ok(a.exchanged)
  for (let t = 0; t < 30; t++) r.round(100_000 + t * 1000)
  assert.ok(a.exchanged)
  for (const g of [a, b]) {
    const members = ringMembers(g.endpoints())
    assert.equal([...members.keys()].sort(), ['id-a', 'id-b', 'id-c'], 'c is still a member on every node')
    assert.equal(members.get('id-c')!.tokens, [BigInt('c'.charCodeAt(0))])
    assert.is(g.isUp('id-c'), false)
    // The restarted peer is up at its new generation, not the remembered one.
    const other = g === a ? 'id-b' : 'id-a'
    assert.ok(g.isUp(other))
    assert.is(g.endpoint(other)!.generation, 2)
  }
})

test('restore yields to gossip: a known newer generation, a removed endpoint and self are not overwritten', () => {
  const r = new Router()
  const a = r.add(gossiper('a', 1, { app: { [APP.STATE]: 'AVAILABLE' } }))
  const b = r.add(gossiper('b', 3, { app: { [APP.STATE]: 'AVAILABLE' } }))
  for (let t = 0; t < 5; t++) r.round(t * 1000)
  const stale = { id: 'id-b', address: 'b:7000', generation: 2, heartbeat: 9, since: 0, app: [[APP.STATE, 'LEAVING', 1]] as [string, string, number][] }
  const me = { ...stale, id: 'id-a', address: 'a:7000', generation: 0 }
  assert.is(a.restore([stale, me], 6000), 0)
  assert.is(a.endpoint('id-b')!.generation, 3)
  assert.is(a.endpoint('id-b')!.state, 'AVAILABLE')
  assert.is(a.endpoint('id-a')!.generation, 1)
  assert.ok(b)
})

test('a remembered peer starts down, is pinged at once, and comes up when it answers for that generation', () => {
  const r = new Router()
  const a = r.add(gossiper('a', 2, { seeds: [] }))
  const b = r.add(gossiper('b', 1, { app: { [APP.STATE]: 'AVAILABLE' } }))
  assert.is(a.restore([{ id: 'id-b', address: 'b:7000', generation: 1, heartbeat: 1, since: 0, app: [[APP.STATE, 'AVAILABLE', 1]] }], 0), 1)
  assert.is(a.isUp('id-b'), false)
  const out = a.tick(0)
  assert.ok(out.some((o) => o.to === 'b:7000' && o.msg.type === 'ping'), 'the remembered peer is pinged on the first tick')
  r.deliver('a:7000', out, 0)
  assert.ok(a.isUp('id-b'))
  assert.ok(b)
})
test.run()
