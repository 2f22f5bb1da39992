import { hash } from 'node:crypto'

/** Tokens live in the unsigned 64-bit space [0, 2^64). */
export const TOKEN_MAX = (1n << 64n) - 1n

/**
 * The ring position of a key: the first 8 bytes of its MD5, big-endian. MD5 is not used for
 * security here, only for a well-spread, stable placement every node computes identically.
 */
export function tokenOf(key: Buffer): bigint {
  return (hash('md5', key, 'buffer') as unknown as Buffer).readBigUInt64BE(0)
}
