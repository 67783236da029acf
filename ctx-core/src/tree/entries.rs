//! [`Entries`]: what depends on an open cancel node (its children, waiters and after-funcs), in a
//! slab whose first two places live inline in the node's busy part. A node of a chain has one
//! child, a node one task waits on has one waiter: neither allocates more than its busy part.

use smallvec::SmallVec;

use super::node::Entry;

/// A place in [`Entries`]: taken, or free with the next free place (`items.len()`: none).
pub(super) enum Item {
    Taken(Entry),
    Free(usize),
}

/// A slab of [`Entry`]s: keys stay valid until removed, and a removed key is reused by a later
/// insert (as `slab::Slab` does), so a node whose children come and go does not grow.
pub(super) struct Entries {
    items: SmallVec<[Item; 2]>,
    /// The first free place, or `items.len()`.
    next_free: usize,
    /// How many places are taken.
    len: usize,
}

impl Default for Entries {
    fn default() -> Entries {
        Entries {
            items: SmallVec::new(),
            next_free: 0,
            len: 0,
        }
    }
}

impl Entries {
    /// Stores `entry`; its key.
    #[inline]
    pub(super) fn insert(&mut self, entry: Entry) -> usize {
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
    pub(super) fn try_remove(&mut self, key: usize) -> Option<Entry> {
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

    /// The entry at `key`, if there is one.
    #[inline]
    pub(super) fn get_mut(&mut self, key: usize) -> Option<&mut Entry> {
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
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(key, item)| match item {
                Item::Taken(entry) => Some((key, entry)),
                Item::Free(_) => None,
            })
    }

    /// Keeps only the entries for which `keep` says `true`.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(usize, &mut Entry) -> bool) {
        for key in 0..self.items.len() {
            if let Item::Taken(entry) = &mut self.items[key]
                && !keep(key, entry)
            {
                self.try_remove(key);
            }
        }
    }
}

impl IntoIterator for Entries {
    type Item = (usize, Entry);
    type IntoIter = IntoIter;

    /// The entries with their keys, in key order.
    fn into_iter(self) -> IntoIter {
        IntoIter {
            items: self.items.into_iter(),
            key: 0,
        }
    }
}

/// The entries of an [`Entries`], taken.
pub(super) struct IntoIter {
    items: smallvec::IntoIter<[Item; 2]>,
    key: usize,
}

impl Iterator for IntoIter {
    type Item = (usize, Entry);

    #[inline]
    fn next(&mut self) -> Option<(usize, Entry)> {
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

    fn after() -> Entry {
        Entry::After(Box::new(|| {}))
    }

    /// Keys stay put, a removed key comes back on the next insert, and the first two entries
    /// need no storage of their own.
    #[test]
    fn keys_are_stable_and_reused() {
        let mut e = Entries::default();
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

    /// `retain` removes what it is told to, and the removed keys are reused.
    #[test]
    fn retain_removes_and_frees() {
        let mut e = Entries::default();
        for _ in 0..5 {
            e.insert(after());
        }
        e.retain(|key, _| key % 2 == 0);
        assert_eq!(e.iter().map(|(k, _)| k).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(e.into_iter().map(|(k, _)| k).collect::<Vec<_>>(), [0, 2, 4]);
        let mut e = Entries::default();
        e.insert(after());
        e.retain(|_, _| false);
        assert!(e.is_empty());
        assert_eq!(e.insert(after()), 0);
    }
}
