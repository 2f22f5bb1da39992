import { readFileSync } from 'node:fs'
import { Option, type Command } from 'commander'
import cliProgress from 'cli-progress'
import { AdminClient, type AdminStatus } from '../client/admin-client.js'
import { ApiError } from '../client/http.js'
import { StartupError } from '../errors.js'
import { formatBytes } from './kv-commands.js'

type Op = 'join' | 'decommission' | 'cleanup' | 'repair' | 'drain'

/** When an operation counts as finished, from the node's own status. */
function finished(op: Op, s: AdminStatus, sawRunning: boolean): boolean {
  if (op === 'join') return s.state === 'AVAILABLE'
  if (op === 'decommission') return s.state === 'LEFT'
  if (s.operation && s.operation.type === op) return s.operation.phase === 'done' || s.operation.phase === 'failed'
  return sawRunning || !s.operation
}

export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('drive membership and maintenance through a node’s admin API')
  for (const op of ['join', 'decommission', 'cleanup', 'repair', 'drain'] as Op[]) {
    admin
      .command(op)
      .description(`${op} (waits with a progress bar until the node reports it finished)`)
      .addOption(new Option('--node <url>', 'the node’s peer/admin URL').env('RINGKV_NODE').default('http://127.0.0.1:7000'))
      .addOption(new Option('--cluster-token-file <file>', 'cluster token for the admin API').env('RINGKV_CLUSTER_TOKEN_FILE'))
      .option('--no-wait', 'return once the node accepted the request')
      .action(async (o: { node: string; clusterTokenFile?: string; wait: boolean }) => {
        const token = o.clusterTokenFile ? readFileSync(o.clusterTokenFile, 'utf8').trim() : undefined
        const client = new AdminClient(o.node, token)
        try {
          await client[op]()
          if (!o.wait) {
            process.stdout.write(`${op} accepted by ${o.node}\n`)
            return
          }
          await follow(client, op)
        } catch (e) {
          if (e instanceof ApiError) throw new StartupError(`${e.code}: ${e.message}`)
          throw e
        }
      })
  }
}

/** How long `follow` keeps polling a node that stopped answering before it gives up. */
const UNREACHABLE_GRACE_MS = 60_000

async function follow(client: AdminClient, op: Op): Promise<void> {
  const bar = new cliProgress.SingleBar({ format: `${op} [{bar}] {percentage}% | {value}/{total} ranges | {bytes} | {state}`, hideCursor: true, noTTYOutput: true, notTTYSchedule: 2000 }, cliProgress.Presets.shades_classic)
  bar.start(1, 0, { bytes: '0 B', state: '' })
  let sawRunning = false
  let failingSince = 0
  for (;;) {
    let s: AdminStatus
    try {
      s = await client.status()
      failingSince = 0
    } catch (e) {
      // A node restarting mid-bootstrap resumes it: keep following through a short outage.
      if (!(e instanceof ApiError) || e.code !== 'UNREACHABLE') throw e
      failingSince ||= Date.now()
      if (Date.now() - failingSince > UNREACHABLE_GRACE_MS) throw e
      bar.update({ state: 'unreachable, retrying' })
      await new Promise((r) => setTimeout(r, 1000))
      continue
    }
    const { rangesTotal, rangesDone, bytes } = s.streaming
    if (s.operation?.type === op && s.operation.phase !== 'done') sawRunning = true
    bar.setTotal(Math.max(1, rangesTotal))
    bar.update(rangesDone, { bytes: formatBytes(bytes), state: s.state })
    if (s.operation?.type === op && s.operation.phase === 'failed') {
      bar.stop()
      throw new StartupError(`${op} failed: ${s.operation.error ?? 'see the node log'}`)
    }
    if (finished(op, s, sawRunning)) {
      bar.update(Math.max(1, rangesTotal), { state: s.state })
      bar.stop()
      process.stdout.write(`${op} finished: node ${s.name} is ${s.state}\n`)
      return
    }
    await new Promise((r) => setTimeout(r, 500))
  }
}
