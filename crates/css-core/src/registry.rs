// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The subchannel registry: lookup by indexing ([`SubchannelTable`]) behind a read-mostly lock.
//!
//! Lookups clone the entry's `Arc` and drop the registry lock at once, so no caller ever holds
//! the registry lock while it takes a subchannel's lock or talks to the backend. An entry that
//! was looked up just before its removal is still safe to use (it is reference counted); the
//! subchannel's own `removed` flag, set under its lock before the entry leaves the registry,
//! decides whether a late event is delivered or dropped.

use ccw_types::SubchannelId;

use crate::schtable::SubchannelTable;
use crate::sync::{Arc, RwLock, read, write};

pub(crate) struct Registry<E> {
    map: RwLock<SubchannelTable<Arc<E>>>,
}

impl<E> Registry<E> {
    pub(crate) fn new() -> Self {
        Self {
            map: RwLock::new(SubchannelTable::new()),
        }
    }

    pub(crate) fn get(&self, sch: SubchannelId) -> Option<Arc<E>> {
        read(&self.map).get(sch).cloned()
    }

    /// Inserts the entry `make` creates from each id's `item`, for ids not yet present;
    /// returns how many were new.
    pub(crate) fn insert_missing<I>(
        &self,
        items: impl IntoIterator<Item = (SubchannelId, I)>,
        mut make: impl FnMut(SubchannelId, I) -> E,
    ) -> usize {
        let mut map = write(&self.map);
        let mut n = 0;
        for (sch, item) in items {
            if map.contains(sch) {
                continue;
            }
            map.insert(sch, Arc::new(make(sch, item)));
            n += 1;
        }
        n
    }

    /// Removes `sch` if it is still `entry` (a re-probe may have replaced it).
    pub(crate) fn remove_if(&self, sch: SubchannelId, entry: &Arc<E>) -> bool {
        let mut map = write(&self.map);
        match map.get(sch) {
            Some(e) if Arc::ptr_eq(e, entry) => {
                map.remove(sch);
                true
            }
            _ => false,
        }
    }

    /// A snapshot of every entry.
    pub(crate) fn all(&self) -> Vec<Arc<E>> {
        read(&self.map).values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.map).len()
    }
}
