import { hostname } from 'node:os'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { z } from 'zod'
import { StartupError } from '../errors.js'

/** Everything a node needs to start, validated. Built from flags and RINGKV_* env by the CLI. */
export interface NodeConfig {
  name: string
  dataDir: string
  listen: HostPort
  peerListen: HostPort
  /** host:port peers dial for this node's peer port */
  advertise: string
  /** seed entries as given; DNS names are expanded at runtime */
  seeds: string[]
  replicationFactor: number
  numTokens: number
  clusterToken?: string
  autoJoin: boolean
  maxValueBytes: number
  durable: boolean
  logLevel: string
  requestTimeoutMs: number
  gossipIntervalMs: number
  hintWindowMs: number
  repairIntervalMs: number
  tombstoneGraceMs: number
}

export interface HostPort {
  host: string
  port: number
}

/** Raw option values as commander hands them over (strings, or the declared defaults). */
export interface RawNodeOptions {
  name?: string
  dataDir?: string
  listen: string
  peerListen: string
  advertise?: string
  seeds?: string
  replicationFactor: string
  numTokens: string
  clusterTokenFile?: string
  autoJoin: string | boolean
  maxValueBytes: string
  durable: string | boolean
  logLevel: string
  requestTimeout: string
  gossipInterval: string
  hintWindow: string
  repairInterval: string
  tombstoneGrace: string
}

export function parseHostPort(flag: string, value: string): HostPort {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(value.trim())
  const port = m ? Number(m[2]) : NaN
  if (!m || port < 0 || port > 65535) {
    throw new StartupError(`--${flag} "${value}" is not host:port (for example 0.0.0.0:8080)`)
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port }
}

function int(flag: string, value: string, min: number, max: number): number {
  const r = z.coerce.number().int().min(min).max(max).safeParse(value)
  if (!r.success) throw new StartupError(`--${flag} "${value}" must be an integer from ${min} to ${max}`)
  return r.data
}

export function parseBool(flag: string, value: string | boolean): boolean {
  if (typeof value === 'boolean') return value
  const v = value.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(v)) return true
  if (['false', '0', 'no', 'off'].includes(v)) return false
  throw new StartupError(`--${flag} "${value}" must be true or false`)
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** "500ms", "10s", "3h", "10d" or a bare number of ms. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim())
  if (!m) throw new StartupError(`--${flag} "${value}" is not a duration (for example 500ms, 10s, 3h)`)
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!)
}

/** "1048576", "64KiB", "1MiB", "1MB". */
export function parseBytes(flag: string, value: string): number {
  const m = /^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB|K|M|G)?$/i.exec(value.trim())
  if (!m) throw new StartupError(`--${flag} "${value}" is not a size (for example 1048576 or 1MiB)`)
  const mult: Record<string, number> = { b: 1, kib: 1024, k: 1024, kb: 1000, mib: 1 << 20, m: 1 << 20, mb: 1e6, gib: 1 << 30, g: 1 << 30, gb: 1e9 }
  return Number(m[1]) * mult[(m[2] ?? 'b').toLowerCase()]!
}

function advertiseDefault(peer: HostPort): string {
  const host = peer.host === '0.0.0.0' || peer.host === '::' ? hostname() : peer.host
  return `${host}:${peer.port}`
}

export function buildNodeConfig(o: RawNodeOptions): NodeConfig {
  const name = (o.name ?? hostname()).trim()
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(name)) {
    throw new StartupError(`--name "${name}" must be 1-253 letters, digits, '.', '_' or '-'`)
  }
  const listen = parseHostPort('listen', o.listen)
  const peerListen = parseHostPort('peer-listen', o.peerListen)
  const advertise = o.advertise?.trim() || advertiseDefault(peerListen)
  parseHostPort('advertise', advertise)
  const seeds = (o.seeds ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  for (const s of seeds) parseHostPort('seeds', s)
  let clusterToken: string | undefined
  if (o.clusterTokenFile) {
    try {
      clusterToken = readFileSync(o.clusterTokenFile, 'utf8').trim()
    } catch (e) {
      throw new StartupError(`--cluster-token-file ${o.clusterTokenFile} cannot be read (${(e as Error).message}); point it at a file holding the shared cluster token`)
    }
    if (!clusterToken) throw new StartupError(`--cluster-token-file ${o.clusterTokenFile} is empty; put the shared cluster token in it`)
  }
  const cfg: NodeConfig = {
    name,
    dataDir: resolve(o.dataDir ?? `./data/${name}`),
    listen,
    peerListen,
    advertise,
    seeds,
    replicationFactor: int('replication-factor', o.replicationFactor, 1, 15),
    numTokens: int('num-tokens', o.numTokens, 1, 1024),
    autoJoin: parseBool('auto-join', o.autoJoin),
    maxValueBytes: parseBytes('max-value-bytes', o.maxValueBytes),
    durable: parseBool('durable', o.durable),
    logLevel: o.logLevel,
    requestTimeoutMs: parseDuration('request-timeout', o.requestTimeout),
    gossipIntervalMs: parseDuration('gossip-interval', o.gossipInterval),
    hintWindowMs: parseDuration('hint-window', o.hintWindow),
    repairIntervalMs: parseDuration('repair-interval', o.repairInterval),
    tombstoneGraceMs: parseDuration('tombstone-grace', o.tombstoneGrace),
  }
  if (clusterToken !== undefined) cfg.clusterToken = clusterToken
  if (cfg.maxValueBytes < 1 || cfg.maxValueBytes > 64 * 1024 * 1024) {
    throw new StartupError(`--max-value-bytes must be between 1 byte and 64MiB`)
  }
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(cfg.logLevel)) {
    throw new StartupError(`--log-level "${cfg.logLevel}" must be one of fatal, error, warn, info, debug, trace, silent`)
  }
  if (cfg.tombstoneGraceMs <= cfg.repairIntervalMs) {
    // Purging a tombstone before every replica has had a repair chance resurrects deleted data.
    throw new StartupError(`--tombstone-grace (${o.tombstoneGrace}) must be longer than --repair-interval (${o.repairInterval}), or deleted data can come back`)
  }
  return cfg
}
