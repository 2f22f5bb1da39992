import { randomBytes } from 'node:crypto'
import { RingError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Range } from '../ring/range.js'
import { TOKEN_MAX } from '../ring/token.js'
import type { Store } from '../storage/store.js'
import type { Transport } from '../transport/index.js'
import { MAX_DEPTH, type MerkleTree } from './merkle.js'
import { DIGEST_BYTES, buildTree, recordDigest, scanForRepair } from './repair-scan.js'

/**
 * The repair protocol, served by every replica (the initiator is the other side, repair.ts):
 *
 *   repair.tree    {start, end, depth, settledBefore} → {session, root, records, settledBefore}
 *                  builds a Merkle tree of the range and keeps it for the session; the answer's
 *                  settledBefore is the cutoff both sides must use (the earlier of the two)
 *   repair.hashes  {session, level, indices} → {hashes}    nodes of the kept tree
 *   repair.done    {session}                               drops the tree
 *   repair.digests stream {start, end, settledBefore} → {keys, tokens, digests}
 *                  (key, record digest) of a sub-range, in range order
 *   repair.get     stream {keys} → {keys, raws}            the records, for the initiator to apply
 *   repair.put     {keys, raws} → {applied}                records the initiator sends to apply
 */
export const MSG = {
  TREE: 'repair.tree',
  HASHES: 'repair.hashes',
  DONE: 'repair.done',
  DIGESTS: 'repair.digests',
  GET: 'repair.get',
  PUT: 'repair.put',
} as const

export interface TreeRequest {
  start: bigint
  end: bigint
  depth: number
  settledBefore: number
}
export interface TreeReply {
  session: string
  root: Buffer
  records: number
  settledBefore: number
}
export interface DigestChunk {
  keys: Buffer[]
  /** u64 BE per key */
  tokens: Buffer
  /** DIGEST_BYTES per key */
  digests: Buffer
}
export interface RecordChunk {
  keys: Buffer[]
  raws: Buffer[]
}

/** Chunks of streamed answers are bounded in bytes, like range streaming's. */
export const CHUNK_BYTES = 256 * 1024
/** A session whose initiator went quiet is dropped after this long. */
const SESSION_IDLE_MS = 5 * 60_000
/** Trees kept at once (each 2^(depth+1) hashes; 256 KiB at the default depth). */
const MAX_SESSIONS = 32
/** Keys one repair.get may ask for. */
export const MAX_GET_KEYS = 4096

export interface RepairPeerOptions {
  store: Store
  transport: Transport
  log: Logger
  /** bytes received by this node for repair (records pushed to it) */
  onBytes(n: number): void
  /**
   * The latest cutoff this node accepts for skipping settled records: the start of its last
   * repair that reached every replica. Records settled since may still be missing somewhere.
   */
  settledFloor(): Promise<number>
}

interface Session {
  tree: MerkleTree
  expires: number
}

/** Serves the repair protocol for initiators elsewhere. */
export class RepairPeer {
  private readonly sessions = new Map<string, Session>()

  constructor(private readonly o: RepairPeerOptions) {}

  register(): void {
    const t = this.o.transport
    t.on<TreeRequest, TreeReply>(MSG.TREE, (req) => this.tree(req))
    t.on<{ session: string; level: number; indices: number[] }, { hashes: Buffer }>(MSG.HASHES, (req) => {
      const s = this.session(req?.session)
      if (!Number.isInteger(req.level) || !Array.isArray(req.indices) || req.indices.length > 2 ** MAX_DEPTH) throw bad('repair.hashes needs level and indices')
      try {
        return { hashes: s.tree.hashes(req.level, req.indices) }
      } catch (e) {
        throw bad(`repair.hashes: ${(e as Error).message}`)
      }
    })
    t.on<{ session: string }, null>(MSG.DONE, (req) => {
      this.sessions.delete(String(req?.session))
      return null
    })
    t.onStream<TreeRequest, DigestChunk>(MSG.DIGESTS, (req) => this.digests(checkRange(req), checkCutoff(req?.settledBefore)))
    t.onStream<{ keys: Buffer[] }, RecordChunk>(MSG.GET, (req) => this.get(checkKeys(req?.keys, MAX_GET_KEYS)))
    t.on<RecordChunk, { applied: number }>(MSG.PUT, async (req) => {
      const keys = checkKeys(req?.keys, Infinity)
      if (!Array.isArray(req.raws) || req.raws.length !== keys.length || !req.raws.every(Buffer.isBuffer)) throw bad('repair.put needs as many raws as keys')
      let bytes = 0
      const results = await Promise.all(keys.map((k, i) => {
        bytes += k.length + req.raws[i]!.length
        return this.o.store.applyRaw(k, req.raws[i]!)
      }))
      this.o.onBytes(bytes)
      return { applied: results.filter((r) => r.changed).length }
    })
  }

  /** Sessions held now (tests, status). */
  get openSessions(): number {
    this.expire()
    return this.sessions.size
  }

  private async tree(req: TreeRequest): Promise<TreeReply> {
    const range = checkRange(req)
    if (!Number.isInteger(req.depth) || req.depth < 0 || req.depth > MAX_DEPTH) throw bad(`repair.tree depth must be an integer in [0, ${MAX_DEPTH}]`)
    const settledBefore = Math.min(checkCutoff(req.settledBefore), await this.o.settledFloor())
    this.expire()
    if (this.sessions.size >= MAX_SESSIONS) throw new RingError('CONFLICT', `${MAX_SESSIONS} repair sessions are open on this node; retry later`)
    const tree = await buildTree(this.o.store, range, req.depth, settledBefore)
    const session = randomBytes(8).toString('hex')
    this.sessions.set(session, { tree, expires: Date.now() + SESSION_IDLE_MS })
    return { session, root: tree.root, records: tree.records, settledBefore }
  }

  private session(id: unknown): Session {
    this.expire()
    const s = typeof id === 'string' ? this.sessions.get(id) : undefined
    if (!s) throw new RingError('BAD_STATE', 'no such repair session (it expired or this node restarted); start the range again')
    s.expires = Date.now() + SESSION_IDLE_MS
    return s
  }

  private expire(): void {
    const now = Date.now()
    for (const [id, s] of this.sessions) if (s.expires <= now) this.sessions.delete(id)
  }

  private async *digests(range: Range, settledBefore: number): AsyncGenerator<DigestChunk> {
    let keys: Buffer[] = []
    let tokens: Buffer[] = []
    let digests: Buffer[] = []
    let bytes = 0
    for await (const e of scanForRepair(this.o.store, range, settledBefore)) {
      const t = Buffer.allocUnsafe(8)
      t.writeBigUInt64BE(e.token)
      keys.push(e.key)
      tokens.push(t)
      digests.push(recordDigest(e.raw))
      bytes += e.key.length + 8 + DIGEST_BYTES
      if (bytes >= CHUNK_BYTES) {
        yield { keys, tokens: Buffer.concat(tokens), digests: Buffer.concat(digests) }
        keys = []
        tokens = []
        digests = []
        bytes = 0
      }
    }
    if (keys.length) yield { keys, tokens: Buffer.concat(tokens), digests: Buffer.concat(digests) }
  }

  private async *get(keys: Buffer[]): AsyncGenerator<RecordChunk> {
    let chunk: RecordChunk = { keys: [], raws: [] }
    let bytes = 0
    for (const k of keys) {
      const raw = await this.o.store.getRaw(k)
      // gone since the digest was sent (purged): nothing to repair
      if (!raw) continue
      chunk.keys.push(k)
      chunk.raws.push(raw)
      bytes += k.length + raw.length
      if (bytes >= CHUNK_BYTES) {
        yield chunk
        chunk = { keys: [], raws: [] }
        bytes = 0
      }
    }
    if (chunk.keys.length) yield chunk
  }
}

function bad(message: string): RingError {
  return new RingError('BAD_REQUEST', message)
}

function checkRange(req: { start?: unknown; end?: unknown } | undefined): Range {
  const { start, end } = req ?? {}
  if (typeof start !== 'bigint' || typeof end !== 'bigint' || start < 0n || end < 0n || start > TOKEN_MAX || end > TOKEN_MAX) {
    throw bad('repair needs a range of bigint tokens start and end in [0, 2^64)')
  }
  return { start, end }
}

function checkCutoff(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad('settledBefore must be a non-negative integer (ms since epoch)')
  return v
}

function checkKeys(keys: unknown, max: number): Buffer[] {
  if (!Array.isArray(keys) || keys.length > max || !keys.every(Buffer.isBuffer)) throw bad(`repair needs keys: an array of at most ${max} byte strings`)
  return keys
}

/** Splits a digest chunk into entries. */
export function* digestEntries(c: DigestChunk): Generator<{ token: bigint; key: Buffer; digest: Buffer }> {
  if (!Array.isArray(c?.keys) || !Buffer.isBuffer(c.tokens) || !Buffer.isBuffer(c.digests) || c.tokens.length !== c.keys.length * 8 || c.digests.length !== c.keys.length * DIGEST_BYTES) {
    throw new RingError('INTERNAL', 'malformed repair.digests chunk from a peer')
  }
  for (let i = 0; i < c.keys.length; i++) {
    yield { token: c.tokens.readBigUInt64BE(i * 8), key: c.keys[i]!, digest: c.digests.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES) }
  }
}
