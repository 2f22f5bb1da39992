/**
 * The cluster token guards the peer port: an internode upgrade or an admin call without the
 * token (or with another one) is refused with 401 and logged with the caller's address, and a
 * real node started with the wrong token never becomes part of the cluster.
 */
import { request } from 'node:http'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { waitFor, type TestCluster, type TestNode } from '../../helpers/cluster.js'
import { call } from '../../../node/client/http.js'
import { PeerError } from '../../../node/transport/index.js'
import { STREAM_PATH, UPGRADE_PROTOCOL } from '../../../node/transport/handshake.js'
import { ReplicaProbe, SLOW, startCluster } from './support.js'

let cluster: TestCluster
let target: TestNode

test.before(async () => {
  cluster = await startCluster({ nodes: 3, rf: 3 })
  target = cluster.nodes[0]!
})

test.after(async () => {
  await cluster?.destroy()
})

/** Opens the internode upgrade by hand; resolves with the status the node answered. */
function upgrade(peerPort: number, token: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { connection: 'Upgrade', upgrade: UPGRADE_PROTOCOL, 'x-ringkv-host': 'intruder-host' }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    const req = request({ host: '127.0.0.1', port: peerPort, path: STREAM_PATH, headers })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode ?? 0, body: '' })
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

function logOf(n: TestNode): string[] {
  return readFileSync(n.logFile, 'utf8').split('\n').filter(Boolean)
}

test('the internode upgrade without the token, or with a wrong one, is refused with 401 and logged', async () => {
  for (const token of [undefined, 'not-the-token']) {
    const r = await upgrade(target.spec.peerPort, token)
    assert.is(r.status, 401, `upgrade with ${token ?? 'no'} token: ${r.body}`)
    assert.is(JSON.parse(r.body).error.code, 'UNAUTHORIZED')
  }
  const ok = await upgrade(target.spec.peerPort, cluster.token)
  assert.is(ok.status, 101, 'the right token is let in')
  await waitFor('the refusals in the node log', () => {
    const lines = logOf(target).filter((l) => l.includes('refused internode connection'))
    return lines.some((l) => l.includes('no cluster token')) && lines.some((l) => l.includes('wrong cluster token')) && lines.every((l) => l.includes('127.0.0.1'))
  }, 5000)
})

test('a transport client with the wrong token cannot read a replica', async () => {
  const intruder = new ReplicaProbe('not-the-token')
  try {
    await intruder.read(target, 'anything')
    assert.unreachable('the read succeeded')
  } catch (e) {
    assert.instance(e, PeerError)
    assert.is((e as PeerError).code, 'PEER_UNAUTHORIZED')
  } finally {
    intruder.close()
  }
})

test('the admin API without the token, or with a wrong one, answers 401 UNAUTHORIZED and logs it', async () => {
  const refused: Record<string, string>[] = [{}, { authorization: 'Bearer not-the-token' }, { authorization: `Basic ${cluster.token}` }]
  for (const headers of refused) {
    for (const [method, path] of [['GET', 'status'], ['POST', 'decommission'], ['POST', 'drain']] as const) {
      const r = await call(`${target.peerUrl}/admin/${path}`, { method, headers })
      assert.is(r.status, 401, `${method} /admin/${path} with ${JSON.stringify(headers)}`)
      assert.is(JSON.parse(r.body.toString()).error.code, 'UNAUTHORIZED')
    }
  }
  // Refused calls changed nothing: the node is not draining or leaving.
  const s = await cluster.admin(target).status()
  assert.is(s.state, 'AVAILABLE')
  assert.ok((await fetch(`${target.clientUrl}/readyz`)).ok)
  await waitFor('the admin refusals in the node log', () => logOf(target).filter((l) => l.includes('admin request refused') && l.includes('127.0.0.1')).length >= 9, 5000)
})

test('a node started with another token never joins the cluster, and the refusal is logged on both sides', async () => {
  const outsider = await cluster.add([], false)
  const wrong = join(cluster.dir, 'other-token')
  writeFileSync(wrong, 'some-other-cluster-token')
  outsider.spec.tokenFile = wrong
  outsider.start()
  // It gossips to the seeds for a while; none of them may let it in.
  await waitFor('the members to refuse the outsider', () => logOf(target).some((l) => l.includes('refused internode connection') && l.includes('wrong cluster token')), SLOW.convergeMs)
  await new Promise((r) => setTimeout(r, 5000))
  for (const n of cluster.nodes.slice(0, 3)) {
    const c = await n.kv.cluster()
    assert.equal(c.nodes.map((m) => m.name).sort(), ['n1', 'n2', 'n3'], `${n.spec.name} does not list the outsider`)
  }
  assert.ok(logOf(outsider).some((l) => l.includes('PEER_UNAUTHORIZED')), 'the outsider logs why it cannot reach its seeds')
  await outsider.kill9()
})

test.run()
