import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/metrics.js'
import { createClientApp } from './app.js'
import { createKvHandler, KV_PREFIX, type ServerState } from './kv-handler.js'
import { RequestMeter } from './request-meter.js'
import type { KvService } from './service.js'

/** The client port: /v1/kv on the bare hot path, the rest through express. */
export function createClientServer(service: KvService, metrics: Metrics, log: Logger, maxValueBytes: number): Server {
  const state: ServerState = { stopping: false }
  const meter = new RequestMeter(metrics)
  const kv = createKvHandler({ service, meter, log, maxValueBytes, state })
  const app = createClientApp(service, metrics, log, () => meter.flush())
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url!.startsWith(KV_PREFIX)) kv(req, res)
    else app(req, res)
  }
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 }, handle)
  // `Expect: 100-continue` (curl sends it for bodies over 1 MiB): the PUT handler sends the
  // 100 only once it accepts the request, so a refused upload is never sent at all.
  server.on('checkContinue', handle)
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket))
  // A graceful close: node:http closes idle connections once, then waits for the others,
  // which stay open after their response (keep-alive) until the client leaves. So from here
  // on every /v1/kv response says `Connection: close` (the handler checks state.stopping as
  // it answers; express answers at once), and connections whose response had already gone
  // out are closed as soon as they fall idle.
  const close = server.close.bind(server)
  server.close = (cb?: (err?: Error) => void) => {
    if (!state.stopping) {
      state.stopping = true
      const sweep = setInterval(() => server.closeIdleConnections(), 20)
      server.once('close', () => clearInterval(sweep))
    }
    return close(cb)
  }
  return server
}

/**
 * Requests node:http refuses before any handler sees them (headers over 16 KiB, say a key
 * of thousands of bytes, or malformed HTTP) get the contract's JSON error too.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  let status = 400
  let reason = 'Bad Request'
  let message = `malformed HTTP request (${err.code ?? err.message}); send HTTP/1.1 as described at /openapi.json`
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431
    reason = 'Request Header Fields Too Large'
    message = 'the request line and headers are larger than 16 KiB; keys are at most 1024 bytes (3072 characters percent-encoded)'
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408
    reason = 'Request Timeout'
    message = 'the request was not received in time; send it again'
  }
  const body = JSON.stringify({ error: { code: 'BAD_REQUEST', message } })
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}
