#!/usr/bin/env bash
# heartbeat-web's browser tests, from a fresh Debian machine (run as root), idempotently:
#   1. installs what is missing from Debian's packages (Rust for wasm, wasm-ld, Chromium, binaryen);
#   2. builds the crate for wasm32-unknown-unknown with Debian's toolchain and -Zbuild-std
#      (rustup's wasm32 target may not be downloadable); its own target dir, fixed variables, so
#      std is built once;
#   3. installs wasm-bindgen-cli of the version in Cargo.lock (skipped when it matches), runs it
#      and wasm-opt into adapters/web/www/pkg, and checks the .wasm size budget;
#   4. installs playwright-core and typescript from package-lock.json (no browser download:
#      Debian's Chromium) and type-checks tests/typecheck.ts against the generated .d.ts;
#   5. builds the tokio example server and runs tests/browser.mjs, which starts, stops and kills
#      that server and drives the demo page in headless Chromium.
# Everything it starts is stopped on exit. Artifacts (screenshots, logs): target/web-artifacts.
#
# Variables: HB_WEB_TOOLS (default ~/.cache/heartbeat-tools), HB_WEB_MAX_WASM_BYTES
# (default 102400), CARGO_TARGET_DIR (for the host build of the server). Not HEARTBEAT_*: the
# server reads every HEARTBEAT_* variable as a config override and rejects unknown ones.
set -euo pipefail

WEB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$WEB/../.." && pwd)
cd "$ROOT"

TOOLS=${HB_WEB_TOOLS:-$HOME/.cache/heartbeat-tools}
WASM_TARGET_DIR=$ROOT/target/wasm
HOST_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ARTIFACTS=$ROOT/target/web-artifacts
PKG=$WEB/www/pkg
MAX_WASM_BYTES=${HB_WEB_MAX_WASM_BYTES:-102400}
LLVM_BIN=/usr/lib/llvm-22/bin

T0=$SECONDS
phase() { echo "== web [$((SECONDS - T0))s] $*"; }

# ---- cleanup: only what this script started ----
NODE_PID=
PID_FILE=$(mktemp)
cleanup() {
  local rc=$?
  if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
  # The server the test started (it restarts it once; the file holds the latest pid).
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(ps -p "$pid" -o comm= 2>/dev/null)" = server ]; then
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  exit "$rc"
}
trap cleanup EXIT INT TERM

# ---- 1. packages ----
phase "packages"
need=()
for p in rustc-web cargo-web rust-web-src lld-22 chromium binaryen; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    need+=("$p")
  fi
done
# Node.js may come from elsewhere than Debian (it does on this project's machines): only
# install Debian's when there is none.
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# ---- 2. the wasm build, with Debian's toolchain ----
phase "wasm build (Debian rustc $(/usr/bin/rustc --version | cut -d' ' -f2), -Zbuild-std)"
# Fixed flags: any change rebuilds std. Size: opt-level z, LTO, one codegen unit, panics abort
# at once without messages (-Zpanic-immediate-abort), no panic locations; no reference types,
# so wasm-bindgen keeps JS objects in a JS-side slab (Debian's wasm-opt 108 mangles wasm-bindgen's
# externref table).
env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u CARGO_TARGET_DIR \
  -u CARGO_BUILD_TARGET_DIR -u RUSTC_WRAPPER -u CARGO_BUILD_RUSTC_WRAPPER \
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=$LLVM_BIN/wasm-ld \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zlocation-detail=none -Ctarget-feature=-reference-types" \
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=immediate-abort \
  CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_TERM_COLOR=never \
  /usr/bin/cargo build -Zpanic-immediate-abort -Zbuild-std=std,panic_abort \
  --target wasm32-unknown-unknown --target-dir "$WASM_TARGET_DIR" \
  -p heartbeat-web --release --locked
RAW_WASM=$WASM_TARGET_DIR/wasm32-unknown-unknown/release/heartbeat_web.wasm

# ---- 3. wasm-bindgen (the version in Cargo.lock) and wasm-opt ----
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$WB_VERSION" ] || { echo "no wasm-bindgen in Cargo.lock" >&2; exit 1; }
if [ "$("$TOOLS/bin/wasm-bindgen" --version 2>/dev/null)" != "wasm-bindgen $WB_VERSION" ]; then
  phase "installing wasm-bindgen-cli $WB_VERSION into $TOOLS (about 2 minutes, once)"
  # Not --locked: its published lock file names a crate version the registry here lacks.
  # --debug: builds in a third of the time and writes byte-identical output (checked), in
  # under a second for this crate.
  env -u CARGO_TARGET_DIR cargo install wasm-bindgen-cli --version "$WB_VERSION" --root "$TOOLS" \
    --force --debug
fi
phase "wasm-bindgen $WB_VERSION --target web, wasm-opt"
rm -rf "$PKG"
"$TOOLS/bin/wasm-bindgen" --target web --out-dir "$PKG" --remove-name-section \
  --remove-producers-section "$RAW_WASM"
# Debian's binaryen is version 108: name the features rustc's wasm32 target uses.
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-multivalue \
  "$PKG/heartbeat_web_bg.wasm" -o "$PKG/heartbeat_web_bg.wasm.opt"
mv "$PKG/heartbeat_web_bg.wasm.opt" "$PKG/heartbeat_web_bg.wasm"
SIZE=$(stat -c %s "$PKG/heartbeat_web_bg.wasm")
GZ=$(gzip -9c "$PKG/heartbeat_web_bg.wasm" | wc -c)
echo "heartbeat_web_bg.wasm: $SIZE bytes after wasm-opt -Oz ($GZ gzipped); budget $MAX_WASM_BYTES"
if [ "$SIZE" -gt "$MAX_WASM_BYTES" ]; then
  echo "heartbeat_web_bg.wasm is over its size budget ($SIZE > $MAX_WASM_BYTES bytes)" >&2
  exit 1
fi

# ---- 4. playwright-core (the driver only; the browser is Debian's) and TypeScript ----
STAMP=$WEB/node_modules/.heartbeat-lock
if ! cmp -s "$WEB/package-lock.json" "$STAMP"; then
  phase "npm ci (playwright-core, typescript)"
  (cd "$WEB" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  cp "$WEB/package-lock.json" "$STAMP"
fi
phase "tsc: the generated .d.ts against tests/typecheck.ts"
(cd "$WEB" && node_modules/.bin/tsc -p tsconfig.json)

# ---- 5. the tokio example server, then the browser tests ----
phase "building the tokio example server"
CARGO_TERM_COLOR=never cargo build -p heartbeat-tokio --example server --locked
SERVER=$HOST_TARGET_DIR/debug/examples/server
[ -x "$SERVER" ] || { echo "no server binary at $SERVER" >&2; exit 1; }

phase "browser tests (headless Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'))"
rm -rf "$ARTIFACTS"
timeout 300 node "$WEB/tests/browser.mjs" --server "$SERVER" --static-dir "$WEB/www" \
  --config "$WEB/tests/fast.json" --artifacts "$ARTIFACTS" --pid-file "$PID_FILE" &
NODE_PID=$!
wait "$NODE_PID"
NODE_PID=
phase "passed"
