import type { IncomingMessage, ServerResponse } from 'node:http'
import { RingError, toRingError } from '../errors.js'
import type { Logger } from '../log.js'
import { etagOf, parseIfMatch } from './etag.js'
import { decodeKey } from './key.js'
import type { KvOp, RequestMeter } from './request-meter.js'
import { sendError } from './respond.js'
import type { Consistency, KvService } from './service.js'

export const KV_PREFIX = '/v1/kv/'
const DEFAULT_CONTENT_TYPE = 'application/octet-stream'
/** How long, and for how many bytes, a refused upload is read and dropped before closing. */
const LINGER_MS = 1000
const LINGER_BYTES = 16 << 20

/** Shared with the server: once it stops, responses close their connections. */
export interface ServerState {
  stopping: boolean
}

export interface KvHandlerOptions {
  service: KvService
  meter: RequestMeter
  log: Logger
  maxValueBytes: number
  state: ServerState
}

/**
 * The client hot path: GET/PUT/DELETE /v1/kv/{key} on bare node:http, with no framework in
 * between (express costs ~5x per request here). Everything else goes to the express app.
 */
export function createKvHandler(o: KvHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { service, meter, log, maxValueBytes, state } = o

  /** Every response of this handler starts here: a stopping server keeps no connection. */
  function head(res: ServerResponse, status: number, headers: Record<string, string | number>): void {
    if (state.stopping) res.shouldKeepAlive = false
    res.writeHead(status, headers)
  }

  function fail(op: KvOp, res: ServerResponse, e: unknown, started: number): void {
    const err = toRingError(e)
    if (err.code === 'INTERNAL') log.error({ err: e }, 'request failed')
    if (state.stopping) res.shouldKeepAlive = false
    sendError(res, err)
    meter.done(op, err.status, started)
  }

  /**
   * Refuses a PUT whose body is still coming (too large, or of unknown size), and closes the
   * connection — but not at once: closing a socket with unread data in it makes the kernel
   * reset the connection, and a client still sending its body would lose the answer with it.
   * So the answer goes out whole, the rest of the body is read and dropped for a moment
   * (bounded in time and bytes, like a web server's lingering close), and then we close.
   */
  function refuse(req: IncomingMessage, res: ServerResponse, err: RingError, started: number): void {
    if (res.headersSent) {
      res.destroy()
      return
    }
    const body = JSON.stringify(err.toJSON())
    res.writeHead(err.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
    res.write(body)
    meter.done('put', err.status, started)
    let dropped = 0
    const finish = () => {
      clearTimeout(timer)
      req.off('data', drop)
      res.end()
    }
    const drop = (chunk: Buffer) => {
      dropped += chunk.length
      if (dropped > LINGER_BYTES) finish()
    }
    // A client that sent `Expect: 100-continue` is not sending: nothing to wait for.
    const timer = setTimeout(finish, req.headers.expect === undefined ? LINGER_MS : 0)
    req.on('data', drop)
    req.once('end', finish)
    req.once('error', finish)
    req.resume()
  }

  async function get(key: Buffer, cl: Consistency, res: ServerResponse, started: number): Promise<void> {
    const rec = await service.get(key, cl)
    if (!rec || rec.tombstone || (rec.expiresAt !== undefined && rec.expiresAt <= Date.now())) {
      // The tombstone's ETag lets a client supersede the delete causally.
      if (state.stopping) res.shouldKeepAlive = false
      sendError(res, new RingError('NOT_FOUND', 'no value is stored under this key'), rec ? { etag: etagOf(rec.vv) } : {})
      meter.done('get', 404, started)
      return
    }
    head(res, 200, {
      'content-type': rec.contentType,
      'content-length': rec.value.length,
      etag: etagOf(rec.vv),
    })
    res.end(rec.value)
    meter.done('get', 200, started)
  }

  async function del(key: Buffer, cl: Consistency, req: IncomingMessage, res: ServerResponse, started: number): Promise<void> {
    const context = parseIfMatch(req.headers['if-match'])
    const rec = await service.write(key, context ? { context } : {}, cl)
    head(res, 204, { etag: etagOf(rec.vv) })
    res.end()
    meter.done('delete', 204, started)
  }

  function put(key: Buffer, cl: Consistency, req: IncomingMessage, res: ServerResponse, started: number, query: URLSearchParams | undefined): void {
    const context = parseIfMatch(req.headers['if-match'])
    const expiresAt = parseTtl(query)
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > maxValueBytes) {
      // Refused before a byte of the body is stored; the connection goes (see refuse).
      refuse(req, res, tooLarge(maxValueBytes), started)
      return
    }
    // The client waits for this before sending a body (checkContinue in client-server.ts).
    if (req.headers.expect !== undefined) res.writeContinue()
    const chunks: Buffer[] = []
    let size = 0
    let aborted = false
    const collect = (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxValueBytes) {
        chunks.push(chunk)
        return
      }
      aborted = true
      chunks.length = 0
      req.off('data', collect)
      refuse(req, res, tooLarge(maxValueBytes), started)
    }
    req.on('data', collect)
    req.on('end', () => {
      if (aborted) return
      const value = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
      const contentType = req.headers['content-type'] || DEFAULT_CONTENT_TYPE
      const w = { value, contentType, ...(context ? { context } : {}), ...(expiresAt ? { expiresAt } : {}) }
      service.write(key, w, cl).then(
        (rec) => {
          head(res, 204, { etag: etagOf(rec.vv) })
          res.end()
          meter.done('put', 204, started)
        },
        (e) => fail('put', res, e, started),
      )
    })
    req.on('error', () => {
      aborted = true
    })
  }

  return function handleKv(req, res) {
    const started = performance.now()
    const url = req.url!
    const q = url.indexOf('?')
    const segment = q < 0 ? url.slice(KV_PREFIX.length) : url.slice(KV_PREFIX.length, q)
    const query = q < 0 ? undefined : new URLSearchParams(url.slice(q + 1))
    const method = req.method
    const op: KvOp = method === 'GET' ? 'get' : method === 'PUT' ? 'put' : method === 'DELETE' ? 'delete' : 'other'
    try {
      const key = decodeKey(segment)
      const cl = parseConsistency(query)
      if (op === 'get') get(key, cl, res, started).catch((e) => fail(op, res, e, started))
      else if (op === 'put') put(key, cl, req, res, started, query)
      else if (op === 'delete') del(key, cl, req, res, started).catch((e) => fail(op, res, e, started))
      else {
        res.setHeader('allow', 'GET, PUT, DELETE')
        throw new RingError('METHOD_NOT_ALLOWED', `${method} is not supported on /v1/kv/{key}; use GET, PUT or DELETE`)
      }
    } catch (e) {
      // A refused PUT's body is still on the wire: node:http drains a small declared body and
      // keeps the connection; one of unknown or refused size goes with the connection.
      if (op === 'put' && !bodyIsSmall(req, maxValueBytes)) refuse(req, res, toRingError(e), started)
      else fail(op, res, e, started)
    }
  }
}

function bodyIsSmall(req: IncomingMessage, max: number): boolean {
  const declared = req.headers['content-length']
  return declared !== undefined && req.headers.expect === undefined && Number(declared) <= max
}

function tooLarge(max: number): RingError {
  return new RingError('VALUE_TOO_LARGE', `the value is larger than the node's limit of ${max} bytes (--max-value-bytes); store smaller values or raise the limit`, { maxValueBytes: max })
}

export function parseConsistency(query: URLSearchParams | undefined): Consistency {
  const v = query?.get('consistency')
  if (v === null || v === undefined) return 'quorum'
  const l = v.toLowerCase()
  if (l === 'one' || l === 'quorum' || l === 'all') return l
  throw new RingError('BAD_CONSISTENCY', `consistency "${v}" is not one of one, quorum, all`)
}

function parseTtl(query: URLSearchParams | undefined): number | undefined {
  const v = query?.get('ttl')
  if (v === null || v === undefined) return undefined
  if (!/^\d{1,10}$/.test(v) || Number(v) < 1) {
    throw new RingError('BAD_REQUEST', `ttl "${v}" must be a whole number of seconds, at least 1`)
  }
  return Date.now() + Number(v) * 1000
}
