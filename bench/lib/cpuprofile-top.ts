/**
 * Where a V8 CPU profile (node --cpu-prof) spends its time, as text: the top functions by self
 * time and by inclusive time, each as `function file:line`. Several profiles are summed.
 *
 *   node dist/bench/lib/cpuprofile-top.js [--top 30] [--filter dist/node] a.cpuprofile b.cpuprofile
 *
 * Frames in compiled files with a source map beside them (`x.js.map`, as tsc writes) are shown
 * at their TypeScript source line (1-based), so `dist/node/a.js:10` reads `node/a.ts:8`.
 */
import { existsSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface FrameTime {
  frame: string
  selfMs: number
  totalMs: number
}

const maps = new Map<string, SourceMap | undefined>()

function sourceMapOf(file: string): SourceMap | undefined {
  if (!maps.has(file)) {
    const mapFile = `${file}.map`
    maps.set(file, existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : undefined)
  }
  return maps.get(file)
}

function label(n: ProfileNode, root: string): string {
  const f = n.callFrame
  const name = f.functionName || '(anonymous)'
  if (!f.url) return name
  let file = f.url.startsWith('file://') ? fileURLToPath(f.url) : f.url
  let line = f.lineNumber + 1
  // findEntry answers {} where the map has no mapping.
  const entry = (f.url.startsWith('file://') ? sourceMapOf(file)?.findEntry(f.lineNumber, f.columnNumber) : undefined) as { originalSource?: string; originalLine: number } | undefined
  if (entry?.originalSource) {
    const src = entry.originalSource
    file = src.startsWith('file://') ? fileURLToPath(src) : resolve(dirname(file), src)
    line = entry.originalLine + 1
  }
  if (root && file.startsWith(root)) file = file.slice(root.length)
  return `${name} ${file}:${line}`
}

/** Self and inclusive milliseconds per frame label, summed over the given profiles. */
export function summarizeProfiles(profiles: Profile[], root = ''): { totalMs: number; frames: FrameTime[] } {
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  let totalMs = 0
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]))
    const parent = new Map<number, number>()
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
    // Each node's time: the delta that follows each of its samples.
    const nodeMs = new Map<number, number>()
    for (let i = 0; i < p.samples.length; i++) {
      const ms = (p.timeDeltas[i + 1] ?? 0) / 1000
      nodeMs.set(p.samples[i]!, (nodeMs.get(p.samples[i]!) ?? 0) + ms)
      totalMs += ms
    }
    for (const [id, ms] of nodeMs) {
      const n = byId.get(id)!
      const l = label(n, root)
      self.set(l, (self.get(l) ?? 0) + ms)
      // Inclusive: once per distinct label on the stack, so recursion is not counted twice.
      const seen = new Set<string>()
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const cl = label(byId.get(cur)!, root)
        if (seen.has(cl)) continue
        seen.add(cl)
        total.set(cl, (total.get(cl) ?? 0) + ms)
      }
    }
  }
  const frames = [...total].map(([frame, totalMs]) => ({ frame, selfMs: self.get(frame) ?? 0, totalMs }))
  return { totalMs, frames }
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '30' }, filter: { type: 'string', default: '' }, root: { type: 'string', default: process.cwd() + '/' } },
  })
  const top = Number(values.top)
  const { totalMs, frames } = summarizeProfiles(positionals.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Profile), values.root)
  const pct = (ms: number) => `${((ms / totalMs) * 100).toFixed(1).padStart(5)}%`
  const shown = frames.filter((f) => f.frame.includes(values.filter))
  console.log(`${positionals.length} profile(s), ${(totalMs / 1000).toFixed(1)} s sampled\n\nby self time:`)
  for (const f of [...shown].sort((a, b) => b.selfMs - a.selfMs).slice(0, top)) console.log(`${pct(f.selfMs)}  ${f.frame}`)
  console.log('\nby inclusive time:')
  for (const f of [...shown].sort((a, b) => b.totalMs - a.totalMs).slice(0, top)) console.log(`${pct(f.totalMs)}  ${f.frame}`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
