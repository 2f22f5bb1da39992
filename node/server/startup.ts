import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { join } from 'node:path'
import { StartupError } from '../errors.js'
import type { HostPort } from '../config/node-config.js'

/** Fails with one actionable line when the data dir cannot be created or written. */
export function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK)
    const probe = join(dir, `.write-probe-${process.pid}`)
    writeFileSync(probe, 'ok')
    rmSync(probe)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error'
    if (code === 'ENOTDIR' || code === 'EEXIST') {
      throw new StartupError(`data dir ${dir} cannot be a directory: it or a parent of it is a file (${code}); remove the file or choose another --data-dir`)
    }
    if (code === 'ENOSPC') throw new StartupError(`data dir ${dir} is on a full disk (ENOSPC); free space or choose another --data-dir`)
    throw new StartupError(`data dir ${dir} is not writable (${code}); give the node's user write permission on it or choose another --data-dir`)
  }
}

/** Binds a server, turning EADDRINUSE and friends into one actionable line. */
export function listen(server: Server, addr: HostPort, flag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening)
      if (e.code === 'EADDRINUSE') reject(new StartupError(`port ${addr.port} is already in use (--${flag} ${addr.host}:${addr.port}); stop the other process or choose another port`))
      else if (e.code === 'EACCES') reject(new StartupError(`not allowed to listen on ${addr.host}:${addr.port} (--${flag}); use a port above 1023 or run with the needed privilege`))
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') reject(new StartupError(`address ${addr.host} is not on this machine (--${flag}); use 0.0.0.0 or one of this host's addresses`))
      else reject(new StartupError(`cannot listen on ${addr.host}:${addr.port} (--${flag}): ${e.message}`))
    }
    const onListening = () => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(addr.port, addr.host)
  })
}
