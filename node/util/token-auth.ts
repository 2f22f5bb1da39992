import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * Checks presented cluster tokens against the configured one. Both sides are compared as
 * SHA-256 digests: equal lengths, so the comparison time says nothing about the token. The
 * configured token is hashed once, not per request.
 */
export class TokenCheck {
  private readonly digest: Buffer

  constructor(expected: string) {
    this.digest = sha256(expected)
  }

  matches(given: string): boolean {
    return timingSafeEqual(sha256(given), this.digest)
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest()
}
