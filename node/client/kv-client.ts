import type { ClusterView, Consistency, NodeView } from '../api/service.js'
import { call, check } from './http.js'

export interface GetResult {
  value: Buffer
  contentType: string
  etag: string
}

/** The client API (design §3.2) over HTTP. Used by the CLI, tests and benchmarks. */
export class KvClient {
  constructor(readonly baseUrl: string) {}

  private kvUrl(key: string | Buffer, cl?: Consistency): string {
    const k = typeof key === 'string' ? encodeURIComponent(key) : percentEncode(key)
    return `${this.baseUrl}/v1/kv/${k}${cl ? `?consistency=${cl}` : ''}`
  }

  async put(key: string | Buffer, value: Buffer | string, o: { consistency?: Consistency; contentType?: string; ifMatch?: string } = {}): Promise<string> {
    const headers: Record<string, string> = { 'content-type': o.contentType ?? 'application/octet-stream' }
    if (o.ifMatch) headers['if-match'] = o.ifMatch
    const r = check(await call(this.kvUrl(key, o.consistency), { method: 'PUT', body: value, headers }), [204])
    return String(r.headers.etag ?? '')
  }

  /** undefined when the key is absent or deleted. */
  async get(key: string | Buffer, o: { consistency?: Consistency } = {}): Promise<GetResult | undefined> {
    const r = await call(this.kvUrl(key, o.consistency))
    if (r.status === 404) {
      check(r, [404])
      return undefined
    }
    check(r, [200])
    return { value: r.body, contentType: String(r.headers['content-type'] ?? ''), etag: String(r.headers.etag ?? '') }
  }

  async del(key: string | Buffer, o: { consistency?: Consistency; ifMatch?: string } = {}): Promise<string> {
    const headers: Record<string, string> = {}
    if (o.ifMatch) headers['if-match'] = o.ifMatch
    const r = check(await call(this.kvUrl(key, o.consistency), { method: 'DELETE', headers }), [204])
    return String(r.headers.etag ?? '')
  }

  async cluster(): Promise<ClusterView> {
    return JSON.parse(check(await call(`${this.baseUrl}/v1/cluster`), [200]).body.toString('utf8'))
  }

  async node(): Promise<NodeView> {
    return JSON.parse(check(await call(`${this.baseUrl}/v1/node`), [200]).body.toString('utf8'))
  }
}

export function percentEncode(key: Buffer): string {
  let out = ''
  for (const b of key) {
    const c = String.fromCharCode(b)
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}
