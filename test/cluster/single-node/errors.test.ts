/**
 * Every client error code of design §3.2 that one node can produce, with its status and the
 * JSON shape, over real HTTP (and raw sockets where a client library would not misbehave).
 */
import { Readable } from 'node:stream'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { waitFor, type TestCluster, type TestNode } from '../../helpers/cluster.js'
import { assertError, http, rawExchange, singleNode } from './helpers.js'

let main: { cluster: TestCluster; node: TestNode; url: string }
let small: { cluster: TestCluster; node: TestNode; url: string }
const MIB = 1024 * 1024

test.before(async () => {
  main = await singleNode()
  small = await singleNode(['--max-value-bytes', '1000'])
})
test.after(async () => {
  await main?.cluster.destroy()
  await small?.cluster.destroy()
})

const kv = (key: string, query = '') => `${main.url}/v1/kv/${key}${query}`

test('400 BAD_REQUEST: empty key, a key with a raw slash, malformed percent-encoding', async () => {
  for (const method of ['GET', 'PUT', 'DELETE']) {
    assertError(await http(`${main.url}/v1/kv/`, { method, body: method === 'PUT' ? 'x' : undefined }), 400, 'BAD_REQUEST', `${method} empty key`)
    assertError(await http(`${main.url}/v1/kv/?consistency=one`, { method }), 400, 'BAD_REQUEST', `${method} empty key with a query`)
    assertError(await http(kv('a/b'), { method }), 400, 'BAD_REQUEST', `${method} a/b`)
    for (const bad of ['%zz', '%4', 'abc%', '%G0', 'a%%41', '%e']) {
      assertError(await http(kv(bad), { method, body: method === 'PUT' ? 'x' : undefined }), 400, 'BAD_REQUEST', `${method} ${bad}`)
    }
  }
})

test('400 BAD_REQUEST: a bad ttl; the connection stays usable after a refused small PUT', async () => {
  for (const ttl of ['abc', '0', '-1', '1.5', '', '99999999999']) {
    assertError(await http(kv('ttl-key', `?ttl=${ttl}`), { method: 'PUT', body: 'x' }), 400, 'BAD_REQUEST', `ttl=${ttl}`)
  }
  assertError(await http(kv('ttl-key')), 404, 'NOT_FOUND', 'nothing was written by refused PUTs')
  // Two requests on one connection: the refused body is drained, the second request is answered.
  const ex = await rawExchange(main.node.spec.clientPort)
  await ex.write('PUT /v1/kv/k?ttl=nope HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello')
  const first = await ex.response
  assert.is(first.status, 400)
  assert.not.ok(/close/i.test(first.headers.connection ?? ''), 'a small refused body does not cost the connection')
  ex.socket.destroy()
})

test('400 BAD_CONSISTENCY on reads, writes and deletes', async () => {
  for (const method of ['GET', 'PUT', 'DELETE']) {
    for (const cl of ['two', '', 'eventual', 'one,all']) {
      const e = assertError(await http(kv('cl-key', `?consistency=${cl}`), { method, body: method === 'PUT' ? 'x' : undefined }), 400, 'BAD_CONSISTENCY', `${method} consistency=${cl}`)
      assert.match(String(e.message), /one, quorum, all/)
    }
  }
})

test('404 NOT_FOUND for an absent key and a deleted key; unknown paths are 404 too', async () => {
  assertError(await http(kv('absent')), 404, 'NOT_FOUND', 'absent')
  assert.is((await http(kv('deleted'), { method: 'PUT', body: 'x' })).status, 204)
  assert.is((await http(kv('deleted'), { method: 'DELETE' })).status, 204)
  assertError(await http(kv('deleted')), 404, 'NOT_FOUND', 'deleted')
  assertError(await http(`${main.url}/v2/kv/x`), 404, 'NOT_FOUND', 'unknown path')
  assertError(await http(`${main.url}/v1/kv`), 404, 'NOT_FOUND', '/v1/kv without a key')
})

test('405 for other methods, with Allow', async () => {
  for (const method of ['POST', 'PATCH', 'OPTIONS']) {
    const a = await http(kv('k'), { method, body: method === 'OPTIONS' ? undefined : 'x' })
    assertError(a, 405, 'METHOD_NOT_ALLOWED', `${method} /v1/kv/k`)
    assert.is(a.headers.allow, 'GET, PUT, DELETE')
  }
  const head = await http(kv('k'), { method: 'HEAD' })
  assert.is(head.status, 405)
  for (const path of ['/v1/node', '/v1/cluster', '/healthz', '/readyz', '/metrics', '/openapi.json']) {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const a = await http(`${main.url}${path}`, { method, body: method === 'DELETE' ? undefined : '{}' })
      assertError(a, 405, 'METHOD_NOT_ALLOWED', `${method} ${path}`)
      assert.match(String(a.headers.allow), /GET/)
    }
  }
})

test('413 KEY_TOO_LARGE above 1024 bytes, counted in decoded bytes; 1024 is accepted', async () => {
  const cases: [string, string, number][] = [
    ['1024 ASCII', 'k'.repeat(1024), 204],
    ['1025 ASCII', 'k'.repeat(1025), 413],
    ['1024 percent-encoded binary bytes', '%FF'.repeat(1024), 204],
    ['1025 percent-encoded binary bytes', '%00'.repeat(1025), 413],
    ['512 two-byte UTF-8 characters', encodeURIComponent('é'.repeat(512)), 204],
    ['513 two-byte UTF-8 characters (1026 bytes)', encodeURIComponent('é'.repeat(513)), 413],
    ['1023 ASCII and one encoded byte', 'k'.repeat(1023) + '%01', 204],
    ['1024 ASCII and one encoded byte', 'k'.repeat(1024) + '%01', 413],
  ]
  for (const [what, key, status] of cases) {
    const w = await http(kv(key), { method: 'PUT', body: what })
    if (status === 204) {
      assert.is(w.status, 204, what)
      assert.is((await http(kv(key))).body.toString(), what)
    } else {
      const e = assertError(w, 413, 'KEY_TOO_LARGE', `PUT ${what}`)
      assert.is(e.maxKeyBytes, 1024)
      assertError(await http(kv(key)), 413, 'KEY_TOO_LARGE', `GET ${what}`)
      assertError(await http(kv(key), { method: 'DELETE' }), 413, 'KEY_TOO_LARGE', `DELETE ${what}`)
    }
  }
})

test('a request line over 16 KiB (a huge key) still gets a JSON error', async () => {
  const a = await http(kv('x'.repeat(20_000)))
  assertError(a, 431, 'BAD_REQUEST', '20000-character key')
})

test('413 VALUE_TOO_LARGE on Content-Length alone: 100 MiB declared, 3 bytes sent, refused at once', async () => {
  const ex = await rawExchange(main.node.spec.clientPort)
  await ex.write(`PUT /v1/kv/huge HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: ${100 * MIB}\r\n\r\nabc`)
  const t = setTimeout(() => ex.socket.destroy(new Error('no answer in 3 s: the node waits for the body')), 3000)
  const r = await ex.response
  clearTimeout(t)
  assert.is(r.status, 413)
  const j = JSON.parse(r.body.toString())
  assert.is(j.error.code, 'VALUE_TOO_LARGE')
  assert.is(j.error.maxValueBytes, MIB)
  assert.ok(r.ms < 1000, `answered in ${r.ms.toFixed(0)} ms, with 100 MiB of body never sent`)
  assert.is(r.headers.connection, 'close')
  // The node hangs up instead of reading the rest.
  const hungUp = await Promise.race([ex.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))])
  assert.ok(hungUp, 'the node closes the connection instead of reading 100 MiB')
  assertError(await http(kv('huge')), 404, 'NOT_FOUND', 'nothing stored')
})

test('413 VALUE_TOO_LARGE with Expect: 100-continue: refused without a 100, body never requested', async () => {
  const ex = await rawExchange(main.node.spec.clientPort)
  await ex.write(`PUT /v1/kv/huge HTTP/1.1\r\nhost: x\r\ncontent-length: ${2 * MIB}\r\nexpect: 100-continue\r\n\r\n`)
  const r = await ex.response
  assert.is(r.status, 413, 'the first answer is the refusal, not 100 Continue')
  ex.socket.destroy()
  // An acceptable one gets its 100 and is stored.
  const ok = await rawExchange(main.node.spec.clientPort)
  await ok.write(`PUT /v1/kv/continued HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n`)
  const cont = await ok.response
  assert.is(cont.status, 100)
  ok.socket.destroy()
})

test('413 VALUE_TOO_LARGE for a chunked body without Content-Length, refused once it passes the limit', async () => {
  const ex = await rawExchange(main.node.spec.clientPort)
  await ex.write('PUT /v1/kv/chunked-huge HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n')
  const chunk = Buffer.alloc(64 * 1024, 7)
  let sent = 0
  let answered = false
  ex.response.then(() => (answered = true), () => (answered = true))
  // At most 16 MiB: the node must answer long before that.
  while (!answered && sent < 16 * MIB) {
    if (!(await ex.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])))) break
    sent += chunk.length
    if (sent % MIB === 0) await new Promise((r) => setTimeout(r, 5))
  }
  const r = await ex.response
  assert.is(r.status, 413)
  assert.is(JSON.parse(r.body.toString()).error.code, 'VALUE_TOO_LARGE')
  assert.ok(sent < 16 * MIB, `answered after ${sent} bytes`)
  await ex.closed
  assertError(await http(kv('chunked-huge')), 404, 'NOT_FOUND', 'nothing stored')
})

test('a client still sending a refused body reads the 413, not a connection reset', async () => {
  // The node answers at the headers and must not reset the connection under a client that is
  // still writing (it would lose the answer with it): 8 MiB, with and without Content-Length.
  for (let i = 0; i < 3; i++) {
    const big = Buffer.alloc(8 * MIB, i)
    assertError(await http(kv('big-upload'), { method: 'PUT', body: big }), 413, 'VALUE_TOO_LARGE', `8 MiB with Content-Length, try ${i}`)
    assertError(await http(kv('big-upload'), { method: 'PUT', body: Readable.from([big.subarray(0, 4 * MIB), big.subarray(4 * MIB)]) }), 413, 'VALUE_TOO_LARGE', `8 MiB chunked, try ${i}`)
  }
})

test('the limit itself: 1 MiB is accepted, with Content-Length and chunked', async () => {
  const v = Buffer.alloc(MIB, 1)
  assert.is((await http(kv('exactly-1mib'), { method: 'PUT', body: v })).status, 204)
  assert.is((await http(kv('exactly-1mib'))).body.length, MIB)
  assertError(await http(kv('over-1mib'), { method: 'PUT', body: Buffer.alloc(MIB + 1) }), 413, 'VALUE_TOO_LARGE', '1 MiB + 1')
})

test('--max-value-bytes 1000 is respected, with Content-Length and chunked', async () => {
  const url = (k: string) => `${small.url}/v1/kv/${k}`
  const chunked = (size: number) => Readable.from([Buffer.alloc(size - Math.floor(size / 2), 2), Buffer.alloc(Math.floor(size / 2), 3)])
  assert.is((await http(url('a'), { method: 'PUT', body: Buffer.alloc(1000) })).status, 204)
  const e = assertError(await http(url('b'), { method: 'PUT', body: Buffer.alloc(1001) }), 413, 'VALUE_TOO_LARGE', '1001 bytes')
  assert.is(e.maxValueBytes, 1000)
  assert.is((await http(url('c'), { method: 'PUT', body: chunked(1000) })).status, 204)
  assertError(await http(url('d'), { method: 'PUT', body: chunked(1001) }), 413, 'VALUE_TOO_LARGE', 'chunked 1001 bytes')
  assert.is((await http(url('c'))).body.length, 1000)
  assertError(await http(url('d')), 404, 'NOT_FOUND', 'nothing stored')
})

test('503 on a node that has not joined (--auto-join false): NOT_READY on /readyz, UNAVAILABLE with required and alive on /v1/kv', async () => {
  // A node of its own: one that joined main's gossip would forward to main.
  const solo = await singleNode(['--auto-join', 'false'], false)
  const idle = solo.node
  try {
    await waitFor('/healthz', async () => (await http(`${idle.clientUrl}/healthz`)).status === 200)
    await idle.ready(2000).then(
      () => assert.unreachable('a node that waits for POST /admin/join is not ready'),
      (e) => assert.match(String(e), /timed out/),
    )
    const r = await http(`${idle.clientUrl}/readyz`)
    const e = assertError(r, 503, 'NOT_READY', '/readyz while JOINING')
    assert.is(e.state, 'JOINING')
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const a = await http(`${idle.clientUrl}/v1/kv/k`, { method, body: method === 'PUT' ? 'x' : undefined })
      const u = assertError(a, 503, 'UNAVAILABLE', `${method} on a JOINING node`)
      assert.type(u.required, 'number')
      assert.type(u.alive, 'number')
    }
    assert.is((await http(`${idle.clientUrl}/healthz`)).status, 200, 'alive while not ready')
  } finally {
    await solo.cluster.destroy()
  }
})

test.run()
