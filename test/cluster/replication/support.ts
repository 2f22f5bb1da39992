/**
 * What the replication cluster tests share: a peer-port probe that reads one node's own copy
 * of a key (not a coordinated read, which may forward or repair), metric scraping, and
 * helpers for expected API errors.
 */
import * as assert from 'uvu/assert'
import { ApiError, call, check } from '../../../node/client/http.js'
import { createLogger } from '../../../node/log.js'
import { Ring } from '../../../node/ring/ring.js'
import { decodeRecord } from '../../../node/storage/codec.js'
import type { StoredRecord } from '../../../node/storage/record.js'
import { PeerClient } from '../../../node/transport/index.js'
import { sameVersion } from '../../../node/replication/coordinator.js'
import type { VersionVector } from '../../../node/replication/version.js'
import { TestCluster, waitFor, type ClusterOptions, type TestNode } from '../../helpers/cluster.js'

/**
 * Reads a node's local record over the authenticated peer transport with the same
 * `replica.read` message coordinators use, so what it returns is exactly what that replica
 * would answer a coordinator — no forwarding, no read repair.
 */
export class ReplicaProbe {
  private readonly client: PeerClient

  constructor(token: string | undefined) {
    this.client = new PeerClient({ hostId: 'test-probe', logger: createLogger('silent'), clusterToken: token, backoffMinMs: 10, backoffMaxMs: 200 })
  }

  async read(node: TestNode, key: string): Promise<StoredRecord | undefined> {
    const r = await this.client.request<{ rec?: Buffer }>(node.peerAddress, 'replica.read', { key: Buffer.from(key) }, { timeoutMs: 5000 })
    return r.rec ? decodeRecord(r.rec) : undefined
  }

  /** Each running node's copy of `key`, by node name. */
  async readAll(nodes: TestNode[], key: string): Promise<Map<string, StoredRecord | undefined>> {
    const out = new Map<string, StoredRecord | undefined>()
    await Promise.all(nodes.map(async (n) => out.set(n.spec.name, await this.read(n, key))))
    return out
  }

  close(): void {
    this.client.close()
  }
}

/** The value of a counter or gauge in a node's Prometheus text (summed over label sets). */
export async function metric(node: TestNode, name: string): Promise<number> {
  const r = check(await call(`${node.clientUrl}/metrics`), [200])
  let sum = 0
  let seen = false
  for (const line of r.body.toString('utf8').split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line)
    if (m && (m[1] === name || m[1] === `${name}_total`)) {
      sum += Number(m[2])
      seen = true
    }
  }
  return seen ? sum : 0
}

/** Awaits `p`, which must fail with an ApiError of one of `statuses`; returns it. */
export async function apiError(p: Promise<unknown>, statuses: number[], what: string): Promise<ApiError> {
  try {
    await p
  } catch (e) {
    if (!(e instanceof ApiError)) throw e
    assert.ok(statuses.includes(e.status), `${what}: status ${e.status} (${e.code}: ${e.message}) is not one of ${statuses.join(', ')}`)
    assert.ok(/^[A-Z_]+$/.test(e.code) && !e.code.startsWith('HTTP_'), `${what}: error code ${e.code} is not a stable code`)
    return e
  }
  assert.unreachable(`${what}: expected ${statuses.join('/')}, the call succeeded`)
  throw new Error('unreachable')
}

/** The ring as node `n` reports it (each member's tokens from its own /admin/status). */
export async function ringOf(cluster: TestCluster, nodes: TestNode[]): Promise<{ ring: Ring; hostIds: Map<string, string> }> {
  const owners: [string, bigint[]][] = []
  const hostIds = new Map<string, string>()
  for (const n of nodes) {
    const s = await cluster.admin(n).status()
    const view = await n.kv.node()
    hostIds.set(view.hostId, n.spec.name)
    owners.push([view.hostId, s.tokens.map((t) => BigInt(t))])
  }
  return { ring: Ring.fromOwners(owners), hostIds }
}

/** Whether two replicas hold the same version of a key (both absent counts). */
export function sameRecord(a: StoredRecord | undefined, b: StoredRecord | undefined): boolean {
  if (!a || !b) return a === b
  return sameVersion(a, b) && a.value.equals(b.value) && a.contentType === b.contentType
}

export function describe(rec: StoredRecord | undefined): string {
  if (!rec) return 'absent'
  return `${rec.tombstone ? 'tombstone' : JSON.stringify(rec.value.toString('utf8').slice(0, 40))} vv=${JSON.stringify(rec.vv)} ts=${rec.ts.wall}.${rec.ts.logical}@${rec.ts.node}`
}

/** Cluster tests need generous timeouts on a loaded 2-core machine, but every one is bounded. */
export const SLOW = { readyMs: 90_000, convergeMs: 30_000 }

/** A cluster whose every node is ready and whose gossip has converged (all rings alike). */
export async function startCluster(opts: ClusterOptions): Promise<TestCluster> {
  const cluster = await TestCluster.start({ ...opts, wait: false })
  try {
    await Promise.all(cluster.nodes.map((n) => n.ready(SLOW.readyMs)))
    await cluster.converged(SLOW.convergeMs)
  } catch (e) {
    await cluster.destroy()
    throw e
  }
  return cluster
}

/** The version vector an ETag carries (the API's ETag is the vector's JSON, base64url). */
export function vvOfEtag(etag: string): VersionVector {
  return JSON.parse(Buffer.from(etag.replace(/^W\//, '').replace(/"/g, ''), 'base64url').toString('utf8'))
}

/**
 * Waits until no running node of `nodes` (default: all) holds hints (with a 1 ms hint window:
 * until the expired ones are dropped).
 */
export async function hintsGone(cluster: TestCluster, timeoutMs = 15_000, nodes: TestNode[] = cluster.nodes): Promise<void> {
  await waitFor('no hints left on any running node', async () => {
    for (const n of nodes.filter((x) => x.running)) if ((await cluster.admin(n).status()).hintsPending !== 0) return false
    return true
  }, timeoutMs, 200)
}

/**
 * Kills `down` with SIGKILL, runs `fn` against the rest, restarts them and waits until the
 * cluster has converged and no hints are left (with a 1 ms hint window the hints expire, so
 * the returning nodes really missed what `fn` wrote).
 */
export async function whileDown(cluster: TestCluster, down: TestNode[], fn: () => Promise<void>): Promise<void> {
  await Promise.all(down.map((n) => n.kill9()))
  try {
    await fn()
  } finally {
    // Back even when fn failed: later tests of the file need the whole cluster.
    for (const n of down) n.start()
    await Promise.all(down.map((n) => n.ready(SLOW.readyMs)))
  }
  await cluster.converged(SLOW.convergeMs)
  await hintsGone(cluster)
}
