/**
 * The client API table (design §3.2) against one real `ringkv node --replication-factor 1`
 * over real HTTP: values with content types and ETags, the views, health, metrics, OpenAPI,
 * and binary keys and values.
 */
import { randomBytes } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { percentEncode } from '../../../node/client/kv-client.js'
import type { TestCluster } from '../../helpers/cluster.js'
import { assertError, http, parseMetrics, sample, singleNode } from './helpers.js'

let cluster: TestCluster
let url: string

test.before(async () => {
  ;({ cluster, url } = await singleNode())
})
test.after(async () => {
  await cluster?.destroy()
})

const put = (key: string, body: Buffer | string, headers: Record<string, string> = {}) => http(`${url}/v1/kv/${key}`, { method: 'PUT', body, headers })
const get = (key: string) => http(`${url}/v1/kv/${key}`)
const del = (key: string, headers: Record<string, string> = {}) => http(`${url}/v1/kv/${key}`, { method: 'DELETE', headers })

test('/healthz and /readyz answer 200 once the node is AVAILABLE', async () => {
  const h = await http(`${url}/healthz`)
  assert.is(h.status, 200)
  const r = await http(`${url}/readyz`)
  assert.is(r.status, 200)
  assert.is(JSON.parse(r.body.toString()).state, 'AVAILABLE')
})

test('/v1/node and /v1/cluster describe the one node', async () => {
  const n = JSON.parse((await http(`${url}/v1/node`)).body.toString())
  assert.is(n.name, 'n1')
  assert.is(n.state, 'AVAILABLE')
  assert.is(n.up, true)
  assert.is(n.ownership, 1, 'a single node with RF 1 owns the whole ring')
  assert.ok(n.tokens > 0)
  assert.is(n.clientAddress, url.replace('http://', ''))
  assert.match(n.hostId, /^[0-9a-f]{16}$/)
  assert.type(n.load, 'number')
  const c = JSON.parse((await http(`${url}/v1/cluster`)).body.toString())
  assert.is(c.replicationFactor, 1)
  assert.is(c.nodes.length, 1)
  assert.is(c.nodes[0].hostId, n.hostId)
  assert.is(c.nodes[0].state, 'AVAILABLE')
  assert.is(c.nodes[0].up, true)
})

test('PUT stores the value with its Content-Type; GET returns both; 204 with an ETag', async () => {
  const w = await put('greeting', 'hello', { 'content-type': 'text/plain; charset=utf-8' })
  assert.is(w.status, 204)
  assert.is(w.body.length, 0)
  assert.match(String(w.headers.etag), /^"[^"]+"$/)
  const r = await get('greeting')
  assert.is(r.status, 200)
  assert.is(r.body.toString(), 'hello')
  assert.is(r.headers['content-type'], 'text/plain; charset=utf-8')
  assert.is(r.headers.etag, w.headers.etag, 'GET returns the ETag of the version the PUT stored')

  const j = await put('doc', '{"a":1}', { 'content-type': 'application/json' })
  assert.is(j.status, 204)
  assert.is((await get('doc')).headers['content-type'], 'application/json')

  // No Content-Type: stored as bytes.
  const raw = await http(`${url}/v1/kv/untyped`, { method: 'PUT', body: Buffer.from([1, 2, 3]) })
  assert.is(raw.status, 204)
  const u = await get('untyped')
  assert.is(u.headers['content-type'], 'application/octet-stream')
  assert.equal([...u.body], [1, 2, 3])

  // An empty value is a value, not a delete.
  assert.is((await put('empty', '')).status, 204)
  const e = await get('empty')
  assert.is(e.status, 200)
  assert.is(e.body.length, 0)
})

test('the ETag changes on every write, and If-Match with an earlier ETag is accepted', async () => {
  const etags: string[] = []
  for (let i = 0; i < 5; i++) {
    const w = await put('versioned', `v${i}`)
    assert.is(w.status, 204)
    etags.push(String(w.headers.etag))
  }
  assert.is(new Set(etags).size, etags.length, `five writes, five ETags: ${etags.join(' ')}`)
  // A client that last saw the first version writes with its ETag: the write supersedes it.
  const w = await put('versioned', 'from-stale-client', { 'if-match': etags[0]! })
  assert.is(w.status, 204)
  assert.not.ok(etags.includes(String(w.headers.etag)))
  const r = await get('versioned')
  assert.is(r.body.toString(), 'from-stale-client')
  assert.is(r.headers.etag, w.headers.etag)
  // The current ETag, weak form and '*' are accepted as well.
  assert.is((await put('versioned', 'current', { 'if-match': String(w.headers.etag) })).status, 204)
  assert.is((await put('versioned', 'weak', { 'if-match': `W/${w.headers.etag}` })).status, 204)
  assert.is((await put('versioned', 'star', { 'if-match': '*' })).status, 204)
  assert.is((await get('versioned')).body.toString(), 'star')
  // DELETE with If-Match too.
  const d = await del('versioned', { 'if-match': etags[2]! })
  assert.is(d.status, 204)
  assert.is((await get('versioned')).status, 404)
})

test('a malformed If-Match is 400 BAD_REQUEST and nothing is written', async () => {
  await put('guarded', 'kept')
  for (const bad of ['not-an-etag!', '"%%%"', '"bm90IGpzb24"', '"WzEsMl0"', '"eyJhIjotMX0"']) {
    assertError(await put('guarded', 'replaced', { 'if-match': bad }), 400, 'BAD_REQUEST', `PUT If-Match: ${bad}`)
    assertError(await del('guarded', { 'if-match': bad }), 400, 'BAD_REQUEST', `DELETE If-Match: ${bad}`)
  }
  assert.is((await get('guarded')).body.toString(), 'kept')
})

test('DELETE writes a tombstone: 204 with an ETag, then GET is 404 NOT_FOUND; a new PUT revives the key', async () => {
  await put('doomed', 'x')
  const d = await del('doomed')
  assert.is(d.status, 204)
  assert.match(String(d.headers.etag), /^"[^"]+"$/)
  const g = await get('doomed')
  assertError(g, 404, 'NOT_FOUND', 'GET of a deleted key')
  assert.is(g.headers.etag, d.headers.etag, 'the 404 of a deleted key carries the tombstone’s ETag')
  const never = await get('never-written')
  assertError(never, 404, 'NOT_FOUND', 'GET of an absent key')
  assert.is(never.headers.etag, undefined)
  // Deleting an absent key is not an error: it writes a tombstone.
  assert.is((await del('never-written-either')).status, 204)
  assert.is((await put('doomed', 'again')).status, 204)
  assert.is((await get('doomed')).body.toString(), 'again')
})

test('values expire after ?ttl seconds', async () => {
  // A ttl of several seconds: the GET right after the PUT must not be late on a loaded machine.
  assert.is((await http(`${url}/v1/kv/short-lived?ttl=5`, { method: 'PUT', body: 'brief' })).status, 204)
  assert.is((await get('short-lived')).status, 200)
  await new Promise((r) => setTimeout(r, 5100))
  assertError(await get('short-lived'), 404, 'NOT_FOUND', 'GET after the ttl')
})

test('consistency one|quorum|all are all accepted on one node with RF 1', async () => {
  for (const cl of ['one', 'quorum', 'all', 'QUORUM']) {
    assert.is((await http(`${url}/v1/kv/cl-${cl}?consistency=${cl}`, { method: 'PUT', body: cl })).status, 204, cl)
    const r = await http(`${url}/v1/kv/cl-${cl}?consistency=${cl}`)
    assert.is(r.status, 200, cl)
    assert.is(r.body.toString(), cl)
    assert.is((await http(`${url}/v1/kv/cl-${cl}?consistency=${cl}`, { method: 'DELETE' })).status, 204, cl)
  }
})

test('binary keys: all 256 byte values in one key, percent-encoded, round-trip exactly', async () => {
  const key = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const value = randomBytes(4096)
  const enc = percentEncode(key)
  assert.is((await put(enc, value)).status, 204)
  const r = await get(enc)
  assert.is(r.status, 200)
  assert.ok(r.body.equals(value), 'the value bytes come back unchanged')
  // Lower-case hex names the same bytes; so does every byte percent-encoded.
  const lower = enc.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())
  assert.ok((await get(lower)).body.equals(value))
  const allEncoded = [...key].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
  assert.ok((await get(allEncoded)).body.equals(value))
  // Each single byte is its own key, distinct from every other.
  for (let b = 0; b < 256; b++) {
    const r1 = await put(`%${b.toString(16).padStart(2, '0')}`, Buffer.from([b]))
    assert.is(r1.status, 204, `byte ${b}`)
  }
  for (let b = 0; b < 256; b++) {
    const r1 = await get(`%${b.toString(16).padStart(2, '0')}`)
    assert.equal([...r1.body], [b], `byte ${b}`)
  }
  // UTF-8 in the path (as curl sends it) and its percent-encoding are the same key.
  assert.is((await put(encodeURIComponent('ключ/κλειδί'), 'utf8')).status, 204)
  assert.is((await get('%D0%BA%D0%BB%D1%8E%D1%87%2F%CE%BA%CE%BB%CE%B5%CE%B9%CE%B4%CE%AF')).body.toString(), 'utf8')
})

test('binary values: random bytes of many sizes round-trip exactly', async () => {
  for (const size of [1, 255, 256, 65_536, 1024 * 1024 - 1, 1024 * 1024]) {
    const value = randomBytes(size)
    assert.is((await put(`bin-${size}`, value, { 'content-type': 'application/x-test' })).status, 204, `size ${size}`)
    const r = await get(`bin-${size}`)
    assert.is(r.status, 200)
    assert.is(r.body.length, size)
    assert.ok(r.body.equals(value), `size ${size} comes back unchanged`)
    assert.is(r.headers['content-type'], 'application/x-test')
  }
})

test('/metrics is Prometheus text whose ringkv_ request metrics move with requests', async () => {
  const before = await http(`${url}/metrics`)
  assert.is(before.status, 200)
  assert.match(String(before.headers['content-type']), /^text\/plain/)
  const m0 = parseMetrics(before.body.toString())
  const gets0 = sample(m0, 'ringkv_client_requests_total', { op: 'get', status: '200' })
  const puts0 = sample(m0, 'ringkv_client_requests_total', { op: 'put', status: '204' })
  const miss0 = sample(m0, 'ringkv_client_requests_total', { op: 'get', status: '404' })
  const hist0 = sample(m0, 'ringkv_client_request_duration_seconds_count', { op: 'get' })
  await put('metered', 'm')
  for (let i = 0; i < 7; i++) await get('metered')
  await get('not-there')
  const m1 = parseMetrics((await http(`${url}/metrics`)).body.toString())
  assert.is(sample(m1, 'ringkv_client_requests_total', { op: 'put', status: '204' }) - puts0, 1)
  assert.is(sample(m1, 'ringkv_client_requests_total', { op: 'get', status: '200' }) - gets0, 7)
  assert.is(sample(m1, 'ringkv_client_requests_total', { op: 'get', status: '404' }) - miss0, 1)
  assert.is(sample(m1, 'ringkv_client_request_duration_seconds_count', { op: 'get' }) - hist0, 8)
  assert.ok(sample(m1, 'ringkv_storage_bytes') > 0, 'the storage gauge reports the data written')
  assert.is(sample(m1, 'ringkv_cluster_nodes_up'), 1)
  assert.ok([...m1.keys()].filter((k) => k.startsWith('ringkv_')).length >= 6)
})

// The §3.2 table: every row must be in the OpenAPI document.
const TABLE: [string, string][] = [
  ['put', '/v1/kv/{key}'],
  ['get', '/v1/kv/{key}'],
  ['delete', '/v1/kv/{key}'],
  ['get', '/v1/cluster'],
  ['get', '/v1/node'],
  ['get', '/healthz'],
  ['get', '/readyz'],
  ['get', '/metrics'],
  ['get', '/openapi.json'],
]
const ERROR_CODES = ['BAD_REQUEST', 'BAD_CONSISTENCY', 'NOT_FOUND', 'VALUE_TOO_LARGE', 'KEY_TOO_LARGE', 'UNAVAILABLE', 'TIMEOUT', 'INSUFFICIENT_STORAGE']
const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

test('/openapi.json is an OpenAPI 3 document whose paths cover the table, with every $ref resolving', async () => {
  const r = await http(`${url}/openapi.json`)
  assert.is(r.status, 200)
  assert.match(String(r.headers['content-type']), /^application\/json/)
  const doc = JSON.parse(r.body.toString())
  assert.match(doc.openapi, /^3\.\d+\.\d+$/)
  assert.type(doc.info?.title, 'string')
  assert.type(doc.info?.version, 'string')
  for (const [method, path] of TABLE) assert.ok(doc.paths?.[path]?.[method], `${method.toUpperCase()} ${path} is described`)

  // Structural rules of OpenAPI 3 that a hand-written document easily breaks.
  const refs: string[] = []
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === '$ref') refs.push(String(x))
        else walk(x)
      }
    }
  }
  walk(doc)
  assert.ok(refs.length > 0)
  for (const ref of refs) {
    assert.match(ref, /^#\//, `local ref ${ref}`)
    const target = ref.slice(2).split('/').reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], doc)
    assert.ok(target, `$ref ${ref} resolves`)
  }
  for (const [path, item] of Object.entries<Record<string, Record<string, unknown>>>(doc.paths)) {
    assert.ok(path.startsWith('/'))
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])
    for (const [method, op] of Object.entries(item)) {
      if (method === 'parameters') continue
      assert.ok(METHODS.has(method), `${path}: ${method} is an HTTP method`)
      type Param = { in: string; name: string; required?: boolean }
      const params = [...((item.parameters as unknown as Param[]) ?? []), ...((op.parameters as Param[]) ?? [])]
      for (const t of templated) {
        const p = params.find((x) => x.in === 'path' && x.name === t)
        assert.ok(p && p.required === true, `${method} ${path}: path parameter ${t} declared and required`)
      }
      const responses = op.responses as Record<string, { description?: string; content?: Record<string, { schema?: { $ref?: string } }> }>
      assert.ok(responses && Object.keys(responses).length > 0, `${method} ${path} has responses`)
      for (const [code, resp] of Object.entries(responses)) {
        assert.match(code, /^([1-5]\d\d|default)$/, `${method} ${path} response key ${code}`)
        assert.type(resp.description, 'string', `${method} ${path} ${code} description`)
        if (/^[45]/.test(code) && resp.content) {
          assert.is(resp.content['application/json']?.schema?.$ref, '#/components/schemas/Error', `${method} ${path} ${code} uses the Error schema`)
        }
      }
    }
  }
  const kv = doc.paths['/v1/kv/{key}']
  for (const [method, codes] of [['get', ['200', '404', '400', '413', '503', '504']], ['put', ['204', '400', '413', '503', '504', '507']], ['delete', ['204', '400', '503', '504', '507']]] as const) {
    for (const c of codes) assert.ok(kv[method].responses[c], `${method} /v1/kv/{key} documents ${c}`)
  }
  const errCodes: string[] = doc.components.schemas.Error.properties.error.properties.code.enum
  for (const c of ERROR_CODES) assert.ok(errCodes.includes(c), `error code ${c} is documented`)
})

test.run()
