import { Option, type Command } from 'commander'
import { buildNodeConfig, type RawNodeOptions } from '../config/node-config.js'

/** Every node flag, each also readable from RINGKV_<FLAG> (design §3.1). */
export const NODE_OPTIONS: [flags: string, description: string, def?: string][] = [
  ['--name <name>', 'node name (default: hostname)'],
  ['--data-dir <dir>', 'where RocksDB keeps this node’s data (default: ./data/<name>)'],
  ['--listen <host:port>', 'client API address', '0.0.0.0:8080'],
  ['--peer-listen <host:port>', 'peer RPC + admin API address', '0.0.0.0:7000'],
  ['--advertise <host:port>', 'address peers use to reach this node’s peer port (default: hostname + peer port)'],
  ['--seeds <list>', 'comma-separated host:port seeds; a DNS name counts once per address it resolves to'],
  ['--replication-factor <n>', 'replicas per key', '3'],
  ['--num-tokens <n>', 'tokens (virtual nodes) per node', '16'],
  ['--cluster-token-file <file>', 'file holding the shared secret that authenticates peers and admin calls'],
  ['--auto-join <bool>', 'join the ring at start; false waits for POST /admin/join', 'true'],
  ['--max-value-bytes <size>', 'largest value accepted', '1MiB'],
  ['--durable <bool>', 'fsync the write-ahead log before acknowledging (group commit)', 'false'],
  ['--log-level <level>', 'fatal|error|warn|info|debug|trace|silent', 'info'],
  ['--request-timeout <duration>', 'how long a coordinator waits for replicas', '5s'],
  ['--gossip-interval <duration>', 'gossip round interval', '1s'],
  ['--hint-window <duration>', 'how long hints for a down replica are kept', '3h'],
  ['--repair-interval <duration>', 'background anti-entropy repair interval', '1h'],
  ['--tombstone-grace <duration>', 'age after which tombstones may be purged; must exceed --repair-interval', '10d'],
]

export function envName(flags: string): string {
  const long = /--([a-z-]+)/.exec(flags)![1]!
  return `RINGKV_${long.replace(/-/g, '_').toUpperCase()}`
}

export function registerNodeCommand(program: Command): void {
  const cmd = program.command('node').description('run one storage node')
  for (const [flags, description, def] of NODE_OPTIONS) {
    const opt = new Option(flags, description).env(envName(flags))
    if (def !== undefined) opt.default(def)
    cmd.addOption(opt)
  }
  cmd.action(async (opts: RawNodeOptions) => {
    const config = buildNodeConfig(opts)
    const { runNode } = await import('../server/run.js')
    await runNode(config)
  })
}
