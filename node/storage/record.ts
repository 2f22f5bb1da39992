import type { Hlc, VersionVector } from '../replication/version.js'

/**
 * One stored version of a key: everything replication, repair and expiry need travels with
 * the value. A delete is a record with `tombstone: true` and an empty value, so it replicates,
 * repairs and hints exactly like a write; it is purged only after the tombstone grace period.
 */
export interface StoredRecord {
  value: Buffer
  contentType: string
  vv: VersionVector
  ts: Hlc
  tombstone: boolean
  /** ms since epoch after which the record reads as absent; undefined = never */
  expiresAt?: number
}

/** Whether a record reads as present at `now` (ms since epoch): not deleted and not expired. */
export function isLive(rec: StoredRecord, now: number): boolean {
  return !rec.tombstone && (rec.expiresAt === undefined || now < rec.expiresAt)
}
