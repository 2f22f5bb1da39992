import { request } from 'undici'

/** An error answer of a ringkv API, with its stable code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: Record<string, unknown> = {},
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export interface CallOptions {
  method?: 'GET' | 'PUT' | 'POST' | 'DELETE'
  body?: Buffer | string
  headers?: Record<string, string>
  timeoutMs?: number
}

export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export async function call(url: string, o: CallOptions = {}): Promise<RawResponse> {
  let res
  try {
    res = await request(url, {
      method: o.method ?? 'GET',
      body: o.body,
      headers: o.headers,
      headersTimeout: o.timeoutMs ?? 30_000,
      bodyTimeout: o.timeoutMs ?? 30_000,
    })
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    throw new ApiError(0, 'UNREACHABLE', `cannot reach ${new URL(url).origin}: ${err.code ?? err.message}; is the node running there?`)
  }
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body }
}

/** Throws ApiError for an error status, carrying the server's code and message. */
export function check(r: RawResponse, okStatuses: number[]): RawResponse {
  if (okStatuses.includes(r.status)) return r
  let code = `HTTP_${r.status}`
  let message = r.body.toString('utf8').slice(0, 500)
  let parsed: Record<string, unknown> = {}
  try {
    const j = JSON.parse(r.body.toString('utf8'))
    if (j?.error?.code) {
      code = j.error.code
      message = j.error.message
      parsed = j.error
    }
  } catch {}
  throw new ApiError(r.status, code, message, parsed)
}
