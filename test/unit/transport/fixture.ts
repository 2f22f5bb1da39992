import { test as uvuTest } from 'uvu'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { pino, type Logger } from 'pino'
import { Transport, type TransportOptions } from '../../../node/transport/index.js'

export interface LogLine {
  level: number
  msg: string
  [k: string]: unknown
}

/** A real pino logger whose JSON lines are kept for assertions. */
export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) })
  return { logger, lines }
}

export interface PeerNode {
  server: Server
  transport: Transport
  address: string
  port: number
  logs: LogLine[]
  stop(): Promise<void>
}

/**
 * A peer port as the node runs it: one http.Server with an express admin app, and the transport
 * attached to its upgrades.
 */
export async function startPeer(hostId: string, opts: Partial<Omit<TransportOptions, 'hostId' | 'logger'>> = {}, port = 0): Promise<PeerNode> {
  const { logger, lines } = memoryLogger()
  const app = express()
  app.get('/admin/status', (_req, res) => void res.json({ name: hostId, state: 'AVAILABLE' }))
  const server = createServer(app)
  const transport = new Transport({ hostId, logger, ...opts })
  transport.attach(server)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const p = (server.address() as AddressInfo).port
  return {
    server,
    transport,
    port: p,
    address: `127.0.0.1:${p}`,
    logs: lines,
    stop: async () => {
      transport.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A calling node: a transport that is not serving anything. */
export function caller(hostId: string, opts: Partial<Omit<TransportOptions, 'hostId' | 'logger'>> = {}): { transport: Transport; logs: LogLine[] } {
  const { logger, lines } = memoryLogger()
  return { transport: new Transport({ hostId, logger, ...opts }), logs: lines }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** The rejection of `p`, or a failure if it resolved. */
export async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected the promise to reject, but it resolved')
}

/**
 * uvu's reporter calls `err.details.split()`, so an uncaught RingError or PeerError (whose
 * `details` is an object) makes it drop the failure message. Tests go through this wrapper so
 * such a failure is reported with its code and details.
 */
export const test: typeof uvuTest = Object.assign(
  (name: string, fn: (ctx: any) => unknown) =>
    uvuTest(name, async (ctx) => {
      try {
        await fn(ctx)
      } catch (err) {
        const e = err as { details?: unknown; code?: unknown; message?: string; stack?: string }
        if (e && typeof e.details === 'object' && e.details !== null) {
          const plain = new Error(`${String(e.code)}: ${e.message} ${JSON.stringify(e.details, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`)
          plain.stack = `${plain.message}\n${e.stack?.split('\n').slice(1).join('\n') ?? ''}`
          throw plain
        }
        throw err
      }
    }),
  uvuTest,
)

/** Run `fn` with a fresh calling transport, closed afterwards whatever happens. */
export async function withCaller<T>(
  hostId: string,
  opts: Partial<Omit<TransportOptions, 'hostId' | 'logger'>>,
  fn: (transport: Transport, logs: LogLine[]) => Promise<T>,
): Promise<T> {
  const { transport, logs } = caller(hostId, opts)
  try {
    return await fn(transport, logs)
  } finally {
    transport.close()
  }
}

/** Everything a stream yields, and the error that ended it, if any. */
export async function consume<C>(stream: AsyncIterable<C>, onItem?: (item: C, n: number) => void): Promise<{ items: C[]; error: any }> {
  const items: C[] = []
  try {
    for await (const c of stream) {
      items.push(c)
      onItem?.(c, items.length)
    }
  } catch (error) {
    return { items, error }
  }
  return { items, error: undefined }
}
