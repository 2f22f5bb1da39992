/**
 * A small network of Linux network namespaces for partition tests: one namespace per node,
 * one for the test itself, and a "switch" namespace with two bridges — a client network
 * (10.91.1.0/24, client API) and a peer network (10.91.2.0/24, gossip, replication, admin).
 * Cutting a node's port on the peer bridge partitions it from its peers while clients (the
 * test) still reach its client API, so both sides of a partition can be observed.
 *
 * Everything lives in namespaces this helper creates; the host's own namespace gets no
 * interface and no address. The test file re-runs itself inside the test namespace
 * (`enterNetLab`), so its HTTP client and the nodes it spawns see only the lab network.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ENV = 'RINGKV_NETLAB'

export interface LabNode {
  ns: string
  clientIp: string
  peerIp: string
}

export interface NetLab {
  prefix: string
  testNs: string
  nodes: LabNode[]
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })

/** Why namespaces cannot be made here, or undefined when they can. */
export function netLabUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (ip netns add)'
  const probe = `rkprobe${process.pid}`
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' })
  if (r.error) return `the ip command (iproute2) is not installed: ${r.error.message}`
  if (r.status !== 0) return `ip netns add failed: ${r.stderr.trim()}`
  spawnSync('ip', ['netns', 'del', probe])
  return undefined
}

/** Namespaces of labs whose creating process is gone (killed before it could clean up). */
function sweepStale(): void {
  let names: string[] = []
  try {
    names = readdirSync('/var/run/netns')
  } catch {
    return
  }
  for (const n of names) {
    const m = /^rk(\d+)-/.exec(n)
    if (!m) continue
    try {
      process.kill(Number(m[1]), 0)
    } catch {
      spawnSync('ip', ['netns', 'del', n])
    }
  }
}

function create(nodes: number): NetLab {
  sweepStale()
  const prefix = `rk${process.pid}`
  const sw = `${prefix}-sw`
  const lab: NetLab = { prefix, testNs: `${prefix}-t`, nodes: [] }
  const up = (ns: string, dev: string) => ip('-n', ns, 'link', 'set', dev, 'up')
  ip('netns', 'add', sw)
  up(sw, 'lo')
  for (const br of ['brc', 'brp']) {
    ip('-n', sw, 'link', 'add', br, 'type', 'bridge')
    up(sw, br)
  }
  // One leg per network: `<kind><index>` in the switch, eth-c / eth-p inside the host.
  const attach = (ns: string, host: number) => {
    for (const [kind, net] of [['c', 1], ['p', 2]] as const) {
      const port = `${kind}${host}`
      ip('-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', `eth-${kind}`, 'netns', ns)
      ip('-n', sw, 'link', 'set', port, 'master', `br${kind}`)
      up(sw, port)
      ip('-n', ns, 'addr', 'add', `10.91.${net}.${host}/24`, 'dev', `eth-${kind}`)
      up(ns, `eth-${kind}`)
    }
  }
  const addHost = (ns: string, host: number) => {
    ip('netns', 'add', ns)
    up(ns, 'lo')
    attach(ns, host)
  }
  addHost(lab.testNs, 100)
  for (let i = 1; i <= nodes; i++) {
    const ns = `${prefix}-n${i}`
    addHost(ns, i)
    lab.nodes.push({ ns, clientIp: `10.91.1.${i}`, peerIp: `10.91.2.${i}` })
  }
  return lab
}

function destroy(lab: NetLab): void {
  for (const ns of [lab.testNs, ...lab.nodes.map((n) => n.ns), `${lab.prefix}-sw`]) spawnSync('ip', ['netns', 'del', ns])
}

/** Partitions node `i` (0-based) from every peer: its port on the peer bridge goes down. */
export function isolate(lab: NetLab, i: number): void {
  ip('-n', `${lab.prefix}-sw`, 'link', 'set', `p${i + 1}`, 'down')
}

export function heal(lab: NetLab, i: number): void {
  ip('-n', `${lab.prefix}-sw`, 'link', 'set', `p${i + 1}`, 'up')
}

/**
 * In the test namespace: returns the lab. Outside it: builds the lab, runs this same test file
 * inside it, tears the lab down and exits with the inner run's code — or, where namespaces
 * cannot be made, prints why the file is skipped and returns undefined.
 */
export async function enterNetLab(nodes: number, testFile: string): Promise<NetLab | undefined> {
  const inner = process.env[ENV]
  if (inner) return JSON.parse(inner) as NetLab
  const why = netLabUnavailable()
  if (why) {
    console.log(`SKIPPED network-namespace partition tests: ${why}.`)
    return undefined
  }
  const lab = create(nodes)
  let code: number
  try {
    const child = spawn('ip', ['netns', 'exec', lab.testNs, process.execPath, fileURLToPath(testFile)], {
      stdio: 'inherit',
      env: { ...process.env, [ENV]: JSON.stringify(lab) },
    })
    const stop = () => child.kill('SIGTERM')
    process.once('SIGINT', stop).once('SIGTERM', stop)
    code = await new Promise<number>((r) => child.once('exit', (c, sig) => r(c ?? (sig ? 1 : 0))))
  } finally {
    destroy(lab)
  }
  process.exit(code)
}

/** The command prefix that runs a program inside `ns`. */
export const inNamespace = (ns: string): string[] => ['ip', 'netns', 'exec', ns]
