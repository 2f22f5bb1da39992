/**
 * A separate process holding a Store, for tests that need a real second process:
 *   node store-child.js write <dir> <durable 1|0>  writes k0, k1, … (8 at a time), printing
 *                                                 "ack <i>" once each write has resolved
 *   node store-child.js hold <dir>                 opens the store, prints "ready", waits
 *   node store-child.js open <dir>                 opens and closes; prints the outcome as JSON
 * It exits when its stdin closes, so it never outlives the test that started it.
 */
import { Store } from '../../../node/storage/store.js'
import { record } from './helpers.js'

const [mode, dir, durableArg] = process.argv.slice(2)
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()

const MAX_WRITES = 50_000

if (mode === 'open') {
  try {
    const s = await Store.open(dir!, { durable: false })
    await s.close()
    console.log(JSON.stringify({ ok: true }))
  } catch (e) {
    console.log(JSON.stringify({ ok: false, name: (e as Error).name, message: (e as Error).message }))
  }
  process.exit(0)
}

const store = await Store.open(dir!, { durable: durableArg === '1' })
console.log(`ready ${store.hostId()}`)

if (mode === 'write') {
  let next = 0
  const writer = async () => {
    while (next < MAX_WRITES) {
      const i = next++
      await store.apply(Buffer.from(`k${i}`), record(`v${i}`))
      // stdout to a pipe is synchronous on Linux: once this returns, the parent can read it
      process.stdout.write(`ack ${i}\n`)
    }
  }
  await Promise.all(Array.from({ length: 8 }, writer))
  await store.close()
  console.log('done')
  process.exit(0)
}
