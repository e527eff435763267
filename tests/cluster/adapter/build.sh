#!/usr/bin/env bash
# Builds tests/cluster/bin/prometheus-adapter (sigs.k8s.io/prometheus-adapter/cmd/adapter,
# the External/custom metrics API server in front of Prometheus) from the Go module in this
# folder. It is a module of its own: the adapter pins its own k8s.io libraries (v0.30), which
# must not move the control plane's (tests/cluster/go.mod, v0.36). Rebuilt only when go.mod,
# go.sum, this script or the Go version changed (../stamp.sh), so a warm
# run is a no-op that needs no Go at all.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
bin="$here/../bin"
out="$bin/prometheus-adapter"
pkg="sigs.k8s.io/prometheus-adapter/cmd/adapter"
. "$here/../stamp.sh"
recipe="$(recipe_of go.mod go.sum build.sh ../stamp.sh)"
if fresh prometheus-adapter "$recipe"; then
  echo "ramp: prometheus-adapter is up to date in $bin"
  exit 0
fi
if [[ "$goversion" == none ]]; then
  echo "ramp: the Go toolchain (go >= 1.26) is required to build prometheus-adapter" \
    "(tests/cluster/adapter); 'go' is not on PATH" >&2
  exit 2
fi
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=readonly}"
if ! go mod download; then
  echo "ramp: failed to download the Go modules of tests/cluster/adapter/go.mod from the" \
    "Go module proxy (check GOPROXY and the network)" >&2
  exit 3
fi
version="$(go list -m -f '{{.Version}}' sigs.k8s.io/prometheus-adapter)"
mkdir -p "$bin"
echo "ramp: building prometheus-adapter $version ($pkg)"
start=$(date +%s)
if ! go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version" \
  -o "$out.tmp" "$pkg"; then
  rm -f "$out.tmp"
  echo "ramp: building prometheus-adapter from $pkg failed (see the Go errors above)" >&2
  exit 4
fi
mv "$out.tmp" "$out"
stamp prometheus-adapter "$recipe"
echo "ramp: built prometheus-adapter in $(( $(date +%s) - start ))s"
