#!/usr/bin/env bash
# Builds the local control plane binaries into tests/cluster/bin (ignored by git) from the Go
# module in this folder (go.mod pins every version; Go's module and build caches are reused).
# A binary is rebuilt only when its recipe changed (stamp.sh: bin/.NAME.stamp holds a hash of
# go.mod, go.sum, this script and the Go version), so a warm run is a no-op that needs no Go.
# Usage: build.sh [NAME...] builds only the named tools (`make cluster-build` names the
# control plane's, what the demo needs; helm is for the tests only); no name: all of them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
bin="$here/bin"
tools=(
  "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl=k8s.io/kubernetes/cmd/kubectl"
  "etcd=go.etcd.io/etcd/server/v3"
  "kwok=sigs.k8s.io/kwok/cmd/kwok"
  "helm=helm.sh/helm/v3/cmd/helm"
)
if [[ $# -gt 0 ]]; then
  wanted=()
  for name in "$@"; do
    found=""
    for t in "${tools[@]}"; do [[ "${t%%=*}" == "$name" ]] && found="$t"; done
    [[ -n "$found" ]] || { echo "ramp: build.sh: unknown tool $name" >&2; exit 2; }
    wanted+=("$found")
  done
  tools=("${wanted[@]}")
fi
. "$here/stamp.sh"
recipe="$(recipe_of go.mod go.sum build.sh stamp.sh)"
stale=()
for t in "${tools[@]}"; do
  fresh "${t%%=*}" "$recipe" || stale+=("$t")
done
if [[ ${#stale[@]} -eq 0 ]]; then
  echo "ramp: control-plane binaries are up to date in $bin"
  exit 0
fi
if [[ "$goversion" == none ]]; then
  echo "ramp: the Go toolchain (go >= 1.26) is required to build the local control plane" \
    "(missing: ${stale[*]%%=*}); 'go' is not on PATH" >&2
  exit 2
fi
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=readonly}"
echo "ramp: downloading Go modules (first run only)"
# Only the modules the stale tools import (the control plane needs none of helm's):
# listing their packages downloads exactly those.
if ! go list -deps "${stale[@]#*=}" >/dev/null; then
  echo "ramp: failed to download the Go modules of tests/cluster/go.mod from the Go module proxy" \
    "(check GOPROXY and the network)" >&2
  exit 3
fi
helm_version="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"
# Version ldflags as upstream hack/lib/version.sh and helm's Makefile set them, so that
# kubectl/helm report (and see the server as) the real release instead of v0.0.0-master.
ld="$(kube_ldflags)"
major="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"; major="${major#v}"
minor="${major#*.}"; minor="${minor%%.*}"; major="${major%%.*}"
helm_ld="-X helm.sh/helm/v3/internal/version.version=${helm_version}"
helm_ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
helm_ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${major}"
helm_ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${minor}"
helm_ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${major}"
helm_ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${minor}"
mkdir -p "$bin"
for t in "${stale[@]}"; do
  name="${t%%=*}"; pkg="${t#*=}"
  flags="$ld"
  [[ "$name" == helm ]] && flags+=" $helm_ld"
  echo "ramp: building $name ($pkg)"
  start=$(date +%s)
  if ! go build -trimpath -ldflags "$flags" -o "$bin/$name.tmp" "$pkg"; then
    rm -f "$bin/$name.tmp"
    echo "ramp: building $name from $pkg failed (see the Go errors above)" >&2
    exit 4
  fi
  mv "$bin/$name.tmp" "$bin/$name"
  stamp "$name" "$recipe"
  echo "ramp: built $name in $(( $(date +%s) - start ))s"
done
