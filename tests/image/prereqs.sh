#!/usr/bin/env bash
# The container tools `make image` and the image tests use: Debian's podman and buildah with
# the runc runtime, and mmdebstrap to make a local base image when none can be pulled.
# Installed with apt-get when missing (needs root or sudo); does nothing when all are there.
set -euo pipefail
need=()
for pair in podman:podman buildah:buildah runc:runc mmdebstrap:mmdebstrap; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ramp: ${need[*]} missing and installing needs root (or sudo)" >&2; exit 2; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "ramp: installing ${need[*]} (Debian packages)"
"${SUDO[@]}" apt-get update -qq \
  && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" uidmap ca-certificates >/dev/null \
  || { echo "ramp: could not install ${need[*]} with apt-get" >&2; exit 3; }
