/**
 * Helpers for the single-node suites: HTTP calls that keep every detail of the answer, raw
 * sockets for what an HTTP client library would not send, and CLI runs of `ringkv`.
 */
import { spawn } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { getGlobalDispatcher } from 'undici'
import * as assert from 'uvu/assert'
import { MAIN, TestCluster, type TestNode } from '../../helpers/cluster.js'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/**
 * One HTTP request with undici; any method, any header, nothing interpreted. The path goes
 * out as written: a WHATWG URL would drop dot segments such as /v1/kv/%2e.
 */
export async function http(url: string, o: { method?: string; headers?: Record<string, string>; body?: Buffer | string | Readable } = {}): Promise<Answer> {
  const slash = url.indexOf('/', url.indexOf('//') + 2)
  const r = await getGlobalDispatcher().request({
    origin: url.slice(0, slash),
    path: url.slice(slash),
    method: (o.method ?? 'GET') as 'GET',
    headers: o.headers ?? {},
    body: o.body ?? null,
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  })
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) }
}

/** Asserts the contract's error answer: status, JSON content type, `{"error":{"code","message"}}`. */
export function assertError(a: Answer, status: number, code: string, what = ''): Record<string, unknown> {
  const ctx = `${what} → ${a.status} ${a.body.toString('utf8').slice(0, 300)}`
  assert.is(a.status, status, `status of ${ctx}`)
  assert.match(String(a.headers['content-type']), /^application\/json/, `content type of ${ctx}`)
  const j = JSON.parse(a.body.toString('utf8')) as { error?: Record<string, unknown> }
  assert.type(j.error, 'object', `error object in ${ctx}`)
  assert.is(j.error!.code, code, `code of ${ctx}`)
  assert.type(j.error!.message, 'string', `message of ${ctx}`)
  assert.ok((j.error!.message as string).length > 10, `a message that says something, in ${ctx}`)
  return j.error!
}

/** A node of its own (RF 1) in a cluster dir that `destroy()` removes; ready unless wait is false. */
export async function singleNode(args: string[] = [], wait = true): Promise<{ cluster: TestCluster; node: TestNode; url: string }> {
  const cluster = await TestCluster.start({ nodes: 1, rf: 1, args, wait })
  const node = cluster.nodes[0]!
  return { cluster, node, url: node.clientUrl }
}

export interface RawExchange {
  socket: Socket
  /** the first complete response on the socket */
  response: Promise<RawResponse>
  /** resolves when the server closes its side */
  closed: Promise<void>
  write(data: string | Buffer): Promise<boolean>
}

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
  /** ms from connect to the complete response */
  ms: number
}

/**
 * A raw TCP exchange: bytes go out exactly as given (a Content-Length that lies, chunks sent
 * one by one); the first response is parsed as it arrives.
 */
export function rawExchange(port: number): Promise<RawExchange> {
  return new Promise((resolveEx, rejectEx) => {
    const socket = connect(port, '127.0.0.1')
    const started = performance.now()
    let buf = Buffer.alloc(0)
    let resolveRes!: (r: RawResponse) => void
    let rejectRes!: (e: Error) => void
    const response = new Promise<RawResponse>((res, rej) => {
      resolveRes = res
      rejectRes = rej
    })
    response.catch(() => {})
    let resolveClosed!: () => void
    const closed = new Promise<void>((r) => (resolveClosed = r))
    let done = false
    const tryParse = () => {
      if (done) return
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)?.[1])
      const headers: Record<string, string> = {}
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':')
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
      }
      const len = Number(headers['content-length'] ?? 0)
      if (buf.length < end + 4 + len) return
      done = true
      resolveRes({ status, headers, body: buf.subarray(end + 4, end + 4 + len), ms: performance.now() - started })
    }
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      tryParse()
    })
    socket.on('error', (e) => rejectRes(e))
    socket.on('close', () => {
      if (!done) rejectRes(new Error(`connection closed before a complete response (${buf.length} bytes: ${buf.toString('latin1').slice(0, 200)})`))
      resolveClosed()
    })
    socket.once('connect', () =>
      resolveEx({
        socket,
        response,
        closed,
        write: (data) => new Promise((r) => socket.write(data, (err) => r(!err))),
      }),
    )
    socket.once('error', rejectEx)
  })
}

export interface CliResult {
  code: number | null
  stdout: string
  /** stdout as bytes */
  out: Buffer
  stderr: string
  ms: number
}

/** Runs `node dist/node/cli/main.js ...args` to its end (killed after timeoutMs). */
export function runCli(args: string[], o: { env?: Record<string, string | undefined>; input?: Buffer | string; timeoutMs?: number; prefix?: string[] } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const started = performance.now()
    const env: NodeJS.ProcessEnv = { ...process.env }
    for (const k of Object.keys(env)) if (k.startsWith('RINGKV_')) delete env[k]
    for (const [k, v] of Object.entries(o.env ?? {})) {
      if (v === undefined) delete env[k]
      else env[k] = v
    }
    // a prefix such as setpriv runs the node binary itself: prefix… node main.js args…
    const argv = [...(o.prefix ?? []), process.execPath, MAIN, ...args]
    const p = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => out.push(d))
    p.stderr.on('data', (d) => (stderr += d))
    const t = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 20_000)
    p.on('close', (code) => {
      clearTimeout(t)
      const bytes = Buffer.concat(out)
      resolve({ code, stdout: bytes.toString('utf8'), out: bytes, stderr, ms: performance.now() - started })
    })
    p.stdin.end(o.input ?? '')
  })
}

/** The stderr of a failed command is exactly one non-empty line. */
export function assertOneLine(r: CliResult, pattern: RegExp, what: string): void {
  assert.ok(r.code !== 0 && r.code !== null, `${what}: exit code ${r.code} (stderr: ${r.stderr})`)
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '')
  assert.is(lines.length, 1, `${what}: stderr must be one line, got:\n${r.stderr}`)
  assert.match(lines[0]!, pattern, `${what}: stderr`)
}

/** Parses Prometheus text into sample → value, keyed by `name{label="v",...}` with labels sorted. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line)
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels = (m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []
    out.set(`${m[1]}{${labels.sort().join(',')}}`, Number(m[3]))
  }
  return out
}

/** The value of the first sample of `name` whose labels include all of `labels` (0 if none). */
export function sample(metrics: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const [k, v] of metrics) {
    if (!k.startsWith(`${name}{`)) continue
    if (want.every((w) => k.includes(w))) return v
  }
  return 0
}
