import { RingError } from '../errors.js'
import type { VersionVector } from '../replication/version.js'

/**
 * The ETag is the version's causal context: its version vector, base64url of compact JSON.
 * Sending it back in If-Match makes the next write supersede that version causally.
 */
export function etagOf(vv: VersionVector): string {
  return `"${Buffer.from(JSON.stringify(vv)).toString('base64url')}"`
}

const MAX_CONTEXT_ENTRIES = 64
const MAX_CONTEXT_COUNTER = 2 ** 52

export function parseIfMatch(header: string | undefined): VersionVector | undefined {
  if (header === undefined) return undefined
  const h = header.trim()
  if (h === '*' || h === '') return undefined
  const m = /^(?:W\/)?"([A-Za-z0-9_-]*)"$/.exec(h) ?? /^([A-Za-z0-9_-]+)$/.exec(h)
  let vv: unknown
  try {
    vv = m ? JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8')) : undefined
  } catch {
    vv = undefined
  }
  // Bounded like the vectors the cluster makes (coordinators are replicas), with room left below
  // 2^53 for counters minted on top of the context.
  if (!vv || typeof vv !== 'object' || Array.isArray(vv) || Object.keys(vv).length > MAX_CONTEXT_ENTRIES || !Object.values(vv).every((n) => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX_CONTEXT_COUNTER)) {
    throw new RingError('BAD_REQUEST', 'If-Match must be an ETag this API returned (a quoted opaque string); send the ETag from a previous GET or PUT unchanged')
  }
  return vv as VersionVector
}
