//! Deadlines that move: the nodes behind `Ctx::with_grace` (done a grace period after its
//! parent is done, with the parent's outcome) and `Ctx::with_idle_timeout` (done once its
//! deadline, pushed later by every `touch()`, passes). Both are ordinary cancel nodes with a
//! [`Moving`] in their cold part; what the rest of the engine asks of them is here: building
//! them, the lazy check (`poll`), the grace period's start (`start_grace`), their one timer
//! (`arm`) and `touch`. Invariants 18 and 19 of `tree/mod.rs`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::attach::attach;
use super::cancel::propagate;
use super::deadline::{arm_timer, err, install_timer};
use super::node::{CancelNode, Cold, Extra, Kind, Node, NodeRef, ThinCause};
use super::state::Outcome;
use super::trace::{self, Site};
use crate::Error;
use crate::loom::{AtomicU64, Mutex, Ordering, lock};

/// Which deadline moves, and by how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Span {
    /// `with_grace`: done this long after the parent is done.
    Grace(Duration),
    /// `with_idle_timeout`: done once this long passes with no `touch()`.
    Idle(Duration),
}

/// Set in the deadline word once its passing has been decided (invariant 18): never cleared,
/// and above every deadline, so `fetch_max` never moves a sealed word.
const SEALED: u64 = 1 << 63;
/// The word of "no deadline": the largest one that is not sealed.
const NEVER: u64 = SEALED - 1;

/// A deadline that moves (see the module doc), in a node's cold part (`Extra::Moving`).
pub(crate) struct Moving {
    /// Set once at creation.
    span: Span,
    /// The clock's reading at creation: the word counts from here. Set once.
    base: Instant,
    /// The deadline, in nanoseconds after `base` (`NEVER`: none), plus `SEALED` once its
    /// passing is decided. Idle: raised by `touch` (`fetch_max`, no lock), sealed by the one
    /// who finds it passed (a compare-exchange: invariant 18). Grace: the parent's deadline
    /// plus the grace period until the parent is done, then stored once by `start_grace`
    /// (invariant 19).
    word: AtomicU64,
    /// Grace: the parent's error and cause, set once, by `start_grace`, before the word it
    /// stores; `None` until then. Idle: always `None`.
    pending: Mutex<Option<(Error, Option<ThinCause>)>>,
}

impl Moving {
    fn new(span: Span, base: Instant, deadline: Option<Instant>) -> Moving {
        let m = Moving {
            span,
            base,
            word: AtomicU64::new(NEVER),
            pending: Mutex::new(None),
        };
        m.word.store(m.encode(deadline), Ordering::Relaxed);
        m
    }

    /// The word of `deadline`: nanoseconds after `base` (an instant before it counts as
    /// `base`), `NEVER` for none or one too far away to count.
    #[inline]
    fn encode(&self, deadline: Option<Instant>) -> u64 {
        match deadline {
            None => NEVER,
            Some(d) => {
                let n = d.saturating_duration_since(self.base).as_nanos();
                u64::try_from(n).map_or(NEVER, |n| n.min(NEVER))
            }
        }
    }

    #[inline]
    fn decode(&self, word: u64) -> Option<Instant> {
        match word & !SEALED {
            NEVER => None,
            n => self.base.checked_add(Duration::from_nanos(n)),
        }
    }

    /// The deadline now (sealed or not).
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.decode(self.word.load(Ordering::Acquire))
    }

    /// Moves the deadline to `deadline` if that is later and the word is not sealed. `true` if
    /// it moved. One `fetch_max`: no lock, no allocation (invariant 18).
    #[inline]
    pub(crate) fn push(&self, deadline: Option<Instant>) -> bool {
        let w = self.encode(deadline);
        // A sealed word is above every `w`: it stays sealed.
        self.word.fetch_max(w, Ordering::AcqRel) < w
    }

    /// Decides whether the deadline has passed at `now`, sealing the word if it has. `true` if
    /// it is sealed (by this call or before): from then on no `push` moves it, and whoever
    /// sees it sealed may end the node (invariant 18).
    pub(crate) fn seal_if_passed(&self, now: Instant) -> bool {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if w & SEALED != 0 {
                return true;
            }
            match self.decode(w) {
                Some(d) if d <= now => {}
                _ => return false,
            }
            // Fails if a `push` came in between: look again at the later deadline.
            match self
                .word
                .compare_exchange_weak(w, w | SEALED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now_word) => w = now_word,
            }
        }
    }

    /// A grace node's (not an idle node's).
    #[inline]
    pub(super) fn is_grace(&self) -> bool {
        matches!(self.span, Span::Grace(_))
    }

    /// Grace: the parent's outcome, once the grace period has started.
    fn pending(&self) -> Option<(Error, Option<ThinCause>)> {
        lock(&self.pending).clone()
    }
}

/// A grace node (as opposed to an idle one or any other cancel node).
#[inline]
pub(super) fn is_grace(c: &CancelNode) -> bool {
    c.moving().is_some_and(Moving::is_grace)
}

// ===== building =====

/// `parent.with_grace(grace)` (without its handle): a cancel node whose values and name come
/// from `parent`, attached to `parent`'s canceler so that the walk ending `parent` reaches it,
/// but which that walk does not end: it starts the grace period (invariant 19). `deadline` is
/// the parent's (`ctx_deadline`), read by the caller.
#[cfg_attr(feature = "tracing", track_caller)]
pub(crate) fn derive_grace(parent: &NodeRef, grace: Duration, deadline: Option<Instant>) -> Arc<Node> {
    let clock = parent.clock();
    let moving = Moving::new(
        Span::Grace(grace),
        clock.now(),
        deadline.and_then(|d| d.checked_add(grace)),
    );
    let cold = Cold {
        extra: Some(Box::new(Extra::Moving(moving))),
        ..Cold::default()
    };
    // Never `UNDER_FOREIGN`: its parent is not its canceler (invariant 19).
    let node = Node::new(
        Some(parent),
        Kind::Cancel(CancelNode::new(None, false, false, Some(Box::new(cold)))),
    );
    if let Some(src) = parent.source() {
        // A parent whose deadline passed unobserved, or a bridge that lags, ends now, so that
        // the grace period starts from this call rather than from whenever somebody looks.
        err(src);
        // Born under a done parent: `attach_to` starts the grace period now.
        attach(&node, false);
        // The parent's end must be noticed even if nobody waits on it: its deadline timer is
        // armed now (shared with its other waiters, invariant 14). `src` is busy: this node is
        // attached there, or it is done and arms nothing.
        if src.deadline().is_some() && src.cancel_node().is_open() {
            arm_timer(src);
        }
    }
    node
}

/// `parent.with_idle_timeout(d)` (without its handle): an ordinary child of `parent` whose
/// deadline is also the last touch plus `d`. Its timer is armed at once (invariant 18).
#[cfg_attr(feature = "tracing", track_caller)]
pub(crate) fn derive_idle(parent: &NodeRef, d: Duration) -> Arc<Node> {
    let clock = parent.clock();
    let now = clock.now();
    let cold = Cold {
        // The parent's deadline (it never moves) is this node's own part, as for any child.
        deadline: parent.deadline(),
        extra: Some(Box::new(Extra::Moving(Moving::new(
            Span::Idle(d),
            now,
            now.checked_add(d),
        )))),
        ..Cold::default()
    };
    let under_foreign = parent
        .source()
        .is_some_and(|s| s.cancel_node().leads_to_foreign()); // invariant 16
    let cancel = CancelNode::new(None, false, under_foreign, Some(Box::new(cold)));
    let node = Node::new(Some(parent), Kind::Cancel(cancel));
    attach(&node, true);
    let c = node.cancel_node();
    if c.is_open()
        && let Some(m) = c.moving()
        && !poll(&node, m)
    {
        arm(&node);
    }
    node
}

// ===== ending =====

/// The lazy check of an open moving node (`err()`, a cancel, a walk's climb, its timer): ends
/// it if its deadline has passed. `true` if it is done now.
pub(super) fn poll(node: &Arc<Node>, m: &Moving) -> bool {
    let now = node.clock().now();
    let outcome = match m.span {
        Span::Idle(_) => {
            if !m.seal_if_passed(now) {
                return false;
            }
            (Error::DeadlineExceeded, None)
        }
        Span::Grace(_) => {
            if m.deadline().is_none_or(|d| now < d) {
                return false;
            }
            let mut pending = m.pending();
            if pending.is_none() {
                // Not started, though the parent's deadline plus the grace period has passed:
                // the parent ended unobserved. Asking it ends it now, and its walk starts (or
                // ends) this grace period (invariant 19).
                if let Some(p) = node.parent().get().and_then(NodeRef::source) {
                    err(p);
                }
                if !node.cancel_node().is_open() {
                    return true;
                }
                if m.deadline().is_none_or(|d| now < d) {
                    return false;
                }
                pending = m.pending();
            }
            let Some(outcome) = pending else {
                return false;
            };
            outcome
        }
    };
    let (err, cause) = outcome;
    if let Some(descendants) = propagate(node, err, cause) {
        trace::canceled(node, err, Site::CREATED, descendants);
    }
    true
}

/// The parent of the grace node `node` is done with `err` and `cause`: records them and
/// starts the grace period — from the parent's deadline if that is what ended it (noticed
/// late, the period still counts from there), from now if the parent was canceled or was
/// done before this node was made (`born`). Returns the outcome if the period is over already
/// (zero, or elapsed while nobody looked): the caller ends `node` with it now, in the same
/// propagation. Else arms the node's timer. Call with no lock held (invariant 19).
pub(super) fn start_grace(
    node: &Arc<Node>,
    err: Error,
    cause: Option<ThinCause>,
    born: bool,
) -> Option<Outcome> {
    let m = node.cancel_node().moving()?;
    let Span::Grace(grace) = m.span else {
        return None;
    };
    let now = node.clock().now();
    let start = match node.parent().get().and_then(NodeRef::deadline) {
        Some(d) if !born && err == Error::DeadlineExceeded && d <= now => d,
        _ => now,
    };
    let end = start.checked_add(grace);
    *lock(&m.pending) = Some((err, cause.clone()));
    m.word.store(m.encode(end), Ordering::Release);
    if end.is_some_and(|e| e <= now) {
        return Some(Outcome { err, cause });
    }
    if end.is_some() {
        arm(node);
    }
    None
}

/// Arms the one timer of a moving node: an idle node's at its birth, a grace node's when its
/// period starts. When it fires it re-reads the deadline and sleeps again if a `touch()` moved
/// it (so `touch` re-arms nothing); it holds its node weakly and ends with it.
fn arm(node: &Arc<Node>) {
    let weak = Arc::downgrade(node);
    // Owned: the future may outlive every node of the tree (invariant 12).
    let clock = node.clock().to_shared();
    let fut = async move {
        loop {
            let d = {
                let Some(node) = weak.upgrade() else { return };
                let c = node.cancel_node();
                match c.moving().and_then(Moving::deadline) {
                    Some(d) if c.is_open() => d,
                    _ => return,
                }
            };
            // Never early: sleep again if the timer woke before the clock reached `d`.
            if clock.now() < d {
                clock.get().sleep_until(d).await;
                continue;
            }
            let Some(node) = weak.upgrade() else { return };
            let _via = crate::pool::Via::enter(clock.clone());
            let c = node.cancel_node();
            match c.moving() {
                Some(m) if c.is_open() => {
                    if poll(&node, m) {
                        return;
                    }
                }
                _ => return,
            }
            // Touched meanwhile: sleep until the later deadline.
        }
    };
    install_timer(node, fut);
}

// ===== touching, reading =====

/// `IdleHandle::touch`: the deadline moves to now plus the idle timeout. No lock, no
/// allocation, no timer: one clock read and one `fetch_max` (invariant 18). Nothing once the
/// node is done.
#[inline]
pub(crate) fn touch(node: &Arc<Node>) {
    let c = node.cancel_node();
    let Some(m) = c.moving() else { return };
    let Span::Idle(d) = m.span else { return };
    if c.is_open() {
        m.push(node.clock().now().checked_add(d));
    }
}

/// `Ctx::deadline`: the node's deadline, with the moving deadlines above it (a node below a
/// moving one cannot keep a copy: it would go stale). One more atomic load than
/// `NodeRef::deadline` unless the node's canceler is moving or below one.
#[inline]
pub(crate) fn ctx_deadline(node: &NodeRef) -> Option<Instant> {
    let d = node.deadline();
    match node.source() {
        Some(s) if s.cancel_node().is_under_foreign() || s.cancel_node().moving().is_some() => {
            moving_deadline(s, d)
        }
        _ => d,
    }
}

/// `ctx_deadline` of a node below (or at) a moving canceler `src`: the earliest of `d` and the
/// moving deadlines of the cancelers above, climbed as invariant 16 climbs them (through both
/// parents of a merge; a grace node is not `UNDER_FOREIGN`, so the climb stops there).
#[cold]
fn moving_deadline(src: &Arc<Node>, mut d: Option<Instant>) -> Option<Instant> {
    let mut stack: smallvec::SmallVec<[&Arc<Node>; 4]> = smallvec::smallvec![src]; // no allocation
    while let Some(cur) = stack.pop() {
        let c = cur.cancel_node();
        if let Some(m) = c.moving() {
            d = match (d, m.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if c.is_under_foreign() {
            let parents = [cur.parent().get(), c.merged_with()];
            stack.extend(parents.into_iter().flatten().filter_map(NodeRef::source));
        }
    }
    d
}

/// The link of a moving node in `Display`: `.WithGrace(30s)`, `.WithIdleTimeout(1m)`.
pub(super) fn write_link(f: &mut fmt::Formatter<'_>, m: &Moving) -> fmt::Result {
    match m.span {
        Span::Grace(g) => write!(f, ".WithGrace({g:?})"),
        Span::Idle(d) => write!(f, ".WithIdleTimeout({d:?})"),
    }
}
