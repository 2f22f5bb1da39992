import { request } from 'node:http'

import * as assert from 'uvu/assert'
import { PeerError } from '../../../node/transport/index.js'
import { test, withCaller, rejection, startPeer, type PeerNode } from './fixture.js'

const TOKEN = 'correct horse battery staple'
let server: PeerNode

test.before(async () => {
  server = await startPeer('host-secure', { clusterToken: TOKEN, clusterName: 'prod' })
  server.transport.on('echo', (p) => p)
})

test.after(() => server.stop())

/** A raw handshake, as any HTTP client could send it. */
function handshake(headers: Record<string, string>): Promise<{ status: number; body: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: server.port,
      path: '/internal/v1/stream',
      agent: false,
      headers: { Connection: 'Upgrade', Upgrade: 'ringkv-rpc', 'X-Ringkv-Host': 'intruder', ...headers },
    })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode ?? 0, body: '', closed: false })
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => {
        // The server must close the connection, not keep it around for another try.
        const sock = res.socket
        if (sock.destroyed) return resolve({ status: res.statusCode ?? 0, body, closed: true })
        sock.once('close', () => resolve({ status: res.statusCode ?? 0, body, closed: true }))
      })
    })
    req.on('error', reject)
    req.end()
  })
}

function refusals(reason: string) {
  return server.logs.filter((l) => l.level === 40 && l.msg === 'refused internode connection: bad cluster token' && l.reason === reason)
}

test('no token: 401 with an UNAUTHORIZED body, connection closed, warning with the remote address', async () => {
  const before = refusals('no cluster token').length
  const r = await handshake({})
  assert.is(r.status, 401)
  assert.is(JSON.parse(r.body).error.code, 'UNAUTHORIZED')
  assert.ok(r.closed)
  const logged = refusals('no cluster token')
  assert.is(logged.length, before + 1)
  assert.is(logged.at(-1)!.remoteAddress, '127.0.0.1')
  assert.type(logged.at(-1)!.remotePort, 'number')
  assert.is(logged.at(-1)!.peerHost, 'intruder')
})

test('wrong token (shorter, longer, same length) and a non-Bearer scheme are refused', async () => {
  const before = refusals('wrong cluster token').length
  for (const t of ['x', TOKEN + 'x', TOKEN.replace('e', 'f')]) {
    const r = await handshake({ Authorization: `Bearer ${t}` })
    assert.is(r.status, 401, t)
    assert.ok(r.closed)
  }
  assert.is(refusals('wrong cluster token').length, before + 3)
  assert.is((await handshake({ Authorization: `Basic ${Buffer.from('a:' + TOKEN).toString('base64')}` })).status, 401)
})

test('the right token is accepted (raw handshake gets 101)', async () => {
  const r = await handshake({ Authorization: `Bearer ${TOKEN}` })
  assert.is(r.status, 101)
})

test('a client without the token or with a wrong one gets PEER_UNAUTHORIZED; with it, requests work', async () => {
  for (const clusterToken of [undefined, 'nope']) {
    await withCaller('host-a', { clusterToken }, async (transport) => {
      const err = await rejection(transport.request(server.address, 'echo', 1))
      assert.instance(err, PeerError)
      assert.is(err.code, 'PEER_UNAUTHORIZED')
      assert.match(err.message, 'cluster token')
      // Backing off keeps the reason, so callers do not mistake it for a dead peer.
      assert.is((await rejection(transport.request(server.address, 'echo', 1))).code, 'PEER_UNAUTHORIZED')
    })
  }
  await withCaller('host-a', { clusterToken: TOKEN, clusterName: 'prod' }, async (transport) => {
    assert.equal(await transport.request(server.address, 'echo', { ok: true }), { ok: true })
  })
})

test('a node of another cluster is refused even with the token', async () => {
  await withCaller('host-a', { clusterToken: TOKEN, clusterName: 'staging' }, async (transport) => {
    const err = await rejection(transport.request(server.address, 'echo', 1))
    assert.is(err.code, 'PEER_UNAUTHORIZED')
    assert.match(err.message, 'HTTP 403')
    assert.match(err.message, 'cluster prod, not staging')
  })
})

test('a node without a configured token accepts peers that send none', async () => {
  const open = await startPeer('host-open')
  open.transport.on('echo', (p) => p)
  try {
    await withCaller('host-a', {}, async (transport) => assert.is(await transport.request(open.address, 'echo', 7), 7))
  } finally {
    await open.stop()
  }
})

test('admin routes are untouched by the upgrade handler', async () => {
  const res = await fetch(`http://${server.address}/admin/status`)
  assert.is(res.status, 200)
  assert.is(((await res.json()) as { name: string }).name, 'host-secure')
})

test.run()
