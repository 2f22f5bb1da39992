import { Option, type Command } from 'commander'
import Table from 'cli-table3'
import { ApiError } from '../client/http.js'
import { KvClient } from '../client/kv-client.js'
import type { Consistency } from '../api/service.js'
import { StartupError } from '../errors.js'

const serverOption = () => new Option('--server <url>', 'a node’s client URL').env('RINGKV_SERVER').default('http://127.0.0.1:8080')
const clOption = () => new Option('--consistency <level>', 'one|quorum|all').choices(['one', 'quorum', 'all']).default('quorum')

/** Runs a client call, turning API errors into one line and a non-zero exit. */
async function guarded(fn: () => Promise<void>): Promise<void> {
  try {
    await fn()
  } catch (e) {
    if (e instanceof ApiError) throw new StartupError(`${e.code}: ${e.message}`, e.status === 404 ? 2 : 1)
    throw e
  }
}

export function registerKvCommands(program: Command): void {
  program
    .command('put <key> <value>')
    .description('store VALUE under KEY (value "-" reads stdin)')
    .addOption(serverOption())
    .addOption(clOption())
    .option('--content-type <type>', 'Content-Type stored with the value', 'text/plain; charset=utf-8')
    .action((key: string, value: string, o: { server: string; consistency: Consistency; contentType: string }) =>
      guarded(async () => {
        const body = value === '-' ? await readStdin() : Buffer.from(value)
        const etag = await new KvClient(o.server).put(key, body, { consistency: o.consistency, contentType: o.contentType })
        process.stdout.write(`OK ${etag}\n`)
      }),
    )
  program
    .command('get <key>')
    .description('print the value stored under KEY (exit 2 if absent)')
    .addOption(serverOption())
    .addOption(clOption())
    .action((key: string, o: { server: string; consistency: Consistency }) =>
      guarded(async () => {
        const r = await new KvClient(o.server).get(key, { consistency: o.consistency })
        if (!r) throw new StartupError(`NOT_FOUND: no value is stored under "${key}"`, 2)
        process.stdout.write(r.value)
        if (process.stdout.isTTY && !r.value.toString('utf8').endsWith('\n')) process.stdout.write('\n')
      }),
    )
  program
    .command('del <key>')
    .description('delete KEY (writes a tombstone)')
    .addOption(serverOption())
    .addOption(clOption())
    .action((key: string, o: { server: string; consistency: Consistency }) =>
      guarded(async () => {
        await new KvClient(o.server).del(key, { consistency: o.consistency })
        process.stdout.write('OK\n')
      }),
    )
  program
    .command('status')
    .description('the cluster as a table of nodes (like nodetool status)')
    .addOption(serverOption())
    .option('--json', 'print the raw JSON')
    .action((o: { server: string; json?: boolean }) =>
      guarded(async () => {
        const c = await new KvClient(o.server).cluster()
        if (o.json) {
          process.stdout.write(JSON.stringify(c, null, 2) + '\n')
          return
        }
        const t = new Table({ head: ['Name', 'Address', 'State', 'Up', 'Owns', 'Load', 'Host ID'], style: { head: [], border: [] } })
        for (const n of c.nodes) {
          t.push([n.name, n.clientAddress ?? n.address, n.state, n.up ? 'UP' : 'DOWN', `${(n.ownership * 100).toFixed(1)}%`, formatBytes(n.load), n.hostId.slice(0, 8)])
        }
        process.stdout.write(`Replication factor: ${c.replicationFactor}\n${t.toString()}\n`)
      }),
    )
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(1)} ${units[i]}`
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}
