#!/usr/bin/env python3
"""Builds the benchmark report (Markdown + an SVG chart) from one run of `benches/run.sh`.

Inputs (all written by run.sh in the same session; results older than the run are ignored):
  <target>/criterion/**/new/{benchmark,estimates}.json   criterion results
  <target>/ctx-benches/runtimes.json                     the `runtimes` bench (its own sampler)
  <target>/ctx-benches/memory.json                       the `memory` bench target
  <target>/ctx-benches/go-context.txt, go-ops.txt        `go test -bench` output (optional)
  <target>/ctx-benches/meta.env                          machine details and flags

One statistic everywhere: the **median** time per iteration with its 95 % interval (criterion's
for its targets, the order-statistic interval for `runtimes`), and the median of Go's `-count`
runs. A ratio is *ctx / other*: below 1 means ctx is faster (0.5 = half the time). Results only:
the engineering notes behind them are benches/NOTES.md, which this report does not copy.

Usage: python3 benches/report.py <target-dir> <output.md> [<chart.svg>]
       python3 benches/report.py --merge <report.md> <docs/benchmarks.md>
The second form updates the docs from a report: each `## ` section of the report replaces the
section of the same heading (a `### ` subsection written by hand under it is kept), and every
other section of the docs (those of groups this run left out, and sections written by hand) is
kept where it is.
"""

import json
import math
import os
import re
import sys


def split_sections(text):
    """(preamble, [(heading line, section text)]), cut before each line that starts with `## `."""
    pre, secs = [], []
    for line in text.split("\n"):
        if line.startswith("## "):
            secs.append((line.strip(), [line]))
        elif secs:
            secs[-1][1].append(line)
        else:
            pre.append(line)
    return "\n".join(pre), [(h, "\n".join(body)) for h, body in secs]


# The `### ` subsections this script writes; any other one in the docs was written by hand.
GENERATED_SUBSECTIONS = {
    "### Missed targets: why, and what would close them",
    "### Single operations",
    "### Which runtime, then",
}


def subsections(body):
    """[(heading line or None, text)], cut before each line that starts with `### `."""
    parts = [(None, [])]
    for line in body.split("\n"):
        if line.startswith("### "):
            parts.append((line.strip(), [line]))
        else:
            parts[-1][1].append(line)
    return [(h, "\n".join(lines)) for h, lines in parts]


def renew(old_body, new_body):
    """The report's section, followed by the `### ` subsections of the docs' one that were
    written by hand (another engineer's notes under a generated heading stay)."""
    generated = {h for h, _ in subsections(new_body)} | GENERATED_SUBSECTIONS
    kept = [text.rstrip("\n") for h, text in subsections(old_body) if h and h not in generated]
    return "\n\n".join([new_body.rstrip("\n")] + kept)


def merge(report, docs):
    """The docs with the report's sections put in: the report's preamble, each docs section
    replaced by the report's of the same heading (keeping its hand-written `### ` subsections)
    or kept, and the report's new sections placed after the section that precedes them in the
    report."""
    pre, new = split_sections(report)
    _, old = split_sections(docs)
    fresh = dict(new)
    out = [(h, renew(body, fresh[h]) if h in fresh else body) for h, body in old]
    have = {h for h, _ in out}
    for i, (h, body) in enumerate(new):
        if h in have:
            continue
        before = [nh for nh, _ in new[:i] if nh in have]
        at = 1 + max((j for j, (oh, _) in enumerate(out) if before and oh == before[-1]), default=-1)
        out.insert(at, (h, body))
        have.add(h)
    parts = [pre.rstrip("\n")] + [body.rstrip("\n") for _, body in out]
    return "\n\n".join(parts) + "\n"


if len(sys.argv) == 4 and sys.argv[1] == "--merge":
    report_text = open(sys.argv[2], encoding="utf-8").read()
    docs_text = open(sys.argv[3], encoding="utf-8").read() if os.path.exists(sys.argv[3]) else ""
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        f.write(merge(report_text, docs_text))
    sys.exit(0)

TARGET = sys.argv[1] if len(sys.argv) > 1 else "target"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(TARGET, "ctx-benches", "benchmarks.md")
SVG = sys.argv[3] if len(sys.argv) > 3 else os.path.splitext(OUT)[0] + ".svg"
RUN_DIR = os.path.join(TARGET, "ctx-benches")


def read_meta():
    meta = {}
    path = os.path.join(RUN_DIR, "meta.env")
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


META = read_meta()
STARTED = float(META.get("STARTED_EPOCH", "0"))


class Est:
    """A median with its confidence interval, in ns."""

    def __init__(self, mid, lo, hi):
        self.mid, self.lo, self.hi = mid, lo, hi


def criterion_results():
    """full_id -> Est, for benchmarks measured in this run only."""
    out = {}
    root = os.path.join(TARGET, "criterion")
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new":
            continue
        if "benchmark.json" not in files or "estimates.json" not in files:
            continue
        est_path = os.path.join(dirpath, "estimates.json")
        if os.path.getmtime(est_path) < STARTED:
            continue  # left over from an earlier run
        bench = json.load(open(os.path.join(dirpath, "benchmark.json"), encoding="utf-8"))
        med = json.load(open(est_path, encoding="utf-8"))["median"]
        ci = med["confidence_interval"]
        out[bench["full_id"]] = Est(med["point_estimate"], ci["lower_bound"], ci["upper_bound"])
    return out


GO_LINE = re.compile(r"^Benchmark(\S+?)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op(.*)$")


def go_results():
    """Go benchmark name (without `Benchmark` and `-N`) -> dict(ns, B/op, allocs/op, ...),
    the median of the `-count` runs (the run with the median ns/op)."""
    source, runs = {}, {}
    for name in ("go-context.txt", "go-ops.txt"):
        path = os.path.join(RUN_DIR, name)
        if not os.path.exists(path):
            continue
        for line in open(path, encoding="utf-8"):
            m = GO_LINE.match(line.strip())
            if not m:
                continue
            row = {"ns": float(m.group(3))}
            for val, unit in re.findall(r"([\d.]+) (\S+)", m.group(4)):
                row[unit] = float(val)
            # the Go release's own suite wins over our twin of the same name (read first)
            key = m.group(1)
            if source.setdefault(key, name) != name:
                continue
            runs.setdefault(key, []).append(row)
    out = {}
    for key, rows in runs.items():
        rows = sorted(rows, key=lambda r: r["ns"])
        out[key] = rows[len(rows) // 2]
        out[key]["runs"] = len(rows)
    return out


def fmt_ns(ns):
    if ns is None:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    if ns >= 10:
        return f"{ns:.3g} ns"
    return f"{ns:.2f} ns"


def fmt_est(e):
    """`113 ns (111–116)`: the median and its 95 % interval."""
    if e is None:
        return "–"
    return f"{fmt_ns(e.mid)} ({fmt_ns(e.lo).split()[0]}–{fmt_ns(e.hi)})"


def fmt_ratio(r):
    if r is None:
        return "–"
    return f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def ratio(ours, theirs):
    """ctx / other, from an Est (or ns) and an Est, a Go row or ns."""
    def ns(x):
        if x is None:
            return None
        if isinstance(x, Est):
            return x.mid
        if isinstance(x, dict):
            return x["ns"]
        return x
    a, b = ns(ours), ns(theirs)
    if a is None or b is None or b <= 0:
        return None
    return a / b


CRIT = criterion_results()
GO = go_results()
MEM = {}
mem_path = os.path.join(RUN_DIR, "memory.json")
if os.path.exists(mem_path) and os.path.getmtime(mem_path) >= STARTED:
    MEM = json.load(open(mem_path, encoding="utf-8"))
MEM_OPS = {(r["lib"], r["op"]): r for r in MEM.get("ops", [])}


def crit(full_id):
    return CRIT.get(full_id)


lines = []
w = lines.append

w("# Benchmarks")
w("")
w("What ctx costs, measured: against Go's `context`, tokio-util's `CancellationToken` and")
w("tower's `Timeout`, and across runtimes. The sections are generated by")
w("`bash benches/run.sh --update-docs`; a run with `--only` replaces only its own sections, so")
w("each one names the run it comes from. How to run them and how to read them:")
w("[benches/README.md](../benches/README.md).")
w("")
w(f"* Machine (latest run): {META.get('NPROC', '?')} CPUs, {META.get('CPU', '?')}; {META.get('KERNEL', '')}")
w(f"* Rust: {META.get('RUSTC', '?')}; criterion 0.8, `--bench` profile (optimized, debuginfo)")
w("* Numbers: the **median** time per iteration, with its 95 % interval in brackets")
w("  (criterion's for its targets; for `Across runtimes`, the interval of the median of")
w("  interleaved samples); for Go the median of its `-count` runs (ns/op). The same statistic")
w("  is used for every ratio.")
w("* Ratios are **ctx / other**: below 1 means ctx takes less time (0.50× = twice as fast).")
w("")
w("The machine is small and shared, so absolute numbers wander from run to run; the ratios")
w("within one run are what count.")
w("")


def stamp():
    """The line under each generated heading: which run the section comes from."""
    go = META.get("GO", "")
    go = go.replace("go version ", "") if go else ""
    budget = "full" if META.get("FULL") == "1" else "quick"
    return (f"*Run of {META.get('DATE', '?')}, commit {META.get('COMMIT', '?')}, {budget} budget"
            + (f", {go}" if go else "") + ".*")


# ---- targets ----

targets = []
chart = []  # (label, ratio) for the SVG


def target(name, goal, value, ok, note=""):
    targets.append((name, goal, value, "yes" if ok else ("no" if ok is not None else "–"), note))


def ratio_target(label, ours, theirs, at_most, other, chart_it=True, floor=None):
    """`floor`: the least any design must do for `ours`, measured in this run (ns), if known:
    shown beside the ratio, and named out of reach when it is above the goal."""
    r = ratio(ours, theirs)
    if r is None:
        target(label, f"≤ {at_most}× {other}", "not measured in this run", None)
        return
    theirs_ns = theirs.mid if isinstance(theirs, Est) else theirs["ns"] if isinstance(theirs, dict) else theirs
    ours_ns = ours.mid if isinstance(ours, Est) else ours
    note = ""
    if floor is not None and theirs_ns:
        note = f"floor: the least any design does {fmt_ratio(floor / theirs_ns)}"
        if r > at_most and floor > at_most * theirs_ns:
            note = "out of reach: " + note
    target(label, f"≤ {at_most}× {other}", f"{fmt_ratio(r)} ({fmt_ns(ours_ns)} vs {fmt_ns(theirs_ns)})", r <= at_most, note)
    if chart_it:
        chart.append((label, r, at_most))


ratio_target("WithCancel(bg)+cancel+drop vs Go", crit("Ops/WithCancel+cancel"), GO.get("Ops/WithCancel+cancel"), 0.4, "Go")
ratio_target("WithCancel(bg)+cancel+drop vs the allocation floor", crit("Ops/WithCancel+cancel"), crit("Ops/AllocFloor"), 1.15, "floor")
# The least a child of an open parent costs: tokio_util.rs's child+cancel `floor` row (its
# allocation, handle, cancel, and one atomic each to register and deregister).
_cf = crit("vs-tokio-util/child+cancel/floor")
ratio_target("child of an open parent + cancel vs Go", crit("Ops/ChildOfOpen+cancel"), GO.get("Ops/ChildOfOpen+cancel"), 0.4, "Go",
             floor=_cf.mid if _cf else None)
ratio_target("child of an open parent + cancel vs tokio-util", crit("vs-tokio-util/child+cancel/ctx"), crit("vs-tokio-util/child+cancel/tokio-util"), 0.5, "tokio-util",
             floor=_cf.mid if _cf else None)
# The least `with_timeout` + cancel can cost: one allocation (`AllocFloor`), one full clock
# read at creation, one coarse read at the cancel (see the `why` below).
_wt_parts = [crit(n) for n in ("Ops/AllocFloor", "Ops/ClockRead", "Ops/CoarseClockRead")]
ratio_target("WithTimeout(1h)+cancel vs Go", crit("Ops/WithTimeout+cancel"), GO.get("Ops/WithTimeout+cancel"), 0.15, "Go",
             floor=sum(p.mid for p in _wt_parts) if all(_wt_parts) else None)
# The least any `err()`/`is_done()` does: follow the handle's pointer, load one word, test it
# (go_suite.rs, `LoadFloor`).
_lf = crit("Ops/LoadFloor")
for op in ("ErrOpen", "ErrCanceled", "IsDoneOpen", "IsDoneCanceled"):
    v = crit(f"Ops/{op}")
    _note = ""
    if _lf:
        _note = f"floor: the least any design does {fmt_ns(_lf.mid)}"
        if v is not None and v.mid > 1.0 and _lf.mid > 1.0:
            _note = "out of reach: " + _note
    target(op, "≤ 1 ns", fmt_est(v) if v else "not measured in this run", None if v is None else v.mid <= 1.0, _note)
ratio_target("chain of 1000 + cancel root vs Go (CancelTree depth=1000, Background)", crit("CancelTree/depth=1000/Root=Background"), GO.get("CancelTree/depth=1000/Root=Background"), 0.25, "Go")
ratio_target("chain of 1000: build, cancel, drop vs tokio-util", crit("vs-tokio-util/chain-lifecycle/depth=1000/ctx"), crit("vs-tokio-util/chain-lifecycle/depth=1000/tokio-util"), 0.67, "tokio-util")
_wf = crit("vs-tokio-util/wake-waiters/n=10000/floor")
ratio_target("10,000 waiters woken by one cancel vs tokio-util", crit("vs-tokio-util/wake-waiters/n=10000/ctx"), crit("vs-tokio-util/wake-waiters/n=10000/tokio-util"), 0.5, "tokio-util",
             floor=_wf.mid if _wf else None)
ratio_target("value::<Missing>() at depth 100 vs Go (DeepValueSameGoRoutine/depth=100)", crit("DeepValueSameGoRoutine/depth=100"), GO.get("DeepValueSameGoRoutine/depth=100"), 0.3, "Go")
for d in (1, 10, 100, 1000):
    for root in ("Background", "OpenCanceler", "ClosedCanceler"):
        n = f"CancelTree/depth={d}/Root={root}"
        ratio_target(n + " vs Go", crit(n), GO.get(n), 1.0, "Go")
tu_groups = sorted({k.rsplit("/", 1)[0] for k in CRIT if k.startswith("vs-tokio-util/")})
# Issue 21: every tokio-util row ≤ 0.67×, and a poll of `done()` that does not wait ≤ 0.5×.
# (And a child of an open parent + cancel ≤ 0.5×, as the row above.) A group's `floor` row, where
# it has one, is the least any design does.
TU_GOALS = {"vs-tokio-util/poll-once-open": 0.5, "vs-tokio-util/child+cancel": 0.5}
for grp in tu_groups:
    fl = crit(grp + "/floor")
    ratio_target(grp.replace("vs-tokio-util/", "tokio-util: "), crit(grp + "/ctx"), crit(grp + "/tokio-util"), TU_GOALS.get(grp, 0.67), "tokio-util",
                 floor=fl.mid if fl else None)


def time_added(layered, bare):
    """What a layer adds to the bare handler, in ns (None if either is missing)."""
    return None if layered is None or bare is None else layered.mid - bare.mid


# ctx-tower's cost against what users write instead (tower's `Timeout`, a tokio-util child token
# in the extensions, a `DropGuard`): judged on the time each adds to the bare handler, from
# tower_time's interleaved rounds (medians); the floor is the least any such layer does
# (benches/tower/least.rs), measured in the same rounds.
HAND = "hand-built: tower Timeout + CancellationToken child + DropGuard"
LEAST = "least any ServerLayer (header, node, wrappers; no root link)"
TT = {}
tt_path = os.path.join(RUN_DIR, "tower_time.json")
if os.path.exists(tt_path) and os.path.getmtime(tt_path) >= STARTED:
    TT = json.load(open(tt_path, encoding="utf-8"))


def tt_added(handler, row, stat="median"):
    """What `row` adds to the bare handler in tower_time's rounds, in ns (None if missing)."""
    rows = TT.get("handlers", {}).get(handler, {})
    if row not in rows or "bare handler" not in rows:
        return None
    return rows[row][stat] - rows["bare handler"][stat]


for h in ("ready", "pending-once"):
    label = f"ctx-tower ServerLayer vs the hand-built stack, time added to the handler (handler {h})"
    ours, theirs, least = (tt_added(h, n) for n in ("ctx-tower ServerLayer", HAND, LEAST))
    if ours is None or theirs is None or theirs <= 0:
        target(label, "≤ 0.5× hand-built", "not measured in this run", None)
        continue
    r = ours / theirs
    note = ""
    if least is not None:
        note = f"floor: the least any such layer adds {fmt_ratio(least / theirs)}"
        if r > 0.5 and least > 0.5 * theirs:
            note = "out of reach: " + note
    target(label, "≤ 0.5× hand-built", f"{fmt_ratio(r)} ({fmt_ns(ours)} vs {fmt_ns(theirs)} added; medians of {TT['rounds']} interleaved rounds)", r <= 0.5, note)
    if r > 0:
        chart.append((f"ctx-tower ServerLayer vs hand-built, added (handler {h})", r, 0.5))
for name in ("ctx-with-cancel", "ctx-background"):
    lay, bare = crit(f"tower/client/{name}/ClientLayer"), crit(f"tower/client/{name}/bare service")
    if lay and bare:
        added = lay.mid - bare.mid
        target(f"ClientLayer on a ctx without deadline ({name}): time added", "≤ 50 ns", fmt_ns(max(added, 0.0)), added <= 50)
    else:
        target(f"ClientLayer on a ctx without deadline ({name}): time added", "≤ 50 ns", "not measured in this run", None)
m = MEM_OPS.get(("ctx", "WithCancel+cancel"))
if m:
    target("a cancel node", "≤ 96 bytes", f"{m['bytes_per_op']:.0f} B in {m['allocs_per_op']:.2f} allocations", m["bytes_per_op"] <= 96)
m = MEM_OPS.get(("ctx", "WithValue"))
if m:
    # One allocation: the node's header (its key's 32-bit digest and its run's 32-bit filter
    # first, compared on lookup without a call), then the value (ctx-core's `tree/thin.rs`). The
    # size is also asserted by ctx-core's `tree::node::tests::sizes`.
    target("a value child holding a usize", "one allocation, ≤ 72 B", f"{m['bytes_per_op']:.0f} B in {m['allocs_per_op']:.2f} allocations", m["bytes_per_op"] <= 72 and m["allocs_per_op"] <= 1.0)
for f in MEM.get("footprint", []):
    if f["lib"] == "ctx":
        total = f["bytes_per_child"] * 1_000_000 / 2**20
        target("1,000,000 idle children of one parent", "≤ 128 MiB", f"{total:.0f} MiB ({f['bytes_per_child']:.0f} B per child)", total <= 128)
        target("a cancel child of an open parent, bytes including its entry in the parent", "≤ 112 B", f"{f['bytes_per_child']:.1f} B (1,000,000 idle children)", f["bytes_per_child"] <= 112)

met = sum(1 for t in targets if t[3] == "yes")
missed = [t for t in targets if t[3] == "no"]
unmeasured = [t for t in targets if t[3] == "–"]
measured = [t for t in targets if t[3] != "–"]
# The Targets table (and its chart) only from a full run: a partial one measures a few of them,
# and its report must not replace the whole table in the docs. Its console summary still lists them.
FULL_RUN = META.get("ONLY", "all") == "all"
if measured and FULL_RUN:
    w("## Targets")
    w("")
    w(stamp())
    w("")
    w("![ctx / other, per comparison (log scale; left of the line = ctx faster)](benchmarks.svg)")
    w("")
    w(f"{met} of {len(measured)} targets measured in this run are met, {len(missed)} missed"
      + (f"; {len(unmeasured)} more need groups this run left out (run without `--only`)." if unmeasured else "."))
    w("")
    w("| target | goal | this run | met |")
    w("| --- | --- | --- | --- |")
    for name, goal, value, ok, note in measured:
        w(f"| {name}{' (' + note + ')' if note else ''} | {goal} | {value} | {ok} |")
    w("")

# Why a missed target is missed, and what would close it: the mechanism, from instruction
# counts and the engine's design (benches/NOTES.md has the measurements behind each);
# printed only for the targets this run misses, with this run's numbers where they apply.
clock, floor_est, coarse = crit("Ops/ClockRead"), crit("Ops/AllocFloor"), crit("Ops/CoarseClockRead")
go_wt, go_wc = GO.get("Ops/WithTimeout+cancel"), GO.get("Ops/WithCancel+cancel")
why = {}
if floor_est and go_wc:
    goal = 0.4 * go_wc["ns"]
    why["WithCancel(bg)+cancel+drop vs Go"] = (
        f"0.4× Go's {fmt_ns(go_wc['ns'])} is {fmt_ns(goal)}, "
        + (f"less than `AllocFloor` ({fmt_ns(floor_est.mid)}), which any heap-allocated, shared context pays: "
           "out of reach for a heap-allocated context on this machine."
           if goal < floor_est.mid else
           f"{fmt_ratio(goal / floor_est.mid)} of `AllocFloor` ({fmt_ns(floor_est.mid)}): "
           "the same gap as the floor target below, which binds.")
    )
why["WithCancel(bg)+cancel+drop vs the allocation floor"] = (
    "It makes the floor's three atomic read-modify-writes and no more: the node is born with "
    "its two owners counted and its last owner's own write shows that no `Weak` is left, so it "
    "frees the node with no other (`tree/arc.rs`, both counts in one word; benches/NOTES.md, "
    "\"A node's own counts\"), and a child of a root is a *plain* node (invariant 11: built in "
    "a few stores, canceled by one compare-exchange, its drop one test). What is left is plain "
    "instructions — 317 against the floor's 189 under callgrind (benches/NOTES.md, \"Plain "
    "cancel nodes\"): writing 13 fields where the floor writes zeroes, the drop glue of `Kind`, "
    "the parent and the clock (~33), the handle's checks (cancel 15, drop 20). What would close "
    "it is fewer fields in a plain node's inline part.")
why["child of an open parent + cancel"] = (
    "Seven atomic read-modify-writes an op: the parent's count taken and given back (the child "
    "holds it), one compare-exchange to publish the child in the parent's first-child word and "
    "one to take it back, with no lock (tree/mod.rs, invariant 25; benches/NOTES.md, \"The first "
    "child outside the lock\"), the cancel's compare-exchange, the handle's and the ctx's drops "
    "(the last one frees the node with no other write, and gives back the count of the `Weak` "
    "the parent held, which the child took back with a plain store: `tree/arc.rs`, point 6). "
    "The least any design does (the group's `floor` row: the node and its two owners' "
    "releases, the cancel and one atomic each to register and deregister, five in all) is two "
    "fewer: the parent's count, which a registry holding no `Weak` (the child leaving before "
    "it is freed) and no strong parent link would spare.")
if clock and go_wt and coarse:
    least = clock.mid + coarse.mid + (floor_est.mid if floor_est else 0.0)
    wt = crit("Ops/WithTimeout+cancel")
    why["WithTimeout(1h)+cancel vs Go"] = (
        f"Two clock reads are required: at creation a full one (`now + d`, exact, as Go's "
        f"`time.Now().Add(d)`), and at the cancel one that shows whether the deadline has passed "
        f"(the API makes it `DeadlineExceeded` then, even if nobody looked): a read of the "
        f"kernel's coarse clock proves a deadline an hour away still ahead (ctx-core's "
        f"`clock.rs`, `coarse`). `ClockRead` is {fmt_ns(clock.mid)} here, `CoarseClockRead` "
        f"{fmt_ns(coarse.mid)}; with `AllocFloor` they come to {fmt_ns(least)}, "
        f"{fmt_ratio(least / go_wt['ns'])} of Go's {fmt_ns(go_wt['ns'])}"
        + (" — above the goal before any engine work: out of reach on this clock. "
           if least / go_wt["ns"] > 0.15 else
           f": the goal ({fmt_ns(0.15 * go_wt['ns'])}) is above them, reachable"
           + (f"; this row is {fmt_ns(wt.mid - least)} above them. " if wt else ". "))
        + "The node itself is one allocation (its deadline inline) with the floor's three atomic "
        "read-modify-writes, and a cancel that nobody else can see reads no clock (tree/mod.rs, "
        "invariant 21); here the ctx is alive at the cancel, as in Go's benchmark: the coarse "
        "reading is followed by the standalone node's one compare-exchange (invariant 11; "
        "callgrind: `with-timeout` 528 instructions a round, `with-cancel` 323). What is left is "
        "`with-cancel`'s own distance from `AllocFloor` (the floor target above) and a few "
        "nanoseconds: `perf` puts the time at the clock read, the new node's first stores and "
        "the read-modify-writes, not at the instructions (benches/NOTES.md, \"A root's timed "
        "child in one exchange\").")
why["chain of 1000"] = (
    "Each level is one allocation (the first child is kept inline in its parent: tree/mod.rs, "
    "invariant 22), built without the general path's questions (`derive_plain`), and dropped "
    "without a lock: a child that held its parent's last reference takes it over and drops its "
    "slab with it (invariant 24). What is left a level: the parent's count taken, the "
    "`HAS_FIRST` flag set in its word and the child published in its first-child word (two "
    "compare-exchanges, no lock: invariant 25), the handle's and the ctx's releases, and at the "
    "drop the takeover's compare-exchange and the `Weak`'s drop — seven atomic "
    "read-modify-writes (`CancelTree/*/Root=Background`). The build-cancel-drop row cancels its "
    "root first: the walk marks each level with one compare-exchange and closes its word with "
    "one swap, and turns the level's `Weak` into its `Arc` with one compare-exchange "
    "(`Weak::into_arc`), and the drop finds the slots taken. The flag is set once per node, so "
    "a chain, whose every node gets one child once, pays it every level: a node born with it "
    "(as a derived child knows nothing of its own children, it cannot) or a registry that holds "
    "no `Weak` would take the rest of the link's counting. Against Go the uncanceled chain has "
    "read from 0.25× to 0.36× across full runs with its path unchanged (callgrind `tree-100`, "
    "650 instructions a level): it moves with the machine's state, and with Go's "
    "(benches/NOTES.md).")
wake_floor = crit("vs-tokio-util/wake-waiters/n=10000/floor")
wake_tu = crit("vs-tokio-util/wake-waiters/n=10000/tokio-util")
why["10,000 waiters"] = (
    "Each waiter registers under the node's lock and clones its waker (a first waiter alone "
    "is kept inline in the node, with no dependents part: tree/mod.rs, invariant 23). A cancel "
    "that finds six or more keeps their wakers in the node (in the slab's own allocation) and "
    "wakes each by reference with every lock released, for its `Done` to take and drop on its "
    "own thread (invariant 26): one atomic operation of the waker's own per waiter, as the "
    "group's `floor` row makes. "
    + (f"With 10,000 waiters that floor is {fmt_ns(wake_floor.mid)}, "
       f"{fmt_ratio(wake_floor.mid / wake_tu.mid)} of tokio-util"
       + (". " if wake_floor.mid / wake_tu.mid <= 0.5
          else ": above the 0.5× goal of the 10,000-waiter row in this run, so that row is out "
               "of reach of any design here. ")
       if wake_floor and wake_tu else "")
    + "What the cancel adds to it: a look at each place's flag, a store of how far it has got "
    "every 32 waiters (a `Done` woken before that leaves its waker to the cancel), and the "
    "wakers' one allocation and publication (benches/NOTES.md, \"Waiters woken by "
    "reference\"). With one waiter (n=1) the cancel wakes by value: it makes four atomic "
    "read-modify-writes, the lock, the unlock, the waker's wake and its drop (benches/NOTES.md: "
    "on this machine each costs about as much as the rest of the cancel's instructions "
    "together, so trimming instructions moves it little); the goal needs the lock gone, a "
    "waiter slot set and taken with one atomic each.")
go_ct1 = GO.get("CancelTree/depth=1/Root=Background")
if go_ct1 and floor_est:
    why["CancelTree/depth=1/Root=Background"] = (
        f"depth=1 under `Background` is one `WithCancel`+cancel, which Go does here in "
        f"{fmt_ns(go_ct1['ns'])}: {fmt_ratio(go_ct1['ns'] / floor_est.mid)} of `AllocFloor` "
        f"({fmt_ns(floor_est.mid)}). Matching it takes the floor target above (≤ 1.15×), "
        "and closes with it.")
why["tokio-util: wake-waiters"] = why["10,000 waiters"]
poll_floor = crit("vs-tokio-util/poll-once-open/floor")
poll_tu = crit("vs-tokio-util/poll-once-open/tokio-util")
why["tokio-util: poll-once-open"] = (
    "One poll of `done()` on an open context registers its waker under the node's lock (a "
    "first waiter alone inline in the node, no allocation: tree/mod.rs, invariant 23) and the "
    "drop unregisters it under the lock again; tokio-util links the future itself into an "
    "intrusive list and borrows the token. "
    + (f"The least a `'static` `Done` does (the group's `floor` row: a reference count taken "
       f"and given back, the waker cloned and dropped, one atomic operation to publish it and "
       f"one to take it back) is {fmt_ns(poll_floor.mid)}, {fmt_ratio(poll_floor.mid / poll_tu.mid)} "
       f"of tokio-util. "
       if poll_floor and poll_tu else "")
    + "Here it makes eight atomic read-modify-writes (the floor's six, and the lock and unlock "
    "twice where the floor publishes and retracts once each): setting that inline waiter with "
    "a compare-exchange instead of under the lock would make the common single waiter "
    "lock-free, but a waker is two words: one atomic word holds it only boxed (an allocation) "
    "or with 128-bit atomics (not in std, and loom has none to model them with), and the node "
    "has no word to spare (96 bytes, its target: the first-child word, invariant 25, took the "
    "last).")
why["ctx-tower ServerLayer"] = (
    "Both stacks pay the floor (a value in the request's `Extensions`: the map and a boxed value "
    "allocated and freed per request). Beyond it, `ServerLayer` pays one node (an allocation, "
    "a clock read, no timer) and its wrappers. The least any such layer does (the note's floor) "
    "has no link to a root (`ServerLayer`'s node holds the server's root: a reference count "
    "taken and given back, and the tokio root's clock is read through it), no cause, and no "
    "rules for bodies a server never sends. benches/NOTES.md (ctx-tower) has the instruction "
    "breakdown.")
why["ClientLayer on a ctx without deadline"] = (
    "The layer reads the ctx's error (one atomic load) and takes its `Done` (one reference "
    "count, given back when the response is ready; the inner future is ready at once, so "
    "nothing is registered); on `background()` the `Done` is a unit variant, with no count, "
    "which is the difference between the two rows. The reference count taken and given back is "
    "two atomic read-modify-writes (about 9 ns here): what is left is the response future's "
    "own moves. The bench's bare service moves with the build's layout (benches/NOTES.md, the "
    "last section: 79 → 106 ns between two builds with no change on its path), and the added "
    "time with it.")
_loop = crit("Ops/LoopBaseline")
for _op in ("ErrOpen", "ErrCanceled", "IsDoneOpen", "IsDoneCanceled"):
    why[_op] = (
        "One load of the node's state word and a test, inlined (no call, no lock, no clock), on "
        "a path laid out for a cancel node (a value's canceler is one jump away; `is_done` "
        "decodes no error)"
        + (f"; the least any design does, `Ops/LoadFloor` (the handle's pointer followed, one "
           f"word loaded and tested), is {fmt_ns(_lf.mid)}" if _lf else "")
        + (f", criterion's own loop around it, `Ops/LoopBaseline`, {fmt_ns(_loop.mid)}" if _loop else "")
        + ". A miss here is the machine's speed; compare the run's other single operations with "
        "their earlier runs.")
why["tokio-util: "] = (
    "These rows create, cancel or drop children of open parents. A parent's first plain child "
    "attaches and leaves with one compare-exchange each, no lock (its first-child word, "
    "invariant 25), and a cancel walk marks a level with one compare-exchange and closes its "
    "word with one swap; later children register under the parent's lock, as tokio-util's all "
    "do. What ctx has taken out besides: the general path's questions for a plain child "
    "(`derive_plain`), the lock of a leaf the walk marks (invariant 10), and a read-modify-write "
    "per child walked (`Weak::into_arc` turns the `Weak` the parent held into the walk's `Arc` in "
    "one compare-exchange: benches/NOTES.md, \"One word for both counts\"). A deep chain pays "
    "the first child's flag at every level (see *chain of 1000*).")
gaps = {}  # explanation -> the missed targets it explains, in table order
for n, _, _, ok, _ in targets:
    if ok == "no":
        text = next((v for k, v in why.items() if n.startswith(k)), "no analysis written for this target yet.")
        gaps.setdefault(text, []).append(n)
if gaps and FULL_RUN:
    w("### Missed targets: why, and what would close them")
    w("")
    for text, names in gaps.items():
        w(f"* **{'**, **'.join(names)}**: {text}")
    w("")


def summary(rows, other):
    """One generated sentence about a list of ctx/other ratios."""
    rows = [(n, r) for n, r in rows if r is not None]
    if not rows:
        return None
    faster = sum(1 for _, r in rows if r < 1)
    gm = math.exp(sum(math.log(r) for _, r in rows) / len(rows))
    best = min(rows, key=lambda x: x[1])
    worst = max(rows, key=lambda x: x[1])
    return (f"In this run ctx is faster than {other} on {faster} of {len(rows)} rows; the geometric "
            f"mean of ctx / {other} is {fmt_ratio(gm)}, from {fmt_ratio(best[1])} (`{best[0]}`) "
            f"to {fmt_ratio(worst[1])} (`{worst[0]}`).")


# ---- Go suite ----
go_names = [
    "CommonParentCancel",
    "WithTimeout/concurrency=40",
    "WithTimeout/concurrency=4000",
    "WithTimeout/concurrency=400000",
]
go_names += [f"CancelTree/depth={d}/Root={r}" for d in (1, 10, 100, 1000) for r in ("Background", "OpenCanceler", "ClosedCanceler")]
go_names += ["CheckCanceled/Err", "CheckCanceled/Done", "ContextCancelDone"]
go_names += [f"DeepValueSameGoRoutine/depth={d}" for d in (10, 20, 30, 50, 100)]
go_names += ["ErrOK", "ErrCanceled"]
if any(crit(n) for n in go_names):
    w("## Go's context benchmarks")
    w("")
    w(stamp())
    w("")
    w("Same names and sweeps as `$GOROOT/src/context/benchmark_test.go` (`ErrOK`/`ErrCanceled`,")
    w("missing from older Go releases, come from `benches/go/ops_test.go`). Rust side:")
    w("`benches/benches/go_suite.rs`.")
    w("")
    w("| benchmark | ctx | Go | ctx / Go | Go B/op | Go allocs/op |")
    w("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for n in go_names:
        o, g = crit(n), GO.get(n)
        gb = f"{g['B/op']:.0f}" if g and "B/op" in g else "–"
        ga = f"{g['allocs/op']:.0f}" if g and "allocs/op" in g else "–"
        r = ratio(o, g)
        rows.append((n, r))
        w(f"| {n} | {fmt_est(o)} | {fmt_ns(g['ns'] if g else None)} | {fmt_ratio(r)} | {gb} | {ga} |")
    w("")
    s = summary(rows, "Go")
    if s:
        w(s)
        w("")

ops = sorted({k.split("/", 1)[1] for k in CRIT if k.startswith("Ops/")})
if ops:
    w("### Single operations")
    w("")
    w("Group `Ops` of `go_suite.rs` against `BenchmarkOps` of `benches/go/ops_test.go`.")
    w("`AllocFloor` has no Go twin: one 96-byte node counted from birth by its two owners, an")
    w("atomic swap, each owner's release and the free — what any heap-allocated, shared, cancelable")
    w("context costs at least. `ClockRead` has")
    w("none either: one `Instant::now()`, which `WithTimeout+cancel` must pay once (and")
    w("`CoarseClockRead` at its cancel). Nor has `LoadFloor`: the handle's pointer followed, one")
    w("word loaded and tested, the least any `err()` or `is_done()` does; `LoopBaseline` is")
    w("criterion's loop around nothing.")
    w("Memory columns: ctx from the `memory` target (counting allocator), Go from `-benchmem`.")
    w("")
    w("| operation | ctx | Go | ctx / Go | ctx B/op | ctx allocs/op | Go B/op | Go allocs/op |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for op in ops:
        o, g = crit("Ops/" + op), GO.get("Ops/" + op)
        m = MEM_OPS.get(("ctx", op))
        mb = f"{m['bytes_per_op']:.0f}" if m else "–"
        ma = f"{m['allocs_per_op']:.2f}" if m else "–"
        gb = f"{g['B/op']:.0f}" if g and "B/op" in g else "–"
        ga = f"{g['allocs/op']:.0f}" if g and "allocs/op" in g else "–"
        r = ratio(o, g)
        if g:
            rows.append((op, r))
        w(f"| {op} | {fmt_est(o)} | {fmt_ns(g['ns'] if g else None)} | {fmt_ratio(r)} | {mb} | {ma} | {gb} | {ga} |")
    w("")
    s = summary(rows, "Go")
    if s:
        w(s)
        w("")

# ---- tokio-util ----
if tu_groups:
    w("## ctx vs tokio-util's CancellationToken")
    w("")
    w(stamp())
    w("")
    w("`benches/benches/tokio_util.rs`. Wake-ups go to a counting waker (no executor). `cancel-*`")
    w("and `wake-waiters` time the cancel alone (the tree and the waiting futures are built in")
    w("untimed setup); `chain-lifecycle` times build + cancel + drop.")
    w("")
    w("| operation | ctx | tokio-util | ctx / tokio-util |")
    w("| --- | --- | --- | --- |")
    rows = []
    for grp in tu_groups:
        o, t = crit(grp + "/ctx"), crit(grp + "/tokio-util")
        r = ratio(o, t)
        rows.append((grp.replace("vs-tokio-util/", ""), r))
        w(f"| {grp.replace('vs-tokio-util/', '')} | {fmt_est(o)} | {fmt_est(t)} | {fmt_ratio(r)} |")
    w("")
    s = summary(rows, "tokio-util")
    if s:
        w(s)
        w("")

# ---- runtimes ----
RT = {}
rt_path = os.path.join(RUN_DIR, "runtimes.json")
if os.path.exists(rt_path) and os.path.getmtime(rt_path) >= STARTED:
    RT = json.load(open(rt_path, encoding="utf-8"))
RT_OPS = {
    "with_timeout+cancel": "a deadline context made and canceled, nobody waiting (a clock read, no timer)",
    "err-with-deadline": "`err()` of an open context whose deadline is an hour away (a clock read, or a proof that the deadline is far)",
    "done-arm+cancel": "the first poll of `done()` arms the deadline's timer, then a cancel",
    "done-arm+fire-1ms": "a real 1 ms deadline armed and fired: what it takes above 1 ms is how late "
                         "the runtime's timer fires (tokio's counts whole milliseconds and rounds up); "
                         "`advance(1 ms)` on the mock clock",
    "wake-1000-tasks": "1,000 spawned tasks wait on one context; from the cancel until the last has finished",
    "run-overhead/ready": "what `ctx.run(fut)` adds to a future that is ready at once, per await",
    "run-overhead/yield-once": "what `ctx.run(fut)` adds to a future that yields once, per await",
}
if RT:
    names = [r["name"] for r in RT["runtimes"]]
    judged = [r["name"] for r in RT["runtimes"] if r["in_verdict"]]
    shown = [n if n in judged else f"{n} (tests)" for n in names]

    def fmt_cell(c):
        """`1.81 ms [0.43, 3.59]`: three significant digits, the interval in the median's unit."""
        m = abs(c["median"])
        div, unit = (1e6, "ms") if m >= 1e6 else (1e3, "µs") if m >= 1e3 else (1.0, "ns")

        def sig3(v):
            a = abs(v)
            return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}"
        return f"{sig3(c['median'] / div)} {unit} [{sig3(c['lo'] / div)}, {sig3(c['hi'] / div)}]"

    def and_list(names):
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    w("## Across runtimes")
    w("")
    w(stamp())
    w("")
    w("`benches/benches/runtimes.rs`, generic over `ctx_benches::runtime::BenchRuntime` (implement")
    w("it to measure your own executor): tokio (a current-thread runtime) and smol (one")
    w("`smol::Executor`), both driven by the bench thread, async-std (its global executor, which")
    w("has threads of its own), and `MockClock` on `futures::executor::LocalPool` for scale: it is")
    w("for tests, so it takes no part in the verdicts. What differs between the adapters is their")
    w("clock and timers; a pool of worker threads would add the operating system's scheduling of")
    w("them, which on a busy machine outweighs the rest.")
    w("")
    w(f"Each cell is the median time per operation of {RT['samples']} samples, with the 95 % interval of")
    w(f"that median in brackets. The samples come from {RT.get('processes', 1)} processes run one after the other,")
    w("each taking them from every runtime in turn (a burst of load from elsewhere hits all alike);")
    w("a sample is the fastest of three 1 ms batches (a batch another process cut into is dropped).")
    w("The verdict names the fastest runtime only when its interval lies below every other's, its")
    w(f"median is ahead by at least {RT['threshold'] * 100:.0f} % of the slower one's, and the medians of every process")
    w("but one in five agree; otherwise it is a tie (those clearly slower than the fastest by the")
    w("same test are named apart). Two runs in a row give the same verdicts; the absolute numbers")
    w("move with the machine's load.")
    w("")
    w("| operation | " + " | ".join(shown) + " | verdict |")
    w("| --- |" + " --- |" * (len(names) + 1))
    for row in RT["rows"]:
        w(f"| {row['op']} | " + " | ".join(fmt_cell(row["cells"][n]) for n in names) + f" | {row['verdict'] or '–'} |")
    w("")
    for row in RT["rows"]:
        if row["op"] in RT_OPS:
            w(f"* `{row['op']}`: {RT_OPS[row['op']]}.")
    w("")
    w("### Which runtime, then")
    w("")
    w("Use the root of the runtime you already run: mixing clocks is the one real mistake, and a")
    w("difference below is a reason to switch only if your program depends on that one operation.")
    w("From this run:")
    w("")
    ties = []
    for row in RT["rows"]:
        tied, slower = row["tied"], row["slower"]
        med = {n: row["cells"][n]["median"] for n in judged}
        if len(tied) == 1 and slower:
            nxt = min(slower, key=lambda n: med[n])
            w(f"* `{row['op']}`: **{tied[0]}** is fastest, {fmt_ns(med[tied[0]])} against "
              f"{fmt_ns(med[nxt])} on {nxt}.")
        elif slower:
            w(f"* `{row['op']}`: a tie between {and_list(tied)}; "
              + ", ".join(f"{n} is slower ({fmt_ns(med[n])})" for n in slower) + ".")
        else:
            ties.append(row["op"])
    if ties:
        w(f"* {and_list(['`' + t + '`' for t in ties])}: a tie between all of them.")
    w("")

# ---- ctx-tower ----
tw_server = sorted({k.rsplit("/", 1)[0] for k in CRIT if k.startswith("tower/server/")})
tw_client = sorted({k.rsplit("/", 1)[0] for k in CRIT if k.startswith("tower/client/")})
if tw_server or tw_client:
    w("## ctx-tower")
    w("")
    w(stamp())
    w("")
    w("`benches/benches/tower.rs`: one request through `ServerLayer` (with `grpc-timeout: 5S`)")
    w("against the stack users build by hand for the same job — tower's `Timeout` (5 s) plus a")
    w("tokio-util `CancellationToken` child in the extensions and a `DropGuard` held by the response")
    w("future, then the body (`benches/tower/hand_built.rs`) — and against tower's `Timeout` alone;")
    w("same handler, body read to its end; and one call through `ClientLayer` on a ctx without")
    w("deadline against the bare service. Futures are polled by hand with a no-op waker inside a")
    w("tokio runtime's context.")
    w("")
    if tw_server:
        w("Beside the layers: the **bare handler** (no layer); the **floor** any layer that hands the")
        w("handler a ctx must pay — the bare handler plus one `Ctx` clone inserted into the request's")
        w("`Extensions` (the map and the boxed value are allocated, and freed with the request);")
        w("**floor + node**, the floor whose ctx is the deadline node `ServerLayer` makes")
        w("(`with_timeout_cancel_cause(5 s)`, canceled when the body has ended); and the **least any**")
        w("such layer does (`benches/tower/least.rs`: the header read, one shared allocation holding")
        w("the deadline, a handle in the extensions and one in the future then the body, one atomic")
        w("at the end; no link to a root, no cause). A layer's cost is its time minus the bare")
        w("handler's (*added*); the target (≤ 0.5×) is judged on the ratio of added times to the")
        w("hand-built stack's.")
        w("")
        names = ("bare handler", "floor: bare handler + Ctx in extensions", "floor + a deadline node of its own", LEAST, "ctx-tower ServerLayer", "ctx-tower ServerLayer, system-clock root", "tower Timeout", HAND)
        w("| handler | bare handler | floor | floor + node | least any | ServerLayer (tokio root) | ServerLayer (ctx-core's clock) | tower Timeout | hand-built |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for grp in tw_server:
            cells = [fmt_est(crit(f"{grp}/{n}")) for n in names]
            w(f"| {grp.replace('tower/server/handler-', '')} | " + " | ".join(cells) + " |")
        w("")
        w("Time added to the bare handler, and its ratio to what the hand-built stack adds:")
        w("")
        w("| handler | floor | floor + node | least any | ServerLayer (tokio root) | ServerLayer (ctx-core's clock) | tower Timeout | hand-built |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for grp in tw_server:
            b = crit(grp + "/bare handler")
            added = [time_added(crit(f"{grp}/{n}"), b) for n in names[1:]]
            hand = added[-1]

            def cell(a):
                if a is None:
                    return "–"
                if hand is None or hand <= 0:
                    return fmt_ns(a)
                return f"{fmt_ns(a)} ({fmt_ratio(a / hand)})"
            w(f"| {grp.replace('tower/server/handler-', '')} | " + " | ".join(cell(a) for a in added) + " |")
        w("")
        if TT:
            w("The targets are judged on `benches/examples/tower_time.rs`, which times every row in each of")
            w(f"{TT['rounds']} interleaved rounds of {TT['n']} requests (criterion's rows, measured one after the")
            w("other, catch a shared machine's load on some and not on others). Medians over the rounds;")
            w("time added to the bare handler, and its ratio to the hand-built stack's:")
            w("")
            w("| row | " + " | ".join(f"handler {h}" for h in TT["handlers"]) + " |")
            w("| --- | " + " | ".join("---" for _ in TT["handlers"]) + " |")
            first = next(iter(TT["handlers"].values()))
            for row in first:
                if row == "bare handler":
                    cells = [fmt_ns(TT["handlers"][h][row]["median"]) + " (total)" for h in TT["handlers"]]
                else:
                    cells = []
                    for h in TT["handlers"]:
                        a, hand = tt_added(h, row), tt_added(h, HAND)
                        cells.append(f"{fmt_ns(a)} ({fmt_ratio(a / hand)})" if a is not None and hand else "–")
                name = f"**{row}**" if row == "ctx-tower ServerLayer" else row
                w(f"| {name} | " + " | ".join(cells) + " |")
            w("")
            for h in TT["handlers"]:
                ours, hand, least = (tt_added(h, n) for n in ("ctx-tower ServerLayer", HAND, LEAST))
                if ours is None or not hand:
                    continue
                verdict = "target met" if ours <= 0.5 * hand else "missed"
                floor = f"; the least any such layer adds {fmt_ratio(least / hand)}" if least is not None else ""
                w(f"* Handler {h}: {verdict}, `ServerLayer` adds {fmt_ns(ours)}, {fmt_ratio(ours / hand)} of the hand-built stack's {fmt_ns(hand)}{floor}.")
            w("")
    if tw_client:
        w("| ctx | bare service | ClientLayer | added |")
        w("| --- | --- | --- | --- |")
        for grp in tw_client:
            b, l = crit(grp + "/bare service"), crit(grp + "/ClientLayer")
            added = fmt_ns(l.mid - b.mid) if b and l else "–"
            w(f"| {grp.replace('tower/client/', '')} | {fmt_est(b)} | {fmt_est(l)} | {added} |")
        w("")

# ---- anything else ----
known = ("Ops/", "vs-tokio-util/", "runtimes/", "tower/")
other_groups = sorted({k.rsplit("/", 1)[0] for k in CRIT if "/" in k and not k.startswith(known) and k.split("/")[0] not in {n.split("/")[0] for n in go_names}})
if other_groups:
    w("## Other groups")
    w("")
    w(stamp())
    w("")
    w("| group | function | median (95 % interval) |")
    w("| --- | --- | --- |")
    for grp in other_groups:
        for k in sorted(k for k in CRIT if k.rsplit("/", 1)[0] == grp):
            w(f"| {grp} | {k.rsplit('/', 1)[1]} | {fmt_est(crit(k))} |")
    w("")

# ---- memory ----
if MEM:
    w("## Memory")
    w("")
    w(stamp())
    w("")
    w("Bytes requested and allocations per operation, counted by a `#[global_allocator]` in the")
    w("`memory` target (like Go's `-benchmem`: bytes allocated, freed or not).")
    w("")
    mops = []
    for r in MEM["ops"]:
        if r["op"] not in mops:
            mops.append(r["op"])
    w("| operation | ctx B/op | ctx allocs/op | tokio-util B/op | tokio-util allocs/op | Go B/op | Go allocs/op |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for op in mops:
        c, t = MEM_OPS.get(("ctx", op)), MEM_OPS.get(("tokio-util", op))
        g = GO.get(op) or GO.get("Ops/" + op)
        cells = []
        for r in (c, t):
            cells += [f"{r['bytes_per_op']:.0f}", f"{r['allocs_per_op']:.2f}"] if r else ["–", "–"]
        cells += [f"{g['B/op']:.0f}", f"{g['allocs/op']:.0f}"] if g and "B/op" in g else ["–", "–"]
        w(f"| {op} | " + " | ".join(cells) + " |")
    w("")
    w(f"Footprint of {MEM['idle_children']:,} idle children of one open parent (live heap, the")
    w("vector holding them excluded; Go: heap growth after GC, `BenchmarkFootprint`):")
    w("")
    w("| library | bytes per child | allocations per child |")
    w("| --- | --- | --- |")
    for f in MEM["footprint"]:
        w(f"| {f['lib']} | {f['bytes_per_child']:.1f} | {f['allocs_per_child']:.2f} |")
    g = GO.get("Footprint")
    if g and "B/child" in g:
        w(f"| Go | {g['B/child']:.1f} | {g.get('allocs/child', 0):.2f} |")
    w("")

with open(OUT, "w", encoding="utf-8") as f:
    f.write("\n".join(lines))


# ---- chart: ctx / other per target comparison, log scale ----
def svg_chart(rows, path):
    rows = [(n, r, goal) for n, r, goal in rows if r is not None and r > 0]
    bar_h, gap, left, width, top = 16, 6, 420, 360, 30
    height = top + len(rows) * (bar_h + gap) + 40
    lo, hi = 0.05, 5.0  # log axis from 1/20 to 5

    def x(v):
        v = min(max(v, lo), hi)
        return left + width * (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<text x="10" y="18" font-size="13">ctx / other (log scale): left of 1× = ctx faster; tick = target; green met, amber faster but short of it, red slower</text>']
    for i, (name, r, goal) in enumerate(rows):
        y = top + i * (bar_h + gap)
        color = "#2a9d4b" if r <= goal else ("#e0a800" if r < 1 else "#c0392b")
        x0, x1 = x(1.0), x(r)
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 4}" text-anchor="end">{escape(name)}</text>')
        out.append(f'<rect x="{min(x0, x1):.1f}" y="{y}" width="{abs(x1 - x0):.1f}" height="{bar_h}" fill="{color}"/>')
        out.append(f'<line x1="{x(goal):.1f}" y1="{y - 2}" x2="{x(goal):.1f}" y2="{y + bar_h + 2}" stroke="black" stroke-width="2"/>')
        out.append(f'<text x="{max(x0, x1) + 4:.1f}" y="{y + bar_h - 4}">{r:.2f}×</text>')
    axis_y = top + len(rows) * (bar_h + gap) + 4
    for v in (0.1, 0.25, 0.5, 1, 2, 4):
        out.append(f'<line x1="{x(v):.1f}" y1="{top - 4}" x2="{x(v):.1f}" y2="{axis_y}" stroke="#999" stroke-dasharray="{"0" if v == 1 else "2,3"}"/>')
        out.append(f'<text x="{x(v):.1f}" y="{axis_y + 14}" text-anchor="middle">{v}×</text>')
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if chart and FULL_RUN:
    svg_chart(chart, SVG)
print(f"wrote {OUT}{' and ' + SVG if chart and FULL_RUN else ''}: {len(CRIT)} criterion results, "
      f"{len(RT.get('rows', []))} runtime operations, {len(GO)} Go results, {len(measured)} targets ({met} met)")
if measured:
    print()
    print("Targets (ctx / other; median of this run):")
    for name, goal, value, ok, note in measured:
        print(f"  [{ok:>3}] {name}: {value} (goal {goal})")
    if unmeasured:
        print(f"  ({len(unmeasured)} more targets need groups this run left out)")
