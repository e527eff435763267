#!/usr/bin/env bash
# Builds the real node's pieces into tests/cluster/node/bin (ignored by git):
#   kubelet                 k8s.io/kubernetes/cmd/kubelet from the Go module in this folder
#                           (the control plane's versions; a module of its own so that the
#                           control plane's recipe and stamps never change because of it)
#   demoapp                 the demo application (demoapp/, standard library only)
#   demoapp.oci.tar         localhost/ramp-demoapp:v1, FROM scratch, built with podman
#   pause.oci.tar           localhost/ramp-pause:v1, the pod sandbox (the same binary, "pause")
# Each piece is rebuilt only when its recipe changed (../stamp.sh: bin/.NAME.stamp, a hash of
# its inputs, this script and the Go version), so a warm run is a no-op that needs neither Go nor podman.
# Prerequisites (containerd, runc, CNI plugins, podman) come from prereqs.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
bin="$here/bin"
mkdir -p "$bin"
"$here/prereqs.sh"
. "$here/../stamp.sh"
need_go() {
  if [[ "$goversion" == none ]]; then
    echo "ramp: the Go toolchain (go >= 1.26) is required to build $1 (tests/cluster/node);" \
      "'go' is not on PATH" >&2
    exit 2
  fi
}
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=readonly}"

recipe="$(recipe_of demoapp/go.mod demoapp/*.go build.sh ../stamp.sh)"
if ! fresh demoapp "$recipe"; then
  need_go demoapp
  (cd demoapp && go build -trimpath -ldflags "-s -w" -o "$bin/demoapp.tmp" .)
  mv "$bin/demoapp.tmp" "$bin/demoapp"
  stamp demoapp "$recipe"
  echo "ramp: built demoapp"
fi

# The images: podman builds them from the binary alone (no RUN step, so no container runs)
# and saves them as OCI archives that the node's containerd imports at start.
demo_recipe="$(recipe_of "$bin/.demoapp.stamp" Containerfile Containerfile.pause build.sh)"
for image in demoapp:Containerfile pause:Containerfile.pause; do
  name="${image%%:*}"; file="${image#*:}"
  if fresh "$name.oci.tar" "$demo_recipe"; then continue; fi
  ctx="$(mktemp -d)"
  cp "$bin/demoapp" "$ctx/demoapp"
  ref="localhost/ramp-$name:v1"
  podman build --quiet --runtime runc -t "$ref" -f "$here/$file" "$ctx" >/dev/null
  rm -rf "$ctx"
  rm -f "$bin/$name.oci.tar"
  podman save --quiet --format oci-archive -o "$bin/$name.oci.tar" "$ref"
  stamp "$name.oci.tar" "$demo_recipe"
  echo "ramp: built image $ref into $bin/$name.oci.tar"
done

recipe="$(recipe_of go.mod go.sum build.sh ../stamp.sh)"
if ! fresh kubelet "$recipe"; then
  need_go kubelet
  echo "ramp: building kubelet (first run: several minutes)"
  start=$(date +%s)
  go mod download || { echo "ramp: failed to download the Go modules of tests/cluster/node/go.mod" >&2; exit 3; }
  ld="$(kube_ldflags)"
  if ! go build -trimpath -ldflags "$ld" -o "$bin/kubelet.tmp" k8s.io/kubernetes/cmd/kubelet; then
    rm -f "$bin/kubelet.tmp"
    echo "ramp: building kubelet failed (see the Go errors above)" >&2
    exit 4
  fi
  mv "$bin/kubelet.tmp" "$bin/kubelet"
  stamp kubelet "$recipe"
  echo "ramp: built kubelet in $(( $(date +%s) - start ))s"
fi
