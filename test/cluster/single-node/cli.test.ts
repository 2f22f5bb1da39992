/**
 * The `ringkv put|get|del|status` commands against a real node: output, exit codes (2 for a
 * key that is not there), and one line on stderr for every failure.
 */
import { randomBytes } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { freePort, type TestCluster } from '../../helpers/cluster.js'
import { assertOneLine, http, runCli, singleNode } from './helpers.js'

let cluster: TestCluster
let url: string
const cli = (...args: string[]) => runCli([...args, '--server', url])

test.before(async () => {
  ;({ cluster, url } = await singleNode(['--max-value-bytes', '4096']))
})
test.after(async () => {
  await cluster?.destroy()
})

test('put, get, del: output and exit codes', async () => {
  const p = await cli('put', 'colour', 'blue')
  assert.is(p.code, 0, p.stderr)
  assert.match(p.stdout, /^OK "[^"]+"\n$/)
  assert.is(p.stderr, '')
  const direct = await http(`${url}/v1/kv/colour`)
  assert.is(direct.body.toString(), 'blue')
  assert.is(direct.headers['content-type'], 'text/plain; charset=utf-8')
  assert.is(`OK ${direct.headers.etag}\n`, p.stdout, 'put prints the ETag of the stored version')

  const g = await cli('get', 'colour')
  assert.is(g.code, 0, g.stderr)
  assert.is(g.stdout, 'blue', 'the value as is: no newline added when stdout is not a terminal')

  const d = await cli('del', 'colour')
  assert.is(d.code, 0, d.stderr)
  assert.is(d.stdout, 'OK\n')

  const gone = await cli('get', 'colour')
  assert.is(gone.code, 2, 'get of a deleted key exits 2')
  assert.is(gone.stdout, '')
  assertOneLine(gone, /^ringkv: NOT_FOUND: .*colour/, 'get of a deleted key')
  const absent = await cli('get', 'never-set')
  assert.is(absent.code, 2, 'get of an absent key exits 2')
  assertOneLine(absent, /^ringkv: NOT_FOUND: no value is stored under "never-set"$/, 'get of an absent key')
})

test('keys with spaces, slashes and UTF-8; binary values through stdin; --content-type; --consistency', async () => {
  const key = 'a/b c?d#é'
  assert.is((await cli('put', key, 'odd key')).code, 0)
  assert.is((await http(`${url}/v1/kv/${encodeURIComponent(key)}`)).body.toString(), 'odd key')
  assert.is((await cli('get', key)).stdout, 'odd key')

  const bytes = randomBytes(3000)
  const s = await runCli(['put', 'blob', '-', '--server', url, '--content-type', 'application/octet-stream'], { input: bytes })
  assert.is(s.code, 0, s.stderr)
  const back = await http(`${url}/v1/kv/blob`)
  assert.ok(back.body.equals(bytes), 'stdin bytes stored exactly')
  assert.is(back.headers['content-type'], 'application/octet-stream')
  const g = await runCli(['get', 'blob', '--server', url])
  assert.ok(g.out.equals(bytes), 'get writes the bytes to stdout exactly')

  await Promise.all(
    ['one', 'quorum', 'all'].map(async (cl) => {
      assert.is((await cli('put', `cl-${cl}`, cl, '--consistency', cl)).code, 0, cl)
      assert.is((await cli('get', `cl-${cl}`, '--consistency', cl)).stdout, cl)
    }),
  )
  assertOneLine(await cli('get', 'k', '--consistency', 'some'), /argument 'some' is invalid.*one, quorum, all/, 'bad --consistency')
})

test('server errors and an unreachable server: one line, exit 1', async () => {
  const port = await freePort()
  const [big, long, empty, down, noValue] = await Promise.all([
    runCli(['put', 'big', '-', '--server', url], { input: Buffer.alloc(5000) }),
    cli('put', 'k'.repeat(1025), 'v'),
    cli('get', ''),
    runCli(['get', 'k', '--server', `http://127.0.0.1:${port}`]),
    runCli(['put', 'only-key']),
  ])
  assertOneLine(big, /^ringkv: VALUE_TOO_LARGE: .*4096 bytes/, 'a value over --max-value-bytes')
  assert.is(big.code, 1)
  assertOneLine(long, /^ringkv: KEY_TOO_LARGE: /, 'a 1025-byte key')
  assertOneLine(empty, /^ringkv: BAD_REQUEST: the key is empty/, 'an empty key')
  assertOneLine(down, new RegExp(`^ringkv: UNREACHABLE: cannot reach http://127\\.0\\.0\\.1:${port}.*ECONNREFUSED.*is the node running`), 'no node there')
  assert.is(down.code, 1)
  assertOneLine(noValue, /missing required argument 'value'/, 'put without a value')
})

test('status: the node as a table, and as JSON', async () => {
  const s = await cli('status')
  assert.is(s.code, 0, s.stderr)
  assert.match(s.stdout, /^Replication factor: 1\n/)
  const row = s.stdout.split('\n').find((l) => l.includes(' n1 '))
  assert.ok(row, `a row for n1 in:\n${s.stdout}`)
  for (const cell of [url.replace('http://', ''), 'AVAILABLE', 'UP', '100.0%']) assert.ok(row!.includes(cell), `${cell} in ${row}`)
  for (const head of ['Name', 'Address', 'State', 'Up', 'Owns', 'Load']) assert.ok(s.stdout.includes(head), head)
  const j = await cli('status', '--json')
  const c = JSON.parse(j.stdout)
  assert.is(c.replicationFactor, 1)
  assert.is(c.nodes[0].name, 'n1')
})

test('RINGKV_SERVER chooses the node when --server is not given', async () => {
  assert.is((await runCli(['put', 'via-env', 'yes'], { env: { RINGKV_SERVER: url } })).code, 0)
  const g = await runCli(['get', 'via-env'], { env: { RINGKV_SERVER: url } })
  assert.is(g.stdout, 'yes')
})

test.run()
