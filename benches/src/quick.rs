//! The quick cross-runtime comparison: every [`Op`] on every runtime, sampled in turn, summed
//! up as a table of medians and intervals with a verdict per operation.
//!
//! How a table is made, so that two runs in a row give the same verdicts on a busy machine:
//!
//! * **Calibrate.** For each operation and runtime, the batch size is doubled until a batch
//!   takes a quarter of [`Budget::batch`], then scaled to the whole of it (this doubles as the
//!   warm-up).
//! * **Interleave.** [`Budget::samples`] rounds; each round takes one batch of every runtime, in
//!   an order that rotates from round to round. A burst of load from another process lands on
//!   all runtimes alike instead of on whichever happened to run then.
//! * **Sum up.** Each batch is one independent sample (its time per iteration). A cell is the
//!   median of its samples and the 95 % interval of that median ([`stats::Summary`]).
//! * **Judge.** Among the runtimes in the verdict (not `MockClock`: it is for tests), a runtime
//!   is named fastest only when its interval lies below every other's and its median is ahead
//!   by at least [`stats::THRESHOLD`]; otherwise the verdict is a tie ([`stats::verdict`]).
//!
//! # Examples
//!
//! ```
//! # use std::cell::RefCell; use std::future::Future; use std::time::Duration;
//! # use ctx_benches::runtime::BenchRuntime; use ctx_core::Ctx;
//! # use futures::executor::{LocalPool, LocalSpawner}; use futures::future::BoxFuture;
//! # use futures::task::SpawnExt;
//! # struct Pool(&'static str, RefCell<LocalPool>, LocalSpawner);
//! # impl BenchRuntime for Pool {
//! #     fn name(&self) -> &str { self.0 }
//! #     fn background(&self) -> Ctx { Ctx::background() }
//! #     fn block_on<F: Future>(&self, fut: F) -> F::Output { self.1.borrow_mut().run_until(fut) }
//! #     fn spawn(&self, fut: BoxFuture<'static, ()>) { self.2.spawn(fut).expect("spawn") }
//! #     fn pass(&self, _d: Duration) {}
//! # }
//! # fn pool(name: &'static str) -> Pool { let p = LocalPool::new(); let s = p.spawner(); Pool(name, RefCell::new(p), s) }
//! use ctx_benches::quick::{Budget, Lineup};
//! use ctx_benches::runtime::Op;
//!
//! let (a, b) = (pool("a"), pool("b")); // two executors (see `runtime`'s module doc)
//! let mut lineup = Lineup::new();
//! lineup.add(&a).add(&b);
//! let budget = Budget { samples: 7, batch: Duration::from_micros(200) };
//! let results = lineup.run(&[Op::WithTimeoutCancel], budget, |_| {});
//! assert_eq!(results.rows[0].cells.len(), 2);
//! assert!(results.table().contains("with_timeout+cancel"));
//! ```

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::runtime::{Batch, BenchRuntime, Op, batch};
use crate::stats::{self, Summary, Verdict};

/// How many samples per cell, and how long one batch should take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Samples per cell (rounds over all runtimes).
    pub samples: usize,
    /// The time one batch aims at.
    pub batch: Duration,
}

impl Budget {
    /// The quick budget: 31 samples of 15 ms batches (about 20 s for the whole table).
    pub const QUICK: Budget = Budget {
        samples: 31,
        batch: Duration::from_millis(15),
    };

    /// The full budget (`CTX_BENCH_FULL=1`): 61 samples of 25 ms batches.
    pub const FULL: Budget = Budget {
        samples: 61,
        batch: Duration::from_millis(25),
    };

    /// [`FULL`](Self::FULL) when `CTX_BENCH_FULL` is set (see [`crate::full_run`]), else
    /// [`QUICK`](Self::QUICK).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = ctx_benches::quick::Budget::from_env();
    /// assert!(b.samples >= 21);
    /// ```
    pub fn from_env() -> Budget {
        if crate::full_run() {
            Budget::FULL
        } else {
            Budget::QUICK
        }
    }
}

type Sampler<'a> = Box<dyn FnMut(Op, u64) -> Batch + 'a>;

struct Entry<'a> {
    name: String,
    in_verdict: bool,
    sample: Sampler<'a>,
}

/// The runtimes of one comparison (see the module doc).
pub struct Lineup<'a> {
    entries: Vec<Entry<'a>>,
}

impl std::fmt::Debug for Lineup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.name))
            .finish()
    }
}

impl Default for Lineup<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Lineup<'a> {
    /// An empty lineup.
    ///
    /// # Examples
    ///
    /// ```
    /// let lineup = ctx_benches::quick::Lineup::new();
    /// # drop(lineup);
    /// ```
    pub fn new() -> Self {
        Lineup { entries: Vec::new() }
    }

    /// Adds `rt`, a candidate of the verdicts. Its root is made here, once.
    ///
    /// # Examples
    ///
    /// See the [module documentation](self).
    pub fn add<R: BenchRuntime>(&mut self, rt: &'a R) -> &mut Self {
        self.push(rt, true)
    }

    /// Adds `rt` as a reference: measured and shown, never in a verdict (`MockClock`, which is
    /// for tests, not a runtime to choose).
    ///
    /// # Examples
    ///
    /// See the [module documentation](self).
    pub fn add_reference<R: BenchRuntime>(&mut self, rt: &'a R) -> &mut Self {
        self.push(rt, false)
    }

    fn push<R: BenchRuntime>(&mut self, rt: &'a R, in_verdict: bool) -> &mut Self {
        let root = rt.background();
        self.entries.push(Entry {
            name: rt.name().to_string(),
            in_verdict,
            sample: Box::new(move |op, iters| batch(op, rt, &root, iters)),
        });
        self
    }

    /// Measures `ops` on every runtime of the lineup; `progress` gets one line per operation.
    ///
    /// # Examples
    ///
    /// See the [module documentation](self).
    pub fn run(&mut self, ops: &[Op], budget: Budget, mut progress: impl FnMut(&str)) -> Results {
        let mut rows = Vec::new();
        for &op in ops {
            let started = Instant::now();
            let iters: Vec<u64> = self
                .entries
                .iter_mut()
                .map(|e| calibrate(&mut e.sample, op, budget.batch))
                .collect();
            let m = self.entries.len();
            let mut samples = vec![Vec::with_capacity(budget.samples); m];
            for round in 0..budget.samples {
                for k in 0..m {
                    let i = (round + k) % m;
                    samples[i].push((self.entries[i].sample)(op, iters[i]).per_iter_ns);
                }
            }
            let cells: Vec<Summary> = samples.iter().map(|s| Summary::of(s)).collect();
            let judged: Vec<(&str, Summary)> = self
                .entries
                .iter()
                .zip(&cells)
                .filter(|(e, _)| e.in_verdict)
                .map(|(e, c)| (e.name.as_str(), *c))
                .collect();
            let verdict = (!judged.is_empty()).then(|| stats::verdict(&judged, stats::THRESHOLD));
            progress(&format!(
                "runtimes: {} measured in {:.1} s",
                op.name(),
                started.elapsed().as_secs_f64()
            ));
            rows.push(Row { op, cells, verdict });
        }
        Results {
            budget,
            runtimes: self
                .entries
                .iter()
                .map(|e| (e.name.clone(), e.in_verdict))
                .collect(),
            rows,
        }
    }
}

/// The batch size for `op` on one runtime: doubled until a batch takes a quarter of `target`,
/// then scaled to `target`.
fn calibrate(sample: &mut Sampler<'_>, op: Op, target: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let took = sample(op, iters).elapsed;
        if took >= target / 4 || iters >= 1 << 30 {
            let scale = target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            return ((iters as f64 * scale) as u64).clamp(1, 1 << 32);
        }
        iters *= 2;
    }
}

/// One operation's line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The operation.
    pub op: Op,
    /// One cell per runtime, in the lineup's order.
    pub cells: Vec<Summary>,
    /// The verdict among the runtimes in the verdict (`None` when there are none).
    pub verdict: Option<Verdict>,
}

/// What [`Lineup::run`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// The budget used.
    pub budget: Budget,
    /// The runtimes' names, and whether each takes part in the verdicts.
    pub runtimes: Vec<(String, bool)>,
    /// One row per operation.
    pub rows: Vec<Row>,
}

impl Results {
    /// The console table: runtime × operation, `median [interval]`, and the verdict.
    ///
    /// # Examples
    ///
    /// See the [module documentation](self).
    pub fn table(&self) -> String {
        let mut header = vec!["operation".to_string()];
        for (name, in_verdict) in &self.runtimes {
            header.push(if *in_verdict {
                name.clone()
            } else {
                format!("{name} (tests)")
            });
        }
        header.push("verdict".to_string());
        let mut lines = vec![header];
        for row in &self.rows {
            let mut line = vec![row.op.name().to_string()];
            line.extend(row.cells.iter().map(fmt_cell));
            line.push(row.verdict.as_ref().map_or("–".into(), |v| v.to_string()));
            lines.push(line);
        }
        let widths: Vec<usize> = (0..lines[0].len())
            .map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Across runtimes: median per operation [95 % interval], {} interleaved samples per cell",
            self.budget.samples
        );
        for (i, line) in lines.iter().enumerate() {
            let cells: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            let _ = writeln!(out, "{}", cells.join(" | ").trim_end());
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                let _ = writeln!(out, "{}", rule.join("-|-"));
            }
        }
        let _ = writeln!(
            out,
            "verdict: fastest only when its interval is below every other's and its median ahead by \
             {:.0} % or more; else a tie (MockClock is not in verdicts: it is for tests)",
            stats::THRESHOLD * 100.0
        );
        out
    }

    /// The results as JSON (for `benches/report.py`): the budget, the runtimes, and per
    /// operation each runtime's median, interval and sample count, in ns, and the verdict (as
    /// text, and as the runtimes `tied` for first and those `slower`).
    ///
    /// # Examples
    ///
    /// See the [module documentation](self).
    pub fn json(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"samples\": {}, \"batch_ms\": {}, \"threshold\": {}, \"runtimes\": [",
            self.budget.samples,
            self.budget.batch.as_secs_f64() * 1e3,
            stats::THRESHOLD
        );
        for (i, (name, v)) in self.runtimes.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}{{\"name\": \"{name}\", \"in_verdict\": {v}}}");
        }
        out.push_str("], \"rows\": [");
        for (i, row) in self.rows.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}{{\"op\": \"{}\", \"cells\": {{", row.op.name());
            for (j, ((name, _), c)) in self.runtimes.iter().zip(&row.cells).enumerate() {
                let sep = if j == 0 { "" } else { ", " };
                let _ = write!(
                    out,
                    "{sep}\"{name}\": {{\"median\": {}, \"lo\": {}, \"hi\": {}, \"n\": {}}}",
                    c.median, c.lo, c.hi, c.n
                );
            }
            let verdict = row.verdict.as_ref().map_or(String::new(), |v| v.to_string());
            let (tied, slower) = match &row.verdict {
                None => (vec![], vec![]),
                Some(Verdict::Fastest(name)) => {
                    let others = self.runtimes.iter().filter(|(n, v)| *v && n != name);
                    (vec![name.clone()], others.map(|(n, _)| n.clone()).collect())
                }
                Some(Verdict::Tie { among, slower }) => (among.clone(), slower.clone()),
            };
            let _ = write!(
                out,
                "}}, \"verdict\": \"{verdict}\", \"tied\": {}, \"slower\": {}}}",
                json_names(&tied),
                json_names(&slower)
            );
        }
        out.push_str("]}\n");
        out
    }
}

/// `["a", "b"]`.
fn json_names(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// `131 ns [128, 135]`: three significant digits, the interval in the median's unit.
fn fmt_cell(s: &Summary) -> String {
    let (div, unit) = match s.median.abs() {
        m if m >= 1e6 => (1e6, "ms"),
        m if m >= 1e3 => (1e3, "µs"),
        _ => (1.0, "ns"),
    };
    format!(
        "{} {unit} [{}, {}]",
        sig3(s.median / div),
        sig3(s.lo / div),
        sig3(s.hi / div)
    )
}

/// Three significant digits (at most two decimals).
fn sig3(v: f64) -> String {
    let decimals = match v.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_the_medians_unit_for_the_interval() {
        let s = Summary {
            median: 2_770_000.0,
            lo: 2_610_000.0,
            hi: 3_050_000.0,
            n: 21,
        };
        assert_eq!(fmt_cell(&s), "2.77 ms [2.61, 3.05]");
        let s = Summary {
            median: 131.4,
            lo: 128.0,
            hi: 135.2,
            n: 21,
        };
        assert_eq!(fmt_cell(&s), "131 ns [128, 135]");
        let s = Summary {
            median: -0.4,
            lo: -1.2,
            hi: 0.8,
            n: 21,
        };
        assert_eq!(fmt_cell(&s), "-0.40 ns [-1.20, 0.80]");
    }

    fn results() -> Results {
        let cell = |m: f64| Summary {
            median: m,
            lo: m - 5.0,
            hi: m + 5.0,
            n: 21,
        };
        let cells = vec![cell(100.0), cell(300.0), cell(10.0)];
        let judged = [("tokio", cells[0]), ("smol", cells[1])];
        Results {
            budget: Budget::QUICK,
            runtimes: vec![
                ("tokio".into(), true),
                ("smol".into(), true),
                ("MockClock".into(), false),
            ],
            rows: vec![Row {
                op: Op::WithTimeoutCancel,
                verdict: Some(stats::verdict(&judged, stats::THRESHOLD)),
                cells,
            }],
        }
    }

    #[test]
    fn the_table_leaves_references_out_of_the_verdict() {
        let table = results().table();
        // MockClock is the fastest cell, yet tokio is the verdict's winner.
        assert!(table.contains("MockClock (tests)"), "{table}");
        let row = table
            .lines()
            .find(|l| l.starts_with("with_timeout+cancel"))
            .unwrap();
        assert!(row.ends_with("| tokio fastest"), "{row}");
        assert!(row.contains("10.0 ns [5.00, 15.0]"), "{row}");
    }

    #[test]
    fn json_carries_every_cell_and_the_verdict() {
        let json = results().json();
        assert!(json.contains("\"op\": \"with_timeout+cancel\""), "{json}");
        assert!(
            json.contains("\"smol\": {\"median\": 300, \"lo\": 295, \"hi\": 305, \"n\": 21}"),
            "{json}"
        );
        assert!(
            json.contains("\"verdict\": \"tokio fastest\", \"tied\": [\"tokio\"], \"slower\": [\"smol\"]"),
            "{json}"
        );
        assert!(
            json.contains("{\"name\": \"MockClock\", \"in_verdict\": false}"),
            "{json}"
        );
    }
}
