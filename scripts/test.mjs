#!/usr/bin/env node
// Runs the uvu suites of the given tiers, one process per file so a crash or a hang in one
// file cannot take the others down, and ends with the line CI reads: "N passed, N failed".
// Usage: node scripts/test.mjs unit simulation cluster k8s   (RINGKV_TEST_FILTER=regex narrows files)
import { spawn } from 'node:child_process'
import { readdirSync, statSync, existsSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const tiers = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'simulation', 'cluster', 'k8s']
const filter = process.env.RINGKV_TEST_FILTER ? new RegExp(process.env.RINGKV_TEST_FILTER) : null
const TIMEOUT_MS = { unit: 120_000, simulation: 300_000, cluster: 600_000, k8s: 1_800_000, e2e: 1_800_000 }

function files(dir) {
  if (!existsSync(dir)) return []
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...files(p))
    else if (name.endsWith('.test.js')) out.push(p)
  }
  return out
}

function run(file, timeoutMs) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let out = ''
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d) })
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d) })
    const timer = setTimeout(() => {
      out += `\n[test runner] ${relative(root, file)} timed out after ${timeoutMs / 1000}s; killed\n`
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }, timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      // Whatever the file left behind (its process group) goes with it.
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
      resolve({ code, signal, out, ms: Date.now() - started })
    })
  })
}

let passed = 0
let failed = 0
let skipped = 0
const failures = []
for (const tier of tiers) {
  const list = files(join(root, 'dist', 'test', tier)).filter((f) => !filter || filter.test(f))
  console.log(`\n=== tier ${tier}: ${list.length} file(s)`)
  for (const file of list) {
    const rel = relative(join(root, 'dist'), file)
    console.log(`\n--- ${rel}`)
    const r = await run(file, TIMEOUT_MS[tier] ?? 600_000)
    const total = Number(/Total:\s+(\d+)/.exec(r.out)?.[1] ?? NaN)
    const ok = Number(/Passed:\s+(\d+)/.exec(r.out)?.[1] ?? NaN)
    const sk = Number(/Skipped:\s+(\d+)/.exec(r.out)?.[1] ?? 0)
    if (Number.isNaN(total) || Number.isNaN(ok)) {
      // No summary: the file crashed or hung before uvu could report. Count it as one failure.
      failed += 1
      failures.push(`${rel} (no summary; exit ${r.code ?? r.signal})`)
      continue
    }
    passed += ok
    skipped += sk
    const bad = Math.max(0, total - ok - sk)
    failed += bad
    if (bad > 0 || (r.code !== 0 && bad === 0)) {
      if (bad === 0) failed += 1
      failures.push(`${rel} (${bad || 'exit ' + r.code} failed)`)
    }
    console.log(`    ${rel}: ${ok}/${total} passed in ${(r.ms / 1000).toFixed(1)}s`)
  }
}
if (failures.length) console.log(`\nfailed files:\n  ${failures.join('\n  ')}`)
if (skipped) console.log(`${skipped} skipped`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
