#!/usr/bin/env bash
# Runs the whole benchmark suite and writes docs/benchmarks.md.
#
#   bash benches/run.sh            # quick budgets (about 10–15 minutes on 2 CPUs)
#   CTX_BENCH_FULL=1 bash benches/run.sh   # criterion's longer budgets
#
# Go's own numbers are taken in the same session when `go` is on PATH (skipped otherwise):
# `go test -bench . -benchmem -run '^$'` in $(go env GOROOT)/src/context and in benches/go.
# The cross-runtime target runs when the adapter crates build (feature `runtimes`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RUN="$TARGET/ctx-benches"
mkdir -p "$RUN"
rm -f "$RUN"/go-context.txt "$RUN"/go-ops.txt "$RUN"/memory.json

{
    echo "STARTED_EPOCH=$(date +%s)"
    echo "DATE=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "NPROC=$(nproc)"
    echo "CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "KERNEL=$(uname -sr)"
    echo "RUSTC=$(rustc -V)"
    echo "COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- ctx-core 2>/dev/null || echo ' + local ctx-core changes')"
    echo "FULL=${CTX_BENCH_FULL:-0}"
} > "$RUN/meta.env"

FEATURES=()
BENCHES=(--bench go_suite --bench tokio_util)
if cargo bench -q -p ctx-benches --features runtimes --no-run >"$RUN/runtimes-build.log" 2>&1; then
    FEATURES=(--features runtimes)
    BENCHES+=(--bench runtimes)
    echo "RUNTIMES=run (tokio, async-std, smol, MockClock)" >> "$RUN/meta.env"
else
    echo "RUNTIMES=skipped: adapters did not build (see target/ctx-benches/runtimes-build.log)" >> "$RUN/meta.env"
    echo "run.sh: cross-runtime benches skipped (adapters do not build yet)" >&2
fi

echo "run.sh: criterion benches" >&2
cargo bench -p ctx-benches "${FEATURES[@]}" "${BENCHES[@]}" 2>&1 | tee "$RUN/criterion.log"

echo "run.sh: memory" >&2
CTX_BENCH_OUT="$RUN/memory.json" cargo bench -p ctx-benches --bench memory 2>&1 | tee "$RUN/memory.log"

if command -v go >/dev/null 2>&1; then
    echo "GO=$(go version)" >> "$RUN/meta.env"
    GOCTX="$(go env GOROOT)/src/context"
    if [ -f "$GOCTX/benchmark_test.go" ]; then
        echo "run.sh: Go's context benchmarks" >&2
        (cd "$GOCTX" && go test -bench . -benchmem -count=3 -run '^$') 2>&1 | tee "$RUN/go-context.txt" || true
    else
        echo "run.sh: $GOCTX/benchmark_test.go not found; Go suite skipped" >&2
    fi
    (cd "$ROOT/benches/go" && go test -bench . -benchmem -count=3 -run '^$') 2>&1 | tee "$RUN/go-ops.txt" || true
else
    echo "run.sh: go not on PATH; Go columns left empty" >&2
fi

python3 "$ROOT/benches/report.py" "$TARGET" "$ROOT/docs/benchmarks.md"
