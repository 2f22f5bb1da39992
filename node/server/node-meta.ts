import { type EndpointDelta, encodeGossipMessage, type GossipMessage, parseGossipMessage } from '../gossip/messages.js'
import type { NodeState } from '../ring/state.js'
import type { Store } from '../storage/store.js'

/** What a node must remember across restarts about its place in the ring. */
export interface PersistedNode {
  state: NodeState
  tokens: string[]
  generation: number
  /** host id of the dead member this node replaces (replace.ts) */
  replaces?: string
}

const KEY = 'node'

export async function loadNodeMeta(store: Store): Promise<PersistedNode | undefined> {
  const b = await store.getMeta(KEY)
  return b ? (JSON.parse(b.toString('utf8')) as PersistedNode) : undefined
}

/** Durable (fsynced) before it is gossiped: a node never announces what it could forget. */
export async function saveNodeMeta(store: Store, m: PersistedNode): Promise<void> {
  await store.putMeta(KEY, Buffer.from(JSON.stringify(m)))
}

/** Generations must grow across restarts of one host id, even if the wall clock went back. */
export function nextGeneration(prev: number | undefined, nowMs: number): number {
  return Math.max(Math.floor(nowMs / 1000), (prev ?? 0) + 1)
}

const PEERS_KEY = 'peers'

/**
 * Peers as gossip last knew them (Gossiper.snapshot): a whole-cluster restart must not forget
 * a member that is down at the time (see gossiper.ts, "Restart"). Stored as a gossip ack2 so
 * the network's validating parser checks it on the way back in; an unreadable copy is
 * reported and ignored (gossip rebuilds the table from the seeds).
 */
export async function loadPeers(store: Store, cluster: string): Promise<EndpointDelta[]> {
  const b = await store.getMeta(PEERS_KEY)
  if (!b) return []
  const msg = parseGossipMessage(JSON.parse(b.toString('utf8')))
  if (msg.type !== 'ack2' || msg.cluster !== cluster) return []
  return msg.deltas
}

export async function savePeers(store: Store, cluster: string, deltas: EndpointDelta[]): Promise<void> {
  const msg: GossipMessage = { type: 'ack2', cluster, deltas }
  await store.putMeta(PEERS_KEY, encodeGossipMessage(msg))
}
