/**
 * Readiness and liveness probes as the kubelet runs them (initialDelaySeconds, periodSeconds,
 * timeoutSeconds, success/failure thresholds), against the pod's local address. httpGet and
 * tcpSocket are probed for real; exec and grpc probes cannot be run outside the image and count
 * as passing (reported once in the runner's log). The period is capped (default 1 s) so tests
 * do not wait ten seconds for a state change a kubelet would see ten seconds late.
 */
import type { V1Probe } from '@kubernetes/client-node'
import { connect } from 'node:net'
import { request } from 'node:http'

export interface ProbeTarget {
  ip: string
  /** Container port number or name → the local port it listens on. */
  port: (p: number | string) => number
}

export type ProbeKind = 'readiness' | 'liveness'

function httpGet(url: string, headers: Record<string, string>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', headers, timeout: timeoutMs }, (res) => {
      res.resume()
      const code = res.statusCode ?? 0
      resolve(code >= 200 && code < 400)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: timeoutMs })
    sock.once('connect', () => {
      sock.destroy()
      resolve(true)
    })
    sock.once('error', () => resolve(false))
    sock.once('timeout', () => {
      sock.destroy()
      resolve(false)
    })
  })
}

export class Prober {
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private successes = 0
  private failures = 0
  /** Readiness starts failing; liveness starts passing (as in the kubelet). */
  state: boolean

  constructor(
    readonly kind: ProbeKind,
    private readonly probe: V1Probe,
    private readonly target: ProbeTarget,
    private readonly periodCapMs: number,
    private readonly onChange: (ok: boolean) => void,
    private readonly note: (msg: string) => void,
  ) {
    this.state = kind === 'liveness'
  }

  start(): void {
    if (!this.probe.httpGet && !this.probe.tcpSocket) {
      this.note(`${this.kind} probe of a kind the pod runner cannot run (exec/grpc): treated as passing`)
      if (!this.state) {
        this.state = true
        this.onChange(true)
      }
      return
    }
    this.schedule((this.probe.initialDelaySeconds ?? 0) * 1000)
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => void this.tick(), ms)
  }

  private async check(): Promise<boolean> {
    const timeoutMs = (this.probe.timeoutSeconds ?? 1) * 1000
    const p = this.probe
    if (p.httpGet) {
      const port = this.target.port(p.httpGet.port as number | string)
      const scheme = (p.httpGet.scheme ?? 'HTTP').toLowerCase()
      if (scheme !== 'http') return tcpOpen(this.target.ip, port, timeoutMs)
      const headers = Object.fromEntries((p.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]))
      return httpGet(`http://${this.target.ip}:${port}${p.httpGet.path ?? '/'}`, headers, timeoutMs)
    }
    return tcpOpen(this.target.ip, this.target.port(p.tcpSocket!.port as number | string), timeoutMs)
  }

  private async tick(): Promise<void> {
    const ok = await this.check()
    if (this.stopped) return
    if (ok) {
      this.failures = 0
      this.successes++
      if (!this.state && this.successes >= (this.probe.successThreshold ?? 1)) {
        this.state = true
        this.onChange(true)
      }
    } else {
      this.successes = 0
      this.failures++
      if (this.state && this.failures >= (this.probe.failureThreshold ?? 3)) {
        this.state = false
        this.onChange(false)
      }
    }
    this.schedule(Math.min((this.probe.periodSeconds ?? 10) * 1000, this.periodCapMs))
  }
}
