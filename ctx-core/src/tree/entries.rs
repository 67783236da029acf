//! [`Entries`]: a slab whose first two places live inline, for what depends on an open cancel
//! node (its children, waiters and after-funcs: `node::Entry`) in the node's dependents part. A
//! node of a chain has one child, a node one task waits on has one waiter: neither allocates
//! more than its dependents part. Generic over the entry: it knows nothing of nodes.

use smallvec::SmallVec;

/// A place in [`Entries`]: taken, or free with the next free place (`items.len()`: none).
pub(super) enum Item<T> {
    Taken(T),
    Free(usize),
}

/// A slab of entries: keys stay valid until removed, and a removed key is reused by a later
/// insert (as `slab::Slab` does), so a node whose children come and go does not grow.
pub(super) struct Entries<T> {
    items: SmallVec<[Item<T>; 2]>,
    /// The first free place, or `items.len()`.
    next_free: usize,
    /// How many places are taken.
    len: usize,
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
        let key = self.next_free;
        self.len += 1;
        if key == self.items.len() {
            self.items.push(Item::Taken(entry));
            self.next_free = key + 1;
        } else {
            let Item::Free(next) = std::mem::replace(&mut self.items[key], Item::Taken(entry)) else {
                unreachable!("ctx-core: internal error: free list points at a taken place")
            };
            self.next_free = next;
        }
        key
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
        self.next_free = key;
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
        if cap <= MIN || self.len > cap / 4 {
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
        let mut next = end;
        for key in (0..end).rev() {
            if let Item::Free(n) = &mut self.items[key] {
                *n = next;
                next = key;
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

    /// How many places the storage holds.
    pub(super) fn capacity(&self) -> usize {
        self.items.capacity()
    }

    /// The entries with their keys.
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
    items: smallvec::IntoIter<[Item<T>; 2]>,
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// An entry that owns memory, as a waker or an after-func does.
    fn after() -> Box<u64> {
        Box::new(7)
    }

    /// Keys stay put, a removed key comes back on the next insert, and the first two entries
    /// need no storage of their own.
    #[test]
    fn keys_are_stable_and_reused() {
        let mut e = Entries::<Box<u64>>::default();
        let a = e.insert(after());
        let b = e.insert(after());
        assert_eq!((a, b), (0, 1));
        assert!(!e.items.spilled());
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

    /// A slab that grew to a million children (fewer under Miri) gives its memory back as they go,
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
}
