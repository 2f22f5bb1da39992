import { invariant, toRingError } from '../errors.js'
import type { Logger } from '../log.js'
import { FrameError } from './frame.js'
import type { ErrorBody } from './peer-error.js'

/** An application message type: a small number or a short string such as 'replica.write'. */
export type MessageType = number | string

/** Answers a request (its return value is the reply) or handles a one-way message. */
export type Handler<P = any, R = unknown> = (payload: P, fromHostId: string) => R | Promise<R>

/** Answers a stream request with a sequence of chunks. */
export type StreamHandler<P = any, C = unknown> = (
  payload: P,
  fromHostId: string,
) => AsyncIterable<C> | Iterable<C> | Promise<AsyncIterable<C> | Iterable<C>>

/** The message types this node serves, and what serves them. */
export class Handlers {
  private readonly unary = new Map<MessageType, Handler>()
  private readonly streams = new Map<MessageType, StreamHandler>()

  on<P = any, R = unknown>(type: MessageType, handler: Handler<P, R>): void {
    invariant(!this.unary.has(type) && !this.streams.has(type), `a handler for message type ${String(type)} is already registered`)
    this.unary.set(type, handler as Handler)
  }

  onStream<P = any, C = unknown>(type: MessageType, handler: StreamHandler<P, C>): void {
    invariant(!this.unary.has(type) && !this.streams.has(type), `a handler for message type ${String(type)} is already registered`)
    this.streams.set(type, handler as StreamHandler)
  }

  handler(type: MessageType): Handler | undefined {
    return this.unary.get(type)
  }

  streamHandler(type: MessageType): StreamHandler | undefined {
    return this.streams.get(type)
  }
}

export function isMessageType(v: unknown): v is MessageType {
  return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v))
}

/**
 * The wire form of a handler's failure. A RingError keeps its code and details; anything else
 * becomes INTERNAL and is logged here, since it is a bug or an environment failure on this node.
 */
export function errorBodyOf(err: unknown, logger: Logger, context: Record<string, unknown>): ErrorBody {
  if (err instanceof FrameError && err.code === 'FRAME_TOO_LARGE') {
    return { code: 'VALUE_TOO_LARGE', message: err.message }
  }
  const re = toRingError(err)
  if (re.code === 'INTERNAL') logger.error({ ...context, err }, 'internode handler failed')
  const body: ErrorBody = { code: re.code, message: re.message }
  if (Object.keys(re.details).length > 0) body.details = re.details
  return body
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function'
}
