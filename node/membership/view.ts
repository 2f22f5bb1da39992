import type { Topology } from '../replication/coordinator.js'
import { Ring } from '../ring/ring.js'
import type { Member, NodeState } from '../ring/state.js'
import { tokenOf } from '../ring/token.js'
import { applyReplacements } from './replace.js'

/** What this node knows of one member, merged from gossip and the failure detector. */
export interface MemberInfo extends Member {
  readonly hostId: string
  readonly name: string
  /** peer address host:port */
  readonly address: string
  readonly clientAddress: string
  readonly up: boolean
  readonly load: number
  readonly generation: number
  /** false for a node that waits for POST /admin/join (not in auto-join's turn-taking) */
  readonly autoJoin?: boolean
  /** the host id of a dead member this one bootstraps in place of (replace.ts) */
  readonly replaces?: string
  /** derived: the member taking this one's place; `state` is then its effective state */
  readonly replacedBy?: string
}

/**
 * The ring as this node sees it right now: the current ring serves reads and writes, the
 * future ring (after pending joins and leaves) adds pending replicas that also get writes.
 * Rebuilt on every membership change, read on every request.
 */
export class ClusterView implements Topology {
  private members = new Map<string, MemberInfo>()
  private current: Ring = Ring.EMPTY
  private future: Ring = Ring.EMPTY
  private moving = false

  constructor(
    readonly selfId: string,
    readonly rf: number,
  ) {}

  update(members: Iterable<MemberInfo>): void {
    this.members = new Map(applyReplacements([...members]).map((m) => [m.hostId, m]))
    this.current = Ring.current(this.members)
    this.future = Ring.future(this.members)
    this.moving = [...this.members.values()].some((m) => m.state === 'BOOTSTRAPPING' || m.state === 'LEAVING')
  }

  get ring(): Ring {
    return this.current
  }

  get futureRing(): Ring {
    return this.future
  }

  /** True while some node is bootstrapping or leaving: ranges are pending. */
  get rangesPending(): boolean {
    return this.moving
  }

  member(hostId: string): MemberInfo | undefined {
    return this.members.get(hostId)
  }

  all(): MemberInfo[] {
    return [...this.members.values()]
  }

  withState(state: NodeState): MemberInfo[] {
    return this.all().filter((m) => m.state === state)
  }

  isUp(hostId: string): boolean {
    return this.members.get(hostId)?.up ?? false
  }

  coordinates(hostId: string): boolean {
    const s = this.members.get(hostId)?.state
    return s !== 'LEAVING' && s !== 'LEFT'
  }

  replicasFor(key: Buffer): { natural: string[]; pending: string[]; future?: string[] } {
    const token = tokenOf(key)
    const natural = this.current.replicasFor(token, this.rf) as string[]
    if (!this.moving) return { natural, pending: [] }
    const future = this.future.replicasFor(token, this.rf) as string[]
    return { natural, pending: future.filter((h) => !natural.includes(h)), future }
  }

}
