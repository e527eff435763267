#!/usr/bin/env bash
# Builds tests/cluster/bin/traefik (github.com/traefik/traefik/v3/cmd/traefik, a Gateway API
# implementation that is pure Go, proxy included) from the Go module in this folder, and
# copies the Gateway API CRDs (standard channel) of sigs.k8s.io/gateway-api into
# bin/gateway-api-crds.yaml. A wrapper module of our own: `go install traefik@v3.6.12` is
# refused because of Traefik's own `replace` directives, which go.mod here repeats (with its
# `exclude`). Rebuilt only when go.mod, go.sum, this script or the Go version changed
# (../stamp.sh: bin/.traefik.stamp), so a warm run is a no-op that needs no Go at all.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
bin="$here/../bin"
out="$bin/traefik"
crds="$bin/gateway-api-crds.yaml"
pkg="github.com/traefik/traefik/v3/cmd/traefik"
. "$here/../stamp.sh"
recipe="$(recipe_of go.mod go.sum build.sh ../stamp.sh)"
if [[ -f "$crds" ]] && fresh traefik "$recipe"; then
  echo "ramp: traefik and the Gateway API CRDs are up to date in $bin"
  exit 0
fi
if [[ "$goversion" == none ]]; then
  echo "ramp: the Go toolchain (go >= 1.26) is required to build traefik" \
    "(tests/cluster/gateway); 'go' is not on PATH" >&2
  exit 2
fi
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=readonly}"
if ! go mod download; then
  echo "ramp: failed to download the Go modules of tests/cluster/gateway/go.mod from the" \
    "Go module proxy (check GOPROXY and the network)" >&2
  exit 3
fi
version="$(go list -m -f '{{.Version}}' github.com/traefik/traefik/v3)"
gwdir="$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)"
mkdir -p "$bin"
# The standard channel: GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant,
# BackendTLSPolicy (Traefik watches them all).
for f in "$gwdir"/config/crd/standard/*.yaml; do
  echo "---"
  cat "$f"
done >"$crds.tmp"
mv "$crds.tmp" "$crds"
echo "ramp: building traefik $version ($pkg)"
start=$(date +%s)
if ! go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$version" \
  -o "$out.tmp" "$pkg"; then
  rm -f "$out.tmp"
  echo "ramp: building traefik from $pkg failed (see the Go errors above)" >&2
  exit 4
fi
mv "$out.tmp" "$out"
stamp traefik "$recipe"
echo "ramp: built traefik $version in $(( $(date +%s) - start ))s"
