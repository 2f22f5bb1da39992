import type { IncomingMessage, ServerResponse } from 'node:http'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import type { Counter, Histogram, ObservableGauge } from '@opentelemetry/api'

/**
 * The node's metrics, through OpenTelemetry, served as Prometheus text on the client port's
 * /metrics. Instruments are created once here so hot paths only call add()/record().
 */
export class Metrics {
  private readonly exporter: PrometheusExporter
  private readonly provider: MeterProvider
  readonly requests: Counter
  readonly requestSeconds: Histogram
  readonly concurrentVersions: Counter
  readonly readRepairs: Counter
  readonly hintsWritten: Counter
  readonly hintsReplayed: Counter
  readonly streamedBytes: Counter
  private readonly gauges: ObservableGauge[] = []

  constructor(readonly nodeName: string) {
    this.exporter = new PrometheusExporter({ preventServerStart: true })
    this.provider = new MeterProvider({ readers: [this.exporter] })
    const m = this.provider.getMeter('ringkv')
    this.requests = m.createCounter('ringkv_client_requests', { description: 'client API requests by operation and status' })
    this.requestSeconds = m.createHistogram('ringkv_client_request_duration_seconds', {
      description: 'client API request latency',
      unit: 's',
      advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] },
    })
    this.concurrentVersions = m.createCounter('ringkv_concurrent_versions_resolved', { description: 'truly concurrent versions resolved by HLC timestamp then node id' })
    this.readRepairs = m.createCounter('ringkv_read_repairs', { description: 'stale replicas repaired by reads' })
    this.hintsWritten = m.createCounter('ringkv_hints_written', { description: 'hints stored for down replicas' })
    this.hintsReplayed = m.createCounter('ringkv_hints_replayed', { description: 'hints delivered to their replica' })
    this.streamedBytes = m.createCounter('ringkv_streamed_bytes', { description: 'bytes streamed in for range movement and repair' })
  }

  /** A gauge read when /metrics is scraped. */
  gauge(name: string, description: string, read: () => number): void {
    const g = this.provider.getMeter('ringkv').createObservableGauge(name, { description })
    g.addCallback((r) => r.observe(read()))
    this.gauges.push(g)
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.exporter.getMetricsRequestHandler(req, res)
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown().catch(() => {})
  }
}
