/**
 * `ringkv node` start-up errors: each is one line on stderr that says what to do, with a
 * non-zero exit, and fast. And every flag can come from RINGKV_<FLAG>.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { freePort, MAIN, tempDir, TestNode } from '../../helpers/cluster.js'
import { assertError, assertOneLine, http, runCli } from './helpers.js'

const dir = tempDir('ringkv-startup-')
test.after(() => rmSync(dir, { recursive: true, force: true }))

async function nodeArgs(dataDir: string, extra: string[] = []): Promise<string[]> {
  return ['node', '--replication-factor', '1', '--data-dir', dataDir, '--listen', `127.0.0.1:${await freePort()}`, '--peer-listen', `127.0.0.1:${await freePort()}`, '--advertise', '127.0.0.1:1', '--log-level', 'warn', ...extra]
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(port, '127.0.0.1', () => resolve(s))
  })
}

test('a data dir that is, or is under, a regular file: one line naming the dir and what to do', async () => {
  const file = join(dir, 'a-file')
  writeFileSync(file, 'x')
  for (const dataDir of [join(file, 'data'), file]) {
    const r = await runCli(await nodeArgs(dataDir))
    assertOneLine(r, new RegExp(`data dir ${dataDir} cannot be a directory: it or a parent of it is a file .*remove the file or choose another --data-dir`), `data dir ${dataDir}`)
    assert.ok(r.ms < 10_000)
  }
})

test('a data dir the node’s user cannot write (mode 0500): one line, non-zero exit', async () => {
  const ro = join(dir, 'read-only')
  mkdirSync(ro)
  chmodSync(ro, 0o500)
  // root ignores modes, so as root the node runs as nobody (setpriv, util-linux).
  let prefix: string[] | undefined
  if (process.getuid?.() === 0) {
    const ok = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', '0']).status === 0
    if (!ok) {
      console.log('    skipped the 0500 case: running as root without setpriv to drop to nobody')
      return
    }
    prefix = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups']
  }
  for (const dataDir of [ro, join(ro, 'data')]) {
    const r = await runCli(await nodeArgs(dataDir), { prefix })
    assertOneLine(r, new RegExp(`data dir ${dataDir} is not writable \\(EACCES\\).*(permission|choose another --data-dir)`), `mode 0500: ${dataDir}`)
  }
  assert.not.ok(existsSync(join(ro, 'data')))
})

test('the client or peer port in use: one line naming the port and the flag', async () => {
  for (const flag of ['listen', 'peer-listen']) {
    const port = await freePort()
    const blocker = await occupy(port)
    try {
      const args = await nodeArgs(join(dir, `port-${flag}`))
      args[args.indexOf(`--${flag}`) + 1] = `127.0.0.1:${port}`
      const r = await runCli(args)
      assertOneLine(r, new RegExp(`port ${port} is already in use \\(--${flag} 127\\.0\\.0\\.1:${port}\\).*(stop the other process|choose another port)`), `${flag} in use`)
      assert.ok(r.ms < 10_000, `exited in ${r.ms.toFixed(0)} ms`)
    } finally {
      blocker.close()
    }
  }
  // The data dir was released: a node starts on it now.
  const r = await runCli([...(await nodeArgs(join(dir, 'port-listen'))), '--auto-join', 'false'], { timeoutMs: 3000 })
  assert.is(r.code, null, `the node ran until killed (stderr: ${r.stderr})`)
})

test('an unknown flag or command: one line, non-zero exit', async () => {
  const r = await runCli(['node', '--replication-factr', '1'])
  assertOneLine(r, /unknown option '--replication-factr'.*--help/, 'unknown flag')
  const c = await runCli(['nod'])
  assertOneLine(c, /unknown command 'nod'.*--help/, 'unknown command')
})

test('malformed flag values: one line each, naming the flag and a valid example or range', async () => {
  const cases: [string[], RegExp][] = [
    [['--listen', 'nope'], /--listen "nope" is not host:port \(for example/],
    [['--peer-listen', '127.0.0.1:99999'], /--peer-listen "127\.0\.0\.1:99999" is not host:port/],
    [['--advertise', 'host-without-port'], /--advertise "host-without-port" is not host:port/],
    [['--seeds', 'a:1,b'], /--seeds "b" is not host:port/],
    [['--replication-factor', '0'], /--replication-factor "0" must be an integer from 1 to/],
    [['--replication-factor', 'three'], /--replication-factor "three" must be an integer/],
    [['--num-tokens', '1.5'], /--num-tokens "1\.5" must be an integer/],
    [['--max-value-bytes', 'lots'], /--max-value-bytes "lots" is not a size/],
    [['--max-value-bytes', '0'], /--max-value-bytes .* between/],
    [['--durable', 'maybe'], /--durable "maybe" must be true or false/],
    [['--auto-join', 'perhaps'], /--auto-join "perhaps" must be true or false/],
    [['--request-timeout', 'soon'], /--request-timeout "soon" is not a duration/],
    [['--log-level', 'loud'], /--log-level "loud" must be one of/],
    [['--name', 'bad name!'], /--name "bad name!" must be/],
    [['--cluster-token-file', '/nonexistent/token'], /--cluster-token-file \/nonexistent\/token cannot be read/],
    [['--repair-interval', '20d'], /--tombstone-grace .* must be longer than --repair-interval/],
  ]
  // Four at a time: each is a node process that starts and refuses.
  for (let i = 0; i < cases.length; i += 4) {
    await Promise.all(
      cases.slice(i, i + 4).map(async ([flags, pattern]) => {
        const r = await runCli(await nodeArgs(join(dir, 'malformed'), flags))
        assertOneLine(r, pattern, flags.join(' '))
      }),
    )
  }
  assert.not.ok(existsSync(join(dir, 'malformed')), 'flags are checked before the data dir is touched')
})

test('RINGKV_* environment variables set every flag; a flag on the command line wins', async () => {
  const clientPort = await freePort()
  const peerPort = await freePort()
  const dataDir = join(dir, 'from-env')
  const env = {
    RINGKV_NAME: 'envnode',
    RINGKV_DATA_DIR: dataDir,
    RINGKV_LISTEN: `127.0.0.1:${clientPort}`,
    RINGKV_PEER_LISTEN: `127.0.0.1:${peerPort}`,
    RINGKV_ADVERTISE: `127.0.0.1:${peerPort}`,
    RINGKV_REPLICATION_FACTOR: '1',
    RINGKV_NUM_TOKENS: '5',
    RINGKV_MAX_VALUE_BYTES: '100',
    RINGKV_LOG_LEVEL: 'warn',
    RINGKV_SEEDS: '',
  }
  const n = new TestNode({ name: 'envnode', dataDir, clientPort, peerPort, seeds: [], rf: 1, env })
  // Only `node`: everything else comes from the environment.
  n.args = () => [MAIN, 'node']
  for (const k of Object.keys(process.env)) if (k.startsWith('RINGKV_')) delete process.env[k]
  n.start()
  try {
    await n.ready(30_000)
    const me = JSON.parse((await http(`${n.clientUrl}/v1/node`)).body.toString())
    assert.is(me.name, 'envnode')
    assert.is(me.tokens, 5)
    assert.is(me.address, `127.0.0.1:${peerPort}`)
    const c = JSON.parse((await http(`${n.clientUrl}/v1/cluster`)).body.toString())
    assert.is(c.replicationFactor, 1)
    assert.is((await http(`${n.clientUrl}/v1/kv/k`, { method: 'PUT', body: Buffer.alloc(100) })).status, 204)
    assertError(await http(`${n.clientUrl}/v1/kv/k`, { method: 'PUT', body: Buffer.alloc(101) }), 413, 'VALUE_TOO_LARGE', 'RINGKV_MAX_VALUE_BYTES=100')
    assert.ok(existsSync(join(dataDir, 'CURRENT')), 'RocksDB lives in RINGKV_DATA_DIR')
  } finally {
    await n.stop()
  }
  // A malformed value from the environment is reported like the flag.
  const bad = await runCli(['node'], { env: { ...env, RINGKV_REPLICATION_FACTOR: 'zero' } })
  assertOneLine(bad, /--replication-factor "zero" must be an integer/, 'RINGKV_REPLICATION_FACTOR=zero')
  // The command line overrides the environment.
  const over = await runCli(['node', '--replication-factor', '0'], { env })
  assertOneLine(over, /--replication-factor "0"/, 'flag over env')
  const port = await freePort()
  const n2 = new TestNode({ name: 'envnode', dataDir, clientPort: port, peerPort, seeds: [], rf: 1, env })
  n2.args = () => [MAIN, 'node', '--listen', `127.0.0.1:${port}`]
  n2.start()
  try {
    await n2.ready(30_000)
    assert.is((await http(`${n2.clientUrl}/v1/kv/k`)).body.length, 100, 'same data dir, from the environment')
    const self = JSON.parse((await http(`${n2.clientUrl}/v1/node`)).body.toString())
    assert.is(self.clientAddress, `127.0.0.1:${port}`, '--listen overrode RINGKV_LISTEN')
    assert.is(self.tokens, 5, 'the other RINGKV_* still apply')
  } finally {
    await n2.stop()
  }
})

test.run()
