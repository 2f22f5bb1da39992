import { connect, createServer, type AddressInfo, type Socket } from 'node:net'

import * as assert from 'uvu/assert'
import { RingError } from '../../../node/errors.js'
import { FrameDecoder, FrameKind, PeerError, encodeFrame } from '../../../node/transport/index.js'
import { test, caller, withCaller, rejection, sleep, startPeer, type PeerNode } from './fixture.js'

let server: PeerNode
let seenConcurrency = 0
let maxConcurrency = 0
const oneWay: Array<{ payload: unknown; from: string }> = []
const releases: Array<() => void> = []

test.before(async () => {
  server = await startPeer('host-server', { server: { maxInFlightPerConnection: 1000 } })
  const t = server.transport
  t.on('echo', (p) => p)
  t.on('echo.async', async (p: { i: number }) => {
    seenConcurrency++
    maxConcurrency = Math.max(maxConcurrency, seenConcurrency)
    await new Promise((r) => setImmediate(r))
    seenConcurrency--
    return { i: p.i, doubled: p.i * 2 }
  })
  t.on('whoami', (_p, from) => from)
  t.on('slow', (ms: number) => sleep(ms).then(() => 'late'))
  t.on('hang', () => new Promise<void>((resolve) => releases.push(resolve)))
  t.on('not-found', (key: string) => {
    throw new RingError('NOT_FOUND', `no key ${key}`, { key })
  })
  t.on('reject-unavailable', async () => {
    throw new RingError('UNAVAILABLE', 'not enough replicas', { required: 2, alive: 1 })
  })
  t.on('bug', () => {
    throw new TypeError('x is undefined')
  })
  t.on('gossip', (payload, from) => void oneWay.push({ payload, from }))
})

test.after(async () => {
  for (const r of releases) r()
  await server.stop()
})

test('a request round-trips payloads with Buffers and bigints, and the handler sees the caller', async () => {
  await withCaller('host-a', {}, async (transport) => {
    const payload = { key: Buffer.from('k\u0000ey'), token: (1n << 64n) - 7n, ts: Date.now() }
    const r = await transport.request<typeof payload>(server.address, 'echo', payload)
    assert.ok(r.key.equals(payload.key))
    assert.is(r.token, payload.token)
    assert.is(r.ts, payload.ts)
    assert.is(await transport.request(server.address, 'whoami', null), 'host-a')
    assert.is(await transport.request(server.address, 'echo', 42), 42)
  })
})

test('10k concurrent requests over one connection are all answered correctly', async () => {
  await withCaller('host-10k', { client: { connectionsPerPeer: 1 } }, async (transport) => {
    const started = performance.now()
    const replies = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) => transport.request<{ i: number; doubled: number }>(server.address, 'echo.async', { i }, { timeoutMs: 30_000 })),
    )
    const ms = performance.now() - started
    replies.forEach((r, i) => {
      assert.is(r.i, i)
      assert.is(r.doubled, 2 * i)
    })
    assert.is(transport.client.connectionCount(server.address), 1)
    const accepted = server.logs.filter((l) => l.msg === 'internode connection accepted' && l.peerHost === 'host-10k')
    assert.is(accepted.length, 1)
    // The server stops reading at its in-flight limit instead of queueing without bound.
    assert.ok(maxConcurrency <= 1000, `max concurrency at the server was ${maxConcurrency}`)
    assert.ok(maxConcurrency >= 100, `requests were not multiplexed (max concurrency ${maxConcurrency})`)
    console.log(`    10k concurrent requests: ${ms.toFixed(0)} ms, max in flight at the server ${maxConcurrency}`)
  })
})

test('a pool of two connections is used when allowed', async () => {
  await withCaller('host-a', { client: { connectionsPerPeer: 2 } }, async (transport) => {
    await transport.request(server.address, 'echo', 1)
    // The second request starts a second connection in the background.
    await Promise.all(Array.from({ length: 100 }, (_, i) => transport.request(server.address, 'echo', i)))
    for (let t = 0; t < 50 && transport.client.connectionCount(server.address) < 2; t++) await sleep(10)
    assert.is(transport.client.connectionCount(server.address), 2)
    await Promise.all(Array.from({ length: 100 }, (_, i) => transport.request(server.address, 'echo', i)))
    assert.is(transport.client.connectionCount(server.address), 2)
  })
})

test('timeout: PEER_TIMEOUT after timeoutMs; the connection stays usable and the late reply is dropped', async () => {
  await withCaller('host-a', {}, async (transport) => {
    const started = performance.now()
    const err = await rejection(transport.request(server.address, 'slow', 400, { timeoutMs: 100 }))
    const ms = performance.now() - started
    assert.instance(err, PeerError)
    assert.is(err.code, 'PEER_TIMEOUT')
    assert.ok(ms >= 95 && ms < 350, `timed out after ${ms.toFixed(0)} ms`)
    await sleep(400) // the late reply arrives and must be ignored
    assert.is(await transport.request(server.address, 'echo', 'still fine'), 'still fine')
    assert.is(err.toRingError().code, 'TIMEOUT')
  })
})

test('error codes propagate: RingError keeps code and details, others become INTERNAL', async () => {
  await withCaller('host-a', {}, async (transport) => {
    const nf = await rejection(transport.request(server.address, 'not-found', 'k1'))
    assert.instance(nf, PeerError)
    assert.is(nf.code, 'PEER_ERROR')
    assert.is(nf.remoteCode, 'NOT_FOUND')
    assert.is(nf.message, 'no key k1')
    assert.equal(nf.details, { key: 'k1' })
    const re = nf.toRingError()
    assert.instance(re, RingError)
    assert.is(re.code, 'NOT_FOUND')
    assert.is(re.status, 404)

    const un = await rejection(transport.request(server.address, 'reject-unavailable', null))
    assert.is(un.remoteCode, 'UNAVAILABLE')
    assert.equal(un.details, { required: 2, alive: 1 })

    const logged = server.logs.length
    const bug = await rejection(transport.request(server.address, 'bug', null))
    assert.is(bug.code, 'PEER_ERROR')
    assert.is(bug.remoteCode, 'INTERNAL')
    assert.match(bug.message, 'x is undefined')
    assert.ok(server.logs.slice(logged).some((l) => l.level === 50 && l.msg === 'internode handler failed'))

    const unknown = await rejection(transport.request(server.address, 'no-such-type', null))
    assert.is(unknown.remoteCode, 'BAD_REQUEST')
    assert.match(unknown.message, 'no handler for message type no-such-type')
  })
})

test('one-way send arrives with the sender host id', async () => {
  await withCaller('host-b', {}, async (transport) => {
    oneWay.length = 0
    for (let i = 0; i < 5; i++) transport.send(server.address, 'gossip', { round: i })
    for (let t = 0; t < 100 && oneWay.length < 5; t++) await sleep(10)
    assert.equal(
      oneWay.map((m) => m.payload),
      [0, 1, 2, 3, 4].map((round) => ({ round })),
    )
    assert.ok(oneWay.every((m) => m.from === 'host-b'))
  })
})

test('an oversize request is refused locally with VALUE_TOO_LARGE; an oversize reply becomes an error reply', async () => {
  await withCaller('host-a', { maxFrameBytes: 64 * 1024 }, async (transport) => {
    const err = await rejection(transport.request(server.address, 'echo', Buffer.alloc(100 * 1024)))
    assert.instance(err, RingError)
    assert.is(err.code, 'VALUE_TOO_LARGE')
    assert.is(await transport.request(server.address, 'echo', 'small'), 'small')
  })
  const small = await startPeer('host-small', { maxFrameBytes: 64 * 1024 })
  small.transport.on('big', () => Buffer.alloc(100 * 1024))
  try {
    await withCaller('host-a', {}, async (transport) => {
      const err = await rejection(transport.request(small.address, 'big', null))
      assert.is(err.code, 'PEER_ERROR')
      assert.is(err.remoteCode, 'VALUE_TOO_LARGE')
    })
  } finally {
    await small.stop()
  }
})

test('a peer announcing an oversize frame is disconnected and the error is logged', async () => {
  const sock = connect(server.port, '127.0.0.1')
  await new Promise((r) => sock.once('connect', r))
  let received = ''
  sock.on('data', (d) => (received += d.toString('latin1')))
  sock.write(`GET /internal/v1/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ringkv-rpc\r\nX-Ringkv-Host: raw\r\n\r\n`)
  for (let t = 0; t < 100 && !received.includes('\r\n\r\n'); t++) await sleep(10)
  assert.match(received, /^HTTP\/1.1 101 /)
  // A valid frame first: the connection works...
  sock.write(encodeFrame(FrameKind.REQUEST, 9, ['echo', 'hi']))
  for (let t = 0; t < 100 && received.length < 110; t++) await sleep(10)
  const logged = server.logs.length
  const closed = new Promise((r) => sock.once('close', r))
  const header = Buffer.alloc(9)
  header.writeUInt32BE(65 * 1024 * 1024, 0)
  sock.write(header)
  await closed
  const err = server.logs.slice(logged).find((l) => l.msg === 'internode protocol error; closing the connection')
  assert.ok(err, 'protocol error logged')
  assert.is(err!.level, 50)
  assert.is(err!.code, 'FRAME_TOO_LARGE')
})

test('a peer that sends requests but does not read the replies cannot grow our memory', async () => {
  const peer = await startPeer('host-unread')
  let calls = 0
  peer.transport.on('big', () => {
    calls++
    return Buffer.alloc(256 * 1024, 1)
  })
  const sock = connect(peer.port, '127.0.0.1')
  try {
    await new Promise((r) => sock.once('connect', r))
    sock.write('GET /internal/v1/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ringkv-rpc\r\nX-Ringkv-Host: raw\r\n\r\n')
    const total = 600 // 150 MiB of replies
    sock.write(Buffer.concat(Array.from({ length: total }, (_, i) => encodeFrame(FrameKind.REQUEST, i + 1, ['big', null]))))
    sock.pause() // and read nothing
    await sleep(500)
    // Replies stop at ~8 MiB unsent plus what the kernel's socket buffers hold.
    assert.ok(calls < 200, `${calls} of ${total} requests were run for a peer that reads nothing`)
    const held = calls
    // Once the peer reads, everything is answered.
    let replies = 0
    let headerSeen = false
    let pending = Buffer.alloc(0)
    const decoder = new FrameDecoder((f) => {
      if (f.kind === FrameKind.RESPONSE) replies++
    }, 1024 * 1024)
    sock.on('data', (d: Buffer) => {
      if (!headerSeen) {
        pending = Buffer.concat([pending, d])
        const end = pending.indexOf('\r\n\r\n')
        if (end < 0) return
        headerSeen = true
        d = pending.subarray(end + 4)
      }
      decoder.push(d)
    })
    sock.resume()
    for (let t = 0; t < 500 && replies < total; t++) await sleep(10)
    assert.is(replies, total)
    assert.is(calls, total)
    console.log(`    unread replies: ${held} of ${total} requests ran before the server stopped reading`)
  } finally {
    sock.destroy()
    await peer.stop()
  }
})

test('the admin routes on the same server keep working next to upgraded connections', async () => {
  await withCaller('host-a', {}, async (transport) => {
    await transport.request(server.address, 'echo', 1)
    const res = await fetch(`http://${server.address}/admin/status`)
    assert.is(res.status, 200)
    assert.equal(await res.json(), { name: 'host-server', state: 'AVAILABLE' })
    assert.is(await transport.request(server.address, 'echo', 2), 2)
    // An upgrade to another path is not ours and nobody else takes it: 404, not a hang.
    const sock = connect(server.port, '127.0.0.1')
    let received = ''
    sock.on('data', (d) => (received += d))
    sock.write('GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    await new Promise((r) => sock.once('close', r))
    assert.match(received, /^HTTP\/1.1 404 /)
  })
})

test('another upgrade listener on the same server keeps its own paths', async () => {
  const peer = await startPeer('host-shared')
  peer.transport.on('echo', (p) => p)
  peer.server.on('upgrade', (req, socket: Socket) => {
    if (req.url === '/other') socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\nhello')
  })
  try {
    const sock = connect(peer.port, '127.0.0.1')
    let received = ''
    sock.on('data', (d) => (received += d))
    sock.write('GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n')
    await new Promise((r) => sock.once('close', r))
    assert.match(received, /^HTTP\/1.1 101 [^]*hello$/)
    await withCaller('host-a', {}, async (transport) => assert.is(await transport.request(peer.address, 'echo', 'ok'), 'ok'))
  } finally {
    await peer.stop()
  }
})

test('unreachable peer: PEER_UNREACHABLE, then fail-fast while backing off', async () => {
  const gone = await startPeer('host-gone')
  const address = gone.address
  await gone.stop()
  await withCaller('host-a', { client: { backoffMinMs: 500 } }, async (transport, logs) => {
    const first = await rejection(transport.request(address, 'echo', 1))
    assert.is(first.code, 'PEER_UNREACHABLE')
    assert.match(first.message, 'ECONNREFUSED')
    const started = performance.now()
    const second = await rejection(transport.request(address, 'echo', 1))
    assert.is(second.code, 'PEER_UNREACHABLE')
    assert.match(second.message, 'next attempt in')
    assert.ok(performance.now() - started < 50)
    assert.ok(logs.some((l) => l.level === 40 && l.msg === 'internode connection failed' && l.address === address))
    assert.is(second.toRingError().code, 'UNAVAILABLE')
  })
})

test('server restart: in-flight requests fail fast, later requests reconnect and succeed', async () => {
  const peer = await startPeer('host-restart')
  const port = peer.port
  let hanging = 0
  peer.transport.on('hang', () => {
    hanging++
    return new Promise(() => {})
  })
  peer.transport.on('echo', (p) => p)
  await withCaller('host-a', { client: { backoffMinMs: 20, backoffMaxMs: 200 } }, async (transport, logs) => {
    assert.is(await transport.request(peer.address, 'echo', 'before'), 'before')
    const inflight = Array.from({ length: 20 }, () => rejection(transport.request(peer.address, 'hang', null, { timeoutMs: 10_000 })))
    for (let t = 0; t < 100 && hanging < 20; t++) await sleep(5)
    assert.is(hanging, 20)
    const started = performance.now()
    await peer.stop()
    const errs = await Promise.all(inflight)
    const ms = performance.now() - started
    assert.ok(errs.every((e) => e instanceof PeerError && e.code === 'PEER_UNREACHABLE'))
    assert.ok(ms < 1000, `in-flight requests took ${ms.toFixed(0)} ms to fail`)

    const down = await rejection(transport.request(peer.address, 'echo', 'down'))
    assert.is(down.code, 'PEER_UNREACHABLE')

    const again = await startPeer('host-restart', {}, port)
    again.transport.on('echo', (p) => p)
    try {
      let reply: unknown
      const deadline = Date.now() + 3000
      while (Date.now() < deadline) {
        try {
          reply = await transport.request(peer.address, 'echo', 'after', { timeoutMs: 1000 })
          break
        } catch (err) {
          assert.is((err as PeerError).code, 'PEER_UNREACHABLE')
          await sleep(20)
        }
      }
      assert.is(reply, 'after')
      assert.ok(logs.some((l) => l.msg === 'internode connection re-established'))
      const many = await Promise.all(Array.from({ length: 100 }, (_, i) => transport.request(peer.address, 'echo', i)))
      assert.equal(many, Array.from({ length: 100 }, (_, i) => i))
    } finally {
      await again.stop()
    }
  })
})

test('close(): calls in flight and later calls fail with PEER_UNREACHABLE', async () => {
  const { transport } = caller('host-a')
  const p = rejection(transport.request(server.address, 'hang', null))
  await sleep(50)
  transport.close()
  assert.is((await p).code, 'PEER_UNREACHABLE')
  assert.is((await rejection(transport.request(server.address, 'echo', 1))).code, 'PEER_UNREACHABLE')
})

test('disconnect(address): calls to that peer fail, its connections close, the next call connects afresh', async () => {
  await withCaller('host-a', {}, async (transport) => {
    assert.is(await transport.request(server.address, 'echo', 1), 1)
    const p = rejection(transport.request(server.address, 'hang', null))
    await sleep(20)
    transport.client.disconnect(server.address)
    assert.is((await p).code, 'PEER_UNREACHABLE')
    assert.is(transport.client.connectionCount(server.address), 0)
    assert.is(await transport.request(server.address, 'echo', 2), 2)
  })
})

test('a silent connection is detected by pings and closed', async () => {
  const { transport } = caller('host-a', { client: { pingIntervalMs: 50, connectionsPerPeer: 1 } })
  // A peer that completes the handshake and then never answers anything (a hung process).
  const hung = createServer((sock) => {
    sock.once('data', () => sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: ringkv-rpc\r\nConnection: Upgrade\r\n\r\n'))
    sock.on('error', () => {})
  })
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()))
  const hungAddress = `127.0.0.1:${(hung.address() as AddressInfo).port}`
  try {
    await transport.request(server.address, 'echo', 1)
    // Pings are answered, so an idle but healthy connection stays open.
    await sleep(300)
    assert.is(transport.client.connectionCount(server.address), 1)
    const started = performance.now()
    const err = await rejection(transport.request(hungAddress, 'echo', 1, { timeoutMs: 5000 }))
    const ms = performance.now() - started
    assert.is(err.code, 'PEER_UNREACHABLE')
    assert.match(err.message, 'no traffic from the peer')
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`)
    assert.is(transport.client.connectionCount(server.address), 1)
  } finally {
    transport.close()
    hung.close()
  }
})

test('the server closes a connection that stays silent past its idle timeout; the client reconnects', async () => {
  const peer = await startPeer('host-idle', { server: { idleTimeoutMs: 200 } })
  peer.transport.on('echo', (p) => p)
  try {
    await withCaller('host-a', { client: { pingIntervalMs: 0, connectionsPerPeer: 1 } }, async (transport) => {
      assert.is(await transport.request(peer.address, 'echo', 1), 1)
      await sleep(400)
      assert.is(transport.client.connectionCount(peer.address), 0)
      assert.is(peer.transport.server.connectionCount, 0)
      assert.is(await transport.request(peer.address, 'echo', 2), 2)
    })
  } finally {
    await peer.stop()
  }
})

test.run()
