/**
 * Node states (design §3.3) and the per-node facts a ring is built from.
 *
 * Public API:
 *   type NodeState = 'JOINING' | 'BOOTSTRAPPING' | 'AVAILABLE' | 'LEAVING' | 'LEFT'
 *   NODE_STATES: readonly NodeState[]
 *   isNodeState(s: string): s is NodeState
 *   interface Member { tokens: readonly bigint[]; state: NodeState; address: string }
 *   ownsInCurrent(state) / ownsInFuture(state): which states' tokens count as owners
 */
export type NodeState = 'JOINING' | 'BOOTSTRAPPING' | 'AVAILABLE' | 'LEAVING' | 'LEFT'

export const NODE_STATES: readonly NodeState[] = ['JOINING', 'BOOTSTRAPPING', 'AVAILABLE', 'LEAVING', 'LEFT']

export function isNodeState(s: string): s is NodeState {
  return (NODE_STATES as readonly string[]).includes(s)
}

export interface Member {
  readonly tokens: readonly bigint[]
  readonly state: NodeState
  readonly address: string
}

/** The ring that serves reads and writes now: a LEAVING node still owns until it is LEFT. */
export function ownsInCurrent(state: NodeState): boolean {
  return state === 'AVAILABLE' || state === 'LEAVING'
}

/** The ring once every pending move is done: bootstrappers arrive, leavers are gone. */
export function ownsInFuture(state: NodeState): boolean {
  return state === 'AVAILABLE' || state === 'BOOTSTRAPPING'
}
