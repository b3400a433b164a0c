#!/usr/bin/env bash
# Mutation testing of the model (issue 11): mutants of core/src/client.rs and core/src/server.rs,
# each tested by `cargo test -p heartbeat-model` with the change detectors off, so that a mutant
# is killed only by a property verdict, a counterexample, a completion or the validate <=>
# checker cross-check, never by a pinned state count or a snapshot (docs/architecture.md,
# "Testing"). Settings shared with a plain `cargo mutants` are in .cargo/mutants.toml.
#
# Usage: model/benches/mutants.sh [K N] [extra cargo-mutants args...]
#   K N     run shard K of N; shards count from 0 (0 <= K < N). Without them: every mutant.
# Environment:
#   MUTANTS_OUT          where mutants.out/ goes (default /work/mutants-out/shard-K-of-N,
#                        or /work/mutants-out/all); outside target/ so that it persists
#   MUTANTS_TIMEOUT      seconds per cargo command of one mutant (default 600)
#   PROPTEST_RNG_SEED    the property tests' seed (default CI's, 20261130)
#   PROPTEST_MAX_SHRINK_ITERS  default 0: a failing case is not shrunk
#   MUTANTS_BASELINE     `skip` to skip the unmutated model suite this script runs first
#
# cargo-mutants' own baseline tests only the mutated package (heartbeat-core), not the
# --test-package, so it says nothing about the model suite; this script runs that suite on the
# unmutated tree first, with the same switch and seed (about 2.5 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."

shard=()
if [ $# -ge 2 ] && [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]]; then
  shard=(--shard "$1/$2")
  out="${MUTANTS_OUT:-/work/mutants-out/shard-$1-of-$2}"
  shift 2
else
  out="${MUTANTS_OUT:-/work/mutants-out/all}"
fi
mkdir -p "$out"

export HEARTBEAT_CHANGE_DETECTORS=off
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261130}"
# A failing case kills the mutant; shrinking it (many more checks, each a model search) is for a
# person reading a failure, and made a killed mutant run past the timeout.
export PROPTEST_MAX_SHRINK_ITERS="${PROPTEST_MAX_SHRINK_ITERS:-0}"
export CARGO_TERM_COLOR=never

set -x
if [ "${MUTANTS_BASELINE:-run}" != skip ]; then
  cargo test -p heartbeat-model --locked
fi
exec cargo mutants \
  --config .cargo/mutants.toml \
  --file core/src/client.rs --file core/src/server.rs \
  --test-package heartbeat-model \
  --timeout "${MUTANTS_TIMEOUT:-600}" \
  --jobs 1 \
  --output "$out" \
  "${shard[@]}" \
  "$@"
