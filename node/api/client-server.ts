import { createServer, type Server } from 'node:http'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/metrics.js'
import { createClientApp } from './app.js'
import { createKvHandler, KV_PREFIX } from './kv-handler.js'
import type { KvService } from './service.js'

/** The client port: /v1/kv on the bare hot path, the rest through express. */
export function createClientServer(service: KvService, metrics: Metrics, log: Logger, maxValueBytes: number): Server {
  const kv = createKvHandler({ service, metrics, log, maxValueBytes })
  const app = createClientApp(service, metrics, log)
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 }, (req, res) => {
    if (req.url!.startsWith(KV_PREFIX)) kv(req, res)
    else app(req, res)
  })
  return server
}
