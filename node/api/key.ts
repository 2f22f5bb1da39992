import { RingError } from '../errors.js'

export const MAX_KEY_BYTES = 1024

const HEX: Record<string, number> = {}
for (let i = 0; i < 16; i++) {
  HEX[i.toString(16)] = i
  HEX[i.toString(16).toUpperCase()] = i
}

/**
 * The key is the percent-decoded path segment after /v1/kv/, as raw bytes: keys are byte
 * strings, so %FF is a valid key byte even though it is not UTF-8.
 */
export function decodeKey(segment: string): Buffer {
  if (segment.length === 0) {
    throw new RingError('BAD_REQUEST', 'the key is empty; use /v1/kv/{key} with a key of 1 to 1024 bytes')
  }
  if (segment.includes('/')) {
    throw new RingError('BAD_REQUEST', "a key is a single path segment; percent-encode '/' in keys as %2F")
  }
  let key: Buffer
  if (!segment.includes('%')) {
    key = Buffer.from(segment, 'utf8')
  } else {
    const bytes: number[] = []
    for (let i = 0; i < segment.length; i++) {
      const c = segment[i]!
      if (c === '%') {
        const hi = HEX[segment[i + 1] ?? '']
        const lo = HEX[segment[i + 2] ?? '']
        if (hi === undefined || lo === undefined) {
          throw new RingError('BAD_REQUEST', `malformed percent-encoding at position ${i} of the key; encode '%' itself as %25`)
        }
        bytes.push(hi * 16 + lo)
        i += 2
      } else {
        for (const b of Buffer.from(c, 'utf8')) bytes.push(b)
      }
      if (bytes.length > MAX_KEY_BYTES) break
    }
    key = Buffer.from(bytes)
  }
  if (key.length > MAX_KEY_BYTES) {
    throw new RingError('KEY_TOO_LARGE', `the key is longer than ${MAX_KEY_BYTES} bytes; use a shorter key (or a hash of it)`, { maxKeyBytes: MAX_KEY_BYTES })
  }
  return key
}
