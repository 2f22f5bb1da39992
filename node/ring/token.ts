import { hash } from 'node:crypto'

/** Tokens live in the unsigned 64-bit space [0, 2^64). */
export const TOKEN_MAX = (1n << 64n) - 1n

/**
 * The ring position of a key: the first 8 bytes of its MD5, big-endian. MD5 is not used for
 * security here, only for a well-spread, stable placement every node computes identically.
 */
export function tokenOf(key: Buffer): bigint {
  // A request hashes its key twice in one synchronous run (ring lookup, then the storage key);
  // a one-entry memo by identity saves the second MD5 (~5% of a GET's CPU in profiles). Keys
  // are never mutated in place after they are hashed.
  if (key === memoKey) return memoToken
  const t = (hash('md5', key, 'buffer') as unknown as Buffer).readBigUInt64BE(0)
  memoKey = key
  memoToken = t
  return t
}

let memoKey: Buffer | undefined
let memoToken = 0n
