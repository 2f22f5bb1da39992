import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import { StartupError } from '../errors.js'

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url))

/**
 * `ringkv dev`: a local cluster of real node processes on 127.0.0.1 (client ports 8080+i, peer
 * ports 7000+i). Each node logs JSON to <data-dir>/<name>.log; this process prints when each is
 * ready and stops them all gracefully on Ctrl-C. The data (and a generated cluster token) stays
 * in the data dir, so the next start finds it again.
 */
export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('run a local cluster on 127.0.0.1 (npm start)')
    .option('--nodes <n>', 'number of nodes', '3')
    .option('--data-dir <dir>', 'parent directory of the nodes’ data', './data')
    .option('--replication-factor <n>', 'replicas per key (default: min(3, nodes))')
    .option('--base-port <port>', 'first client port', '8080')
    .option('--base-peer-port <port>', 'first peer port', '7000')
    .action(async (o: { nodes: string; dataDir: string; replicationFactor?: string; basePort: string; basePeerPort: string }) => {
      const n = Number(o.nodes)
      if (!Number.isInteger(n) || n < 1 || n > 32) throw new StartupError(`--nodes "${o.nodes}" must be a whole number from 1 to 32`)
      const rf = o.replicationFactor ?? String(Math.min(3, n))
      const dir = resolve(o.dataDir)
      mkdirSync(dir, { recursive: true })
      const tokenFile = join(dir, 'cluster-token')
      if (!existsSync(tokenFile)) writeFileSync(tokenFile, randomBytes(24).toString('base64url') + '\n', { mode: 0o600 })
      const basePort = Number(o.basePort)
      const basePeer = Number(o.basePeerPort)
      const seeds = Array.from({ length: Math.min(n, 3) }, (_, i) => `127.0.0.1:${basePeer + i}`).join(',')
      const children: { name: string; proc: ChildProcess; client: string }[] = []
      let stopping = false

      for (let i = 0; i < n; i++) {
        const name = `node${i + 1}`
        const log = openSync(join(dir, `${name}.log`), 'a')
        const args = [
          MAIN, 'node',
          '--name', name,
          '--data-dir', join(dir, name),
          '--listen', `127.0.0.1:${basePort + i}`,
          '--peer-listen', `127.0.0.1:${basePeer + i}`,
          '--advertise', `127.0.0.1:${basePeer + i}`,
          '--seeds', seeds,
          '--replication-factor', rf,
          '--cluster-token-file', tokenFile,
        ]
        const proc = spawn(process.execPath, args, { stdio: ['ignore', log, 'pipe'] })
        let stderr = ''
        proc.stderr!.on('data', (d) => {
          stderr += d
          process.stderr.write(`[${name}] ${d}`)
        })
        proc.on('exit', (code, signal) => {
          if (stopping) return
          // The others keep running: a dev cluster is where users try out a node failure.
          process.stderr.write(`[${name}] exited (${signal ?? code}); the other nodes keep running. Its log: ${join(dir, `${name}.log`)}\n`)
          if (children.every((c) => c.proc.exitCode !== null || c.proc.signalCode !== null)) stopAll(stderr ? 1 : 0)
        })
        children.push({ name, proc, client: `http://127.0.0.1:${basePort + i}` })
      }

      function stopAll(code: number): void {
        if (stopping) return
        stopping = true
        process.stdout.write('\nstopping nodes gracefully…\n')
        let left = children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null).length
        if (left === 0) process.exit(code)
        const kill = setTimeout(() => {
          for (const c of children) c.proc.kill('SIGKILL')
        }, 30_000)
        for (const c of children) {
          c.proc.once('exit', () => {
            if (--left === 0) {
              clearTimeout(kill)
              process.stdout.write('all nodes stopped; data kept in ' + dir + '\n')
              process.exit(code)
            }
          })
          c.proc.kill('SIGTERM')
        }
      }
      process.on('SIGINT', () => stopAll(0))
      process.on('SIGTERM', () => stopAll(0))

      process.stdout.write(`starting ${n} node(s), replication factor ${rf}, data in ${dir}\n`)
      await Promise.all(children.map((c) => waitReady(c.client, () => stopping).then((ok) => {
        if (ok) process.stdout.write(`  ${c.name} ready: ${c.client}\n`)
      })))
      if (!stopping) {
        process.stdout.write(`\ncluster ready. Try:\n  curl -X PUT --data-binary hello ${children[0]!.client}/v1/kv/greeting\n  curl ${children[0]!.client}/v1/kv/greeting\n  npx ringkv status\nCtrl-C stops the cluster.\n`)
      }
      await new Promise(() => {})
    })
}

async function waitReady(url: string, stopped: () => boolean): Promise<boolean> {
  for (;;) {
    if (stopped()) return false
    try {
      const r = await fetch(`${url}/readyz`)
      if (r.ok) return true
    } catch {}
    await new Promise((r) => setTimeout(r, 250))
  }
}
