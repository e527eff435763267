#!/usr/bin/env bash
# Install Debian's `prometheus` package for the analysis tests (make prometheus-install).
#
# Idempotent: does nothing when a `prometheus` binary is already on PATH. The tests start
# their own server on 127.0.0.1 with a temporary storage directory, so the package's system
# service must not run: a policy-rc.d that refuses service starts is put in place for the
# duration of the install (unless one already exists), and a service that started anyway is
# stopped again.
set -euo pipefail

log() { echo "prometheus-install: $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

if command -v prometheus >/dev/null 2>&1; then
    log "$(prometheus --version 2>&1 | head -n1) already installed at $(command -v prometheus)"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
    die "no prometheus binary and no apt-get: install Prometheus (2.x) by hand and put it on PATH"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        die "installing the prometheus package needs root (or sudo)"
    fi
else
    SUDO=()
fi
export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [ "$created_policy" = 1 ]; then
        "${SUDO[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT
if [ ! -e "$policy" ]; then
    # Debian's convention: exit code 101 from policy-rc.d means "action forbidden".
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    created_policy=1
fi

install_pkg() {
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus
}

# The package lists may be missing or stale on a fresh machine: update when the candidate
# is unknown, and once more if the install fails (an outdated list names removed files).
if ! apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    log "apt-get update (package lists do not know prometheus yet)"
    "${SUDO[@]}" apt-get update -q || die "apt-get update failed"
fi
if ! install_pkg; then
    log "install failed; retrying after apt-get update"
    "${SUDO[@]}" apt-get update -q || die "apt-get update failed"
    install_pkg || die "apt-get install prometheus failed (see the output above)"
fi

# Never leave the package's own service running: the tests start their own servers.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/prometheus ] && /etc/init.d/prometheus status >/dev/null 2>&1; then
    log "stopping the prometheus service the package started"
    "${SUDO[@]}" /etc/init.d/prometheus stop || true
fi
if command -v update-rc.d >/dev/null 2>&1 && [ -x /etc/init.d/prometheus ]; then
    "${SUDO[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true
fi

command -v prometheus >/dev/null 2>&1 || die "package installed but no prometheus binary on PATH"
log "installed $(prometheus --version 2>&1 | head -n1)"
