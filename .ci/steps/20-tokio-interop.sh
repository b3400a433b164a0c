#!/usr/bin/env bash
# heartbeat-tokio interop with Python's `websockets` (a peer nobody here wrote): installs python3
# and websockets if missing (idempotent), then runs the interop tests, which must not skip here.
set -euo pipefail
cd "$(dirname "$0")/../.."

have_websockets() { command -v python3 >/dev/null 2>&1 && python3 -c 'import websockets' >/dev/null 2>&1; }

if ! have_websockets; then
  # Debian's package serves Debian's python3; a python3 of its own (pyenv, venv) gets pip.
  if command -v apt-get >/dev/null 2>&1 && { ! command -v python3 >/dev/null 2>&1 || [ "$(command -v python3)" = /usr/bin/python3 ]; }; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3 python3-websockets
  fi
fi
if ! have_websockets; then
  python3 -m pip install --quiet websockets \
    || python3 -m pip install --quiet --break-system-packages websockets
fi
python3 -c 'import websockets; print("python", __import__("sys").version.split()[0], "websockets", websockets.__version__)'

HEARTBEAT_REQUIRE_PYTHON_WEBSOCKETS=1 cargo test -p heartbeat-tokio --locked --test python_interop -- --nocapture
