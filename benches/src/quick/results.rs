//! [`Results`]: what a [`Lineup`](super::Lineup) measured, pooled from several processes, and
//! its console table and JSON.

use std::fmt::Write as _;

use super::{Budget, DISSENT_PER, Row};
use crate::runtime::Op;
use crate::stats::{self, Summary, Verdict};

/// What [`Lineup::run`](super::Lineup::run) measured.
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
    /// See the [module documentation](crate::quick).
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
    /// See the [module documentation](crate::quick).
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
