//! Model-based property tests: random operations on a random context tree, checked after every
//! step against a small reference model of Go's semantics (error, cause identity, deadline,
//! values, after-func run counts, `stop()` results, wake-ups).
//!
//! Case count: `CTX_MODEL_CASES` per property (default 5,000; two properties, so 10,000 in a
//! plain `cargo test`); 2 cases of up to 19 steps under Miri. A failure shrinks to the shortest
//! sequence of `Op`s that still fails, printed with `Debug`. See `docs/reliability.md`.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ctx_core::{
    AfterFunc, CancelCauseHandle, CancelHandle, Cause, Context, Ctx, Done, Error, Forward, HandleDropped,
};
use ctx_testkit::MockClock;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError};

// ===== operations =====

/// How a new context is derived. Times are milliseconds: `at` from the start of the case,
/// `ms` from the mock's current time.
#[derive(Clone, Debug)]
enum Derive {
    Cancel,
    CancelCause,
    Deadline {
        at: u8,
    },
    DeadlineCause {
        at: u8,
    },
    Timeout {
        ms: u8,
    },
    TimeoutCause {
        ms: u8,
    },
    ValueA,
    ValueB,
    WithoutCancel,
    /// `Ctx::wrap` of a custom context that wraps the parent and adds a `WrapMark` value.
    Wrap,
    /// `Ctx::wrap` of a foreign context (not backed by a `Ctx`: its own `done()` future,
    /// fired by `Op::Fire`). It takes only the parent's clock, not its cancellation.
    Foreign,
}

#[derive(Clone, Debug)]
enum Op {
    /// Derive from a context that is still held.
    Derive {
        parent: Index,
        how: Derive,
    },
    /// `cancel()` / `cancel_without_cause()` on a handle.
    Cancel {
        node: Index,
    },
    /// `CancelCauseHandle::cancel(fresh cause)` (a plain handle cancels without one).
    CancelCause {
        node: Index,
    },
    CloneHandle {
        node: Index,
    },
    /// Drops one handle clone: the last one cancels.
    DropHandle {
        node: Index,
    },
    Disarm {
        node: Index,
    },
    /// Drops the test's `Ctx` (the node is then unobservable, unless only its descendants
    /// are).
    DropCtx {
        node: Index,
    },
    AfterFunc {
        node: Index,
    },
    Stop {
        reg: Index,
    },
    /// Polls a fresh `done()` once with a recording waker and keeps it.
    PollDone {
        node: Index,
    },
    /// Moves the mock clock forward, firing what is due.
    Advance {
        ms: u8,
    },
    /// Polls a kept waiter again, with a new waker (only the latest one may be woken).
    Repoll {
        wait: Index,
    },
    /// Drops a kept waiter (it must unregister).
    DropDone {
        wait: Index,
    },
    /// Makes a foreign context done (`DeadlineExceeded` if `deadline`), with a cause or not.
    Fire {
        node: Index,
        deadline: bool,
        cause: bool,
    },
    /// `a.with_merged(&b)` of two contexts that are still held (possibly the same one).
    Merge {
        a: Index,
        b: Index,
    },
}

fn derive_strategy() -> impl Strategy<Value = Derive> {
    prop_oneof![
        3 => Just(Derive::Cancel),
        3 => Just(Derive::CancelCause),
        2 => any::<u8>().prop_map(|at| Derive::Deadline { at }),
        2 => any::<u8>().prop_map(|at| Derive::DeadlineCause { at }),
        2 => (0u8..120).prop_map(|ms| Derive::Timeout { ms }),
        2 => (0u8..120).prop_map(|ms| Derive::TimeoutCause { ms }),
        1 => Just(Derive::ValueA),
        1 => Just(Derive::ValueB),
        1 => Just(Derive::WithoutCancel),
        1 => Just(Derive::Wrap),
        1 => Just(Derive::Foreign),
    ]
}

fn op_strategy(time_weight: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (any::<Index>(), derive_strategy()).prop_map(|(parent, how)| Op::Derive { parent, how }),
        3 => any::<Index>().prop_map(|node| Op::Cancel { node }),
        2 => any::<Index>().prop_map(|node| Op::CancelCause { node }),
        1 => any::<Index>().prop_map(|node| Op::CloneHandle { node }),
        2 => any::<Index>().prop_map(|node| Op::DropHandle { node }),
        1 => any::<Index>().prop_map(|node| Op::Disarm { node }),
        2 => any::<Index>().prop_map(|node| Op::DropCtx { node }),
        3 => any::<Index>().prop_map(|node| Op::AfterFunc { node }),
        2 => any::<Index>().prop_map(|reg| Op::Stop { reg }),
        2 => any::<Index>().prop_map(|node| Op::PollDone { node }),
        time_weight => (0u8..80).prop_map(|ms| Op::Advance { ms }),
        1 => any::<Index>().prop_map(|wait| Op::Repoll { wait }),
        1 => any::<Index>().prop_map(|wait| Op::DropDone { wait }),
        2 => (any::<Index>(), any::<bool>(), any::<bool>())
            .prop_map(|(node, deadline, cause)| Op::Fire { node, deadline, cause }),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Op::Merge { a, b }),
    ]
}

// ===== the reference model =====

/// A cause as the model knows it: an `Error` used as the cause, or the n-th cause the test made.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CauseId {
    Err(Error),
    Given(usize),
    /// `HandleDropped`: the drop of the last handle.
    Dropped,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum MKind {
    Root,
    Cancel,
    Value,
    WithoutCancel,
    Wrap,
    /// A foreign context's wrap: done only when fired.
    Foreign,
}

#[derive(Debug)]
struct MNode {
    #[allow(dead_code)] // shown in failure output
    parent: Option<usize>,
    kind: MKind,
    /// The cancel node this one answers `err()` from (Go: its `parentCancelCtx`).
    canceler: Option<usize>,
    /// Effective deadline, ms from the start.
    deadline: Option<u64>,
    /// A deadline this node owns (its own, and the effective one).
    own_deadline: Option<u64>,
    deadline_cause: CauseId,
    /// For cancel nodes: the error and the causes that are acceptable (two when a parent's
    /// and a child's deadline fall due at the same instant: either may be first).
    done: Option<(Error, Vec<CauseId>)>,
    children: Vec<usize>,
    handles: usize,
    values: [Option<usize>; 3],
}

#[derive(Debug, PartialEq)]
enum MReg {
    Never,
    Pending(usize),
    Ran,
    Stopped,
}

#[derive(Default, Debug)]
struct Model {
    nodes: Vec<MNode>,
    /// Merged nodes and their second parents (the first is `parent`).
    merged: Vec<(usize, usize)>,
    regs: Vec<(MReg, bool)>, // (state, stop already called)
    now: u64,
}

impl Model {
    fn state(&self, n: usize) -> Option<&(Error, Vec<CauseId>)> {
        self.nodes[n].canceler.and_then(|c| self.nodes[c].done.as_ref())
    }

    /// Marks `top` and its open descendants done (not through `without_cancel`), and runs the
    /// after-funcs registered on them.
    fn propagate(&mut self, top: usize, err: Error, causes: Vec<CauseId>, tie: Option<u64>) {
        let mut stack = vec![(top, causes)];
        while let Some((n, causes)) = stack.pop() {
            let tied = tie.map_or_else(Vec::new, |d| self.tied_merge_causes(n, d));
            let node = &mut self.nodes[n];
            match node.kind {
                MKind::Cancel | MKind::Foreign => {
                    if node.done.is_some() {
                        continue;
                    }
                    let mut causes = causes;
                    if tie.is_some() && node.own_deadline == tie && !causes.contains(&node.deadline_cause) {
                        causes.push(node.deadline_cause);
                    }
                    for c in tied {
                        if !causes.contains(&c) {
                            causes.push(c);
                        }
                    }
                    node.done = Some((err, causes.clone()));
                    for (reg, _) in &mut self.regs {
                        if *reg == MReg::Pending(n) {
                            *reg = MReg::Ran;
                        }
                    }
                    for &c in &self.nodes[n].children {
                        stack.push((c, causes.clone()));
                    }
                }
                MKind::WithoutCancel | MKind::Root => {}
                MKind::Value | MKind::Wrap => {
                    for &c in &node.children {
                        stack.push((c, causes.clone()));
                    }
                }
            }
        }
    }

    /// For a merged node reached by deadlines that fall due at `d`: the deadline causes of
    /// every owner of `d` above it, through either parent (any of them may expire first).
    fn tied_merge_causes(&self, n: usize, d: u64) -> Vec<CauseId> {
        if !self.merged.iter().any(|&(m, _)| m == n) {
            return Vec::new();
        }
        let mut causes = Vec::new();
        let mut stack = vec![n];
        let mut seen = vec![false; self.nodes.len()];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) || self.nodes[i].deadline != Some(d) {
                continue;
            }
            if self.nodes[i].own_deadline == Some(d) {
                causes.push(self.nodes[i].deadline_cause);
            }
            stack.extend(self.nodes[i].parent);
            stack.extend(self.merged.iter().filter(|&&(m, _)| m == i).map(|&(_, o)| o));
        }
        causes
    }

    fn expire(&mut self, n: usize) {
        let d = self.nodes[n].own_deadline;
        let cause = self.nodes[n].deadline_cause;
        self.propagate(n, Error::DeadlineExceeded, vec![cause], d);
    }

    fn cancel(&mut self, n: usize, cause: CauseId) {
        if self.nodes[n].done.is_none() {
            self.propagate(n, Error::Canceled, vec![cause], None);
        }
    }

    /// Time moves to `to`, expiring deadlines in order (ancestors first on a tie).
    fn advance(&mut self, to: u64) {
        loop {
            let next = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].done.is_none())
                .filter_map(|i| self.nodes[i].own_deadline.filter(|&d| d <= to).map(|d| (d, i)))
                .min();
            let Some((d, i)) = next else { break };
            self.now = self.now.max(d);
            self.expire(i);
        }
        self.now = to;
    }
}

// ===== the system under test =====

#[derive(Debug)]
struct WrapMark(usize);
#[derive(Debug)]
struct ValueA(usize);
#[derive(Debug)]
struct ValueB(usize);

struct Custom {
    inner: Ctx,
    mark: WrapMark,
}

impl Forward for Custom {
    fn inner(&self) -> &Ctx {
        &self.inner
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        if key == TypeId::of::<WrapMark>() {
            return Some(&self.mark);
        }
        self.inner.value_any(key)
    }
}

/// How a foreign context was made done: its error, and its cause if it has one.
type Fired = (Error, Option<Cause>);

/// The done state of a foreign context, and the wakers of its `done()` futures.
#[derive(Default)]
struct Signal {
    state: Mutex<(Option<Fired>, Vec<Waker>)>,
}

impl Signal {
    fn fire(&self, err: Error, cause: Option<Cause>) {
        let wakers = {
            let mut g = self.state.lock().unwrap();
            g.0 = Some((err, cause));
            std::mem::take(&mut g.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

struct SignalDone(Arc<Signal>);

impl Future for SignalDone {
    type Output = Error;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let mut g = self.0.state.lock().unwrap();
        match &g.0 {
            Some((e, _)) => Poll::Ready(*e),
            None => {
                g.1.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A context that is not a `Ctx`: done when its signal fires. It answers values (and so the
/// clock) from `base`, and has no deadline. Its `done()` is re-polled on ctx-core's watcher
/// thread, or inline (`test_util::done_inline`: `Signal::fire` wakes after unlocking); always inline
/// under Miri, where a thread still running at exit is an error.
struct Foreign {
    base: Ctx,
    signal: Arc<Signal>,
    inline: bool,
}

impl Context for Foreign {
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn done(&self) -> Done {
        let done = SignalDone(self.signal.clone());
        if self.inline {
            ctx_core::test_util::done_inline(done)
        } else {
            Done::new(done)
        }
    }
    fn err(&self) -> Option<Error> {
        self.signal.state.lock().unwrap().0.as_ref().map(|s| s.0)
    }
    fn cause(&self) -> Option<Cause> {
        let g = self.signal.state.lock().unwrap();
        let (e, c) = g.0.as_ref()?;
        Some(c.clone().unwrap_or_else(|| Arc::new(*e)))
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.base.value_any(key)
    }
}

enum Handle {
    Plain(CancelHandle),
    Cause(CancelCauseHandle),
}

#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

struct Sut {
    clock: MockClock,
    origin: Instant,
    ctxs: Vec<Option<Ctx>>,
    handles: Vec<Vec<Handle>>,
    regs: Vec<(AfterFunc, Arc<AtomicUsize>)>,
    waits: Vec<(usize, Done, Arc<Flag>)>,
    causes: Vec<Cause>,
    /// The signals of the foreign contexts, by node.
    signals: Vec<(usize, Arc<Signal>)>,
}

/// The end of a case, on every path: registrations still pending are stopped. An after-func
/// keeps its context alive until it has run or been stopped (API.md), and a case may leave one
/// on a context that nothing can cancel any more (its handles disarmed, or a foreign context
/// never fired): that would be a leak of the test's own making, which Miri reports.
impl Drop for Sut {
    fn drop(&mut self) {
        for (registration, _) in &self.regs {
            registration.stop();
        }
    }
}

impl Sut {
    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    fn cause_id(&self, c: &Cause) -> Option<CauseId> {
        if let Some(i) = self.causes.iter().position(|k| Arc::ptr_eq(k, c)) {
            return Some(CauseId::Given(i));
        }
        if c.is::<HandleDropped>() {
            return Some(CauseId::Dropped);
        }
        c.downcast_ref::<Error>().map(|e| CauseId::Err(*e))
    }

    fn fresh_cause(&mut self) -> (Cause, CauseId) {
        let c: Cause = Arc::new(std::io::Error::other(format!("cause #{}", self.causes.len())));
        self.causes.push(c.clone());
        (c, CauseId::Given(self.causes.len() - 1))
    }
}

// ===== one case =====

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($arg)+)));
        }
    };
}

fn pick(index: &Index, candidates: &[usize]) -> Option<usize> {
    (!candidates.is_empty()).then(|| candidates[index.index(candidates.len())])
}

fn run_case(ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = MockClock::new();
    let origin = clock.now();
    let mut sut = Sut {
        origin,
        ctxs: vec![Some(clock.background())],
        clock,
        handles: vec![Vec::new()],
        regs: Vec::new(),
        waits: Vec::new(),
        causes: Vec::new(),
        signals: Vec::new(),
    };
    let mut model = Model::default();
    model.nodes.push(MNode {
        parent: None,
        kind: MKind::Root,
        canceler: None,
        deadline: None,
        own_deadline: None,
        deadline_cause: CauseId::Err(Error::DeadlineExceeded),
        done: None,
        children: Vec::new(),
        handles: 0,
        values: [None; 3],
    });

    for (step, op) in ops.iter().enumerate() {
        let held: Vec<usize> = (0..sut.ctxs.len()).filter(|&i| sut.ctxs[i].is_some()).collect();
        let with_handles: Vec<usize> = (0..sut.handles.len())
            .filter(|&i| !sut.handles[i].is_empty())
            .collect();
        match op {
            Op::Derive { parent, how } => {
                let Some(p) = pick(parent, &held) else { continue };
                derive(&mut sut, &mut model, p, how);
            }
            Op::Cancel { node } => {
                let Some(n) = pick(node, &with_handles) else {
                    continue;
                };
                match sut.handles[n].last().unwrap() {
                    Handle::Plain(h) => h.cancel(),
                    Handle::Cause(h) => h.cancel_without_cause(),
                }
                model.cancel(n, CauseId::Err(Error::Canceled));
            }
            Op::CancelCause { node } => {
                let Some(n) = pick(node, &with_handles) else {
                    continue;
                };
                let (cause, id) = sut.fresh_cause();
                match sut.handles[n].last().unwrap() {
                    Handle::Plain(h) => {
                        h.cancel();
                        model.cancel(n, CauseId::Err(Error::Canceled));
                    }
                    Handle::Cause(h) => {
                        h.cancel(cause);
                        model.cancel(n, id);
                    }
                }
            }
            Op::CloneHandle { node } => {
                let Some(n) = pick(node, &with_handles) else {
                    continue;
                };
                let clone = match sut.handles[n].last().unwrap() {
                    Handle::Plain(h) => Handle::Plain(h.clone()),
                    Handle::Cause(h) => Handle::Cause(h.clone()),
                };
                sut.handles[n].push(clone);
                model.nodes[n].handles += 1;
            }
            Op::DropHandle { node } => {
                let Some(n) = pick(node, &with_handles) else {
                    continue;
                };
                drop(sut.handles[n].pop());
                model.nodes[n].handles -= 1;
                if model.nodes[n].handles == 0 {
                    model.cancel(n, CauseId::Dropped);
                }
            }
            Op::Disarm { node } => {
                let Some(n) = pick(node, &with_handles) else {
                    continue;
                };
                match sut.handles[n].pop().unwrap() {
                    Handle::Plain(h) => h.disarm(),
                    Handle::Cause(h) => h.disarm(),
                }
                model.nodes[n].handles -= 1;
            }
            Op::DropCtx { node } => {
                // Not the root. A foreign wrap may go too: its bridge (and what feeds it) lives
                // on as long as a context, `done()` or after-func derived from it does.
                let droppable: Vec<usize> = held.iter().copied().filter(|&i| i != 0).collect();
                let Some(n) = pick(node, &droppable) else { continue };
                sut.ctxs[n] = None;
            }
            Op::AfterFunc { node } => {
                let Some(n) = pick(node, &held) else { continue };
                let ran = Arc::new(AtomicUsize::new(0));
                let r = ran.clone();
                let stop = sut.ctxs[n].as_ref().unwrap().after_func(move || {
                    r.fetch_add(1, SeqCst);
                });
                sut.regs.push((stop, ran));
                let state = match model.nodes[n].canceler {
                    None => MReg::Never,
                    Some(c) if model.nodes[c].done.is_some() => MReg::Ran,
                    Some(c) => MReg::Pending(c),
                };
                model.regs.push((state, false));
            }
            Op::Stop { reg } => {
                let all: Vec<usize> = (0..sut.regs.len()).collect();
                let Some(r) = pick(reg, &all) else { continue };
                let got = sut.regs[r].0.stop();
                let (state, called) = &mut model.regs[r];
                let want = !*called && matches!(state, MReg::Never | MReg::Pending(_));
                *called = true;
                if matches!(state, MReg::Pending(_)) {
                    *state = MReg::Stopped;
                }
                ensure!(
                    got == want,
                    "step {step} {op:?}: stop() returned {got}, model says {want}"
                );
            }
            Op::PollDone { node } => {
                let Some(n) = pick(node, &held) else { continue };
                let flag = Arc::new(Flag::default());
                let mut done = sut.ctxs[n].as_ref().unwrap().done();
                let got = Pin::new(&mut done).poll(&mut TaskContext::from_waker(&Waker::from(flag.clone())));
                let want = model.state(n).map(|s| s.0);
                match got {
                    Poll::Ready(e) => ensure!(
                        Some(e) == want,
                        "step {step} {op:?}: done() ready with {e:?}, model says {want:?}"
                    ),
                    Poll::Pending => {
                        ensure!(
                            want.is_none(),
                            "step {step} {op:?}: done() pending, model says {want:?}"
                        );
                        sut.waits.push((n, done, flag));
                    }
                }
            }
            Op::Advance { ms } => {
                sut.clock.advance(Duration::from_millis(u64::from(*ms)));
                model.advance(model.now + u64::from(*ms));
            }
            Op::Repoll { wait } => {
                let all: Vec<usize> = (0..sut.waits.len()).collect();
                let Some(w) = pick(wait, &all) else { continue };
                let flag = Arc::new(Flag::default());
                let (n, done, old) = &mut sut.waits[w];
                let got = Pin::new(done).poll(&mut TaskContext::from_waker(&Waker::from(flag.clone())));
                let want = model.state(*n).map(|s| s.0);
                match got {
                    Poll::Ready(e) => ensure!(
                        Some(e) == want,
                        "step {step} {op:?}: ready with {e:?}, model says {want:?}"
                    ),
                    Poll::Pending => {
                        ensure!(want.is_none(), "step {step} {op:?}: pending, model says {want:?}");
                        *old = flag; // from now on only this waker may be woken
                    }
                }
            }
            Op::DropDone { wait } => {
                let all: Vec<usize> = (0..sut.waits.len()).collect();
                let Some(w) = pick(wait, &all) else { continue };
                drop(sut.waits.swap_remove(w));
            }
            Op::Fire {
                node,
                deadline,
                cause,
            } => {
                let unfired: Vec<usize> = (0..sut.signals.len())
                    .filter(|&i| model.nodes[sut.signals[i].0].done.is_none())
                    .collect();
                let Some(i) = pick(node, &unfired) else { continue };
                let err = if *deadline {
                    Error::DeadlineExceeded
                } else {
                    Error::Canceled
                };
                let (given, id) = if *cause {
                    let (c, id) = sut.fresh_cause();
                    (Some(c), id)
                } else {
                    (None, CauseId::Err(err))
                };
                let (n, signal) = sut.signals[i].clone();
                signal.fire(err, given);
                model.propagate(n, err, vec![id], None);
                // ctx-core re-polls a foreign done() on its watcher thread (unless inline):
                // waiters nobody polls are woken a moment later, so give it that moment before
                // comparing (a lost cancellation still fails, after ten seconds).
                let start = Instant::now();
                while !settled(&sut, &model) && start.elapsed() < Duration::from_secs(10) {
                    std::thread::yield_now();
                }
            }
            Op::Merge { a, b } => {
                let (Some(a), Some(b)) = (pick(a, &held), pick(b, &held)) else {
                    continue;
                };
                merge(&mut sut, &mut model, a, b);
            }
        }
        check(&mut sut, &model, step, op)?;
    }
    Ok(())
}

/// `a.with_merged(&b)`: a cancel node under `a` (values, chain) that `b` cancels too. Born done
/// with `a`'s answers, else `b`'s; its deadline is the earlier of the two, owned by neither.
fn merge(sut: &mut Sut, model: &mut Model, a: usize, b: usize) {
    let (ctx, handle) = {
        let (pa, pb) = (sut.ctxs[a].as_ref().unwrap(), sut.ctxs[b].as_ref().unwrap());
        pa.with_merged(pb)
    };
    let id = model.nodes.len();
    let (ma, mb) = (&model.nodes[a], &model.nodes[b]);
    let deadline = match (ma.deadline, mb.deadline) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let values = ma.values;
    let born = [ma.canceler, mb.canceler]
        .into_iter()
        .flatten()
        .find_map(|c| model.nodes[c].done.clone());
    model.nodes[a].children.push(id);
    if b != a {
        model.nodes[b].children.push(id);
    }
    model.merged.push((id, b));
    model.nodes.push(MNode {
        parent: Some(a),
        kind: MKind::Cancel,
        canceler: Some(id),
        deadline,
        own_deadline: None,
        deadline_cause: CauseId::Err(Error::DeadlineExceeded),
        done: born,
        children: Vec::new(),
        handles: 1,
        values,
    });
    sut.ctxs.push(Some(ctx));
    sut.handles.push(vec![Handle::Plain(handle)]);
}

fn derive(sut: &mut Sut, model: &mut Model, p: usize, how: &Derive) {
    let parent = sut.ctxs[p].clone().unwrap();
    let id = model.nodes.len();
    let pm = &model.nodes[p];
    let (p_deadline, p_canceler, mut values) = (pm.deadline, pm.canceler, pm.values);
    let now = model.now;
    let mut cause_of_deadline = CauseId::Err(Error::DeadlineExceeded);
    let mut at = None;
    let (ctx, handle, kind) = match how {
        Derive::Cancel => {
            let (c, h) = parent.with_cancel();
            (c, Some(Handle::Plain(h)), MKind::Cancel)
        }
        Derive::CancelCause => {
            let (c, h) = parent.with_cancel_cause();
            (c, Some(Handle::Cause(h)), MKind::Cancel)
        }
        Derive::Deadline { at: a } | Derive::Timeout { ms: a } => {
            let t = if matches!(how, Derive::Deadline { .. }) {
                u64::from(*a)
            } else {
                now + u64::from(*a)
            };
            at = Some(t);
            let (c, h) = parent.with_deadline(sut.at(t));
            (c, Some(Handle::Plain(h)), MKind::Cancel)
        }
        Derive::DeadlineCause { at: a } | Derive::TimeoutCause { ms: a } => {
            let t = if matches!(how, Derive::DeadlineCause { .. }) {
                u64::from(*a)
            } else {
                now + u64::from(*a)
            };
            at = Some(t);
            let (cause, cid) = sut.fresh_cause();
            cause_of_deadline = cid;
            let (c, h) = if matches!(how, Derive::DeadlineCause { .. }) {
                parent.with_deadline_cause(sut.at(t), cause)
            } else {
                parent.with_timeout_cause(Duration::from_millis(u64::from(*a)), cause)
            };
            (c, Some(Handle::Plain(h)), MKind::Cancel)
        }
        Derive::ValueA => {
            values[0] = Some(id);
            (parent.with_value(ValueA(id)), None, MKind::Value)
        }
        Derive::ValueB => {
            values[1] = Some(id);
            (parent.with_value(ValueB(id)), None, MKind::Value)
        }
        Derive::WithoutCancel => (parent.without_cancel(), None, MKind::WithoutCancel),
        Derive::Wrap => {
            values[2] = Some(id);
            let custom = Custom {
                inner: parent.clone(),
                mark: WrapMark(id),
            };
            (Ctx::wrap(custom), None, MKind::Wrap)
        }
        Derive::Foreign => {
            let signal = Arc::new(Signal::default());
            sut.signals.push((id, signal.clone()));
            let foreign = Foreign {
                base: parent.clone(),
                signal,
                inline: cfg!(miri) || id.is_multiple_of(2),
            };
            (Ctx::wrap(foreign), None, MKind::Foreign)
        }
    };
    // Go: a deadline later than the parent's is the parent's (a plain cancel child).
    let own_deadline = at.filter(|&t| p_deadline.is_none_or(|pd| t <= pd));
    let deadline = match kind {
        MKind::WithoutCancel | MKind::Foreign => None,
        _ => match (p_deadline, own_deadline) {
            (Some(pd), Some(o)) => Some(pd.min(o)),
            (pd, o) => pd.or(o),
        },
    };
    let canceler = match kind {
        MKind::Cancel | MKind::Foreign => Some(id),
        MKind::Value | MKind::Wrap => p_canceler,
        _ => None,
    };
    if kind != MKind::Foreign {
        model.nodes[p].children.push(id); // a foreign context ignores its base's cancellation
    }
    model.nodes.push(MNode {
        parent: Some(p),
        kind,
        canceler,
        deadline,
        own_deadline,
        deadline_cause: if own_deadline.is_some() {
            cause_of_deadline
        } else {
            CauseId::Err(Error::DeadlineExceeded)
        },
        done: None,
        children: Vec::new(),
        handles: usize::from(handle.is_some()),
        values,
    });
    if kind == MKind::Cancel {
        // Born done: with the parent's answers, or by its own deadline.
        if let Some(state) = p_canceler.and_then(|c| model.nodes[c].done.clone()) {
            model.nodes[id].done = Some(state);
        } else if own_deadline.is_some_and(|d| d <= now) {
            model.expire(id);
        }
    }
    sut.ctxs.push(Some(ctx));
    sut.handles.push(handle.into_iter().collect());
}

/// Whether the system agrees with the model on what is done (without lasting side effects).
/// A foreign wrap's `err()` answers from the custom context at once, so its `done()` (which
/// waits on the node behind it, fed by the watcher) is polled too.
fn settled(sut: &Sut, model: &Model) -> bool {
    let bridges_done = sut.signals.iter().all(|(n, _)| {
        let Some(ctx) = &sut.ctxs[*n] else { return true };
        let ready = Pin::new(&mut ctx.done())
            .poll(&mut TaskContext::from_waker(Waker::noop()))
            .is_ready();
        ready == model.state(*n).is_some()
    });
    bridges_done
        && sut
            .waits
            .iter()
            .all(|(n, _, flag)| flag.0.load(SeqCst) == model.state(*n).is_some())
        && sut
            .regs
            .iter()
            .zip(&model.regs)
            .all(|((_, ran), (state, _))| ran.load(SeqCst) == usize::from(*state == MReg::Ran))
        && sut.ctxs.iter().enumerate().all(|(n, ctx)| {
            ctx.as_ref()
                .is_none_or(|c| c.err() == model.state(n).map(|s| s.0))
        })
}

fn check(sut: &mut Sut, model: &Model, step: usize, op: &Op) -> Result<(), TestCaseError> {
    // Wake-ups and after-funcs first: before any `err()` call could expire a deadline lazily,
    // so a timer that failed to fire is caught.
    for (n, _, flag) in &sut.waits {
        let want = model.state(*n).is_some();
        let woken = flag.0.load(SeqCst);
        ensure!(
            woken == want,
            "step {step} {op:?}: waiter on node {n} woken={woken}, model says done={want}"
        );
    }
    for (r, ((_, ran), (state, _))) in sut.regs.iter().zip(&model.regs).enumerate() {
        let ran = ran.load(SeqCst);
        let want = usize::from(*state == MReg::Ran);
        ensure!(
            ran == want,
            "step {step} {op:?}: after-func #{r} ran {ran} times, model says {want} ({state:?})"
        );
    }
    for (n, ctx) in sut.ctxs.iter().enumerate() {
        let Some(ctx) = ctx else { continue };
        let m = &model.nodes[n];
        let want = model.state(n);
        let err = ctx.err();
        ensure!(
            err == want.map(|s| s.0),
            "step {step} {op:?}: node {n} err() = {err:?}, model says {want:?}"
        );
        let cause = ctx.cause();
        match (cause, want) {
            (None, None) => {}
            (Some(c), Some((_, causes))) => {
                let id = sut.cause_id(&c);
                ensure!(
                    id.is_some_and(|id| causes.contains(&id)),
                    "step {step} {op:?}: node {n} cause() = {id:?} ({c}), model says one of {causes:?}"
                );
            }
            (c, w) => ensure!(
                false,
                "step {step} {op:?}: node {n} cause() = {c:?}, model says {w:?}"
            ),
        }
        let deadline = ctx.deadline();
        ensure!(
            deadline == m.deadline.map(|d| sut.at(d)),
            "step {step} {op:?}: node {n} deadline() = {deadline:?}, model says {:?} ms",
            m.deadline
        );
        let values = [
            ctx.value::<ValueA>().map(|v| v.0),
            ctx.value::<ValueB>().map(|v| v.0),
            ctx.value::<WrapMark>().map(|v| v.0),
        ];
        ensure!(
            values == m.values,
            "step {step} {op:?}: node {n} values {values:?}, model says {:?}",
            m.values
        );
    }
    // Waiters on done contexts answer with the model's error when polled again.
    for (n, done, _) in &mut sut.waits {
        if let Some((e, _)) = model.state(*n) {
            let got = Pin::new(done).poll(&mut TaskContext::from_waker(Waker::noop()));
            ensure!(
                got == Poll::Ready(*e),
                "step {step} {op:?}: woken waiter on node {n} polls {got:?}, model says {e:?}"
            );
        }
    }
    Ok(())
}

// ===== the properties =====

fn cases() -> u32 {
    if cfg!(miri) {
        return 2;
    }
    std::env::var("CTX_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
}

/// Longest sequence of operations in one case (exclusive).
const MAX_OPS: usize = if cfg!(miri) { 20 } else { 48 };

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Cancels, causes, handles, after-funcs and values, with a little time.
    #[test]
    fn every_step_matches_the_go_model(ops in prop::collection::vec(op_strategy(2), 1..MAX_OPS)) {
        run_case(&ops)?;
    }

    /// Deadlines and the clock: more time steps, more deadline derivations.
    #[test]
    fn every_step_matches_the_go_model_as_time_passes(ops in prop::collection::vec(op_strategy(8), 1..MAX_OPS)) {
        run_case(&ops)?;
    }
}
