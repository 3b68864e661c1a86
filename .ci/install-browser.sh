#!/usr/bin/env bash
# Install what the report's browser tests need: Debian's chromium and Playwright's
# Python API (driving that chromium; never `playwright install`, which downloads).
# Idempotent: returns at once when both are already there.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"

if [ ! -x /usr/bin/chromium ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi

if ! "$python" -c "import playwright.sync_api" >/dev/null 2>&1; then
    "$python" -m pip install -q playwright
fi

/usr/bin/chromium --version 2>/dev/null
"$python" -c "from importlib.metadata import version; print('playwright', version('playwright'))"
