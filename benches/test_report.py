#!/usr/bin/env python3
"""Tests of benches/report.py: `python3 benches/test_report.py` (no dependencies)."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

REPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.py")


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def run(*args):
    return subprocess.run([sys.executable, REPORT, *args], check=True, capture_output=True, text=True).stdout


class Merge(unittest.TestCase):
    def merged(self, report, docs):
        with tempfile.TemporaryDirectory() as d:
            r, o = os.path.join(d, "r.md"), os.path.join(d, "o.md")
            write(r, report)
            write(o, docs)
            run("--merge", r, o)
            return read(o)

    def test_a_partial_run_replaces_only_its_own_sections(self):
        docs = "# B\n\nold head\n\n## Targets\n\nold targets\n\n## Across runtimes\n\nold table\n\n## ctx-tower\n\nold tower\n"
        report = "# B\n\nnew head\n\n## Across runtimes\n\nnew table\n"
        out = self.merged(report, docs)
        self.assertEqual(out, "# B\n\nnew head\n\n## Targets\n\nold targets\n\n## Across runtimes\n\nnew table\n\n## ctx-tower\n\nold tower\n")

    def test_hand_written_sections_are_kept_where_they_are(self):
        docs = "# B\n\n## Memory\n\nold memory\n\n## PostgreSQL\n\nwritten by hand\n"
        report = "# B\n\n## Memory\n\nnew memory\n"
        out = self.merged(report, docs)
        self.assertIn("## PostgreSQL\n\nwritten by hand", out)
        self.assertIn("new memory", out)
        self.assertNotIn("old memory", out)

    def test_a_hand_written_subsection_under_a_generated_section_stays(self):
        docs = ("# B\n\n## ctx-tower\n\nold table\n\n### Missed targets: why, and what would close them\n\nstale\n\n"
                "### ServerLayer against the hand-built stack\n\nby hand\n\n## Memory\n\nm\n")
        report = "# B\n\n## ctx-tower\n\nnew table\n"
        out = self.merged(report, docs)
        self.assertEqual(out, "# B\n\n## ctx-tower\n\nnew table\n\n### ServerLayer against the hand-built stack\n\nby hand\n\n## Memory\n\nm\n")

    def test_a_new_section_goes_after_the_one_before_it_in_the_report(self):
        docs = "# B\n\n## Targets\n\nt\n\n## Memory\n\nm\n"
        report = "# B\n\n## Targets\n\nT\n\n## Across runtimes\n\nR\n"
        out = self.merged(report, docs)
        self.assertEqual(out, "# B\n\n## Targets\n\nT\n\n## Across runtimes\n\nR\n\n## Memory\n\nm\n")


class RuntimesOnly(unittest.TestCase):
    def test_a_runtimes_run_gives_its_table_and_no_empty_targets(self):
        with tempfile.TemporaryDirectory() as target:
            run_dir = os.path.join(target, "ctx-benches")
            os.makedirs(run_dir)
            with open(os.path.join(run_dir, "meta.env"), "w") as f:
                f.write(f"STARTED_EPOCH={int(time.time()) - 5}\nDATE=2026-12-04 18:00 UTC\nCOMMIT=abc1234\nONLY=runtimes\n")
            cell = lambda m: {"median": m, "lo": m * 0.98, "hi": m * 1.02, "n": 65}
            wide = {"median": 1.81e6, "lo": 4.33e5, "hi": 3.59e6, "n": 65}
            results = {
                "samples": 65, "processes": 5, "batch_ms": 1.0, "threshold": 0.25,
                "runtimes": [{"name": "tokio", "in_verdict": True}, {"name": "smol", "in_verdict": True},
                             {"name": "MockClock", "in_verdict": False}],
                "rows": [{"op": "wake-1000-tasks", "cells": {"tokio": cell(5e6), "smol": cell(2e6), "MockClock": cell(1.5e6)},
                          "verdict": "smol fastest", "tied": ["smol"], "slower": ["tokio"]},
                         {"op": "done-arm+cancel", "cells": {"tokio": wide, "smol": cell(600), "MockClock": cell(400)},
                          "verdict": "tie: tokio, smol", "tied": ["tokio", "smol"], "slower": []}],
            }
            with open(os.path.join(run_dir, "runtimes.json"), "w") as f:
                json.dump(results, f)
            out_md = os.path.join(run_dir, "benchmarks.md")
            console = run(target, out_md, os.path.join(run_dir, "benchmarks.svg"))
            md = read(out_md)
        self.assertNotIn("## Targets", md)
        self.assertNotIn("0 of 0", md + console)
        self.assertIn("| wake-1000-tasks | 5.00 ms [4.90, 5.10] | 2.00 ms [1.96, 2.04] | 1.50 ms [1.47, 1.53] | smol fastest |", md)
        self.assertIn("| operation | tokio | smol | MockClock (tests) | verdict |", md)
        self.assertIn("*Run of 2026-12-04 18:00 UTC, commit abc1234, quick budget.*", md)
        self.assertIn("**smol** is fastest, 2 ms against 5 ms on tokio", md)
        self.assertIn("| done-arm+cancel | 1.81 ms [0.43, 3.59] | 600 ns [588, 612] |", md)  # one unit per cell
        self.assertIn("* `done-arm+cancel`: a tie between all of them.", md)
        self.assertNotIn("Notes written by hand", md)


class PartialRun(unittest.TestCase):
    def test_a_partial_run_leaves_the_targets_table_to_full_runs(self):
        with tempfile.TemporaryDirectory() as target:
            run_dir = os.path.join(target, "ctx-benches")
            os.makedirs(run_dir)
            meta = f"STARTED_EPOCH={int(time.time()) - 5}\nDATE=d\nCOMMIT=c\nONLY=memory\n"
            write(os.path.join(run_dir, "meta.env"), meta)
            memory = {"ops": [{"lib": "ctx", "op": "WithCancel+cancel", "bytes_per_op": 96, "allocs_per_op": 1.0}],
                      "idle_children": 1000, "footprint": [{"lib": "ctx", "bytes_per_child": 121.0, "allocs_per_child": 1.0}]}
            write(os.path.join(run_dir, "memory.json"), json.dumps(memory))
            out_md = os.path.join(run_dir, "benchmarks.md")
            console = run(target, out_md, os.path.join(run_dir, "benchmarks.svg"))
            md = read(out_md)
            self.assertFalse(os.path.exists(os.path.join(run_dir, "benchmarks.svg")))
            write(os.path.join(run_dir, "meta.env"), meta.replace("ONLY=memory", "ONLY=all"))
            run(target, out_md, os.path.join(run_dir, "benchmarks.svg"))
            full = read(out_md)
        self.assertIn("## Memory", md)
        self.assertNotIn("## Targets", md)
        self.assertIn("[yes] a cancel node: 96 B", console)
        self.assertIn("## Targets", full)


if __name__ == "__main__":
    unittest.main()
