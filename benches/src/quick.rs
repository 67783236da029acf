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

use std::time::{Duration, Instant};

use crate::runtime::{Batch, BenchRuntime, Op, batch};
use crate::stats::{self, Summary, Verdict};

mod results;

pub use results::Results;

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
