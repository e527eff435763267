#!/usr/bin/env bash
# Builds bin/argocd-lua (Argo CD's Lua engine, gopher-lua, in Argo CD's sandbox: main.go)
# from the Go module in this folder; go.mod pins gopher-lua and gopher-json. Rebuilt only
# when main.go, go.mod, go.sum, this script or the Go version changed (bin/.stamp).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
out="$here/bin/argocd-lua"
goversion="$(command -v go >/dev/null 2>&1 && go env GOVERSION 2>/dev/null || echo none)"
recipe="$(cat main.go go.mod go.sum build.sh | sha256sum | cut -c1-32)"
if [[ -x "$out" && -f bin/.stamp ]]; then
  read -r built_recipe built_go <bin/.stamp || true
  if [[ "$built_recipe" == "$recipe" && ("$built_go" == "$goversion" || "$goversion" == none) ]]; then
    exit 0
  fi
fi
if [[ "$goversion" == none ]]; then
  echo "ramp: the Go toolchain is required to build tests/gopherlua (Argo CD's Lua engine)" >&2
  exit 2
fi
mkdir -p bin
start=$(date +%s)
CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=readonly}" go build -trimpath -ldflags "-s -w" -o "$out.tmp" . \
  || { rm -f "$out.tmp"; echo "ramp: building tests/gopherlua failed (see the Go errors above)" >&2; exit 4; }
mv "$out.tmp" "$out"
echo "$recipe $goversion" >bin/.stamp
echo "ramp: built $out (gopher-lua $(go list -m -f '{{.Version}}' github.com/yuin/gopher-lua)) in $(( $(date +%s) - start ))s"
