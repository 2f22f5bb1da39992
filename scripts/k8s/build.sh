#!/usr/bin/env bash
# Builds the k8s test tier's binaries from Go modules into the cache, keyed by version:
#   $RINGKV_CACHE_DIR/k8s/kubernetes-<v>/{kube-apiserver,kube-controller-manager,kube-scheduler}
#   $RINGKV_CACHE_DIR/k8s/etcd-<v>/etcd
#   $RINGKV_CACHE_DIR/k8s/helm-<v>/helm
# A directory exists only once its build succeeded (built in a temp dir, then renamed), so a
# warm cache costs nothing and an interrupted build leaves nothing half-done behind.
# Usage: scripts/k8s/build.sh [all|kubernetes|etcd|helm]...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"
cache="${RINGKV_CACHE_DIR:-$HOME/.cache/ringkv}/k8s"
mkdir -p "$cache"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
command -v go >/dev/null || { echo "build.sh: no Go toolchain on PATH" >&2; exit 3; }
# One build at a time per cache (CI setup and a test may both ask); the second waits, then
# finds the binaries there.
if command -v flock >/dev/null; then exec 9>"$cache/.build.lock"; flock 9; fi

log() { echo "[k8s-build $(date +%H:%M:%S)] $*" >&2; }

# new_module DIR NAME: a throwaway module whose go.mod the caller fills in.
new_module() {
  rm -rf "$1"; mkdir -p "$1"
  printf 'module ringkv.local/%s\n\ngo %s\n' "$2" "$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/').0" > "$1/go.mod"
}

# finish TMPOUT FINAL: publish a finished build under its versioned name.
finish() {
  rm -rf "$2"; mv "$1" "$2"; log "ready: $2 ($(ls "$2" | tr '\n' ' '))"
}

# in_assets BINARY...: true when KUBEBUILDER_ASSETS (the envtest convention) has them all; the
# harness takes binaries from there first, so they need no build.
in_assets() {
  [ -n "${KUBEBUILDER_ASSETS:-}" ] || return 1
  local b; for b in "$@"; do [ -x "$KUBEBUILDER_ASSETS/$b" ] || return 1; done
}

# build NAME VERSION BINARY... : unless KUBEBUILDER_ASSETS or the cache has them, runs compile_NAME OUT inside a fresh
# module directory and publishes OUT as $cache/NAME-VERSION.
build() {
  local name=$1 version=$2 bin missing=""; shift 2
  local final="$cache/$name-$version"
  in_assets "$@" && return 0
  for bin in "$@"; do [ -x "$final/$bin" ] || missing=1; done
  [ -z "$missing" ] && return 0
  local work="$cache/build/$name-$version" out="$cache/build/$name-$version.out"
  log "building $* $version"
  new_module "$work" "${name}build"
  rm -rf "$out"; mkdir -p "$out"
  (cd "$work" && "compile_$name" "$out")
  finish "$out" "$final"
}

compile_kubernetes() {
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and points them at ./staging
  # with replace lines, which do not apply to a module that depends on it. Each staging
  # module is published as k8s.io/<name> v0.<minor>.<patch>; replace to those.
  local staging_version="v0.${K8S_VERSION#v1.}" gomod m
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  for m in $(grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}'); do
    go mod edit -replace="$m=$m@$staging_version"
  done
  local cmds="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler"
  local v=k8s.io/component-base/version
  local ld="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  ld="$ld -X $v.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  # shellcheck disable=SC2086
  go get $cmds
  # shellcheck disable=SC2086
  go build -trimpath -ldflags="$ld" -o "$1/" $cmds
}

compile_etcd() {
  # etcd's own main package sits in its root module, whose go.mod replaces its sibling modules
  # with local paths; a two-line main calling etcdmain (what that package does) avoids them.
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -trimpath -ldflags="-s -w" -o "$1/etcd" .
}

compile_helm() {
  go get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  # As helm's Makefile does: the Kubernetes version `helm template` and `helm lint` assume
  # offline is the one its client-go comes from (v0.X.Y → 1.X), not the 1.20 compiled in.
  local kminor; kminor="$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld="$ld -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kminor"
  done
  go build -trimpath -ldflags="$ld" -o "$1/helm" helm.sh/helm/v3/cmd/helm
}

targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(all)
[ "${targets[*]}" = all ] && targets=(etcd helm kubernetes)
for t in "${targets[@]}"; do
  case "$t" in
    kubernetes) build kubernetes "$K8S_VERSION" kube-apiserver kube-controller-manager kube-scheduler ;;
    etcd) build etcd "$ETCD_VERSION" etcd ;;
    helm) build helm "$HELM_VERSION" helm ;;
    *) echo "build.sh: unknown target $t" >&2; exit 2 ;;
  esac
done
