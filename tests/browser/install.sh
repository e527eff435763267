#!/usr/bin/env bash
# Install Debian's Chromium and its driver for the dashboard's browser tests
# (make browser-install). Idempotent: does nothing when both are already there.
# No browser is ever downloaded by a test tool: Selenium drives /usr/bin/chromium through
# /usr/bin/chromedriver, both from Debian's packages.
set -euo pipefail

log() { echo "browser-install: $*" >&2; }

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    log "$(/usr/bin/chromium --version 2>/dev/null | head -n1) and chromedriver already installed"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || {
    log "ERROR: no apt-get: install Chromium and ChromeDriver as /usr/bin/chromium and /usr/bin/chromedriver"
    exit 1
}
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "ERROR: installing chromium needs root (or sudo)"; exit 1; }
    SUDO=(sudo)
fi
log "installing Debian's chromium and chromium-driver"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null
log "$(/usr/bin/chromium --version 2>/dev/null | head -n1) installed"
