#!/usr/bin/env bash
# System dependencies of the test tiers, for a fresh machine like the developers' (.ci/run calls
# this after `npm ci`). Idempotent, and quick once done: it installs only what is missing and the
# k8s tier's binaries are built once into ${RINGKV_CACHE_DIR:-$HOME/.cache/ringkv}.
# Usage: scripts/ci-deps.sh [build.sh targets, default all]
#  - openssl: the k8s harness makes its certificates with it;
#  - Go: builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and helm from Go
#    modules (scripts/k8s/build.sh); a Go older than the modules need fetches the right
#    toolchain itself through the module proxy (GOTOOLCHAIN=auto).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v flock >/dev/null || missing+=(util-linux)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)
command -v curl >/dev/null || missing+=(ca-certificates curl)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ci-deps: missing ${missing[*]} and not root; install them and re-run" >&2
    exit 1
  fi
  echo "ci-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"

# Go 1.21+ switches to the toolchain a go.mod asks for by itself. An older Go (Debian 12 ships
# 1.19) cannot, so fetch the pinned toolchain as the module it is published as, once.
. scripts/k8s/versions.env
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "${go_minor:-0}" -lt 21 ]; then
  toolchain="${RINGKV_CACHE_DIR:-$HOME/.cache/ringkv}/k8s/$GO_TOOLCHAIN"
  if [ ! -x "$toolchain/bin/go" ]; then
    echo "ci-deps: Go $(go env GOVERSION) is too old; fetching $GO_TOOLCHAIN from the module proxy" >&2
    dir=$(cd /tmp && go mod download -json "golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$(go env GOARCH)" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    mkdir -p "$(dirname "$toolchain")"; rm -rf "$toolchain.tmp"; cp -r "$dir" "$toolchain.tmp"; chmod -R u+w "$toolchain.tmp"
    # Module zips carry no file modes: the tools must be made executable again.
    chmod +x "$toolchain.tmp"/bin/* "$toolchain.tmp"/pkg/tool/*/*
    mv "$toolchain.tmp" "$toolchain"
  fi
  export PATH="$toolchain/bin:$PATH"
fi

started=$(date +%s)
scripts/k8s/build.sh "${@:-all}"
echo "ci-deps: k8s binaries ready ($(( $(date +%s) - started ))s)" >&2
