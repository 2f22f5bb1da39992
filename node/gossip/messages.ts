/**
 * Gossip wire messages: plain JSON-serialisable objects, plus a validating codec for input
 * from the network. Tokens travel as decimal strings inside application state values.
 *
 * Public API:
 *   type Digest = [hostId, generation, maxVersion]
 *   interface EndpointDelta { id, address, generation, heartbeat, since, app: [key, value, version][] }
 *   type GossipMessage = GossipSyn | GossipAck | GossipAck2 | GossipPing | GossipPong
 *     syn:  { type: 'syn', cluster, digests }                       "this is what I have"
 *     ack:  { type: 'ack', cluster, requests, deltas, removed }     "send me these; take these"
 *     ack2: { type: 'ack2', cluster, deltas }                       "here is what you asked for"
 *     ping: { type: 'ping', cluster, sender, generation }           "are you there?"
 *     pong: { type: 'pong', cluster, sender, generation }           "yes, this incarnation is"
 *   parseGossipMessage(raw: unknown): GossipMessage   validates shape; RingError BAD_REQUEST
 *   encodeGossipMessage(msg): Buffer / decodeGossipMessage(buf): GossipMessage   (JSON)
 *   encodeTokens(bigint[]): string / decodeTokens(string): bigint[]   comma-separated decimals
 *
 * A delta carries the entries of one endpoint with version > `since`. The receiver applies it
 * only if it continues what it has (same generation and since <= its max version), or if it
 * is complete (since = 0) for a generation newer than the one it knows.
 */
import { RingError } from '../errors.js'
import { TOKEN_MAX } from '../ring/token.js'

export type Digest = [hostId: string, generation: number, maxVersion: number]

export type AppEntryTuple = [key: string, value: string, version: number]

export interface EndpointDelta {
  id: string
  address: string
  generation: number
  heartbeat: number
  since: number
  app: AppEntryTuple[]
}

export interface GossipSyn {
  type: 'syn'
  cluster: string
  digests: Digest[]
}

export interface GossipAck {
  type: 'ack'
  cluster: string
  requests: Digest[]
  deltas: EndpointDelta[]
  /** endpoints the sender removed after they LEFT: [hostId, generation] */
  removed: [hostId: string, generation: number][]
}

export interface GossipAck2 {
  type: 'ack2'
  cluster: string
  deltas: EndpointDelta[]
}

/** A direct liveness probe; the answer is the only thing that turns a down endpoint up. */
export interface GossipPing {
  type: 'ping'
  cluster: string
  sender: string
  generation: number
}

export interface GossipPong {
  type: 'pong'
  cluster: string
  sender: string
  generation: number
}

export type GossipMessage = GossipSyn | GossipAck | GossipAck2 | GossipPing | GossipPong

function bad(what: string): never {
  throw new RingError('BAD_REQUEST', `malformed gossip message: ${what}`)
}

const isStr = (x: unknown): x is string => typeof x === 'string' && x.length <= 1024
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

function arr(x: unknown, what: string): unknown[] {
  if (!Array.isArray(x)) bad(`${what} is not a list`)
  return x
}

function digest(x: unknown): Digest {
  if (!Array.isArray(x) || x.length !== 3 || !isStr(x[0]) || !isNum(x[1]) || !isNum(x[2])) bad('digest')
  return [x[0], x[1], x[2]]
}

function delta(x: unknown): EndpointDelta {
  const d = x as Record<string, unknown>
  if (!d || typeof d !== 'object') bad('delta')
  if (!isStr(d.id) || !isStr(d.address) || !isNum(d.generation) || !isNum(d.heartbeat) || !isNum(d.since)) bad('delta fields')
  const app = arr(d.app, 'delta.app').map((e): AppEntryTuple => {
    if (!Array.isArray(e) || e.length !== 3 || !isStr(e[0]) || typeof e[1] !== 'string' || !isNum(e[2])) bad('app entry')
    return [e[0], e[1], e[2]]
  })
  return { id: d.id, address: d.address, generation: d.generation, heartbeat: d.heartbeat, since: d.since, app }
}

export function parseGossipMessage(raw: unknown): GossipMessage {
  const m = raw as Record<string, unknown>
  if (!m || typeof m !== 'object' || !isStr(m.cluster)) bad('not an object with a cluster')
  switch (m.type) {
    case 'syn':
      return { type: 'syn', cluster: m.cluster, digests: arr(m.digests, 'digests').map(digest) }
    case 'ack':
      return {
        type: 'ack',
        cluster: m.cluster,
        requests: arr(m.requests, 'requests').map(digest),
        deltas: arr(m.deltas, 'deltas').map(delta),
        removed: arr(m.removed, 'removed').map((r) => {
          if (!Array.isArray(r) || r.length !== 2 || !isStr(r[0]) || !isNum(r[1])) bad('removed entry')
          return [r[0], r[1]] as [string, number]
        }),
      }
    case 'ack2':
      return { type: 'ack2', cluster: m.cluster, deltas: arr(m.deltas, 'deltas').map(delta) }
    case 'ping':
    case 'pong':
      if (!isStr(m.sender) || !isNum(m.generation)) bad(`${m.type} without sender and generation`)
      return { type: m.type, cluster: m.cluster, sender: m.sender, generation: m.generation }
    default:
      return bad(`unknown type ${JSON.stringify(m.type)}`)
  }
}

export function encodeGossipMessage(msg: GossipMessage): Buffer {
  return Buffer.from(JSON.stringify(msg))
}

export function decodeGossipMessage(buf: Buffer): GossipMessage {
  let raw: unknown
  try {
    raw = JSON.parse(buf.toString('utf8'))
  } catch {
    bad('not JSON')
  }
  return parseGossipMessage(raw)
}

export function encodeTokens(tokens: readonly bigint[]): string {
  return tokens.map((t) => t.toString()).join(',')
}

export function decodeTokens(text: string): bigint[] {
  if (text === '') return []
  return text.split(',').map((s) => {
    if (!/^\d{1,20}$/.test(s)) throw new RingError('BAD_REQUEST', `bad token ${JSON.stringify(s)} in gossiped tokens`)
    const t = BigInt(s)
    if (t > TOKEN_MAX) throw new RingError('BAD_REQUEST', `gossiped token ${s} is not below 2^64`)
    return t
  })
}
