import express, { type NextFunction, type Request, type Response } from 'express'
import { RingError, toRingError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/metrics.js'
import { openapi } from './openapi.js'
import type { KvService } from './service.js'

/** The client port's non-hot surface: views, health, metrics, the OpenAPI document. */
export function createClientApp(service: KvService, metrics: Metrics, log: Logger, beforeScrape: () => void = () => {}): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' })
  })
  app.get('/readyz', (_req, res) => {
    const v = service.nodeView()
    if (service.isReady()) res.json({ status: 'ready', state: v.state })
    else res.status(503).json(new RingError('NOT_READY', `node is ${v.state}, not AVAILABLE; it serves once it has joined`, { state: v.state }).toJSON())
  })
  app.get('/v1/node', (_req, res) => {
    res.json(service.nodeView())
  })
  app.get('/v1/cluster', (_req, res) => {
    res.json(service.clusterView())
  })
  app.get('/metrics', (req, res) => {
    beforeScrape()
    metrics.handle(req, res)
  })
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi)
  })
  // Known paths answer other methods with 405 and the allowed ones, not with "no route".
  app.all(['/healthz', '/readyz', '/v1/node', '/v1/cluster', '/metrics', '/openapi.json'], (req, res, next) => {
    res.setHeader('allow', 'GET, HEAD')
    next(new RingError('METHOD_NOT_ALLOWED', `${req.method} is not supported on ${req.path}; use GET`))
  })
  app.use((req, _res, next) => {
    next(new RingError('NOT_FOUND', `no route ${req.method} ${req.path}; the API is described at /openapi.json`))
  })
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = toRingError(err)
    if (e.code === 'INTERNAL') log.error({ err }, 'request failed')
    res.status(e.status).json(e.toJSON())
  })
  return app
}
