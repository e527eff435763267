#!/usr/bin/env bash
# Builds the local control plane binaries into tests/cluster/bin (ignored by git).
# Skips the build when every binary is newer than go.mod/go.sum and this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if ! command -v go >/dev/null 2>&1; then
  echo "ramp: the Go toolchain (go >= 1.26) is required to build the local control plane; it is not on PATH" >&2
  exit 2
fi
KUBE_VERSION="v1.36.3"
bin="$here/bin"
mkdir -p "$bin"
tools=(
  "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl=k8s.io/kubernetes/cmd/kubectl"
  "etcd=go.etcd.io/etcd/server/v3"
  "kwok=sigs.k8s.io/kwok/cmd/kwok"
  "helm=helm.sh/helm/v3/cmd/helm"
)
stale=()
for t in "${tools[@]}"; do
  name="${t%%=*}"
  out="$bin/$name"
  if [[ ! -x "$out" || go.mod -nt "$out" || go.sum -nt "$out" || build.sh -nt "$out" ]]; then
    stale+=("$t")
  fi
done
if [[ ${#stale[@]} -eq 0 ]]; then
  echo "ramp: control-plane binaries are up to date in $bin"
  exit 0
fi
major="${KUBE_VERSION#v}"; major="${major%%.*}"
minor="${KUBE_VERSION#v*.}"; minor="${minor%%.*}"
ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
  ld+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=2026-01-01T00:00:00Z"
done
# helm reports the Kubernetes version it was compiled against for lint/template
ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${major} -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${minor}"
ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${major} -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${minor}"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=mod}"
echo "ramp: downloading Go modules (first run only)"
if ! go mod download; then
  echo "ramp: failed to download the Go modules of tests/cluster/go.mod from the Go module proxy" >&2
  exit 3
fi
for t in "${stale[@]}"; do
  name="${t%%=*}"; pkg="${t#*=}"
  echo "ramp: building $name ($pkg)"
  start=$(date +%s)
  if ! go build -trimpath -ldflags "$ld" -o "$bin/$name.tmp" "$pkg"; then
    rm -f "$bin/$name.tmp"
    echo "ramp: building $name from $pkg failed (see the Go errors above)" >&2
    exit 4
  fi
  mv "$bin/$name.tmp" "$bin/$name"
  echo "ramp: built $name in $(( $(date +%s) - start ))s"
done
