import { createHash, timingSafeEqual } from 'node:crypto'

/** Constant-time comparison of a presented cluster token with the configured one. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}
