#!/usr/bin/env bash
# heartbeat-web in a real headless Chromium: builds the wasm with Debian's toolchain and runs the
# browser tests against the tokio example server (see adapters/web/test.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../../adapters/web/test.sh"
