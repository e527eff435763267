#!/usr/bin/env bash
# Builds Argo Rollouts' controller (github.com/argoproj/argo-rollouts/cmd/rollouts-controller,
# the version bench/argo/go.mod requires: v1.9.1) from the Go module proxy into
# bench/argo/bin/rollouts-controller, and copies its CRDs (the module's manifests/crds) into
# bench/argo/bin/crds/, for bench/compare_argo.py:
#
#   bench/argo-build.sh
#   .venv/bin/python bench/compare_argo.py --count 200       # finds bench/argo/bin itself
#
# A wrapper module of our own (bench/argo/go.mod): `go install ...@v1.9.1` is refused
# because Argo Rollouts' go.mod has replace directives, which go.mod here repeats. The
# build runs at `nice -n 10` (RAMP_ARGO_NICE to change it): it takes minutes of CPU on a
# shared machine. Rebuilt only when go.mod, go.sum, this script or the Go version changed
# (bin/.rollouts-controller.stamp), so a warm run is a no-op.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/argo"
bin="$here/argo/bin"
out="$bin/rollouts-controller"
crds="$bin/crds"
mod="github.com/argoproj/argo-rollouts"
pkg="$mod/cmd/rollouts-controller"
niceness="${RAMP_ARGO_NICE:-10}"
. "$here/../tests/cluster/stamp.sh"
recipe="$(recipe_of go.mod go.sum ../argo-build.sh)"
if [[ -f "$crds/rollout-crd.yaml" ]] && fresh rollouts-controller "$recipe"; then
  echo "ramp: rollouts-controller and its CRDs are up to date in $bin"
  exit 0
fi
if [[ "$goversion" == none ]]; then
  echo "ramp: the Go toolchain is required to build Argo Rollouts' controller; 'go' is not on PATH" >&2
  exit 2
fi
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=readonly}"
if ! nice -n "$niceness" go mod download; then
  echo "ramp: failed to download the Go modules of bench/argo/go.mod from the Go module" \
    "proxy (check GOPROXY and the network)" >&2
  exit 3
fi
version="$(go list -m -f '{{.Version}}' "$mod")"
dir="$(go list -m -f '{{.Dir}}' "$mod")"
commit="$(go mod download -json "$mod@$version" | sed -n 's/.*"Hash": "\([0-9a-f]*\)".*/\1/p')"
mkdir -p "$crds"
cp "$dir"/manifests/crds/*-crd.yaml "$crds/"
chmod u+w "$crds"/*.yaml # the module cache is read-only
echo "ramp: building rollouts-controller $version ($pkg) at nice $niceness"
start=$(date +%s)
# The version ldflags of Argo's Makefile (utils/version), so `--version` names the release.
ldflags="-s -w -X $mod/utils/version.version=${version#v} -X $mod/utils/version.gitTag=$version"
ldflags+=" -X $mod/utils/version.gitCommit=$commit -X $mod/utils/version.gitTreeState=clean -X $mod/utils/version.buildDate=2026-01-01T00:00:00Z"
if ! nice -n "$niceness" go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg"; then
  rm -f "$out.tmp"
  echo "ramp: building rollouts-controller from $pkg failed (see the Go errors above)" >&2
  exit 4
fi
mv "$out.tmp" "$out"
stamp rollouts-controller "$recipe"
echo "ramp: built rollouts-controller $version in $(($(date +%s) - start))s: $out"
"$out" --version
