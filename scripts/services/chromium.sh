#!/usr/bin/env bash
# Installs Debian's chromium (as root; idempotent) for the browser tests of `retain ui`
# (tests/ui/test_ui_browser.py drive it with Playwright, which never downloads a browser here).
# Prints nothing on stdout: the tests find the browser at /usr/bin/chromium.
set -euo pipefail

log() { echo "chromium.sh: $*" >&2; }

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "no /usr/bin/chromium; run this script as root to install Debian's chromium package"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium >&2
[ -x /usr/bin/chromium ] || { log "apt-get installed chromium but /usr/bin/chromium is missing"; exit 1; }
log "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
