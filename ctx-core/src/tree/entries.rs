//! The two slabs of what depends on an open cancel node, in the node's dependents part: its
//! waiters and after-funcs ([`Entries`] of `node::Entry`, the first place inline), and its
//! children ([`Children`], one word a child, the first two places inline). A node of a chain has
//! one child, a node one task waits on has one waiter: neither allocates more than its
//! dependents part. Generic over the entry: they know nothing of nodes.

use smallvec::SmallVec;

/// A place in [`Entries`]: taken, or free with the next free place (`items.len()`: none).
pub(super) enum Item<T> {
    Taken(T),
    Free(u32),
}

/// A slab of entries (24 bytes each; a node has few): keys stay valid until removed, and a
/// removed key is reused by a later insert (as `slab::Slab` does), so a node whose waiters come
/// and go does not grow.
pub(super) struct Entries<T> {
    items: SmallVec<[Item<T>; 1]>,
    /// The first free place, or `items.len()`. (`u32`, as `len`: with them the dependents part
    /// that holds this slab is 112 bytes, `node.rs`'s size test; `insert` stops at the bound.)
    next_free: u32,
    /// How many places are taken.
    len: u32,
}

impl<T> Default for Entries<T> {
    fn default() -> Entries<T> {
        Entries {
            items: SmallVec::new(),
            next_free: 0,
            len: 0,
        }
    }
}

impl<T> Entries<T> {
    /// Stores `entry`; its key.
    #[inline]
    pub(super) fn insert(&mut self, entry: T) -> usize {
        let key = self.next_free as usize;
        // 2^32 entries of 24 bytes would be 96 GiB of waiters and after-funcs on one context.
        self.len = self
            .len
            .checked_add(1)
            .expect("ctx-core: more than 4,294,967,295 waiters and after-funcs on one context");
        if key == self.items.len() {
            self.items.push(Item::Taken(entry));
            self.next_free = self.len_u32();
        } else {
            let Item::Free(next) = std::mem::replace(&mut self.items[key], Item::Taken(entry)) else {
                unreachable!("ctx-core: internal error: free list points at a taken place")
            };
            self.next_free = next;
        }
        key
    }

    /// `items.len()`, which never passes `len`'s bound (every place was taken once).
    #[inline]
    fn len_u32(&self) -> u32 {
        self.items.len() as u32
    }

    /// Removes and returns the entry at `key`, if there is one.
    #[inline]
    pub(super) fn try_remove(&mut self, key: usize) -> Option<T> {
        let entry = self.remove_at(key)?;
        self.shrink_if_sparse();
        Some(entry)
    }

    /// `try_remove` without giving memory back.
    #[inline]
    fn remove_at(&mut self, key: usize) -> Option<T> {
        let item = self.items.get_mut(key)?;
        if let Item::Free(_) = item {
            return None;
        }
        let Item::Taken(entry) = std::mem::replace(item, Item::Free(self.next_free)) else {
            unreachable!()
        };
        self.next_free = key as u32; // a place that exists: below `len_u32()`
        self.len -= 1;
        Some(entry)
    }

    /// Gives memory back as the slab empties: once at most a quarter of its storage is taken,
    /// the free places after the last taken one are dropped and the storage shrinks. Keys
    /// stay valid (a taken place never moves), so a slab keeps room up to its last taken key.
    ///
    /// Amortized `O(1)`: the places dropped are scanned once, and the free list is rebuilt
    /// (over what is left) only when the storage at least halves.
    #[inline]
    fn shrink_if_sparse(&mut self) {
        const MIN: usize = 64; // below this, keep the room: children come and go
        if !self.items.spilled() {
            return; // the inline places: nothing to give back (the usual case)
        }
        let cap = self.items.capacity();
        if cap <= MIN || self.len as usize > cap / 4 {
            return;
        }
        self.shrink();
    }

    #[cold]
    fn shrink(&mut self) {
        if self.len == 0 {
            *self = Entries::default(); // back to the inline places
            return;
        }
        let mut end = self.items.len();
        while end > 0 && matches!(self.items[end - 1], Item::Free(_)) {
            end -= 1;
        }
        if end > self.items.capacity() / 2 {
            return; // a taken place near the end holds the room
        }
        self.items.truncate(end);
        // Rebuild the free list over what is left, lowest key first.
        let mut next = end as u32; // below the old `len_u32()`
        for key in (0..end).rev() {
            if let Item::Free(n) = &mut self.items[key] {
                *n = next;
                next = key as u32;
            }
        }
        self.next_free = next;
        self.items.shrink_to_fit();
    }

    /// The entry at `key`, if there is one.
    #[inline]
    pub(super) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.items.get_mut(key)? {
            Item::Taken(entry) => Some(entry),
            Item::Free(_) => None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many places are taken.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the places live in an allocation of their own (more than the inline one).
    #[inline]
    pub(super) fn spilled(&self) -> bool {
        self.items.spilled()
    }

    /// Every place in key order, `None` for a free one: the slab's own allocation, to be
    /// collected in place (`Vec`'s in-place `collect`, for a target of the same layout).
    pub(super) fn into_places(self) -> impl Iterator<Item = Option<T>> {
        self.items.into_vec().into_iter().map(|item| match item {
            Item::Taken(entry) => Some(entry),
            Item::Free(_) => None,
        })
    }

    /// How many places the storage holds.
    pub(super) fn capacity(&self) -> usize {
        self.items.capacity()
    }

    /// Where the places live (`node.rs`'s tests).
    #[cfg(all(test, not(loom), not(feature = "tracing")))]
    pub(super) fn places_addr(&self) -> usize {
        self.items.as_ptr().addr()
    }

    /// The entries with their keys.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(key, item)| match item {
                Item::Taken(entry) => Some((key, entry)),
                Item::Free(_) => None,
            })
    }
}

impl<T> IntoIterator for Entries<T> {
    type Item = (usize, T);
    type IntoIter = IntoIter<T>;

    /// The entries with their keys, in key order.
    fn into_iter(self) -> IntoIter<T> {
        IntoIter {
            items: self.items.into_iter(),
            key: 0,
        }
    }
}

/// The entries of an [`Entries`], taken.
pub(super) struct IntoIter<T> {
    items: smallvec::IntoIter<[Item<T>; 1]>,
    key: usize,
}

impl<T> Iterator for IntoIter<T> {
    type Item = (usize, T);

    #[inline]
    fn next(&mut self) -> Option<(usize, T)> {
        loop {
            let item = self.items.next()?;
            let key = self.key;
            self.key += 1;
            if let Item::Taken(entry) = item {
                return Some((key, entry));
            }
        }
    }
}

// ===== Children =====

/// A slab whose places are one `Option<T>` each (one word for a `Weak`), for the children of a
/// cancel node, of which there may be millions. Keys stay valid until removed, and a removed
/// key is reused by a later insert (the latest first, as [`Entries`] reuses them). Key 0 is
/// inline, since a node of a chain has one child; the others are in `rest`, and their free
/// keys on a stack of their own, so a slab whose children never leave keeps no stack at all.
pub(super) struct Children<T> {
    /// Key 0.
    first: Option<T>,
    /// Key `k + 1` at `rest[k]`.
    rest: Vec<Option<T>>,
    /// The empty places of `rest`, by key (never 0: `first` is looked at first), the next one
    /// to fill last. Boxed: one word in every dependents part instead of a `Vec`'s three, and
    /// allocated only when a child of `rest` first leaves (few slabs see that).
    #[allow(clippy::box_collection)]
    free: Option<Box<Vec<usize>>>,
}

impl<T> Default for Children<T> {
    fn default() -> Children<T> {
        Children {
            first: None,
            rest: Vec::new(),
            free: None,
        }
    }
}

impl<T> Children<T> {
    /// Stores `child`; its key.
    #[inline]
    pub(super) fn insert(&mut self, child: T) -> usize {
        if self.first.is_none() {
            self.first = Some(child);
            return 0;
        }
        self.insert_rest(child)
    }

    fn insert_rest(&mut self, child: T) -> usize {
        match self.free.as_mut().and_then(|f| f.pop()) {
            Some(key) => {
                let place = &mut self.rest[key - 1];
                debug_assert!(place.is_none(), "ctx-core: internal error: a free place is taken");
                *place = Some(child);
                key
            }
            None => {
                self.rest.push(Some(child));
                self.rest.len()
            }
        }
    }

    /// Removes and returns the child at `key`, if there is one.
    #[inline]
    pub(super) fn try_remove(&mut self, key: usize) -> Option<T> {
        if key == 0 {
            return self.first.take();
        }
        self.remove_rest(key)
    }

    fn remove_rest(&mut self, key: usize) -> Option<T> {
        let child = self.rest.get_mut(key - 1)?.take()?;
        let free = self.free.get_or_insert_with(Box::default);
        if free.len() == free.capacity() {
            // One allocation as large as the storage (the stack never holds more keys than
            // `rest` has places), not a doubling series of its own beside the storage's.
            free.reserve_exact(self.rest.capacity() - free.len());
        }
        free.push(key);
        self.shrink_if_sparse();
        Some(child)
    }

    /// How many places of `rest` are taken.
    #[inline]
    fn rest_len(&self) -> usize {
        self.rest.len() - self.free.as_ref().map_or(0, |f| f.len())
    }

    /// Gives memory back as the slab empties, as [`Entries`] does: once at most a quarter of
    /// `rest`'s storage is taken, the places after the last taken one are dropped (and their keys
    /// from the free stack), and the storage shrinks. Taken places never move.
    #[inline]
    fn shrink_if_sparse(&mut self) {
        const MIN: usize = 64; // below this, keep the room: children come and go
        let cap = self.rest.capacity();
        if cap <= MIN || self.rest_len() > cap / 4 {
            return;
        }
        self.shrink();
    }

    #[cold]
    fn shrink(&mut self) {
        if self.rest_len() == 0 {
            self.rest = Vec::new();
            self.free = None;
            return;
        }
        let mut end = self.rest.len();
        while end > 0 && self.rest[end - 1].is_none() {
            end -= 1;
        }
        if end > self.rest.capacity() / 2 {
            return; // a taken place near the end holds the room
        }
        self.rest.truncate(end);
        self.rest.shrink_to_fit();
        // The free keys that are left, lowest on top (filled first, as `Entries` does).
        if let Some(free) = self.free.as_mut() {
            free.retain(|&key| key <= end);
            free.sort_unstable_by(|a, b| b.cmp(a));
            free.shrink_to_fit();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest_len() == 0
    }

    /// How many places the storage holds.
    #[cfg(all(test, not(loom)))]
    pub(super) fn capacity(&self) -> usize {
        1 + self.rest.capacity()
    }

    /// At least as many as there are children (the places taken or free), for a caller that
    /// reserves room for them all at once.
    #[inline]
    pub(super) fn places(&self) -> usize {
        1 + self.rest.len()
    }

    /// The children, in key order (for tests).
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(self.rest.iter().flatten())
    }

    /// Hands each child to `f` by value, in key order, leaving the slab empty (its storage is
    /// kept, for `release` or the drop).
    #[inline]
    pub(super) fn take_each(&mut self, mut f: impl FnMut(T)) {
        if let Some(child) = self.first.take() {
            f(child);
        }
        self.rest.iter_mut().filter_map(Option::take).for_each(f);
    }

    /// Drops the slab, in a few inlined tests when it holds nothing and has no storage (the
    /// slab of a node that had waiters but no children): its drop glue is a call that would
    /// find nothing to do.
    #[inline]
    pub(super) fn release(self) {
        if self.first.is_none() && self.rest.capacity() == 0 && self.free.is_none() {
            std::mem::forget(self); // nothing to drop, nothing to free
        } else {
            drop(self);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// An entry that owns memory, as a waker or an after-func does.
    fn after() -> Box<u64> {
        Box::new(7)
    }

    /// Keys stay put, a removed key comes back on the next insert, and the first entry needs
    /// no storage of its own.
    #[test]
    fn keys_are_stable_and_reused() {
        let mut e = Entries::<Box<u64>>::default();
        let a = e.insert(after());
        assert!(!e.items.spilled());
        let b = e.insert(after());
        assert_eq!((a, b), (0, 1));
        assert!(e.items.spilled());
        let c = e.insert(after());
        assert_eq!(c, 2);
        assert!(e.try_remove(b).is_some());
        assert!(e.try_remove(b).is_none());
        assert!(e.get_mut(b).is_none());
        assert!(e.get_mut(c).is_some());
        assert_eq!(e.insert(after()), b);
        assert_eq!(e.iter().map(|(k, _)| k).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(e.try_remove(7).is_none());
    }

    /// A slab that grew to a million entries (fewer under Miri) gives its memory back as they go,
    /// down to its last taken key, with the keys of what stays unchanged and the free list intact.
    #[test]
    fn storage_shrinks_as_the_slab_empties() {
        let mut e = Entries::<Box<u64>>::default();
        const N: usize = if cfg!(miri) { 5_000 } else { 1_000_000 };
        let long_lived = e.insert(after());
        let keys: Vec<_> = (0..N).map(|_| e.insert(after())).collect();
        assert!(e.capacity() > N);
        for k in keys {
            assert!(e.try_remove(k).is_some());
        }
        assert!(e.capacity() <= 64, "kept {} places for one entry", e.capacity());
        assert!(e.get_mut(long_lived).is_some());
        // Still a working slab: new keys fill from the lowest free place.
        assert_eq!(e.insert(after()), 1);
        assert_eq!(e.iter().count(), 2);

        // A taken place high up holds the room below it, and frees are reused after a shrink.
        let mut e = Entries::<Box<u64>>::default();
        let keys: Vec<_> = (0..1000).map(|_| e.insert(after())).collect();
        for &k in &keys[..999] {
            e.try_remove(k);
        }
        assert!(e.get_mut(keys[999]).is_some());
        assert_eq!(e.iter().map(|(k, _)| k).collect::<Vec<_>>(), [999]);
        e.try_remove(keys[999]);
        assert!(e.is_empty());
        assert!(e.capacity() <= 64);
        let mut e2 = Entries::<Box<u64>>::default();
        let ks: Vec<_> = (0..300).map(|_| e2.insert(after())).collect();
        for &k in &ks[10..] {
            e2.try_remove(k);
        }
        for &k in &ks[1..10] {
            e2.try_remove(k);
        }
        assert!(e2.capacity() < 300);
        let again: Vec<_> = (0..20).map(|_| e2.insert(after())).collect();
        let mut sorted = again.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20, "keys handed out twice: {again:?}");
        assert!(!again.contains(&0), "key 0 is still taken");
    }

    /// A child costs one word: a place of `Children` is the size of the `Weak` it holds (the
    /// keys of free places are kept on a stack of their own), and the storage at most doubles.
    #[test]
    fn a_child_is_one_word() {
        use std::mem::size_of;
        use std::sync::Weak;
        assert_eq!(size_of::<Option<Weak<[u64; 12]>>>(), size_of::<usize>());
        let mut c = Children::<Weak<[u64; 12]>>::default();
        let n = 1000;
        for _ in 0..n {
            c.insert(Weak::new());
        }
        assert!(c.free.is_none(), "a slab never left keeps no stack");
        assert!(c.capacity() < 2 * n, "room for {} places", c.capacity());
    }

    /// Keys stay put, the latest removed key comes back on the next insert, and the first child
    /// needs no storage of its own, nor does its leaving.
    #[test]
    fn children_keys_are_stable_and_reused() {
        let mut c = Children::<Box<u64>>::default();
        let a = c.insert(after());
        assert_eq!(c.rest.capacity(), 0);
        assert!(c.try_remove(a).is_some());
        assert!(c.is_empty());
        assert!(c.free.is_none());
        assert_eq!(c.insert(after()), a);
        let b = c.insert(after());
        assert_eq!((a, b), (0, 1));
        let d = c.insert(after());
        assert_eq!(d, 2);
        assert_eq!(c.try_remove(a).as_deref(), Some(&7));
        assert!(c.try_remove(b).is_some());
        assert!(c.try_remove(b).is_none(), "removed twice");
        assert!(c.try_remove(9).is_none(), "never inserted");
        assert_eq!(c.iter().count(), 1);
        assert_eq!(c.insert(after()), a, "the inline place first");
        assert_eq!(c.insert(after()), b);
        assert_eq!(c.insert(after()), 3);
        assert_eq!(c.iter().count(), 4);
        assert!(!c.is_empty());
    }

    /// As `storage_shrinks_as_the_slab_empties`, for children: a million (fewer under Miri) go,
    /// the storage and the free stack shrink, what stays keeps its key, and keys handed out after
    /// a shrink are never ones still taken.
    #[test]
    fn children_storage_shrinks_as_the_slab_empties() {
        const N: usize = if cfg!(miri) { 5_000 } else { 1_000_000 };
        let mut c = Children::<Box<u64>>::default();
        let long_lived = c.insert(after());
        let keys: Vec<_> = (0..N).map(|_| c.insert(after())).collect();
        assert!(c.capacity() > N);
        for k in keys.into_iter().rev() {
            assert!(c.try_remove(k).is_some());
        }
        assert!(
            c.rest.capacity() <= 64,
            "kept {} places for one child",
            c.capacity()
        );
        let free = c.free.as_ref().map_or(0, |f| f.capacity());
        assert!(free <= 64, "kept {free} free keys");
        assert_eq!(c.iter().count(), 1);
        assert_eq!(c.insert(after()), 1);
        assert_eq!(c.try_remove(long_lived).as_deref(), Some(&7), "kept its key");

        let mut c = Children::<Box<u64>>::default();
        let ks: Vec<_> = (0..300).map(|_| c.insert(after())).collect();
        for &k in &ks[10..] {
            c.try_remove(k);
        }
        for &k in &ks[1..10] {
            c.try_remove(k);
        }
        assert!(c.capacity() < 300);
        let again: Vec<_> = (0..20).map(|_| c.insert(after())).collect();
        let mut sorted = again.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20, "keys handed out twice: {again:?}");
        assert!(!again.contains(&0), "key 0 is still taken");

        // Emptied: back to the inline places.
        let mut c = Children::<Box<u64>>::default();
        let ks: Vec<_> = (0..1000).map(|_| c.insert(after())).collect();
        for k in ks {
            c.try_remove(k);
        }
        assert!(c.is_empty());
        assert_eq!(c.rest.capacity(), 0);
        assert!(c.free.is_none());
    }

    /// `release` drops what a slab holds, whether or not it has storage of its own.
    #[test]
    fn release_drops_every_child() {
        use std::sync::Arc;
        let held = Arc::new(());
        let c = Children::<Arc<()>>::default();
        c.release(); // bare
        let mut c = Children::default();
        c.insert(held.clone());
        c.release(); // the inline place only
        assert_eq!(Arc::strong_count(&held), 1);
        let mut c = Children::default();
        let keys: Vec<_> = (0..3).map(|_| c.insert(held.clone())).collect();
        c.try_remove(keys[2]);
        c.try_remove(keys[0]);
        c.release(); // storage and a free stack
        assert_eq!(Arc::strong_count(&held), 1);
    }
}
