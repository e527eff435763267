#!/usr/bin/env bash
# `make image`: builds ./Dockerfile with podman into $RAMP_IMAGE (ramp/ramp-operator:dev).
#
# The base is the Dockerfile's default (the official python slim image) when it is present
# or can be pulled; otherwise a local base made from Debian packages (local-base.sh), passed
# as PYTHON_IMAGE. $PYTHON_IMAGE chooses a base explicitly. The host's CA bundle is given to
# the build as the secret `host-ca` (read-only in the RUN step that downloads, never in a
# layer), so pip works behind a TLS-intercepting proxy. Warm runs reuse podman's layer cache.
#
# RAMP_IMAGE_SOURCE=git builds a committed tree (git archive of RAMP_IMAGE_REF, HEAD by
# default) instead of the working tree: what a fresh clone would build.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
"$here/prereqs.sh"
. "$here/podman.sh"
image="${RAMP_IMAGE:-ramp/ramp-operator:dev}"
start=$(date +%s)

base="${PYTHON_IMAGE:-}"
if [ -z "$base" ]; then
  default="$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)"
  if podman image exists "$default" \
    || timeout 300 podman pull --quiet "$default" >/dev/null 2>&1; then
    base="$default"
  else
    echo "ramp: the default base $default cannot be pulled here; using a local base" >&2
    base="$("$here/local-base.sh")"
  fi
fi

secret=()
for ca in "${RAMP_BUILD_CA:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -n "$ca" ] && [ -s "$ca" ]; then secret=(--secret "id=host-ca,src=$ca"); break; fi
done

context=.
if [ "${RAMP_IMAGE_SOURCE:-}" = git ]; then
  context="$(mktemp -d)"
  trap 'rm -rf "$context"' EXIT
  git archive --format=tar "${RAMP_IMAGE_REF:-HEAD}" | tar -x -C "$context"
fi

# The base pinned by digest: FROM names exactly the image inspected here (a retagged or
# re-pulled base cannot slip in), and the image records it (OCI base annotations as labels).
digest="$(podman image inspect --format '{{.Digest}}' "$base")"
name="${base%@*}"
[[ "${name##*/}" == *:* ]] && name="${name%:*}"
pinned="$name@$digest"
if ! podman image exists "$pinned"; then
  echo "ramp: cannot name the base $base by its digest here; building on $base" >&2
  pinned="$base"
fi
echo "ramp: building $image from $context/Dockerfile (base $pinned)"
"${PODMAN[@]}" build --quiet "${PODMAN_LIMITS[@]}" --network host --layers \
  "${secret[@]}" --build-arg "PYTHON_IMAGE=$pinned" \
  --label "org.opencontainers.image.base.name=$base" \
  --label "org.opencontainers.image.base.digest=$digest" \
  -t "$image" -f "$context/Dockerfile" "$context" >/dev/null
# The check: the image's first layers are the pinned base's, layer for layer.
base_layers="$(podman image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' "$pinned")"
image_layers="$(podman image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' "$image")"
if [[ "$image_layers" != "$base_layers"* ]]; then
  echo "ramp: $image is not built on $pinned (its layers do not start with the base's)" >&2
  exit 4
fi
size="$(podman image inspect --format '{{.Size}}' "$image")"
echo "ramp: built $image in $(( $(date +%s) - start ))s ($(( size / 1000000 )) MB, base $pinned)"
