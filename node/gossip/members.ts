/**
 * From gossip views to ring members.
 *
 * Public API:
 *   ringMembers(views: Iterable<EndpointView>): Map<hostId, Member>
 *     endpoints with a valid STATE; tokens decoded from TOKENS (missing or malformed = none,
 *     so a bad value from one peer cannot break every ring computation)
 *   publishTokens(gossiper, tokens) / publishState(gossiper, state)
 *     set TOKENS / STATE in the order that keeps tokens ahead of the state that uses them
 */
import type { Member, NodeState } from '../ring/state.js'
import { APP, type EndpointView, type Gossiper } from './gossiper.js'
import { decodeTokens, encodeTokens } from './messages.js'

export function ringMembers(views: Iterable<EndpointView>): Map<string, Member> {
  const out = new Map<string, Member>()
  for (const v of views) {
    if (!v.state) continue
    let tokens: bigint[] = []
    try {
      tokens = decodeTokens(v.app.get(APP.TOKENS)?.value ?? '')
    } catch {
      tokens = []
    }
    out.set(v.hostId, { state: v.state, tokens, address: v.address })
  }
  return out
}

export function publishTokens(g: Gossiper, tokens: readonly bigint[]): void {
  g.setLocal(APP.TOKENS, encodeTokens(tokens))
}

export function publishState(g: Gossiper, state: NodeState): void {
  g.setLocal(APP.STATE, state)
}
