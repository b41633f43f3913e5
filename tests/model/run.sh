#!/usr/bin/env bash
# Model checking of the liveness protocol (tests/model): loom explores every
# interleaving of each test's threads with at most LOOM_MAX_PREEMPTIONS
# preemptions (default 3), built on its own with `--cfg loom`. Prints the
# tests' results and how many interleavings loom explored.
set -u
cd "$(dirname "$0")"
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}
export LOOM_LOG=${LOOM_LOG:-}
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=../../target/model "${CARGO:-cargo}" test --release --locked -- --nocapture --test-threads=1 2>&1 |
    grep -vE '^\s*(Compiling|Finished|Running|Downloaded|Downloading)'
