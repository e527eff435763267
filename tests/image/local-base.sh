#!/usr/bin/env bash
# A local Python base image, made from Debian packages when the Dockerfile's default base
# (the official python slim image) cannot be pulled: mmdebstrap builds an essential-only root
# filesystem of the host's Debian release with python3 and pip, `podman import` turns it
# into an image. Prints the image's name on stdout.
#
# It behaves as the official image does where the Dockerfile relies on it: `python` is on
# PATH (python-is-python3), `pip install` into the system interpreter is allowed (PEP 668's
# EXTERNALLY-MANAGED marker removed: the image is ours), CA certificates are installed.
# The name carries a hash of this script and the release, so an existing base is reused
# (warm builds) and a changed recipe makes a new one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
recipe="$(cat "$here/local-base.sh" | sha256sum | cut -c1-12)"
image="localhost/ramp-base/python:${suite}-${recipe}"
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi
# The host's apt sources (an existing file is pasted into the chroot's sources.list), so the
# base comes from wherever this machine gets its Debian packages.
mirror=()
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  if [ -s "$f" ] && grep -q "^[^#]" "$f"; then mirror=("$f"); break; fi
done
start=$(date +%s)
echo "ramp: making a local base image $image (mmdebstrap $suite essential + python3)" >&2
tar="$(mktemp --suffix=.tar)"
log="$(mktemp --suffix=.log)"
trap 'rm -f "$tar" "$log"' EXIT
mmdebstrap --quiet --variant=essential --mode=root --format=tar \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --include=python3,python3-pip,python-is-python3,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  "$suite" "$tar" "${mirror[@]}" >"$log" 2>&1 \
  || { cat "$log" >&2; echo "ramp: mmdebstrap failed" >&2; exit 3; }
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$tar" "$image" >/dev/null
echo "ramp: local base $image made in $(( $(date +%s) - start ))s" >&2
echo "$image"
