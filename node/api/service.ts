import type { StoredRecord } from '../storage/record.js'
import type { VersionVector } from '../replication/version.js'

export type Consistency = 'one' | 'quorum' | 'all'

/** What the client API needs from the node: coordinated reads and writes plus views. */
export interface KvService {
  /** The winning record (possibly a tombstone or expired), or undefined if no replica has one. */
  get(key: Buffer, cl: Consistency): Promise<StoredRecord | undefined>
  /** Writes a value or (value undefined) a tombstone; resolves with the stored version. */
  write(key: Buffer, w: ClientWrite, cl: Consistency): Promise<StoredRecord>
  nodeView(): NodeView
  clusterView(): ClusterView
  /** AVAILABLE: the node serves reads and writes of the ranges it owns. */
  isReady(): boolean
}

export interface ClientWrite {
  value?: Buffer
  contentType?: string
  /** the causal context from If-Match; the new version supersedes it */
  context?: VersionVector
  expiresAt?: number
}

export interface NodeView {
  name: string
  hostId: string
  address: string
  clientAddress: string
  state: string
  up: boolean
  ownership: number
  load: number
  tokens: number
  generation?: number
}

export interface ClusterView {
  replicationFactor: number
  nodes: NodeView[]
}
