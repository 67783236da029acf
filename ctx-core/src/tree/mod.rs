//! The engine: nodes of the context tree and how cancellation flows through them.
//!
//! A [`Ctx`](crate::Ctx) is an `Arc` of a node: a `NodeRef`, which points at a `Node` or at a
//! `ValueNode` (`with_value`; a type of its own, so that it is smaller than a cancel node).
//! Only *cancel nodes* (`with_cancel*`, `with_deadline*`, `with_timeout*`, and the *bridge*
//! behind a `Ctx::wrap`, see [`Bridge`](node::Bridge)) can become done; every other node
//! (`with_value`, `wrap`) points at the nearest cancel node above it, its *source*, and answers
//! `err()`/`done()` from there. `without_cancel` and the roots have no source: they are never
//! done.
//!
//! A cancel node registers in the children slab of its parent's source (its *canceler*) and
//! keeps only its slot number. The canceler holds children weakly, so a child
//! that is dropped un-canceled frees itself and removes its slot (nothing leaks, unlike Go); a
//! child holds its parent strongly, so a parent outlives its children and never has to adopt
//! grandchildren. (Children of the process-wide `background()`/`todo()` hold nothing: that
//! root has no values, never ends and is never dropped.) A child of a parent that is already
//! done is built done and never registers.
//!
//! A merged node (`with_merged`) is a cancel node registered with the cancelers of both its
//! parents, keeping two slots (invariant 9, `tree/merge.rs`).
//!
//! The engine names nothing of the layers above it (see the top of `lib.rs`): it takes and
//! returns `NodeRef`s and `Arc<Node>`s, which the handle wraps, and keeps a foreign context as
//! a [`Foreign`], its own small trait of what it asks of such a context.
//!
//! # Files
//!
//! In layers, read from the top: each file imports only from its own layer or the ones above
//! (`tests/layering.rs` holds the code to the list below `# Deadlines`). Each cites the
//! invariants below by number.
//!
//! 1. Leaves, which know nothing of nodes. `arc.rs`: the engine's own `Arc` and `Weak` (std's,
//!    without the read-modify-writes of the second owner and of the parent's `Weak` at birth,
//!    nor the weak count's at the end; its `unsafe` argued in that file alone). `entries.rs`: the two slabs of what depends on an
//!    open cancel node (its children, one word each; its waiters and after-funcs), whose first
//!    two places are inline. `lock.rs`: `StateLock`, a lock in the two high bits of a cancel
//!    node's state word, guarding what depends on the node (taking it can set a flag of the word
//!    in the same change, and the unlock publish what changed; its `unsafe` argued in that file
//!    alone). `first.rs`: `FirstChild`, a cancel node's first plain child in one atomic word
//!    outside the lock (invariant 25), and once the node is done its `Spent` (invariant 26; its
//!    `unsafe` argued in that file alone). `packed.rs`: `Packed`, one of nothing, three one-word owners or a
//!    `Waker` in two words (what a cancel node's lock guards; its `unsafe` argued in that file
//!    alone). `spent.rs`: `Spent`, the wakers a cancel woke by reference, kept for their
//!    `Done`s (invariant 26; its `unsafe` argued in that file alone). `thin.rs`: `ThinArc`, a header and a value of any type in one
//!    allocation behind one word (a value node's; its `unsafe` argued in that file alone).
//!    `word.rs`: the atomic words — a cancel
//!    node's state word (open, or done and how, and its flags), its slot (`Slot`, `AtomicSlot`),
//!    a merged node's second slot (`SecondSlot`), and a deadline that moves (`Moving`).
//! 2. `node.rs`, the layout: every type a node is made of, with accessors and no behaviour. A
//!    cancel node keeps what every one needs inline, in 88 bytes with the `Arc`'s counts (its
//!    state word with its lock, handle count, slot, and a deadline of its own: `Timing`); what only
//!    some need is in `Fixed` (boxed in `Timing`), set at creation, and `Dependents`,
//!    allocated under the lock when the first child, waiter, after-func, timer or feed
//!    arrives. Value nodes (`ValueNode`, its value after it in one allocation: 64 bytes with
//!    a `u64`), wraps (`WrapNode`), what the engine asks of a foreign context (`Foreign`),
//!    bridges (`Bridge`, `Feed`), merges (`Merge`).
//! 3. `state.rs`: every `CancelNode` method — building one, reading its word and fixed part,
//!    and changing the word (`mark`, `lock_for_dependents`, the lock-free cancels of invariants
//!    10 and 11).
//! 4. What works on one node at a time, with at most its own lock. `slots.rs`: inserting,
//!    finding and removing entries, and leaving a canceler (both of a merged node's).
//!    `foreign_calls.rs`: asking a foreign context for its outcome (a panic contained), and
//!    dropping one on a trampoline. `name.rs`: a context's name (`Display`).
//! 5. `walk.rs`: the cancel walk (`walk`), which marks a subtree done in a loop over the nodes
//!    it reached and then wakes its waiters and hands back its after-funcs (`Afters`); the relays and grace
//!    nodes it meets it collects for its caller. `teardown.rs`: dropping a node (`Drop`, and
//!    `unlink`, without recursion). `trace.rs`: the `tracing` feature's event for a context
//!    canceled for its own reason.
//! 6. `end.rs`: how a node ends other than by a handle, in one file because these call one
//!    another in a circle. `propagate` (a walk, then its relays and grace periods, then the
//!    after-funcs), the lazy checks of `err()` (a deadline, a moving deadline, a bridge, the
//!    bridges and moving deadlines above), `expire`, and the timers (`arm_timer` on a
//!    deadline's owner, `arm_moving_timer`): a timer expires a node, whose propagation may start
//!    a grace period, which arms a timer.
//! 7. `attach.rs`: attaching a new cancel node to its canceler, or making it born done.
//! 8. What the handle calls to build and end nodes. `cancel.rs`: an explicit cancel, and
//!    registering waiters and after-funcs. `derive.rs`: roots and the `with_*` children.
//!    `foreign.rs`: the wrap node and its bridge (a relay, or fed by a `Feed`); what to build
//!    for a given foreign context is `wrap.rs`'s, above the engine. `merge.rs`: merged nodes
//!    (`with_merged`). `moving.rs`: deadlines that move (`with_grace`, `with_idle_timeout`),
//!    and `touch`.
//! 9. `observe.rs`: what the handle reads — `err`, `cause`, `deadline` (with the moving
//!    deadlines above), values.
//!
//! # Invariants
//!
//! 1. No path holds two of these locks at once: attach locks only the canceler (the child's
//!    slot is an atomic), a cancel locks one node at a time as it walks down, and a detach
//!    locks only the canceler. So there is no lock order to get wrong.
//! 2. The state leaves `OPEN` once, and `cause` is set with it: under the node's lock (the
//!    lock lives in the state word's two high bits, `lock.rs`; `cause` in the same critical
//!    section; a node with dependents is marked by the unlock's own change of the word, any
//!    other by a compare-exchange, since a lock-free cancel may race it, invariant 10), or by
//!    the lock-free cancel of invariant 10, which gives no cause (or the `DROPPED` flag that
//!    stands for one, invariant 17). After that neither changes. `err()` reads the state
//!    without the lock (Acquire pairs with the Release of the unlock or the compare-exchange),
//!    and a reader of `cause` takes the lock, so `cause` is visible to anyone who saw the
//!    state.
//! 3. A node that is done never gains children, waiters, after-funcs, a timer or a feed: every
//!    insertion checks the state as it takes the lock (`lock_for_dependents`, invariant 10). So the slot
//!    numbers of a done node's (taken) slab are never reused, and a late `remove` can tell from the
//!    state that there is nothing to remove.
//! 4. A child's `slot` is set under its canceler's lock, or before it publishes itself in the
//!    canceler's first-child word (invariant 25) — before anyone can reach the child — and
//!    taken (read and reset) only by whoever marks the child done — its own cancel, or a cancel
//!    walking down from above; the one whose compare-exchange changed the state (invariants 2
//!    and 10) — or by its drop, which owns it outright. The slot in the canceler is removed only
//!    by the one who took it.
//! 5. Wakers are woken, after-funcs run, timers and nodes dropped only after every lock is
//!    released: they are collected into local lists first. A waker is cloned before the lock
//!    is taken (`register_waker`) and compared under it only by its two words: no waker code
//!    runs under a lock (test: `hostile.rs`, a waker whose clone uses its context).
//! 6. Cancellation walks the subtree in a loop over a list of the nodes reached (relays found on the way are
//!    resolved afterwards, in a loop), dropping a chain unlinks parents in a loop, and a wrap's
//!    foreign context is dropped on a thread-local trampoline: nothing recurses over the depth
//!    of the tree, wraps included.
//! 7. A node with pending after-funcs holds a strong reference to itself (`keep_alive`) until
//!    they have run or been stopped, so it stays attached even with no `Ctx` left.
//! 8. No user code runs between the first and the last state change of a walk: a user's clock
//!    is read before it (a clock that reads `Instant::now()` — the system clock, or one that
//!    says so, `Clock::is_instant_now`, asked once when its root was made — is read as
//!    `Instant::now()`, which is no user code, when a deadline is first met: a walk that meets
//!    none reads no clock), and a relay's foreign context is asked after it.
//!    A panic in user code therefore never leaves a subtree half-canceled.
//! 9. A merged node (`with_merged`) is a child in two cancelers' children slabs. Its first slot
//!    follows invariant 4; its second (`merge.rs`) is reachable from the first canceler while
//!    it is being set, so it is set and taken with atomic read-modify-writes instead of a lock:
//!    whoever marks the node done, or drops it, swaps in `GONE` and removes the slot it got
//!    (after every lock is released); an attach that finds `GONE` removes its own entry.
//! 10. A node that nothing has ever depended on is canceled without its lock. Its state word
//!     carries `HAS_DEPENDENTS`, set by `lock_for_dependents` in the compare-exchange that takes
//!     the lock (the lock is in the same word) before the node first gains anything in its
//!     dependents part (a child, a waiter, an after-func, a timer, a feed), and never cleared. A
//!     cancel with no cause of a node whose word lacks `HAS_DEPENDENTS` marks it with one
//!     compare-exchange (`finish_lock_free`), which does not wait for the lock (it keeps the
//!     lock's bits); the locking compare-exchange reads whether the node was still open. One of
//!     the two goes first: if the cancel, `lock_for_dependents` sees the node done, sets no flag
//!     and nothing is added (invariant 3); if `lock_for_dependents`, the cancel's
//!     compare-exchange fails and it takes the lock, where it finds what was added. So nothing is added to a done node and nothing added is missed. Once
//!     `HAS_DEPENDENTS`, a node is marked only under its lock. A cancel walk marks each node it
//!     reaches that way too when it carries no cause (a leaf: the usual child of a wide parent,
//!     the end of a chain), taking its slots as the locked mark does. Model: `loom_lockfree`.
//! 11. A cancel node built by `derive_cancel`'s fast paths (a child of a root, with no deadline
//!     or with one of its own that the caller's clock reading shows ahead) carries `STANDALONE`
//!     in its state word from birth, never cleared: it has no second parent, bridge or moving
//!     deadline, never attaches (its parent has no source), so it never has a slot, and it is
//!     born open. So a standalone node whose word lacks `HAS_DEPENDENTS` (invariant 10) has
//!     nothing to give back: without a deadline (no `NEEDS_CHECK`) its cancel is the
//!     compare-exchange of invariant 10 alone (`cancel_standalone`, nothing to leave); with one,
//!     its only check (`NEEDS_CHECK` means nothing else on a standalone node), the same
//!     exchange follows a coarse reading of the system clock that proves the deadline still
//!     ahead (`cancel_timed`; on a clock that reads `Instant::now()`, invariant 8: a user's or a
//!     paused runtime's clock proves nothing), and any other reading sends it to the general path, which reads
//!     the clock in full and may expire it instead; and its drop tests the word and returns
//!     (`has_nothing_to_release`; the drop owns the node, and `HAS_DEPENDENTS` was set before
//!     any dependents part existed). Any other word takes the general paths, which look again.
//!     Model: `loom_lockfree`.
//! 12. A node's clock (`Node::clock`, `ValueNode::clock`: a `NodeClock`, one word,
//!     `crate::clock`) is owned by the node itself — a root made with a clock, a wrap (the
//!     foreign context may be anything, and holds nothing of the wrapped tree for us) and a
//!     bridge (a cancel walk or a feed may keep it beyond its wrap, and a relay's clock need
//!     not be its parent's): `Node::owning` — or else is an uncounted copy of its parent's,
//!     which the node holds (`Node::new`, `ValueNode::new`; a merged node copies its first
//!     parent's; a child of the process-wide roots, which it does not hold, has the system
//!     clock: no pointer). The whole safety argument is in `clock.rs` (`mod shared`) and
//!     `node.rs` (`Parent::with_clock`, `clock_below`): `NodeClock` cannot be copied without `unsafe`, and both fields
//!     are private to `node.rs`, whose `take_parent` (the only way to give up the parent, used
//!     by `teardown.rs`) releases the copy before it gives up the parent. Whatever keeps a
//!     clock beyond the node it read it from takes a counted owner (`NodeClock::to_shared`):
//!     the timer future of `arm_timer` (it holds its node weakly), and `Ctx::wrap` (while it
//!     still borrows the wrapped context).
//! 13. A cancel wakes every waiter of the subtree it ends — the nodes of its walk and of every
//!     relay resolved after it — before it runs any of their after-funcs (`propagate` collects
//!     them in `Afters` and runs them last). So an after-func that blocks until those waiters
//!     have acted (a shutdown drain) stalls nothing but itself. This holds for every way a node
//!     ends: a handle, a timer, `MockClock::advance`, a lazy expiry, a foreign `done()`.
//! 14. A node marked `TIMED` has a deadline whose timer is armed, or being armed, on the node
//!     that owns it (the owner itself is marked before it arms; every node `arm_timer` climbs
//!     through on its way there is marked too, and all share that deadline). So `arm_timer`
//!     stops at the first `TIMED` node: the timer it would arm exists or is on its way, and
//!     stays until the owner is done (or dropped, which its descendants' strong references
//!     forbid while they live). Only nodes with dependents are climbed (each has the waiter or
//!     after-func being registered, or a child on the way up), so the lock-free cancel of invariant
//!     10 never races the `fetch_or`; `mark`'s store may drop the bit from a node it marks done,
//!     which then arms nothing. Model: `loom_deadline`.
//! 15. A deadline is judged on the clock of the node that owns it. Every node of one tree reads
//!     its root's clock, so this is only a rule for merges of two trees: a node whose deadline is
//!     owned across a merge on another clock (`NodeClock::same` says no) never expires that
//!     owner by its own clock's reading — `expire` asks the owner's clock first, and a walk
//!     (which may read no clock, invariant 8) leaves it to the owner's own timer or lazy check.
//!     So reading a merge never ends the other parent early ("canceling it touches neither
//!     parent").
//! 16. A bridge fed from another thread (a foreign `done()`'s watcher) may lag behind its foreign
//!     context's own `err()`. A cancel node attached below such a bridge — directly, or below
//!     cancel nodes that are themselves below one — carries `UNDER_FOREIGN` (and `NEEDS_CHECK`)
//!     from birth; its `err()` (and so `done()`, `wait_blocking`, `after_func`, deriving) polls the
//!     bridges above it and, when one of them or a canceler on the way is done, propagates that
//!     outcome to the node at once. So "done once the foreign context says so" holds for the whole
//!     subtree, not just the wrap. No lock is held while a foreign context is asked (invariant 5).
//!     The same climb serves the nodes below a moving deadline (invariant 18).
//! 17. The drop of a node's last handle cancels it with the cause `HandleDropped` at the price
//!     of a cause-less cancel. The lock-free cancels (`cancel_standalone`, `finish_lock_free`, of
//!     invariants 10 and 11) then set `DROPPED` in the same compare-exchange that sets
//!     `CANCELED`, and `outcome` answers a word with `DROPPED` with the one shared
//!     `HandleDropped` cause, without the lock (`cause` was never written: the node had no
//!     dependents, invariant 10, and stays unwritten, invariant 2). A node with dependents is
//!     canceled under its lock with that shared cause as an ordinary one, which its descendants
//!     inherit (`cancel_dropped`). `DROPPED` is never set without `CANCELED` nor on an open node,
//!     so nothing else reads it. Model: `loom_lockfree`.
//! 18. A moving deadline (`moving.rs`: an idle node's, and a grace node's once its period has
//!     started) lives in one atomic word of its node's `Moving`, and is never copied into a
//!     descendant's `Fixed` (the copy would go stale when it moves). Its descendants are born
//!     `UNDER_FOREIGN` (`leads_to_foreign`), so their `err()` climbs to it as invariant 16
//!     climbs to a bridge, asking it through `end::poll_moving`; `Ctx::deadline` climbs the same
//!     way (`ctx_deadline`). `touch` raises the word with one `fetch_max`, without a lock.
//!     Whoever finds the deadline passed (a read, a cancel, the node's timer) *seals* the word
//!     with a compare-exchange, which fails if a touch came in between (it then looks again, at
//!     the later deadline); only a sealed word ends the node with `DeadlineExceeded`, and whoever
//!     sees it sealed may end it. The seal bit is above every deadline, so `fetch_max` never
//!     moves a sealed word: a touch either comes before the seal (and the deadline is not
//!     passed) or changes nothing. A touch after the node is done changes nothing either. The
//!     node has one timer, armed once (an idle node's at its birth, a grace node's when its
//!     period starts); when it fires it re-reads the word and sleeps again if it moved, so a
//!     touch arms nothing. Model: `loom_moving`.
//! 19. A grace node (`with_grace`) is attached to its parent's canceler like a child (and
//!     leaves the slab like one, invariant 4), but a walk that reaches it does not mark it:
//!     like a relay (invariant 6) it is collected, and `propagate` — or `attach_to`, when the
//!     parent is done already — starts its grace period once the walk is over, with no lock
//!     held (invariant 8): it records the parent's outcome (`pending`, written before the word
//!     that says when the period ends), stores that end, and arms the node's timer; or, if the
//!     period is over already (zero grace, or a parent that ended unobserved long ago), walks
//!     it in the same propagation, so its waiters wake before any after-func runs (invariant
//!     13). Its parent is not its canceler, so it is never `UNDER_FOREIGN` and no climb of
//!     invariant 16 passes it. A parent with a deadline has that deadline's timer armed by
//!     `with_grace` (invariant 14's, shared with its other waiters), so the period starts on
//!     time even if nobody waits on the parent; before that, a read that finds "the parent's
//!     deadline plus the grace" passed asks the parent first. Model: `loom_moving`.
//! 20. A value node's filter (`ValueNode::seen`, set once in `ValueNode::new`) holds a bit for the
//!     key of every value node from it up to the *base* of its run, the first node above that
//!     is not a value node; below a wrap or a `without_cancel` node (whose values a lookup must
//!     ask for) it is all ones. So a lookup whose bit is clear may jump from any value node of
//!     a run straight to its base (`observe.rs`): every node it skips is a value node whose
//!     key is not the one asked for. A digest match is only a candidate: the full key is
//!     checked before a value is returned. Nodes never change parents, so a filter never goes
//!     stale.
//! 21. A cancel that nobody can observe changes the state word alone (`cancel_unseen`). A handle
//!     holds its node strongly; if it holds the only strong reference, no weak one exists (the
//!     node is in no canceler's children, no timer, watcher or bridge points at it), and the
//!     word lacks `HAS_DEPENDENTS` (no dependents part to give back), then no `Ctx`, `Done`,
//!     after-func or child will ever read the node again: the handles can only cancel it. Such
//!     a cancel sets `CANCELED` (and `DROPPED`) with one compare-exchange from the word it read
//!     (not a store: only the lock's owner may write the word whole, `lock.rs`) — no clock read,
//!     no lock, no cause — so that the handle's drop finds the node done, and the node
//!     is freed with it. It is asked only where it saves a clock read or a cause (a node with
//!     `NEEDS_CHECK`, a cancel with a cause). Nothing can make a reference afresh: a strong one
//!     is cloned from a strong one, a weak one downgraded from a strong one; the weak count is
//!     read first (a weak one upgraded elsewhere is counted strong before it is dropped), each
//!     read followed by an acquire fence. Off with the `tracing` feature (the cancel event is
//!     seen) and under loom (which does not model `Arc`). Test: `tests/unseen_cancel.rs`.
//! 22. A node whose only dependent (under its lock: see invariant 25 for the first plain
//!     child, which is kept apart) is one child keeps it inline (`Held::Child`), at key 0
//!     of its children, and allocates no dependents part: a chain is one allocation a level.
//!     When anything else comes (a second child, a waiter, an after-func, a timer, a feed), the
//!     dependents part is allocated and the child moves to its slab's first place, which is
//!     key 0 too (`Guarded::grow`): the key the child recorded in its slot (invariant 4) stays
//!     right, so its detach finds it wherever it lives. Both moves happen under the node's lock.
//!     The cancel walk takes either form (`Taken`). Tests: `tree::tests::inline_first_child_*`.
//! 23. A node whose only dependent is one waiter keeps its waker inline (`Held::Waiter`), at key
//!     0 of its entries, and allocates no dependents part: a context one task waits on is its
//!     88 bytes. It moves, as invariant 22's child does, under the lock, to the first place of
//!     the entries (key 0 too) when anything else comes, so the key the `Done` holds stays
//!     right. A node with a deadline keeps its waiters in its dependents part (where it records
//!     that its timer was asked for). A cancel takes the waker with the rest and wakes it with
//!     every lock released (invariant 5). Two words hold every form (`packed.rs`). Tests:
//!     `tests/inline_waiter.rs`.
//! 24. A dying child whose parent holds no other strong reference leaves that parent only after
//!     trying to take it over (`teardown.rs`): its slot stays in the child (its drop owns it,
//!     invariant 4), and `unlink_chain` moves the parent's count from 1 to 0 with one
//!     compare-exchange (`Arc::try_unwrap`; no `Weak` upgrades from 0). If that succeeds, nobody
//!     else can reach the parent: its whole slab, the child's entry in it too, is dropped with it
//!     and its lock is never taken (a wrap's canceler is its bridge, another node, which the
//!     child leaves as usual). If a `Weak` was upgraded first, the parent is shared after all and
//!     the child leaves it under its lock, as a child of a shared parent always does at once. So
//!     dropping an uncanceled chain (Go's `buildContextTree`) takes no lock, level by level.
//!     Test: `tests/locks.rs`.
//! 25. A plain child (`derive_plain`) is kept, when it is its canceler's
//!     first, in the node's first-child word (`first.rs`), outside the lock: it publishes its
//!     first `Weak` there with one compare-exchange from empty, and leaves with one back to
//!     empty; its slot records the `Weak`'s address (odd, where an entries' key is even). Before
//!     publishing it sets `HAS_FIRST` in the node's word (once; a compare-exchange, only on an
//!     open word). Whoever marks a node done (any of the paths of invariants 2, 10 and 11; a
//!     standalone node with `HAS_FIRST` takes the general path) then loads the word and, if it
//!     has `HAS_FIRST`, closes the first-child word for good and takes the child, which it
//!     cancels as any child it found. One of the two goes first on each word: a child that
//!     saw `HAS_FIRST` set publishes before the close (and is taken by it) or finds the word
//!     closed (and registers under the lock, which finds the node done: born done); a marker
//!     whose change of the word came before `HAS_FIRST` was set leaves the node done, where
//!     `HAS_FIRST` is never set, so no child publishes there. A walk reads a user's clock
//!     before its first change if the node has `HAS_FIRST` (invariant 8); a child published
//!     after that look, under a clock not read, is walked after the walk, as a relay is. A
//!     second child, or any other
//!     kind, registers under the lock as before (invariant 22). A node dropped by the child in
//!     its word (invariant 24) drops that `Weak` with it, as a slab entry. Model:
//!     `loom_first_child`; tests: `tests/first_child.rs`.
//! 26. A cancel that finds six waiters or more in a node's dependents part (their slab in an
//!     allocation of its own) wakes them by reference and keeps their wakers in the node, at
//!     the keys their `Done`s hold (`spent.rs`, in the slab's own allocation), in the node's
//!     first-child word, which the walk closed as it marked the node (invariant 25; the word
//!     tells a `Spent` from a child, and never changes once it holds one: `first.rs`). It keeps
//!     them first, then wakes them in key order with every lock released (invariant 5), saying
//!     how far it has got every 32 places. A `Done` that answers or is dropped takes its own
//!     waker with no lock (`remove_waiter`: the node is done, invariant 3, so its key was never
//!     reused) once the cancel has passed its key, and drops it on its own thread; one that
//!     comes earlier marks its place, and the cancel drops that waker when it has passed it
//!     (one that lets go before the cancel kept the wakers, or misses its sweep, leaves its
//!     waker to the node's drop, as it does the places themselves). So the cancel makes one
//!     read-modify-write of each waker's own (its wake) where waking by value makes two, no
//!     waker is moved while the cancel borrows it, and none outlives its node. Fewer
//!     waiters (one inline, invariant 23, or up to five in the slab) are woken by value: the
//!     `Spent`'s allocation and publication would cost more than their drops (`walk.rs`,
//!     `BY_REFERENCE`). Model: `loom_spent` (and `spent.rs`'s own); tests:
//!     `tests/spent_wakers.rs`.
//!
//! # Deadlock safety
//!
//! Locks are never nested (invariant 1), and no user code (waker, after-func, `Drop` of a user
//! type, a clock, a foreign context's methods) runs while a lock is held (invariant 5). An
//! after-func or waker may therefore cancel, derive or drop anything in the tree.
//!
//! # Deadlines
//!
//! A deadline costs its `Instant` until somebody waits: `err()` compares it with the clock
//! (lazily expiring the node that owns the deadline), and a timer is armed only when a
//! `done()` is polled, `wait_blocking` called or an after-func registered on a node with a
//! deadline. The timer lives on the *owner* (the nearest cancel node whose own deadline is the
//! effective one), so all descendants share one timer.

// The files, in layers: each imports only from its own layer or the ones above (see "Files"
// in the module doc; `tests/layering.rs` fails on any cycle or import from below).
//
// 1. `arc`, `entries`, `first`, `lock`, `packed`, `spent`, `thin`, `word`: leaves.
// 2. `node`: the layout.
// 3. `state`: every `CancelNode` method.
// 4. `slots`, `foreign_calls`, `name`: one node at a time.
// 5. `walk`, `teardown`, `trace`.
// 6. `end`: propagate, the lazy checks, expiry and timers.
// 7. `attach`.
// 8. `cancel`, `derive`, `foreign`, `merge`, `moving`: what the handle calls to build and end.
// 9. `observe`: what the handle reads.

mod arc;
mod attach;
mod cancel;
mod derive;
mod end;
mod entries;
mod first;
mod foreign;
mod foreign_calls;
mod lock;
mod merge;
mod moving;
mod name;
mod node;
mod observe;
mod packed;
mod slots;
mod spent;
mod state;
mod teardown;
mod thin;
mod trace;
mod walk;
mod word;

pub(crate) use self::arc::{Arc, Weak};
pub(crate) use self::cancel::{
    Registered, cancel, cancel_dropped, register_after, register_waker, unregister_after, unregister_waker,
};
pub(crate) use self::derive::{
    derive_cancel, derive_timeout_of_root, derive_value, derive_without_cancel, root_with_clock, static_root,
};
pub(crate) use self::end::{arm_timer, err};
pub(crate) use self::foreign::{foreign_bridge, install_feed, relay_bridge, resolve_bridge, wrap_node};
pub(crate) use self::merge::derive_merged;
pub(crate) use self::moving::{derive_grace, derive_idle, touch};
pub(crate) use self::name::write_chain;
#[cfg(all(test, loom))]
pub(crate) use self::node::Kind;
pub(crate) use self::node::{Feed, Foreign, Node, NodeRef, Owners};
pub(crate) use self::observe::{ctx_cause, ctx_deadline, ctx_err, ctx_is_done, value_any, value_of};
#[cfg(all(test, loom))]
pub(crate) use self::thin::ThinArc;
pub(crate) use self::trace::Site;
pub(crate) use self::walk::run_after;
pub(crate) use self::word::Slot;

#[cfg(feature = "test-util")]
pub(crate) mod counters {
    use std::sync::atomic::AtomicUsize;
    pub(crate) static LIVE_NODES: AtomicUsize = AtomicUsize::new(0);
    pub(crate) static TIMERS_ARMED: AtomicUsize = AtomicUsize::new(0);
    pub(crate) static WATCHERS: AtomicUsize = AtomicUsize::new(0);
    /// Nodes looked at by `arm_timer` on its way to a deadline's owner.
    pub(crate) static OWNER_STEPS: AtomicUsize = AtomicUsize::new(0);
}

// ===== test inspection =====

#[cfg(test)]
pub(crate) fn child_count(node: &NodeRef) -> usize {
    node.source().map_or(0, |c| {
        let c = c.expect_cancel();
        let in_word = usize::from(c.first.is_set()); // invariant 25
        c.lock().child_count() + in_word
    })
}

/// Whether a cancel node's first-child word holds a child (invariant 25).
#[cfg(all(test, not(loom)))]
pub(crate) fn has_first_in_word(node: &NodeRef) -> bool {
    node.source().is_some_and(|c| c.expect_cancel().first.is_set())
}

/// The standalone cancel (invariants 10 and 11) of a ctx's cancel node, alone: `true` if it
/// marked the node, `false` if it left it to the general path.
#[cfg(all(test, not(loom)))]
pub(crate) fn cancel_standalone(node: &NodeRef) -> bool {
    let n = node.source().expect("a cancel node");
    let c = n.expect_cancel();
    match c.cancel_standalone(false) {
        state::Standalone::Marked => true,
        state::Standalone::Timed => c.cancel_timed(n.clock(), false),
        state::Standalone::General => false,
    }
}

/// Whether a cancel node has allocated its dependents part (invariant 22).
#[cfg(all(test, not(loom)))]
pub(crate) fn has_dependents_part(node: &NodeRef) -> bool {
    node.source()
        .is_some_and(|c| c.expect_cancel().lock().dependents_ref().is_some())
}

/// Holds the lock of a ctx's cancel node until the returned guard is dropped.
#[cfg(all(test, not(loom)))]
pub(crate) fn hold_lock(node: &NodeRef) -> impl Sized + '_ {
    let c = node.source().expect("a cancel node");
    c.expect_cancel().lock()
}

#[cfg(all(test, loom))]
pub(crate) fn waiter_count(node: &NodeRef) -> usize {
    node.source()
        .map_or(0, |c| c.expect_cancel().lock().waiter_count())
}
