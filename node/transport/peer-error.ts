import { RingError, statusOf, type ErrorCode } from '../errors.js'

/**
 * Why a call to a peer failed, as seen by the caller:
 * - PEER_UNREACHABLE: no connection could be made, or it dropped while the call was in flight
 *   (the peer may or may not have applied a request that was in flight).
 * - PEER_TIMEOUT: no answer within the call's timeout (same uncertainty).
 * - PEER_UNAUTHORIZED: the peer refused the handshake (cluster token or cluster name).
 * - PEER_ERROR: the peer answered with an error; `remoteCode` is the peer's code (a RingError
 *   code such as NOT_FOUND, or BAD_REQUEST for an unknown message type).
 */
export type PeerErrorCode = 'PEER_UNREACHABLE' | 'PEER_TIMEOUT' | 'PEER_UNAUTHORIZED' | 'PEER_ERROR'

export class PeerError extends Error {
  readonly code: PeerErrorCode
  readonly address: string
  readonly remoteCode: string | undefined
  readonly details: Record<string, unknown>

  constructor(code: PeerErrorCode, address: string, message: string, opts: { remoteCode?: string; details?: Record<string, unknown> } = {}) {
    super(message)
    this.name = 'PeerError'
    this.code = code
    this.address = address
    this.remoteCode = opts.remoteCode
    this.details = opts.details ?? {}
  }

  /**
   * The error a user should see when this call was needed to answer them: a remote RingError
   * keeps its code; a peer that cannot be reached or does not answer in time is UNAVAILABLE or
   * TIMEOUT.
   */
  toRingError(): RingError {
    if (this.code === 'PEER_ERROR' && this.remoteCode !== undefined && statusOf(this.remoteCode as ErrorCode) !== undefined) {
      return new RingError(this.remoteCode as ErrorCode, this.message, this.details)
    }
    if (this.code === 'PEER_TIMEOUT') return new RingError('TIMEOUT', this.message, { peer: this.address })
    return new RingError('UNAVAILABLE', this.message, { peer: this.address })
  }
}

/** The wire form of an error reply. */
export interface ErrorBody {
  code: string
  message: string
  details?: Record<string, unknown>
}

export function isErrorBody(v: unknown): v is ErrorBody {
  return typeof v === 'object' && v !== null && typeof (v as ErrorBody).code === 'string' && typeof (v as ErrorBody).message === 'string'
}
