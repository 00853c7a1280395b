// SPDX-License-Identifier: Apache-2.0 OR MIT

//! [`SubchannelTable`]: a map keyed by [`SubchannelId`], indexed directly by the id's parts.

use ccw_types::SubchannelId;

/// Subchannels per page of the table: the low byte of the subchannel number.
const PAGE: usize = 256;

type Page<V> = [Option<V>; PAGE];

/// One subchannel set: `PAGE` pages of `PAGE` subchannels, each page made on first use.
struct Directory<V> {
    pages: [Option<Box<Page<V>>>; PAGE],
}

/// A map from subchannel id to `V` that finds an entry by indexing, not hashing: subchannel
/// set (CSSID x 4 + SSID), then the high and the low byte of the subchannel number. Ids that
/// are near each other are near each other in memory, and iteration is in ascending id order
/// (CSSID, SSID, number), as [`SubchannelId`] orders.
///
/// Memory: 8 bytes per subchannel slot for `V` = `Arc<_>` or `Box<_>`, in pages of 256
/// slots made on first insert (2 KiB each), plus a 2 KiB directory per subchannel set in
/// use; a page stays once made. At the architecture's 4 sets x 65,536 subchannels that is
/// 2 MiB + 8 KiB, a quarter of a `HashMap` of the same entries; a configuration of a few
/// subchannels costs about 4 KiB.
///
/// The subchannel-set id is taken modulo 4, as [`SubchannelId::new`] and
/// [`SubchannelId::to_word`] take it: the key is the subchannel the id word names.
///
/// ```
/// use ccw_types::SubchannelId;
/// use css_core::SubchannelTable;
/// let mut t = SubchannelTable::new();
/// t.insert(SubchannelId::new(0, 1, 7), "b");
/// t.insert(SubchannelId::new(0, 0, 0x1234), "a");
/// assert_eq!(t.get(SubchannelId::new(0, 0, 0x1234)), Some(&"a"));
/// let ids: Vec<String> = t.iter().map(|(id, _)| id.to_string()).collect();
/// assert_eq!(ids, ["0.0.1234", "0.1.0007"]);
/// assert_eq!(t.remove(SubchannelId::new(0, 1, 7)), Some("b"));
/// assert_eq!(t.len(), 1);
/// ```
pub struct SubchannelTable<V> {
    /// Index CSSID x 4 + SSID; grown to the highest set used.
    sets: Vec<Option<Box<Directory<V>>>>,
    len: usize,
}

impl<V> Default for SubchannelTable<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for SubchannelTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Where `id` lives: (set, page, slot).
fn index(id: SubchannelId) -> (usize, usize, usize) {
    let set = usize::from(id.cssid) * 4 + usize::from(id.ssid & 3);
    let no = usize::from(id.sch_no);
    (set, no / PAGE, no % PAGE)
}

fn id_of(set: usize, page: usize, slot: usize) -> SubchannelId {
    // `set` < 256 x 4 and `page * PAGE + slot` < 65,536 by construction.
    SubchannelId::new(
        (set / 4) as u8,
        (set % 4) as u8,
        (page * PAGE + slot) as u16,
    )
}

fn new_page<V>() -> Box<Page<V>> {
    // Made on the heap: a page of a large `V` would not fit a stack frame.
    let slots: Box<[Option<V>]> = (0..PAGE).map(|_| None).collect();
    match slots.try_into() {
        Ok(page) => page,
        Err(_) => unreachable!("exactly PAGE slots were collected"),
    }
}

impl<V> SubchannelTable<V> {
    /// An empty table (no allocation until the first insert).
    pub const fn new() -> Self {
        Self {
            sets: Vec::new(),
            len: 0,
        }
    }

    /// How many subchannels have an entry.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no subchannel has an entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot(&self, id: SubchannelId) -> Option<&Option<V>> {
        let (set, page, slot) = index(id);
        let dir = self.sets.get(set)?.as_ref()?;
        Some(&dir.pages[page].as_ref()?[slot])
    }

    fn slot_mut(&mut self, id: SubchannelId) -> Option<&mut Option<V>> {
        let (set, page, slot) = index(id);
        let dir = self.sets.get_mut(set)?.as_mut()?;
        Some(&mut dir.pages[page].as_mut()?[slot])
    }

    /// The entry of `id`.
    pub fn get(&self, id: SubchannelId) -> Option<&V> {
        self.slot(id)?.as_ref()
    }

    /// The entry of `id`, to change.
    pub fn get_mut(&mut self, id: SubchannelId) -> Option<&mut V> {
        self.slot_mut(id)?.as_mut()
    }

    /// Whether `id` has an entry.
    pub fn contains(&self, id: SubchannelId) -> bool {
        self.get(id).is_some()
    }

    /// Sets the entry of `id`; returns the one it replaces.
    pub fn insert(&mut self, id: SubchannelId, value: V) -> Option<V> {
        let (set, page, slot) = index(id);
        if self.sets.len() <= set {
            self.sets.resize_with(set + 1, || None);
        }
        let dir = self.sets[set].get_or_insert_with(|| {
            Box::new(Directory {
                pages: std::array::from_fn(|_| None),
            })
        });
        let old = dir.pages[page].get_or_insert_with(new_page)[slot].replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Takes the entry of `id` out (its page stays).
    pub fn remove(&mut self, id: SubchannelId) -> Option<V> {
        let old = self.slot_mut(id)?.take();
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Every entry, in ascending id order.
    pub fn iter(&self) -> impl Iterator<Item = (SubchannelId, &V)> + '_ {
        self.sets
            .iter()
            .enumerate()
            .filter_map(|(set, dir)| Some((set, dir.as_ref()?)))
            .flat_map(|(set, dir)| {
                dir.pages
                    .iter()
                    .enumerate()
                    .filter_map(|(page, p)| Some((page, p.as_ref()?)))
                    .flat_map(move |(page, p)| {
                        p.iter().enumerate().filter_map(move |(slot, v)| {
                            v.as_ref().map(|v| (id_of(set, page, slot), v))
                        })
                    })
            })
    }

    /// Every entry's value, in ascending id order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Every id with an entry, in ascending order.
    pub fn ids(&self) -> impl Iterator<Item = SubchannelId> + '_ {
        self.iter().map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn an_empty_table_allocates_nothing_and_finds_nothing() {
        let t: SubchannelTable<u32> = SubchannelTable::new();
        assert!(t.is_empty());
        assert_eq!(t.sets.capacity(), 0);
        assert_eq!(t.get(SubchannelId::new(0, 0, 0)), None);
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn the_corners_of_the_id_space_are_distinct_entries() {
        let corners = [
            SubchannelId::new(0, 0, 0),
            SubchannelId::new(0, 0, 0xFFFF),
            SubchannelId::new(0, 3, 0),
            SubchannelId::new(0, 3, 0xFFFF),
            SubchannelId::new(0xFE, 0, 0x00FF),
            SubchannelId::new(0xFF, 3, 0xFF00),
        ];
        let mut t = SubchannelTable::new();
        for (i, id) in corners.iter().enumerate() {
            assert_eq!(t.insert(*id, i), None);
        }
        assert_eq!(t.len(), corners.len());
        for (i, id) in corners.iter().enumerate() {
            assert_eq!(t.get(*id), Some(&i), "{id}");
        }
        assert_eq!(t.ids().collect::<Vec<_>>(), corners);
    }

    #[test]
    fn the_set_id_is_taken_modulo_four_as_the_id_word_takes_it() {
        let mut t = SubchannelTable::new();
        t.insert(SubchannelId::new(0, 1, 5), 'a');
        let raw = SubchannelId {
            cssid: 0,
            ssid: 5,
            sch_no: 5,
        };
        assert_eq!(raw.to_word(), SubchannelId::new(0, 1, 5).to_word());
        assert_eq!(t.get(raw), Some(&'a'));
    }

    fn op() -> impl Strategy<Value = (bool, SubchannelId, u16)> {
        // Few sets and pages, so that inserts, replacements and removals meet.
        let id = (0u8..3, 0u8..4, prop_oneof![0u16..600, 0xFE00u16..=0xFFFF])
            .prop_map(|(c, s, n)| SubchannelId::new(c * 0x7F, s, n));
        (any::<bool>(), id, any::<u16>())
    }

    proptest! {
        /// The table answers every operation as an ordered map of the same entries does.
        #[test]
        fn the_table_is_an_ordered_map(ops in proptest::collection::vec(op(), 0..300)) {
            let mut t = SubchannelTable::new();
            let mut model = BTreeMap::new();
            for (insert, id, v) in ops {
                if insert {
                    prop_assert_eq!(t.insert(id, v), model.insert(id, v));
                } else {
                    prop_assert_eq!(t.remove(id), model.remove(&id));
                }
                prop_assert_eq!(t.get(id), model.get(&id));
                prop_assert_eq!(t.len(), model.len());
            }
            let got: Vec<_> = t.iter().map(|(id, v)| (id, *v)).collect();
            let want: Vec<_> = model.iter().map(|(id, v)| (*id, *v)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
