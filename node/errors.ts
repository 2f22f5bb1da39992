/**
 * Every failure a user can cause or see is a RingError: a stable code, the HTTP
 * status it maps to, and a message that says what to do. Extra fields (such as
 * `required`/`alive` for UNAVAILABLE) are carried in `details` and serialised
 * next to code and message.
 */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'BAD_CONSISTENCY'
  | 'NOT_FOUND'
  | 'KEY_TOO_LARGE'
  | 'VALUE_TOO_LARGE'
  | 'PRECONDITION_FAILED'
  | 'METHOD_NOT_ALLOWED'
  | 'UNAUTHORIZED'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'INSUFFICIENT_STORAGE'
  | 'BAD_STATE'
  | 'WOULD_LOSE_REPLICAS'
  | 'CONFLICT'
  | 'NOT_READY'
  | 'INTERNAL'

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  BAD_CONSISTENCY: 400,
  NOT_FOUND: 404,
  KEY_TOO_LARGE: 413,
  VALUE_TOO_LARGE: 413,
  PRECONDITION_FAILED: 412,
  METHOD_NOT_ALLOWED: 405,
  UNAUTHORIZED: 401,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  INSUFFICIENT_STORAGE: 507,
  BAD_STATE: 409,
  WOULD_LOSE_REPLICAS: 409,
  CONFLICT: 409,
  NOT_READY: 503,
  INTERNAL: 500,
}

export class RingError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details: Record<string, unknown>

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = 'RingError'
    this.code = code
    this.status = STATUS[code]
    this.details = details
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } }
  }
}

export function statusOf(code: ErrorCode): number {
  return STATUS[code]
}

/** Wrap anything thrown into a RingError without losing a RingError's code. */
export function toRingError(err: unknown): RingError {
  if (err instanceof RingError) return err
  const e = err as NodeJS.ErrnoException
  if (e && (e.code === 'ENOSPC' || /No space left/i.test(String(e.message)))) {
    return new RingError('INSUFFICIENT_STORAGE', 'the node is out of disk space; free space or add capacity, then retry')
  }
  return new RingError('INTERNAL', `internal error: ${e?.message ?? String(err)}`)
}

/** A start-up failure: printed as one line, exits non-zero. */
export class StartupError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'StartupError'
    this.exitCode = exitCode
  }
}

/** TigerBeetle-style invariant check: a violated invariant is a bug, never user input. */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`invariant violated: ${message}`)
}
