/** Loopback addresses and ports for the harness's processes. */
import { createServer } from 'node:net'

/** A port that is free on `host` right now (the kernel's choice), for a process to bind next. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/** True when `host:port` can be bound right now. */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

/**
 * Hands out pod IPs from 127.<block>.0.0/16 (all of 127/8 reaches the loopback interface on
 * Linux). The block is random per allocator so that two harnesses on one machine rarely share
 * addresses; a pod's ports are checked for freedom before use anyway.
 */
export class LoopbackAllocator {
  private next = 2
  private readonly block: number
  private readonly byKey = new Map<string, string>()

  constructor(block?: number) {
    this.block = block ?? 100 + Math.floor(Math.random() * 150)
  }

  /** The address of `key`, the same every time it is asked for. */
  ipFor(key: string): string {
    let ip = this.byKey.get(key)
    if (!ip) {
      const n = this.next++
      if (n >= 65_534) throw new Error('LoopbackAllocator: out of addresses')
      ip = `127.${this.block}.${n >> 8}.${n & 255}`
      this.byKey.set(key, ip)
    }
    return ip
  }
}
