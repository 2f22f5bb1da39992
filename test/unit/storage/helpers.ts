import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import type { StoredRecord } from '../../../node/storage/record.js'
import { Store } from '../../../node/storage/store.js'
import { StartupError } from '../../../node/errors.js'

const made: string[] = []

/** A fresh directory under the OS temp dir, removed by cleanupDirs(). */
export function tempDir(label: string): string {
  const d = mkdtempSync(join(tmpdir(), `ringkv-storage-${label}-`))
  made.push(d)
  return d
}

export function cleanupDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
}

export function record(value: string, vv: Record<string, number> = { n1: 1 }, wall = 1_700_000_000_000): StoredRecord {
  return { value: Buffer.from(value), contentType: 'text/plain', vv, ts: { wall, logical: 0, node: Object.keys(vv)[0] ?? 'n1' }, tombstone: false }
}

/** Where the compiled store-child.js helper is, next to the compiled tests. */
export const STORE_CHILD = new URL('./store-child.js', import.meta.url).pathname

export const inUseMessage = (dir: string) =>
  `data dir ${dir} is already in use by another ringkv node (RocksDB LOCK held); stop that node or choose another --data-dir`

/** Store.open(dir) must fail with a StartupError saying exactly `message`. */
export async function assertOpenFails(dir: string, message: string): Promise<void> {
  let opened: Store | undefined
  try {
    opened = await Store.open(dir, { durable: false })
  } catch (e) {
    assert.instance(e, StartupError)
    assert.is((e as Error).message, message)
    return
  }
  await opened.close()
  assert.unreachable(`opened ${dir}`)
}
