#!/usr/bin/env bash
# Every cargo-fuzz target in core/fuzz for a short run from the committed seeds only: a smoke
# test that the targets build and that nothing the seeds lead to within seconds crashes, hangs or
# fails an assertion (the long runs and their figures are in docs/security.md). Installs
# cargo-fuzz if missing (idempotent). The seeds are copied to a temporary directory, so the run
# writes nothing into the repository; a failing input is printed (base64) before the step fails.
set -euo pipefail
cd "$(dirname "$0")/../../core/fuzz"

# Seconds per target: four targets stay within two minutes of fuzzing.
per_target="${HEARTBEAT_FUZZ_SECONDS:-25}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); the stable toolchain accepts them
# with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo fuzz build
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
  cp corpus/"$target"/seed-* "$work/$target/corpus/"
  echo "-- $target: ${per_target}s from $(ls "$work/$target/corpus" | wc -l) seeds"
  if ! cargo fuzz run "$target" "$work/$target/corpus" -- \
      -max_total_time="$per_target" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$work/$target/artifacts/" >"$work/$target/log" 2>&1; then
    grep -v '# Uses:' "$work/$target/log" | tail -n 60
    for input in "$work/$target/artifacts"/*; do
      [ -e "$input" ] || continue
      echo "failing input $(basename "$input") (base64; save it and run: cargo fuzz run $target FILE):"
      base64 "$input"
    done
    echo "fuzz target $target failed" >&2
    exit 1
  fi
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$target/log"
done
