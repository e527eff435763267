#!/usr/bin/env bash
# What the real node needs from the machine (docs/real-node.md): Debian's containerd, runc and
# CNI plugins (bridge, host-local, loopback in /usr/lib/cni), iproute2 for the node's network
# namespace, and podman for the images (tests/image/prereqs.sh). Installed with apt-get when
# missing (needs root or sudo); does nothing when all are there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=()
for pair in containerd:containerd ctr:containerd runc:runc ip:iproute2 nsenter:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] \
  || need+=(containernetworking-plugins)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "ramp: ${need[*]} missing and installing needs root (or sudo)" >&2; exit 2; }
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "ramp: installing ${need[*]} (Debian packages)"
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq \
    && "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "ramp: could not install ${need[*]} with apt-get" >&2; exit 3; }
fi
# Debian's containerd package enables a system-wide service; the node runs its own
# containerd (socket and state under the cluster's folder) and never uses that one.
"$here/../../image/prereqs.sh"
