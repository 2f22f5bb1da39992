/**
 * Replacing a node that lost its disk (design §4.1: "a node that lost its disk is a new node").
 * Its identity (host id) lived in the data dir, so it comes back as a new host id under the
 * old name. It must not claim the old tokens as if it had their data; it bootstraps into them
 * instead, gossiping `replaces: <old host id>`, and every view derives the old member's
 * effective state from its replacer's:
 *
 *   replacer BOOTSTRAPPING → the old member is LEAVING (it still owns in the current ring, the
 *     replacer owns in the future ring: the replacer gets the writes of exactly those ranges
 *     and streams them from the other replicas) — or, if it never owned anything (it died
 *     JOINING or BOOTSTRAPPING), JOINING without tokens;
 *   replacer AVAILABLE or later → the old member is LEFT: out of both rings, its hints dropped.
 *
 * The rule is a pure function of gossiped state, so every node reaches the same ring once
 * gossip has converged, without any node having to speak for the dead one.
 *
 * Public API:
 *   applyReplacements(members): members with effective states and `replacedBy`
 *   replacementFor(members, self): which dead member a joining node named like it replaces
 */
import type { NodeState } from '../ring/state.js'

export interface Replaceable {
  readonly hostId: string
  readonly name: string
  readonly state: NodeState
  readonly tokens: readonly bigint[]
  readonly up: boolean
  /** host id this member bootstraps in place of */
  readonly replaces?: string
  /** set by applyReplacements: the member taking this one's place */
  readonly replacedBy?: string
}

const OWNED: readonly NodeState[] = ['AVAILABLE', 'LEAVING']

export function applyReplacements<M extends Replaceable>(members: readonly M[]): M[] {
  const replacer = new Map<string, M>()
  for (const m of members) if (m.replaces && m.replaces !== m.hostId && m.state !== 'JOINING') replacer.set(m.replaces, m)
  if (replacer.size === 0) return [...members]
  return members.map((m) => {
    const r = replacer.get(m.hostId)
    if (!r) return m
    if (r.state !== 'BOOTSTRAPPING') return { ...m, state: 'LEFT', replacedBy: r.hostId }
    return OWNED.includes(m.state) ? { ...m, state: 'LEAVING', replacedBy: r.hostId } : { ...m, state: 'JOINING', tokens: [], replacedBy: r.hostId }
  })
}

export type Replacement =
  | { kind: 'none' }
  /** bootstrap in place of `old`, into `tokens` (empty: allocate fresh ones) */
  | { kind: 'replace'; old: Replaceable; tokens: readonly bigint[] }
  /** a live member already has this name */
  | { kind: 'conflict'; other: Replaceable }

/**
 * A joining node (host id `self`, name `name`) and the member with its name: none, a dead one
 * to replace, or a live one (two nodes must not share a name; refuse).
 */
export function replacementFor(members: readonly Replaceable[], self: { hostId: string; name: string }): Replacement {
  const old = members.find((m) => m.name === self.name && m.hostId !== self.hostId && m.state !== 'LEFT' && !m.replacedBy)
  if (!old) return { kind: 'none' }
  if (old.up) return { kind: 'conflict', other: old }
  // Peers route the old member's ranges (and pending writes) by its tokens: keep them.
  return { kind: 'replace', old, tokens: old.state === 'JOINING' ? [] : old.tokens }
}
