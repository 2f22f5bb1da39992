/**
 * How evenly a ring spreads replicated data, and a helper that grows a ring node by node.
 *
 * Public API:
 *   balanceOf(ring, rf): { nodes, min, max, mean, maxOverMean, minOverMean }
 *     over effective ownership (Ring.ownership); maxOverMean is what the allocator is judged by
 *   growRing(nodes, numTokens, rf, pick): Ring[]   rings after 1..nodes joins, one at a time
 *     pick(ring, hostId, index) returns the joining host's tokens
 *   randomTokens(rng, numTokens): bigint[]        the naive alternative, for comparison
 */
import type { Rng } from '../util/rng.js'
import { Ring } from './ring.js'

export interface Balance {
  nodes: number
  min: number
  max: number
  mean: number
  maxOverMean: number
  minOverMean: number
}

export function balanceOf(ring: Ring, rf: number): Balance {
  const values = [...ring.ownership(rf).values()]
  const nodes = values.length
  const mean = nodes ? 1 / nodes : 0
  const max = Math.max(...values)
  const min = Math.min(...values)
  return { nodes, min, max, mean, maxOverMean: max / mean, minOverMean: min / mean }
}

export function growRing(nodes: number, numTokens: number, rf: number, pick: (ring: Ring, hostId: string, index: number) => bigint[]): Ring[] {
  const owners = new Map<string, bigint[]>()
  const rings: Ring[] = []
  let ring = Ring.EMPTY
  for (let i = 0; i < nodes; i++) {
    const host = `node-${String(i).padStart(3, '0')}`
    owners.set(host, pick(ring, host, i))
    ring = Ring.fromOwners(owners)
    rings.push(ring)
  }
  return rings
}

export function randomTokens(rng: Rng, numTokens: number): bigint[] {
  return Array.from({ length: numTokens }, () => (BigInt(Math.floor(rng.next() * 2 ** 32)) << 32n) | BigInt(Math.floor(rng.next() * 2 ** 32)))
}
