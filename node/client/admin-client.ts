import { call, check } from './http.js'

export type NodeState = 'JOINING' | 'BOOTSTRAPPING' | 'AVAILABLE' | 'LEAVING' | 'LEFT'

export interface AdminStatus {
  name: string
  hostId?: string
  state: NodeState
  tokens: string[]
  up: boolean
  streaming: { rangesTotal: number; rangesDone: number; bytes: number }
  hintsPending: number
  operation?: { type: string; phase: string; error?: string } | null
  /** host id of the dead member (same name, lost disk) this node bootstraps in place of */
  replaces?: string
}

/** The admin API (design §3.3) on a node's peer port. Shared by the CLI and the operator. */
export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  private headers(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {}
  }

  async status(timeoutMs = 10_000): Promise<AdminStatus> {
    const r = check(await call(`${this.baseUrl}/admin/status`, { headers: this.headers(), timeoutMs }), [200])
    return JSON.parse(r.body.toString('utf8'))
  }

  private async post(path: string): Promise<Record<string, unknown>> {
    const r = check(await call(`${this.baseUrl}/admin/${path}`, { method: 'POST', headers: this.headers() }), [200, 202])
    return r.body.length ? JSON.parse(r.body.toString('utf8')) : {}
  }

  join() { return this.post('join') }
  decommission() { return this.post('decommission') }
  cleanup() { return this.post('cleanup') }
  repair() { return this.post('repair') }
  drain() { return this.post('drain') }
}
