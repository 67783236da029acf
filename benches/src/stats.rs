//! Medians, distribution-free intervals and the verdict rule of the quick cross-runtime
//! comparison ([`crate::quick`]).
//!
//! A cell of the table is a set of independent samples (each the time per iteration of one
//! batch). It is summed up by its **median** and the **95 % interval of the median** given by
//! order statistics: the `j`-th smallest and the `j`-th largest sample, with `j` the largest
//! rank whose binomial coverage is still at least 95 %. That is the exact percentile interval
//! of the median; it needs no assumption about the distribution (timings on a busy machine have
//! long right tails) and no random resampling, so the same samples always give the same
//! interval.
//!
//! A **verdict** names the fastest of several runtimes only when it is clearly ahead: its
//! interval lies entirely below every other's, *and* its median is ahead by at least a
//! relative threshold ([`THRESHOLD`]). Everything else is a **tie**, listing those that cannot
//! be told apart from the fastest.
//!
//! # Examples
//!
//! ```
//! use ctx_benches::stats::{Summary, Verdict, verdict};
//! let fast = Summary::of(&[10.0, 11.0, 10.5, 10.2, 10.8, 10.1, 10.4]);
//! let slow = Summary::of(&[20.0, 21.0, 20.5, 20.2, 20.8, 20.1, 20.4]);
//! assert_eq!(fast.median, 10.4);
//! let v = verdict(&[("a", fast), ("b", slow)], 0.2);
//! assert_eq!(v, Verdict::Fastest("a".into()));
//! assert_eq!(v.to_string(), "a fastest");
//! ```

use std::fmt;

/// The gap two medians must have, beyond disjoint intervals, for a verdict: 25 % of the larger
/// one (the slower takes at least 1.33 times as long). Smaller differences are not what should
/// pick a runtime, and on a shared machine they do not survive from one run to the next.
pub const THRESHOLD: f64 = 0.25;

/// The coverage the interval of a [`Summary`] aims at.
pub const COVERAGE: f64 = 0.95;

/// A cell: the median of its samples and the 95 % order-statistic interval of that median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median of the samples (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The lower end of the interval (a sample).
    pub lo: f64,
    /// The upper end of the interval (a sample).
    pub hi: f64,
    /// How many samples.
    pub n: usize,
}

impl Summary {
    /// The median and the interval of `samples` (any order).
    ///
    /// With fewer than six samples no pair of order statistics covers 95 %; the interval is
    /// then the whole range.
    ///
    /// # Panics
    ///
    /// If `samples` is empty or holds a NaN.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ctx_benches::stats::Summary::of(&[3.0, 1.0, 2.0]);
    /// assert_eq!((s.median, s.lo, s.hi, s.n), (2.0, 1.0, 3.0, 3));
    /// ```
    pub fn of(samples: &[f64]) -> Summary {
        assert!(!samples.is_empty(), "ctx-benches: a summary of no samples");
        let mut x = samples.to_vec();
        x.sort_by(|a, b| a.partial_cmp(b).expect("ctx-benches: a NaN sample"));
        let n = x.len();
        let median = if n % 2 == 1 {
            x[n / 2]
        } else {
            (x[n / 2 - 1] + x[n / 2]) / 2.0
        };
        let j = interval_rank(n);
        Summary {
            median,
            lo: x[j - 1],
            hi: x[n - j],
            n,
        }
    }

    /// `true` when the two intervals share a point.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_benches::stats::Summary;
    /// let a = Summary::of(&[1.0, 2.0]);
    /// assert!(a.overlaps(&Summary::of(&[2.0, 3.0])));
    /// assert!(!a.overlaps(&Summary::of(&[2.5, 3.0])));
    /// ```
    pub fn overlaps(&self, other: &Summary) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }
}

/// The 1-based rank `j` of the interval's ends (`x(j)` and `x(n + 1 - j)`): the largest one
/// whose coverage, `1 - 2 P(B < j)` for `B ~ Binomial(n, 1/2)`, is at least [`COVERAGE`];
/// 1 (the whole range) when even that falls short.
fn interval_rank(n: usize) -> usize {
    let mut j = 1;
    let mut term = 0.5f64.powi(n as i32); // P(B = 0)
    let mut cdf = term; // P(B <= j - 1)
    // Rank j + 1 needs 2 (j + 1) <= n + 1 (the ends in order) and 1 - 2 P(B <= j) >= COVERAGE.
    while 2 * (j + 1) <= n + 1 {
        term *= (n - j + 1) as f64 / j as f64; // P(B = j), from P(B = j - 1)
        if 1.0 - 2.0 * (cdf + term) < COVERAGE {
            break;
        }
        cdf += term;
        j += 1;
    }
    j
}

/// Which runtime is fastest at one operation, if any is clearly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This one's interval lies below every other's and its median is ahead by the threshold.
    Fastest(String),
    /// These cannot be told apart from the fastest; `slower` are clearly behind it. Both lists
    /// keep the order of the cells given, not of the medians, so that the same sets always read
    /// the same.
    Tie {
        /// The runtimes tied for first.
        among: Vec<String>,
        /// The runtimes clearly slower than the fastest.
        slower: Vec<String>,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Fastest(name) => write!(f, "{name} fastest"),
            Verdict::Tie { among, slower } => {
                write!(f, "tie: {}", among.join(", "))?;
                if !slower.is_empty() {
                    write!(f, "; slower: {}", slower.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// `true` when `b` is clearly slower than `a`: disjoint intervals, `b` above, and medians
/// apart by at least `threshold` of the larger one (in absolute value: overheads can be near 0).
///
/// # Examples
///
/// ```
/// use ctx_benches::stats::{Summary, clearly_slower};
/// let a = Summary::of(&[1.0, 1.1, 1.2]);
/// assert!(clearly_slower(&a, &Summary::of(&[2.0, 2.1, 2.2]), 0.2));
/// assert!(!clearly_slower(&a, &Summary::of(&[1.25, 1.3, 1.35]), 0.2)); // 15 % of 1.3 apart
/// ```
pub fn clearly_slower(a: &Summary, b: &Summary, threshold: f64) -> bool {
    let scale = a.median.abs().max(b.median.abs());
    b.lo > a.hi && b.median - a.median >= threshold * scale
}

/// The verdict over `cells` (name, summary): the fastest by median, alone if every other is
/// [`clearly_slower`], else a tie with those that are not (in the order of `cells`). A
/// runtime whose median is below that of a tied one is tied too, even if it alone would be
/// clearly slower than the fastest (its interval can be narrower than the other's).
///
/// # Panics
///
/// If `cells` is empty.
///
/// # Examples
///
/// ```
/// use ctx_benches::stats::{Summary, Verdict, verdict};
/// let a = Summary::of(&[10.0, 12.0, 14.0]);
/// let b = Summary::of(&[11.0, 13.0, 15.0]);
/// let v = verdict(&[("a", a), ("b", b)], 0.2);
/// assert_eq!(v.to_string(), "tie: a, b");
/// ```
pub fn verdict(cells: &[(&str, Summary)], threshold: f64) -> Verdict {
    let first = cells
        .iter()
        .min_by(|x, y| x.1.median.total_cmp(&y.1.median))
        .expect("ctx-benches: a verdict over no runtimes");
    // The tie reaches up to the slowest median that is not clearly slower than the fastest:
    // a runtime with a lower median is never called slower than one that is tied.
    let reach = cells
        .iter()
        .filter(|c| !clearly_slower(&first.1, &c.1, threshold))
        .map(|c| c.1.median)
        .fold(first.1.median, f64::max);
    let names = |tied: bool| -> Vec<String> {
        cells
            .iter()
            .filter(|c| (c.1.median <= reach) == tied)
            .map(|c| c.0.to_string())
            .collect()
    };
    let (among, slower) = (names(true), names(false));
    if among.len() == 1 && !slower.is_empty() {
        return Verdict::Fastest(first.0.to_string());
    }
    Verdict::Tie { among, slower }
}

/// The pooled samples' verdict, checked against each process's own: a runtime is tied when
/// the pooled verdict ties it (a fastest counts as tied) or when more than `dissent` of the
/// `processes` verdicts do; the others of `names` are slower. So with `dissent` 0 a runtime is
/// named fastest only when every verdict names it; with 1, one process may have caught the
/// machine in an odd moment (a quiet one, or a burst of load) without turning the verdict.
/// Lists keep the order of `names`.
///
/// # Examples
///
/// ```
/// use ctx_benches::stats::{Verdict, agree};
/// let names = ["a".to_string(), "b".to_string(), "c".to_string()];
/// let a = Verdict::Fastest("a".into());
/// let ab = Verdict::Tie { among: vec!["a".into(), "b".into()], slower: vec!["c".into()] };
/// assert_eq!(agree(&a, &[a.clone(), ab.clone()], &names, 1), a); // one dissent allowed
/// assert_eq!(agree(&a, &[a.clone(), ab.clone()], &names, 0), ab);
/// ```
pub fn agree(pooled: &Verdict, processes: &[Verdict], names: &[String], dissent: usize) -> Verdict {
    let ties = |v: &Verdict, name: &String| match v {
        Verdict::Fastest(x) => x == name,
        Verdict::Tie { among, .. } => among.contains(name),
    };
    let tied =
        |name: &String| ties(pooled, name) || processes.iter().filter(|v| ties(v, name)).count() > dissent;
    let (among, slower): (Vec<String>, Vec<String>) = names.iter().cloned().partition(tied);
    if among.len() == 1 && !slower.is_empty() {
        return Verdict::Fastest(among[0].clone());
    }
    Verdict::Tie { among, slower }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(samples: &[f64]) -> Summary {
        Summary::of(samples)
    }

    #[test]
    fn interval_rank_is_the_exact_binomial_one() {
        // n = 21: P(B <= 5) = 0.0133 (coverage 97.3 %), P(B <= 6) = 0.0392 (92.2 %).
        assert_eq!(interval_rank(21), 6);
        // n = 6: P(B = 0) = 1/64, coverage 96.9 % for j = 1; j = 2 covers only 78 %.
        assert_eq!(interval_rank(6), 1);
        // n = 9: P(B <= 1) = 10/512, coverage 96.1 %; P(B <= 2) = 46/512, 82 %.
        assert_eq!(interval_rank(9), 2);
        assert_eq!(interval_rank(1), 1);
        assert_eq!(interval_rank(5), 1); // no 95 % pair: the whole range
    }

    #[test]
    fn summary_of_21_samples_takes_the_6th_and_16th() {
        let x: Vec<f64> = (1..=21).rev().map(f64::from).collect();
        let sum = s(&x);
        assert_eq!((sum.median, sum.lo, sum.hi, sum.n), (11.0, 6.0, 16.0, 21));
    }

    #[test]
    fn one_wild_sample_moves_neither_median_nor_interval() {
        let calm: Vec<f64> = (0..21).map(|i| 100.0 + f64::from(i)).collect();
        let mut wild = calm.clone();
        wild[20] = 1e9; // a stall of the machine
        assert_eq!(s(&calm), s(&wild));
    }

    #[test]
    fn even_count_takes_the_mean_of_the_middle_pair() {
        assert_eq!(s(&[4.0, 1.0, 3.0, 2.0]).median, 2.5);
    }

    #[test]
    fn overlapping_intervals_are_a_tie_even_far_apart_in_median() {
        let a = s(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        let b = s(&[90.0, 95.0, 99.0, 150.0, 200.0]);
        assert!(a.overlaps(&b));
        assert_eq!(
            verdict(&[("a", a), ("b", b)], THRESHOLD),
            Verdict::Tie {
                among: vec!["a".into(), "b".into()],
                slower: vec![]
            }
        );
    }

    #[test]
    fn disjoint_but_close_medians_are_a_tie() {
        let a = s(&[100.0, 100.1, 100.2, 100.3, 100.4, 100.5, 100.6]);
        let b = s(&[110.0, 110.1, 110.2, 110.3, 110.4, 110.5, 110.6]);
        assert!(!a.overlaps(&b));
        assert_eq!(verdict(&[("a", a), ("b", b)], 0.2).to_string(), "tie: a, b");
        assert_eq!(verdict(&[("a", a), ("b", b)], 0.05).to_string(), "a fastest");
    }

    #[test]
    fn a_tie_lists_who_is_clearly_slower() {
        let a = s(&[10.0, 11.0, 12.0]);
        let b = s(&[11.5, 12.5, 13.0]);
        let c = s(&[50.0, 51.0, 52.0]);
        let v = verdict(&[("c", c), ("b", b), ("a", a)], THRESHOLD);
        assert_eq!(v.to_string(), "tie: b, a; slower: c");
    }

    #[test]
    fn a_lower_median_is_never_slower_than_a_tied_one() {
        let a = s(&[10.0, 11.0, 12.0, 12.5, 13.0]);
        let wide = s(&[11.0, 12.0, 20.0, 28.0, 29.0]); // tied with a: the intervals overlap
        let narrow = s(&[18.0, 18.5, 19.0, 19.5, 20.0]); // alone, clearly slower than a
        let v = verdict(&[("a", a), ("wide", wide), ("narrow", narrow)], THRESHOLD);
        assert_eq!(v.to_string(), "tie: a, wide, narrow");
    }

    #[test]
    fn fastest_needs_every_other_clearly_slower() {
        let a = s(&[10.0, 11.0, 12.0]);
        let b = s(&[30.0, 31.0, 32.0]);
        let c = s(&[50.0, 51.0, 52.0]);
        assert_eq!(
            verdict(&[("b", b), ("a", a), ("c", c)], THRESHOLD),
            Verdict::Fastest("a".into())
        );
    }

    #[test]
    fn equal_medians_are_a_tie() {
        // The old report named a winner on exact ties; this rule cannot.
        let a = s(&[5.0, 5.0, 5.0]);
        let b = s(&[5.0, 5.0, 5.0]);
        assert_eq!(verdict(&[("a", a), ("b", b)], THRESHOLD).to_string(), "tie: a, b");
    }

    #[test]
    fn a_tie_reads_the_same_whichever_median_is_lower() {
        // Two runs that differ only in which of two tied runtimes came out ahead.
        let lower = s(&[10.0, 11.0, 12.0]);
        let higher = s(&[10.5, 11.5, 12.5]);
        let one = verdict(&[("a", lower), ("b", higher)], THRESHOLD);
        let two = verdict(&[("a", higher), ("b", lower)], THRESHOLD);
        assert_eq!(one, two);
        assert_eq!(one.to_string(), "tie: a, b");
    }

    #[test]
    fn overheads_near_zero_use_the_larger_magnitude() {
        let a = s(&[-1.0, -0.5, 0.0, 0.5, 1.0]);
        let b = s(&[9.0, 9.5, 10.0, 10.5, 11.0]);
        assert!(clearly_slower(&a, &b, THRESHOLD));
        assert!(!clearly_slower(&b, &a, THRESHOLD));
    }

    #[test]
    fn verdicts_that_disagree_agree_on_the_wider_tie() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let fast_a = Verdict::Fastest("a".into());
        let fast_b = Verdict::Fastest("b".into());
        let slow_c = Verdict::Tie {
            among: vec!["b".into(), "a".into()],
            slower: vec!["c".into()],
        };
        let all = Verdict::Tie {
            among: names.clone(),
            slower: vec![],
        };
        let same = [fast_a.clone(), fast_a.clone(), fast_a.clone()];
        assert_eq!(agree(&fast_a, &same, &names, 0), fast_a);
        // One process saw b ahead: with no dissent allowed, a and b tie; c is slower in all.
        let one_off = [fast_a.clone(), fast_b.clone(), fast_a.clone()];
        assert_eq!(agree(&fast_a, &one_off, &names, 0), slow_c.clone().sorted(&names));
        // With one dissent allowed, the odd process does not count...
        assert_eq!(agree(&fast_a, &one_off, &names, 1), fast_a);
        // ...two do.
        let two_off = [fast_b.clone(), fast_b, fast_a.clone()];
        assert_eq!(
            agree(&fast_a, &two_off, &names, 1).to_string(),
            "tie: a, b; slower: c"
        );
        // The pooled verdict's ties always stand.
        assert_eq!(agree(&all, &same, &names, 1), all);
        assert_eq!(
            agree(&slow_c, &same, &names, 1).to_string(),
            "tie: a, b; slower: c"
        );
    }

    impl Verdict {
        fn sorted(self, names: &[String]) -> Verdict {
            match self {
                Verdict::Tie { among, slower } => {
                    let order = |v: Vec<String>| names.iter().filter(|n| v.contains(n)).cloned().collect();
                    Verdict::Tie {
                        among: order(among),
                        slower: order(slower),
                    }
                }
                v => v,
            }
        }
    }

    #[test]
    fn a_single_runtime_is_a_tie_with_itself() {
        let a = s(&[1.0]);
        assert_eq!(verdict(&[("a", a)], THRESHOLD).to_string(), "tie: a");
    }
}
