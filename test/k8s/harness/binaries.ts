/**
 * Finds the control plane's binaries: first in KUBEBUILDER_ASSETS (the envtest convention, which
 * usually holds etcd and kube-apiserver), then in the versioned cache that scripts/k8s/build.sh
 * fills. What is missing is built (once; later runs find it in the cache). Only when it cannot
 * be built does the tier skip, with the reason.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export type BinaryName = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'helm'
export type Binaries = Record<BinaryName, string>

export interface Versions {
  kubernetes: string
  etcd: string
  helm: string
}

/** The repository root (the directory holding package.json), found from this file's location. */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'scripts', 'k8s'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('k8s harness: cannot find the repository root above ' + fileURLToPath(import.meta.url))
    dir = up
  }
  return dir
})()

export function cacheDir(): string {
  return process.env.RINGKV_CACHE_DIR || join(homedir(), '.cache', 'ringkv')
}

export function pinnedVersions(): Versions {
  const text = readFileSync(join(repoRoot, 'scripts', 'k8s', 'versions.env'), 'utf8')
  const get = (key: string) => {
    const m = new RegExp(`^${key}=(\\S+)`, 'm').exec(text)
    if (!m) throw new Error(`scripts/k8s/versions.env has no ${key}`)
    return m[1]
  }
  return { kubernetes: get('K8S_VERSION'), etcd: get('ETCD_VERSION'), helm: get('HELM_VERSION') }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Where each binary is now, or undefined for the ones that are not there (yet). */
export function locateBinaries(): Partial<Binaries> {
  const v = pinnedVersions()
  const cache = join(cacheDir(), 'k8s')
  const built: Binaries = {
    etcd: join(cache, `etcd-${v.etcd}`, 'etcd'),
    'kube-apiserver': join(cache, `kubernetes-${v.kubernetes}`, 'kube-apiserver'),
    'kube-controller-manager': join(cache, `kubernetes-${v.kubernetes}`, 'kube-controller-manager'),
    'kube-scheduler': join(cache, `kubernetes-${v.kubernetes}`, 'kube-scheduler'),
    helm: join(cache, `helm-${v.helm}`, 'helm'),
  }
  const assets = process.env.KUBEBUILDER_ASSETS
  const found: Partial<Binaries> = {}
  for (const name of Object.keys(built) as BinaryName[]) {
    const fromAssets = assets ? join(assets, name) : undefined
    if (fromAssets && executable(fromAssets)) found[name] = fromAssets
    else if (executable(built[name])) found[name] = built[name]
  }
  return found
}

export type BinariesResult = { ok: true; binaries: Binaries } | { ok: false; reason: string }

/**
 * Every binary the tier needs, building the missing ones with scripts/k8s/build.sh first.
 * Returns a reason instead when they are not there and cannot be built.
 */
export function ensureBinaries({ build = true }: { build?: boolean } = {}): BinariesResult {
  const all: BinaryName[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'helm']
  const missing = () => all.filter((n) => !locateBinaries()[n])
  if (missing().length && build) {
    const go = spawnSync('go', ['version'], { stdio: 'ignore' })
    if (go.error || go.status !== 0) {
      return { ok: false, reason: `missing ${missing().join(', ')} and no Go toolchain on PATH to build them (see scripts/k8s/build.sh)` }
    }
    process.stderr.write(`[k8s harness] building ${missing().join(', ')} with scripts/k8s/build.sh (first run only)\n`)
    const r = spawnSync(join(repoRoot, 'scripts', 'k8s', 'build.sh'), ['all'], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status !== 0) {
      return { ok: false, reason: `scripts/k8s/build.sh failed (exit ${r.status ?? r.signal}); missing ${missing().join(', ')}` }
    }
  }
  const still = missing()
  if (still.length) return { ok: false, reason: `missing ${still.join(', ')}` }
  return { ok: true, binaries: locateBinaries() as Binaries }
}
