/**
 * Keep-alive HTTP to every member of a cluster: one undici Pool per member, requests handed
 * out round-robin so load spreads over all members the way a client library's balancer does.
 *
 *   const pools = new MemberPools(['http://127.0.0.1:8080', ...], { connections: 32 })
 *   const { statusCode, body } = await pools.next().request({ path, method: 'GET' })
 *   await pools.close()
 *
 * `connections` is per member. Give it at least the driver's concurrency so no request ever
 * waits for a connection on the client side (the bench measures the server, not the pool).
 */
import { Pool } from 'undici'
import { invariant } from '../../node/errors.js'

export interface MemberPoolOptions {
  connections: number
  /** ms a request may take before undici gives up (default 30 s) */
  timeoutMs?: number
}

export class MemberPools {
  readonly pools: Pool[]
  private turn = 0

  constructor(readonly urls: readonly string[], opts: MemberPoolOptions) {
    invariant(urls.length > 0, 'MemberPools needs at least one member URL')
    const timeout = opts.timeoutMs ?? 30_000
    this.pools = urls.map((u) => new Pool(u, {
      connections: opts.connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    }))
  }

  next(): Pool {
    const p = this.pools[this.turn]!
    this.turn = (this.turn + 1) % this.pools.length
    return p
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()))
  }
}
