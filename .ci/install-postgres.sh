#!/usr/bin/env bash
# Install what the PostgreSQL ledger tests need: the server binaries (initdb, pg_ctl)
# and the psycopg 3 driver. Idempotent; quick when everything is already there.
set -euo pipefail

have_initdb() {
    command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_initdb; then
    echo "install-postgres: server binaries already installed"
else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    have_initdb || { echo "install-postgres: initdb still not found" >&2; exit 1; }
    echo "install-postgres: installed postgresql"
fi

PY="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then PY="$(command -v python3)"; fi
if "$PY" -c "import psycopg" 2>/dev/null; then
    echo "install-postgres: psycopg already installed"
else
    "$PY" -m pip install -q 'psycopg[binary]>=3.1'
fi
