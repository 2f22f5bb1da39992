import type { NodeConfig } from '../config/node-config.js'
import { createLogger } from '../log.js'
import { NodeRuntime } from './runtime.js'

/** `ringkv node`: start, then stop gracefully on SIGTERM/SIGINT (a second signal forces). */
export async function runNode(cfg: NodeConfig): Promise<void> {
  const log = createLogger(cfg.logLevel, { node: cfg.name })
  const rt = await NodeRuntime.start(cfg, log)
  let first: NodeJS.Signals | undefined
  const onSignal = (sig: NodeJS.Signals) => {
    // Only the same signal again forces (Ctrl-C twice). A terminal's Ctrl-C reaches the whole
    // process group, so under `ringkv dev` a node gets SIGINT and dev's SIGTERM at once: one stop.
    if (first !== undefined) {
      if (sig !== first) return
      log.warn({ sig }, 'second signal: exiting now')
      process.exit(130)
    }
    first = sig
    rt.stop(sig).then(
      () => process.exit(0),
      (e) => {
        log.error({ err: e }, 'unclean stop')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
