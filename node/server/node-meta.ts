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
