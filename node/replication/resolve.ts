import { compareHlc, compareVV, mergeVV, type VersionVector } from './version.js'
import type { StoredRecord } from '../storage/record.js'
import { encodeRecord, sortedNodes } from '../storage/codec.js'

export interface Resolution {
  winner: StoredRecord
  /** true when neither version causally dominated the other and a tie-break decided */
  concurrent: boolean
}

/**
 * Which version of a key survives when a replica holding `existing` receives `incoming`.
 *
 * Causality decides first: a causally newer version wins whatever its wall clock says, so
 * clock skew cannot drop an acknowledged write. Only truly concurrent versions are ordered by
 * HLC (then node id, then bytes); the winner's vector becomes the merge of both, so it
 * dominates both inputs and every replica that sees both ends with the byte-identical record.
 *
 * Equal vectors normally mean the same write seen twice (existing is kept). If the records
 * differ anyway — a coordinator reused a counter after losing unsynced writes in a crash —
 * they are ordered like concurrent versions; keeping whichever arrived first would leave
 * replicas disagreeing forever with nothing to repair them.
 *
 * Symmetric: resolve(a, b) and resolve(b, a) encode to the same bytes.
 */
export function resolve(existing: StoredRecord, incoming: StoredRecord): Resolution {
  const order = compareVV(existing.vv, incoming.vv)
  if (order === 'after') return { winner: existing, concurrent: false }
  if (order === 'before') return { winner: incoming, concurrent: false }
  if (order === 'equal') {
    if (sameRecord(existing, incoming)) return { winner: existing, concurrent: false }
    return { winner: tieBreak(existing, incoming), concurrent: true }
  }
  const w = tieBreak(existing, incoming)
  return { winner: { ...w, vv: canonicalVV(mergeVV(existing.vv, incoming.vv)) }, concurrent: true }
}

/** The greater of two versions by HLC, node id, then encoded bytes: a total order. */
function tieBreak(a: StoredRecord, b: StoredRecord): StoredRecord {
  const c = compareHlc(a.ts, b.ts)
  if (c !== 0) return c > 0 ? a : b
  return Buffer.compare(encodeRecord(a), encodeRecord(b)) >= 0 ? a : b
}

function sameRecord(a: StoredRecord, b: StoredRecord): boolean {
  return (
    a.tombstone === b.tombstone &&
    a.expiresAt === b.expiresAt &&
    a.contentType === b.contentType &&
    compareHlc(a.ts, b.ts) === 0 &&
    a.value.equals(b.value)
  )
}

/** Same vector with its entries inserted in sorted order, so equal vectors look alike everywhere. */
export function canonicalVV(vv: VersionVector): VersionVector {
  const out: VersionVector = {}
  for (const k of sortedNodes(vv)) out[k] = vv[k]!
  return out
}
