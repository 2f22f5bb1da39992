#!/usr/bin/env node
// Writes manifests/ (plain YAML for kubectl and kustomize) from the Helm chart, so that the two
// cannot drift apart: the chart is the source, manifests/ its rendering with default values,
// release "ringkv-operator" in namespace ringkv-system, without Helm's own labels.
//   node scripts/k8s/render-manifests.mjs [--helm PATH] [--check]
// --check writes nothing and exits 1 when manifests/ differs from a fresh rendering (a k8s-tier
// test runs it). Without --helm, the helm that scripts/k8s/build.sh caches is used.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import YAML from 'yaml'

const root = new URL('../..', import.meta.url).pathname
const args = process.argv.slice(2)
const check = args.includes('--check')
const helmArg = args.indexOf('--helm')
const NAMESPACE = 'ringkv-system'
const HEADER = '# Generated from charts/ringkv-operator by scripts/k8s/render-manifests.mjs; edit the chart, not this file.\n'
const HELM_LABELS = ['app.kubernetes.io/managed-by', 'helm.sh/chart']

function defaultHelm() {
  const env = readFileSync(join(root, 'scripts/k8s/versions.env'), 'utf8')
  const version = /^HELM_VERSION=(\S+)/m.exec(env)[1]
  const cache = process.env.RINGKV_CACHE_DIR || join(homedir(), '.cache', 'ringkv')
  return join(cache, 'k8s', `helm-${version}`, 'helm')
}

function render(helm) {
  const home = mkdtempSync(join(tmpdir(), 'ringkv-helm-'))
  try {
    return execFileSync(helm, ['template', 'ringkv-operator', join(root, 'charts/ringkv-operator'), '--namespace', NAMESPACE], {
      env: { PATH: process.env.PATH, HOME: home, HELM_CONFIG_HOME: join(home, 'c'), HELM_CACHE_HOME: join(home, 'k'), HELM_DATA_HOME: join(home, 'd') },
      encoding: 'utf8',
    })
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
}

function dropHelmLabels(obj) {
  for (const labels of [obj.metadata?.labels, obj.spec?.template?.metadata?.labels]) {
    for (const l of HELM_LABELS) if (labels) delete labels[l]
  }
  return obj
}

const FILE_BY_KIND = {
  ServiceAccount: 'rbac/service-account.yaml',
  ClusterRole: 'rbac/cluster-role.yaml',
  ClusterRoleBinding: 'rbac/cluster-role-binding.yaml',
  Deployment: 'operator/deployment.yaml',
}

function renderManifests(helm) {
  const files = {}
  for (const doc of YAML.parseAllDocuments(render(helm))) {
    const obj = doc.toJS()
    if (!obj) continue
    const file = FILE_BY_KIND[obj.kind]
    if (!file) throw new Error(`render-manifests: no place for kind ${obj.kind}; add it to FILE_BY_KIND`)
    files[file] = HEADER + YAML.stringify(dropHelmLabels(obj))
  }
  files['crd/kvcluster.yaml'] = readFileSync(join(root, 'charts/ringkv-operator/crds/kvcluster.yaml'), 'utf8')
  files['operator/namespace.yaml'] = HEADER + YAML.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE, labels: { 'app.kubernetes.io/part-of': 'ringkv' } } })
  const resources = ['crd/kvcluster.yaml', 'operator/namespace.yaml', ...Object.values(FILE_BY_KIND)]
  files['kustomization.yaml'] = HEADER + YAML.stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources })
  return files
}

const helm = helmArg >= 0 ? args[helmArg + 1] : defaultHelm()
if (!existsSync(helm)) {
  console.error(`render-manifests: no helm at ${helm} (scripts/k8s/build.sh helm builds it)`)
  process.exit(2)
}
const files = renderManifests(helm)
const stale = []
for (const [rel, text] of Object.entries(files)) {
  const path = join(root, 'manifests', rel)
  const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined
  if (current === text) continue
  stale.push(rel)
  if (!check) {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
  }
}
if (check && stale.length) {
  console.error(`manifests/ is not the chart's rendering; run node scripts/k8s/render-manifests.mjs. Differs: ${stale.join(', ')}`)
  process.exit(1)
}
console.log(check ? 'manifests/ matches the chart' : stale.length ? `wrote ${stale.join(', ')}` : 'manifests/ already up to date')
