import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Range } from '../../../node/ring/range.js'
import { TOKEN_MAX } from '../../../node/ring/token.js'
import { reconcile, type Action, type LocalEntry, type RemoteEntry } from '../../../node/streaming/reconcile.js'

const d = (s: string) => Buffer.from(s.padEnd(16, '.'))

function local(entries: [bigint, string, string][]): LocalEntry[] {
  return entries.map(([token, key, v]) => ({ token, key: Buffer.from(key), raw: Buffer.from(v), digest: d(v) }))
}
function remote(entries: [bigint, string, string][]): RemoteEntry[] {
  return entries.map(([token, key, v]) => ({ token, key: Buffer.from(key), digest: d(v) }))
}
async function* iter<T>(xs: T[], onDone?: () => void): AsyncGenerator<T> {
  try {
    for (const x of xs) yield x
  } finally {
    onDone?.()
  }
}
async function run(range: Range, l: LocalEntry[], r: RemoteEntry[]): Promise<string[]> {
  const out: string[] = []
  for await (const a of reconcile(range, iter(l), iter(r))) out.push(show(a))
  return out
}
const show = (a: Action) => (a.kind === 'pull' ? `pull ${a.key}` : `push ${a.key}=${a.raw}`)

test('only differing keys: missing here pulled, missing there pushed, different both ways', async () => {
  const range: Range = { start: 0n, end: 100n }
  const l = local([[1n, 'a', 'v1'], [2n, 'b', 'v1'], [5n, 'd', 'v1'], [5n, 'e', 'v1'], [9n, 'g', 'v1']])
  const r = remote([[1n, 'a', 'v1'], [3n, 'c', 'v1'], [5n, 'e', 'v2'], [5n, 'f', 'v1'], [9n, 'g', 'v1']])
  assert.equal(await run(range, l, r), ['push b=v1', 'pull c', 'push d=v1', 'pull e', 'push e=v1', 'pull f'])
})

test('wrapping ranges are ordered by offset from their start, not by token', async () => {
  const range: Range = { start: TOKEN_MAX - 10n, end: 10n }
  const l = local([[TOKEN_MAX - 5n, 'hi', 'x'], [3n, 'lo', 'x']])
  const r = remote([[TOKEN_MAX - 1n, 'hi2', 'x'], [3n, 'lo', 'x']])
  assert.equal(await run(range, l, r), ['push hi=x', 'pull hi2'])
})

test('identical sides yield nothing; one empty side moves everything', async () => {
  const range: Range = { start: 0n, end: 0n }
  const xs: [bigint, string, string][] = [[1n, 'a', '1'], [7n, 'b', '2']]
  assert.equal(await run(range, local(xs), remote(xs)), [])
  assert.equal(await run(range, local(xs), []), ['push a=1', 'push b=2'])
  assert.equal(await run(range, [], remote(xs)), ['pull a', 'pull b'])
})

test('stopping early releases both sides', async () => {
  let released = 0
  const gen = reconcile({ start: 0n, end: 0n }, iter(local([[1n, 'a', '1'], [2n, 'b', '1']]), () => released++), iter(remote([[3n, 'c', '1']]), () => released++))
  for await (const _ of gen) break
  assert.is(released, 2)
})

test.run()
