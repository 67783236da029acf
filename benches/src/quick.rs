//! The quick cross-runtime comparison: every [`Op`] on every runtime, sampled in turn, summed
//! up as a table of medians and intervals with a verdict per operation.
//!
//! How a table is made, so that two runs in a row give the same verdicts on a busy machine:
//!
//! * **Calibrate.** For each operation and runtime, the batch size is doubled until a batch
//!   takes a quarter of [`Budget::batch`], then scaled to the whole of it (this doubles as the
//!   warm-up).
//! * **Keep the undisturbed.** Batches are short (1 ms), and a sample is the fastest of
//!   [`Budget::tries`] batches run back to back: on a machine shared with other work, a batch
//!   that another process's time slice cut into is dropped instead of counted.
//! * **Interleave.** [`Budget::samples`] rounds; each round takes one sample of every runtime, in
//!   an order that rotates from round to round. A burst of load from another process lands on
//!   all runtimes alike instead of on whichever happened to run then.
//! * **Start afresh.** [`Budget::processes`] processes take a share of the samples each, one
//!   after the other, and their samples are pooled ([`Results::from_samples`]). A runtime's
//!   threads settle differently in each process (which one drives the reactor, which one parks);
//!   one process would measure one such state, several measure what a user gets.
//! * **Sum up.** Each sample is the time per iteration of its fastest batch. A cell is the
//!   median of its samples and the 95 % interval of that median ([`stats::Summary`]).
//! * **Judge.** Among the runtimes in the verdict (not `MockClock`: it is for tests), a runtime
//!   is named fastest only when its interval lies below every other's and its median is ahead
//!   by at least [`stats::THRESHOLD`]; otherwise the verdict is a tie ([`stats::verdict`]).
//!   The same holds for "clearly slower". And the processes must side with the verdict: where
//!   more than one in five ([`DISSENT_PER`]) has medians closer than the threshold, the tie
//!   widens ([`stats::agree`]). One may dissent: it caught the machine in an odd moment.
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
//! let budget = Budget { samples: 7, processes: 1, tries: 1, batch: Duration::from_micros(200) };
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
    /// Samples per cell, in all (rounds over all runtimes).
    pub samples: usize,
    /// How many processes take them, one after the other, each its share of the samples (see
    /// the module doc).
    pub processes: usize,
    /// Batches per sample, back to back; the sample is the fastest of them.
    pub tries: usize,
    /// The time one batch aims at.
    pub batch: Duration,
}

impl Budget {
    /// The quick budget: 65 samples from 5 processes, each sample the fastest of 3 batches of
    /// 1 ms (about 30 s for the whole table once built, most of it spent setting up the tasks of
    /// `wake-1000-tasks`).
    pub const QUICK: Budget = Budget {
        samples: 65,
        processes: 5,
        tries: 3,
        batch: Duration::from_millis(1),
    };

    /// The full budget (`CTX_BENCH_FULL=1`): 200 samples from 5 processes, each the fastest of 3
    /// batches of 2 ms.
    pub const FULL: Budget = Budget {
        samples: 200,
        processes: 5,
        tries: 3,
        batch: Duration::from_millis(2),
    };

    /// This budget's share for one of its processes: `samples / processes`, rounded up.
    ///
    /// # Examples
    ///
    /// ```
    /// let share = ctx_benches::quick::Budget::QUICK.per_process();
    /// assert_eq!((share.samples, share.processes), (13, 1));
    /// ```
    pub fn per_process(self) -> Budget {
        Budget {
            samples: self.samples.div_ceil(self.processes.max(1)),
            processes: 1,
            ..self
        }
    }

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

    /// Measures `ops` on every runtime of the lineup, `budget.samples` samples per cell in this
    /// process; `progress` gets one line per operation.
    ///
    /// # Examples
    ///
    /// See the [module documentation](self).
    pub fn run(&mut self, ops: &[Op], budget: Budget, mut progress: impl FnMut(&str)) -> Results {
        let mut rows = Vec::new();
        let runtimes: Vec<(String, bool)> = self
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.in_verdict))
            .collect();
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
                    let sample = &mut self.entries[i].sample;
                    samples[i].push(fastest_of(budget.tries, || sample(op, iters[i])));
                }
            }
            progress(&format!(
                "runtimes: {} measured in {:.1} s",
                op.name(),
                started.elapsed().as_secs_f64()
            ));
            rows.push(Row::new(op, vec![samples], &runtimes));
        }
        Results {
            budget,
            runtimes,
            rows,
        }
    }
}

/// The fastest of `tries` batches; for the `run` overheads, the fastest with `run` minus the
/// fastest bare (each half of a batch can be the one a time slice cut into).
fn fastest_of(tries: usize, mut batch: impl FnMut() -> Batch) -> f64 {
    let (mut best, mut best_bare) = (f64::INFINITY, f64::INFINITY);
    let mut overhead = false;
    for _ in 0..tries.max(1) {
        let b = batch();
        best = best.min(b.per_iter_ns);
        if let Some(bare) = b.bare_ns {
            overhead = true;
            best_bare = best_bare.min(bare);
        }
    }
    if overhead { best - best_bare } else { best }
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

/// One process in this many may side against a verdict without turning it into a tie
/// ([`stats::agree`]): with five processes, one.
pub const DISSENT_PER: usize = 5;

/// One operation's line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The operation.
    pub op: Op,
    /// The samples of each process, of each runtime in the lineup's order (ns per iteration).
    pub samples: Vec<Vec<Vec<f64>>>,
    /// One cell per runtime, in the lineup's order: the samples of all processes pooled.
    pub cells: Vec<Summary>,
    /// The verdict among the runtimes in the verdict (`None` when there are none): the pooled
    /// samples' verdict where the processes' own, by their medians, agree with it (all but one
    /// in [`DISSENT_PER`]), else the wider tie ([`stats::agree`]).
    pub verdict: Option<Verdict>,
}

impl Row {
    /// Sums up `samples` (of each process, one list per runtime of `runtimes`: name, in the
    /// verdict or not).
    fn new(op: Op, samples: Vec<Vec<Vec<f64>>>, runtimes: &[(String, bool)]) -> Row {
        let pooled: Vec<Vec<f64>> = (0..runtimes.len())
            .map(|i| samples.iter().flat_map(|p| p[i].iter().copied()).collect())
            .collect();
        let judge = |cells: &[Summary]| -> Option<Verdict> {
            let judged: Vec<(&str, Summary)> = runtimes
                .iter()
                .zip(cells)
                .filter(|((_, in_verdict), _)| *in_verdict)
                .map(|((name, _), c)| (name.as_str(), *c))
                .collect();
            (!judged.is_empty()).then(|| stats::verdict(&judged, stats::THRESHOLD))
        };
        let cells: Vec<Summary> = pooled.iter().map(|x| Summary::of(x)).collect();
        let mut verdicts: Vec<Verdict> = Vec::new();
        if samples.len() > 1 {
            // Each process by its median alone: a dozen samples give it too wide an interval
            // to judge by, but a median that sides with the pooled verdict is what counts.
            let medians = |p: &Vec<Vec<f64>>| -> Vec<Summary> {
                p.iter()
                    .map(|x| {
                        let m = Summary::of(x).median;
                        Summary {
                            lo: m,
                            hi: m,
                            ..Summary::of(x)
                        }
                    })
                    .collect()
            };
            verdicts.extend(samples.iter().filter_map(|p| judge(&medians(p))));
        }
        let names: Vec<String> = runtimes
            .iter()
            .filter(|(_, v)| *v)
            .map(|(n, _)| n.clone())
            .collect();
        let verdict =
            judge(&cells).map(|pooled| stats::agree(&pooled, &verdicts, &names, samples.len() / DISSENT_PER));
        Row {
            op,
            samples,
            cells,
            verdict,
        }
    }
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
    /// The samples as text, one per line, for [`Results::from_samples`] in another process (as
    /// one process's: those of several are pooled):
    /// `runtime <TAB> name <TAB> 1|0` lines (in the verdict or not), then
    /// `sample <TAB> operation <TAB> runtime index <TAB> ns` lines.
    ///
    /// # Examples
    ///
    /// See [`Results::from_samples`].
    pub fn samples_text(&self) -> String {
        let mut out = String::new();
        for (name, in_verdict) in &self.runtimes {
            let _ = writeln!(out, "runtime\t{name}\t{}", u8::from(*in_verdict));
        }
        for row in &self.rows {
            for process in &row.samples {
                for (i, samples) in process.iter().enumerate() {
                    for x in samples {
                        let _ = writeln!(out, "sample\t{}\t{i}\t{x}", row.op.name());
                    }
                }
            }
        }
        out
    }

    /// The results of several processes together: the samples of each cell pooled and summed
    /// up; the verdict is the pooled one where the processes' own agree ([`Row::verdict`]).
    /// Every text must come from the same lineup and measure the same operations.
    ///
    /// # Panics
    ///
    /// If a text is not [`samples_text`](Results::samples_text)'s or the lineups differ.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_benches::quick::{Budget, Results};
    /// let one = "runtime\ta\t1\nsample\twith_timeout+cancel\t0\t100\n";
    /// let two = "runtime\ta\t1\nsample\twith_timeout+cancel\t0\t300\n";
    /// let r = Results::from_samples(&[one.into(), two.into()], Budget::QUICK);
    /// assert_eq!(r.rows[0].cells[0].median, 200.0);
    /// assert_eq!(r.rows[0].samples, vec![vec![vec![100.0]], vec![vec![300.0]]]);
    /// ```
    pub fn from_samples(texts: &[String], budget: Budget) -> Results {
        let mut runtimes: Option<Vec<(String, bool)>> = None;
        // Per operation (in order of appearance): per process, per runtime, the samples.
        let mut rows: Vec<(Op, Vec<Vec<Vec<f64>>>)> = Vec::new();
        for (p, text) in texts.iter().enumerate() {
            let mut these = Vec::new();
            for line in text.lines() {
                let f: Vec<&str> = line.split('\t').collect();
                match f[..] {
                    ["runtime", name, v] => these.push((name.to_string(), v == "1")),
                    ["sample", op, i, x] => {
                        let op = Op::from_name(op).expect("ctx-benches: unknown operation");
                        let i: usize = i.parse().expect("ctx-benches: bad runtime index");
                        let x: f64 = x.parse().expect("ctx-benches: bad sample");
                        assert!(i < these.len(), "ctx-benches: a sample of no runtime");
                        let at = match rows.iter().position(|r| r.0 == op) {
                            Some(at) => at,
                            None => {
                                rows.push((op, Vec::new()));
                                rows.len() - 1
                            }
                        };
                        let processes = &mut rows[at].1;
                        processes.resize(texts.len(), vec![Vec::new(); these.len()]);
                        processes[p][i].push(x);
                    }
                    _ => panic!("ctx-benches: not a samples line: {line:?}"),
                }
            }
            match &runtimes {
                None => runtimes = Some(these),
                Some(r) => assert_eq!(r, &these, "ctx-benches: samples of different lineups"),
            }
        }
        let runtimes = runtimes.unwrap_or_default();
        let rows = rows
            .into_iter()
            .map(|(op, samples)| Row::new(op, samples, &runtimes))
            .collect();
        Results {
            budget,
            runtimes,
            rows,
        }
    }

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
            "verdict: fastest (or slower) only when the intervals do not overlap, the medians are \
             {:.0} % apart or more, and the medians of {} of the {} processes agree; else a tie \
             (MockClock is for tests: not in verdicts)",
            stats::THRESHOLD * 100.0,
            self.budget.processes - self.budget.processes / DISSENT_PER,
            self.budget.processes
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
            "{{\"samples\": {}, \"processes\": {}, \"batch_ms\": {}, \"threshold\": {}, \"runtimes\": [",
            self.budget.samples,
            self.budget.processes,
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
                samples: vec![],
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

    fn samples_text(a: &[f64], b: &[f64]) -> String {
        let mut t = String::from("runtime\ta\t1\nruntime\tb\t1\n");
        for (i, xs) in [a, b].into_iter().enumerate() {
            for x in xs {
                t += &format!("sample\twith_timeout+cancel\t{i}\t{x}\n");
            }
        }
        t
    }

    #[test]
    fn a_verdict_every_process_agrees_with_stands() {
        let one = samples_text(&[100.0; 10], &[300.0; 10]);
        let two = samples_text(&[100.0; 10], &[310.0; 10]);
        let r = Results::from_samples(&[one, two], Budget::QUICK);
        assert_eq!(r.rows[0].verdict, Some(Verdict::Fastest("a".into())));
    }

    #[test]
    fn a_process_that_disagrees_turns_the_verdict_into_a_tie() {
        // Pooled, a is clearly ahead (b's median is 300); in the second process b's median is
        // within 20 % of a's, which is a tie there.
        let one = samples_text(&[100.0; 10], &[300.0; 10]);
        let two = samples_text(&[100.0; 3], &[120.0; 3]);
        let r = Results::from_samples(&[one.clone(), two], Budget::QUICK);
        let pooled = Results::from_samples(&[one], Budget::QUICK);
        assert_eq!(pooled.rows[0].verdict, Some(Verdict::Fastest("a".into())));
        assert_eq!(r.rows[0].cells[1].median, 300.0);
        assert_eq!(r.rows[0].verdict.as_ref().unwrap().to_string(), "tie: a, b");
    }

    #[test]
    fn one_process_in_five_may_dissent_two_may_not() {
        let agrees = || samples_text(&[100.0; 10], &[300.0; 10]);
        let dissents = || samples_text(&[100.0; 3], &[120.0; 3]);
        let one = [agrees(), agrees(), dissents(), agrees(), agrees()];
        let r = Results::from_samples(&one, Budget::QUICK);
        assert_eq!(r.rows[0].verdict, Some(Verdict::Fastest("a".into())));
        let two = [agrees(), dissents(), agrees(), dissents(), agrees()];
        let r = Results::from_samples(&two, Budget::QUICK);
        assert_eq!(r.rows[0].cells[1].median, 300.0); // pooled, b is still far behind
        assert_eq!(r.rows[0].verdict.as_ref().unwrap().to_string(), "tie: a, b");
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
