import express, { type NextFunction, type Request, type Response } from 'express'
import { RingError, toRingError } from '../errors.js'
import type { AdminStatus } from '../client/admin-client.js'
import type { Logger } from '../log.js'
import { TokenCheck } from '../util/token-auth.js'

/** What the admin API drives; each call must be safe to repeat and to make in any state. */
export interface AdminOps {
  status(): AdminStatus
  join(): Promise<void>
  decommission(): Promise<void>
  cleanup(): Promise<void>
  repair(): Promise<void>
  drain(): Promise<void>
}

/**
 * The admin API on the peer port (design §3.3). With a cluster token set, every call needs
 * `Authorization: Bearer <token>`; refusals are logged with the caller's address.
 */
export function createAdminApp(ops: AdminOps, token: string | undefined, log: Logger): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)

  const check = token ? new TokenCheck(token) : undefined
  app.use((req, _res, next) => {
    if (!check) return next()
    const h = req.headers.authorization ?? ''
    const given = h.startsWith('Bearer ') ? h.slice(7).trim() : ''
    if (given && check.matches(given)) return next()
    log.warn({ remote: req.socket.remoteAddress, path: req.path }, 'admin request refused: missing or wrong cluster token')
    next(new RingError('UNAUTHORIZED', 'this admin API needs Authorization: Bearer <cluster token> (the content of --cluster-token-file)'))
  })

  app.get('/admin/status', (_req, res) => {
    res.json(ops.status())
  })
  const accept = (name: keyof Omit<AdminOps, 'status'>) => async (_req: Request, res: Response, next: NextFunction) => {
    try {
      await ops[name]()
      res.status(202).json({ accepted: name, status: ops.status() })
    } catch (e) {
      next(e)
    }
  }
  app.post('/admin/join', accept('join'))
  app.post('/admin/decommission', accept('decommission'))
  app.post('/admin/cleanup', accept('cleanup'))
  app.post('/admin/repair', accept('repair'))
  app.post('/admin/drain', accept('drain'))
  app.use((req, _res, next) => {
    next(new RingError('NOT_FOUND', `no admin route ${req.method} ${req.path}`))
  })
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = toRingError(err)
    if (e.code === 'INTERNAL') log.error({ err }, 'admin request failed')
    res.status(e.status).json(e.toJSON())
  })
  return app
}
