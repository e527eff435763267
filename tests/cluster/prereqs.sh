#!/usr/bin/env bash
# The launcher makes the cluster's PKI with the openssl command: install it when missing
# (Debian's package; needs root or sudo). Does nothing when openssl is there.
set -euo pipefail
command -v openssl >/dev/null 2>&1 && exit 0
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ramp: openssl is missing and installing it needs root (or sudo)" >&2; exit 2; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends openssl \
  || { echo "ramp: could not install openssl with apt-get" >&2; exit 3; }
