/**
 * The decisions behind one-topology-change-at-a-time and "pending ranges before the snapshot"
 * (design §4.1), as pure functions of what peers answered to `membership.sees`.
 *
 * Public API:
 *   interface SeesAnswer   a peer's answer: how it sees the asking node, and itself
 *   seesAnswer(view, asker, self): SeesAnswer        what this node answers
 *   judgeStart(view, peers, replacing?): StartVerdict  may a join/decommission start now?
 *   judgeConfirm(want, peers, viewMovers): ConfirmVerdict   may the mover take its snapshot?
 *
 * Why peers are asked instead of trusting gossip: gossip converges in seconds, and an admin
 * call that lands on a node whose view is a few rounds old would allocate tokens against the
 * wrong ring or start a second move. Each peer is the authority on its own state.
 */
import type { NodeState } from '../ring/state.js'
import type { ClusterView, MemberInfo } from './view.js'

export const MOVING: readonly NodeState[] = ['BOOTSTRAPPING', 'LEAVING']

/** What one node says about itself: its state, tokens, and whether it already streams. */
export interface SelfReport {
  hostId: string
  name: string
  state: NodeState
  /** tokenDigest of its tokens */
  tokens: string
  /** past its confirmation: its snapshot may already be taken, it will not back off */
  streaming: boolean
}

export interface SeesAnswer {
  /** how the answering node sees the asker (absent: not in its view) */
  state?: string
  tokens?: string
  /** the answering node itself (absent from nodes that predate this field) */
  self?: SelfReport
}

export function tokenDigest(tokens: readonly bigint[]): string {
  return tokens.map(String).join(',')
}

export function seesAnswer(view: ClusterView, asker: string, self: SelfReport): SeesAnswer {
  const m = view.member(asker)
  return m ? { state: m.state, tokens: tokenDigest(m.tokens), self } : { self }
}

export interface PeerAnswer {
  peer: MemberInfo
  /** undefined: the peer did not answer in time */
  answer: SeesAnswer | undefined
}

export type StartVerdict =
  | { ok: true }
  /** another node is moving ranges: refuse (409) */
  | { ok: false; busy: string; message: string }
  /** this node's view disagrees with what peers say of themselves: wait for gossip, then ask again */
  | { ok: false; stale: string[]; message: string }

/** Before a join or decommission: nobody moves, and our ring is the ring the peers have. */
export function judgeStart(view: ClusterView, peers: readonly PeerAnswer[], replacing?: string): StartVerdict {
  // A dead member this node replaces may be stuck mid-move: the replacement is what ends it.
  for (const m of view.all()) {
    if (m.hostId !== view.selfId && m.hostId !== replacing && MOVING.includes(m.state)) return busy(m.name, m.state)
  }
  const stale: string[] = []
  for (const { peer, answer } of peers) {
    const s = answer?.self
    if (!s) continue
    if (MOVING.includes(s.state)) return busy(s.name, s.state)
    if (s.state !== peer.state || s.tokens !== tokenDigest(peer.tokens)) stale.push(peer.name)
  }
  if (stale.length) return { ok: false, stale, message: `this node's view of ${stale.join(', ')} is behind what they report; gossip is still converging — retry in a few seconds` }
  return { ok: true }
}

function busy(name: string, state: string): StartVerdict {
  return { ok: false, busy: name, message: `node ${name} is ${state}; one topology change at a time — retry when it is done` }
}

export type ConfirmVerdict =
  | { kind: 'go' }
  | { kind: 'wait'; waitingFor: string[] }
  /** another move won: undo ours (nothing was streamed yet) and retry later */
  | { kind: 'back-off'; other: string; message: string }

/**
 * The mover (state `want.state`, tokens `want.tokens`) may take its snapshot once every live peer
 * reports it so and no other move competes. Each mover first *claims* (sets `streaming`, which
 * it reports about itself), then asks everyone again; of two movers that each claim and then
 * read, at least one sees the other's claim, so at most one goes on:
 *   - a claimed other mover, or a mover we know only from gossip and cannot ask (down), wins;
 *   - before claiming, an unclaimed mover with a smaller host id wins (so two simultaneous
 *     starts rarely both claim and both back off).
 * The loser undoes its move (nothing was streamed yet) and is retried later.
 */
export function judgeConfirm(
  want: { hostId: string; state: NodeState; tokens: string },
  peers: readonly PeerAnswer[],
  viewMovers: readonly MemberInfo[],
  claimed: boolean,
): ConfirmVerdict {
  for (const m of viewMovers) {
    if (m.hostId !== want.hostId && !m.up) return backOff(m.name)
  }
  for (const { answer } of peers) {
    const s = answer?.self
    if (!s || s.hostId === want.hostId || !MOVING.includes(s.state)) continue
    if (s.streaming || (!claimed && s.hostId < want.hostId)) return backOff(s.name)
  }
  const waitingFor = peers.filter(({ answer }) => answer?.state !== want.state || answer.tokens !== want.tokens).map(({ peer }) => peer.name)
  return waitingFor.length ? { kind: 'wait', waitingFor } : { kind: 'go' }
}

function backOff(name: string): ConfirmVerdict {
  return { kind: 'back-off', other: name, message: `node ${name} started a topology change at the same time and goes first; retry when it is done` }
}
