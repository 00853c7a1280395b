// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The bookkeeping every [`Mapper`](crate::Mapper) needs, written once: which guest ranges
//! are pinned ([`PinLedger`]) and which control areas are live ([`ControlLedger`]).
//!
//! A mapper implementation decides what a pin *does* (nothing beyond a check for vfio-ccw,
//! which pins pages itself; make the page accessible for the simulator; record it for tests)
//! and where control memory lives (a DMA buffer, the simulator's arena, a `Vec`). What it must
//! *check and count* is the same everywhere, and is here: the [`Mapper`](crate::Mapper)
//! contract on pinned ranges (non-empty, not wrapping, inside one 4 KiB page), unpins that
//! match a pin, areas that belong to this mapper and are still live, writes that stay inside
//! their area. Neither type locks: a mapper keeps them behind its own lock
//! ([`crate::sync::lock`]).
//!
//! ```
//! use ccw_translate::ledger::{ControlLedger, PinLedger};
//! use ccw_translate::GuestRange;
//! let mut pins = PinLedger::new();
//! pins.pin(GuestRange::new(0x2010, 16))?;
//! assert!(pins.is_page_pinned(0x2));
//! assert!(pins.pin(GuestRange::new(0x2ff8, 16)).is_err()); // crosses 4 KiB
//! assert!(pins.unpin(GuestRange::new(0x2010, 16)));
//! assert!(!pins.unpin(GuestRange::new(0x2010, 16))); // unbalanced: reported, counted
//! assert_eq!((pins.outstanding(), pins.unbalanced()), (0, 1));
//!
//! let mut control = ControlLedger::new(0x7000_0000, 4096, 8, "control memory");
//! let area = control.alloc(24)?;
//! assert_eq!(area.addr, 0x7000_0000);
//! assert_eq!(control.locate(&area, 8, 16)?, 8); // offset in the window
//! assert!(control.locate(&area, 8, 17).is_err());
//! assert!(control.free(&area));
//! assert!(control.locate(&area, 0, 1).is_err()); // freed
//! # Ok::<(), ccw_translate::MapError>(())
//! ```

use std::cell::Cell;
use std::collections::HashMap;

use crate::control::ControlAllocator;
use crate::mapper::{ControlArea, DeviceAddr, GuestRange, MapError};

/// The page size of the [`Mapper`](crate::Mapper) contract: no pinned range crosses it.
pub const PIN_PAGE: u64 = 4096;

/// Checks a range against the [`Mapper`](crate::Mapper) contract for `pin` (non-empty, not
/// wrapping, inside one 4 KiB page) and returns its end.
#[inline]
pub fn check_pin(range: GuestRange) -> Result<u64, MapError> {
    if range.len == 0 {
        return Err(MapError::Invalid("zero-length pin"));
    }
    let end = range
        .end()
        .ok_or(MapError::Invalid("range wraps the address space"))?;
    if range.gpa / PIN_PAGE != (end - 1) / PIN_PAGE {
        return Err(MapError::Invalid("range crosses a 4 KiB boundary"));
    }
    Ok(end)
}

/// 4 KiB pages per chunk of the [`PinLedger`]'s page table (2 MiB of guest memory).
const CHUNK_PAGES: u64 = 512;

/// What the [`PinLedger`] knows of one 4 KiB page.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Pins of any range on the page.
    pins: u32,
    /// Pins of the page's own range (`off`, `len`); a page's other ranges are in `extra`.
    n: u32,
    off: u16,
    len: u16,
}

/// The pinned guest ranges of a mapper: a multiset of ranges (an unpin must match a pin of
/// the same range) with a count per 4 KiB page (what a device may access).
///
/// A page table of 2 MiB chunks: a pin or unpin of a page's usual range (one range per
/// page, as the translator pins) updates the page's slot, found without hashing when the
/// chunk is the one used last, so a batch of pins costs a few instructions each. Further
/// distinct ranges on the same page go to a hash map. Chunks stay once made (bounded by
/// the guest memory ever pinned, 6 KiB per 2 MiB), so a warm ledger pins and unpins
/// without allocating.
#[derive(Debug, Clone)]
pub struct PinLedger {
    /// Chunk number (page / [`CHUNK_PAGES`]) -> index in `chunks`.
    index: HashMap<u64, usize>,
    chunks: Vec<Box<[Slot; CHUNK_PAGES as usize]>>,
    /// The chunk looked up last: (chunk number, index); `u64::MAX` matches no chunk.
    last: Cell<(u64, usize)>,
    /// Pins of ranges that are not their page's own.
    extra: HashMap<GuestRange, usize>,
    outstanding: usize,
    pages: usize,
    unbalanced: usize,
}

impl Default for PinLedger {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            chunks: Vec::new(),
            last: Cell::new((u64::MAX, 0)),
            extra: HashMap::new(),
            outstanding: 0,
            pages: 0,
            unbalanced: 0,
        }
    }
}

impl PinLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of chunk `chunk` in `chunks`, if it was ever made.
    #[inline]
    fn chunk(&self, chunk: u64) -> Option<usize> {
        let (c, i) = self.last.get();
        if c == chunk {
            return Some(i);
        }
        let i = *self.index.get(&chunk)?;
        self.last.set((chunk, i));
        Some(i)
    }

    #[inline]
    fn slot(&self, page: u64) -> Option<&Slot> {
        let i = self.chunk(page / CHUNK_PAGES)?;
        Some(&self.chunks[i][(page % CHUNK_PAGES) as usize])
    }

    /// Checks `range` ([`check_pin`]) and counts the pin.
    // Inlined into the batch loops of the mappers (pin_many / unpin_many).
    #[inline(always)]
    pub fn pin(&mut self, range: GuestRange) -> Result<(), MapError> {
        check_pin(range)?;
        let page = range.gpa / PIN_PAGE;
        // Inside one page: both fit 16 bits.
        let (off, len) = ((range.gpa % PIN_PAGE) as u16, range.len as u16);
        let chunk = page / CHUNK_PAGES;
        let i = match self.chunk(chunk) {
            Some(i) => i,
            None => {
                let i = self.chunks.len();
                self.index.insert(chunk, i);
                self.chunks
                    .push(Box::new([Slot::default(); CHUNK_PAGES as usize]));
                i
            }
        };
        let slot = &mut self.chunks[i][(page % CHUNK_PAGES) as usize];
        if slot.pins == 0 {
            self.pages += 1;
        }
        slot.pins += 1;
        if slot.n == 0 {
            (slot.off, slot.len, slot.n) = (off, len, 1);
        } else if (slot.off, slot.len) == (off, len) {
            slot.n += 1;
        } else {
            *self.extra.entry(range).or_insert(0) += 1;
        }
        self.outstanding += 1;
        Ok(())
    }

    /// Drops one pin of `range`; `false` (and one more [`Self::unbalanced`]) when `range` is
    /// not pinned: a caller bug the mapper should report.
    // Inlined into the batch loops of the mappers (pin_many / unpin_many).
    #[inline(always)]
    pub fn unpin(&mut self, range: GuestRange) -> bool {
        let page = range.gpa / PIN_PAGE;
        let key = ((range.gpa % PIN_PAGE) as u16, range.len as u16);
        let own = check_pin(range).is_ok()
            && self
                .slot(page)
                .is_some_and(|s| s.n > 0 && (s.off, s.len) == key);
        if !own {
            match self.extra.get_mut(&range) {
                Some(n) => {
                    *n -= 1;
                    if *n == 0 {
                        self.extra.remove(&range);
                    }
                }
                None => {
                    self.unbalanced += 1;
                    return false;
                }
            }
        }
        // A pinned range has a slot.
        let Some(i) = self.chunk(page / CHUNK_PAGES) else {
            return false;
        };
        let slot = &mut self.chunks[i][(page % CHUNK_PAGES) as usize];
        if own {
            slot.n -= 1;
        }
        slot.pins -= 1;
        if slot.pins == 0 {
            self.pages -= 1;
        }
        self.outstanding -= 1;
        true
    }

    /// Pins not yet matched by an unpin.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Distinct 4 KiB pages with at least one pin.
    pub fn pinned_pages(&self) -> usize {
        self.pages
    }

    /// Whether the 4 KiB page with number `page` (address / 4096) holds a pin.
    #[inline]
    pub fn is_page_pinned(&self, page: u64) -> bool {
        self.slot(page).is_some_and(|s| s.pins > 0)
    }

    /// Unpins that matched no pin.
    pub fn unbalanced(&self) -> usize {
        self.unbalanced
    }

    /// Every pinned range, once per outstanding pin, sorted by address.
    pub fn ranges(&self) -> Vec<GuestRange> {
        let mut v: Vec<GuestRange> = self
            .extra
            .iter()
            .flat_map(|(&r, &n)| std::iter::repeat_n(r, n))
            .collect();
        for (&chunk, &i) in &self.index {
            for (k, s) in self.chunks[i].iter().enumerate() {
                let gpa = (chunk * CHUNK_PAGES + k as u64) * PIN_PAGE + s.off as u64;
                let r = GuestRange::new(gpa, s.len as u64);
                v.extend(std::iter::repeat_n(r, s.n as usize));
            }
        }
        v.sort();
        v
    }
}

/// The control areas of a mapper: a window of its device address space at `base`,
/// allocated first fit ([`ControlAllocator`]), with the checks every
/// [`Mapper::write_control`](crate::Mapper::write_control) needs.
#[derive(Debug, Clone)]
pub struct ControlLedger {
    base: DeviceAddr,
    alloc: ControlAllocator,
    what: &'static str,
}

impl ControlLedger {
    /// A window of `len` bytes at device address `base`, blocks aligned to `align`; `what`
    /// names the memory in [`MapError::Exhausted`].
    pub fn new(base: DeviceAddr, len: u64, align: u64, what: &'static str) -> Self {
        Self {
            base,
            alloc: ControlAllocator::new(len, align),
            what,
        }
    }

    /// The device address of the window.
    pub fn base(&self) -> DeviceAddr {
        self.base
    }

    /// Allocates an area of `len` bytes (its `token` is its offset in the window).
    pub fn alloc(&mut self, len: usize) -> Result<ControlArea, MapError> {
        if len == 0 {
            return Err(MapError::Invalid("zero-length control area"));
        }
        let off = self
            .alloc
            .alloc(len as u64)
            .ok_or(MapError::Exhausted(self.what))?;
        Ok(ControlArea {
            addr: self.base + off,
            len,
            token: off,
        })
    }

    /// Checks that `area` is a live area of this window and that `[offset, offset + n)` lies
    /// inside it; returns the offset of the first byte in the window.
    pub fn locate(&self, area: &ControlArea, offset: usize, n: usize) -> Result<usize, MapError> {
        let live = self
            .alloc
            .len_of(area.token)
            .is_some_and(|l| area.len as u64 <= l);
        if !live || area.addr != self.base.wrapping_add(area.token) {
            return Err(MapError::Invalid("not a live control area of this mapper"));
        }
        match offset.checked_add(n) {
            Some(end) if end <= area.len => usize::try_from(area.token)
                .ok()
                .and_then(|t| t.checked_add(offset))
                .ok_or(MapError::Invalid("control area outside the window")),
            _ => Err(MapError::Invalid("write past the end of the control area")),
        }
    }

    /// Frees `area`; `false` when it is not live (a double or wild free the mapper should
    /// report).
    pub fn free(&mut self, area: &ControlArea) -> bool {
        area.addr == self.base.wrapping_add(area.token) && self.alloc.free(area.token)
    }

    /// The allocator, for questions about extents ([`ControlAllocator::covers`], ...).
    pub fn allocator(&self) -> &ControlAllocator {
        &self.alloc
    }

    /// Areas allocated and not freed.
    pub fn outstanding(&self) -> usize {
        self.alloc.outstanding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_contract() {
        let mut p = PinLedger::new();
        for bad in [
            GuestRange::new(0x1000, 0),
            GuestRange::new(0xfff, 2),
            GuestRange::new(u64::MAX, 2),
        ] {
            assert!(matches!(p.pin(bad), Err(MapError::Invalid(_))), "{bad}");
        }
        assert_eq!(p.outstanding(), 0);
        let r = GuestRange::new(0x1ff0, 0x10);
        p.pin(r).unwrap();
        p.pin(r).unwrap();
        p.pin(GuestRange::new(0x1000, 8)).unwrap();
        assert_eq!((p.outstanding(), p.pinned_pages()), (3, 1));
        assert_eq!(p.ranges(), vec![GuestRange::new(0x1000, 8), r, r]);
        // An unpin of a different range over the same page does not balance anything.
        assert!(!p.unpin(GuestRange::new(0x1ff0, 8)));
        assert!(p.unpin(r) && p.unpin(r));
        assert!(p.is_page_pinned(1));
        assert!(p.unpin(GuestRange::new(0x1000, 8)));
        assert!(!p.is_page_pinned(1));
        assert_eq!(
            (p.outstanding(), p.pinned_pages(), p.unbalanced()),
            (0, 0, 1)
        );
    }

    proptest::proptest! {
        #![proptest_config(ccw_testkit::proptest_config(256))]

        /// The page table answers as a plain multiset of ranges would: pins on a few pages
        /// of two chunks, several distinct ranges per page, unpins matched or not.
        #[test]
        fn pin_ledger_is_a_multiset_of_ranges(
            ops in proptest::collection::vec(
                (
                    proptest::prelude::any::<bool>(),
                    proptest::sample::select(vec![0u64, 1, 2, 511, 512, 513, 1 << 20]),
                    proptest::sample::select(vec![(0u64, 4096u64), (0, 16), (16, 16), (4088, 8), (100, 0), (4090, 8)]),
                ),
                0..200,
            )
        ) {
            use std::collections::BTreeMap;
            let mut ledger = PinLedger::new();
            let mut model: BTreeMap<GuestRange, usize> = BTreeMap::new();
            let mut unbalanced = 0;
            for (pin, page, (off, len)) in ops {
                let r = GuestRange::new(page * PIN_PAGE + off, len);
                let valid = check_pin(r).is_ok();
                if pin {
                    proptest::prop_assert_eq!(ledger.pin(r).is_ok(), valid);
                    if valid {
                        *model.entry(r).or_insert(0) += 1;
                    }
                } else {
                    let held = model.get(&r).copied().unwrap_or(0);
                    proptest::prop_assert_eq!(ledger.unpin(r), held > 0);
                    match held {
                        0 => unbalanced += 1,
                        1 => { model.remove(&r); }
                        _ => { model.insert(r, held - 1); }
                    }
                }
                let ranges: Vec<GuestRange> = model
                    .iter()
                    .flat_map(|(&r, &n)| std::iter::repeat_n(r, n))
                    .collect();
                proptest::prop_assert_eq!(ledger.outstanding(), ranges.len());
                proptest::prop_assert_eq!(ledger.unbalanced(), unbalanced);
                proptest::prop_assert_eq!(&ledger.ranges(), &ranges);
                let pages: std::collections::BTreeSet<u64> =
                    ranges.iter().map(|r| r.gpa / PIN_PAGE).collect();
                proptest::prop_assert_eq!(ledger.pinned_pages(), pages.len());
                for p in [0u64, 1, 2, 511, 512, 513, 1 << 20, 3] {
                    proptest::prop_assert_eq!(ledger.is_page_pinned(p), pages.contains(&p));
                }
            }
        }
    }

    #[test]
    fn control_areas_are_checked() {
        let mut c = ControlLedger::new(0x10_000, 64, 8, "arena");
        assert!(matches!(c.alloc(0), Err(MapError::Invalid(_))));
        let a = c.alloc(10).unwrap();
        let b = c.alloc(8).unwrap();
        assert_eq!((a.addr, b.addr, b.token), (0x10_000, 0x10_010, 16));
        assert_eq!(c.alloc(64), Err(MapError::Exhausted("arena")));
        assert_eq!(c.locate(&b, 0, 8), Ok(16));
        assert!(c.locate(&b, 1, 8).is_err());
        assert!(c.locate(&b, usize::MAX, 2).is_err());
        // An area of another window, or one claiming to be longer than it is.
        let forged = ControlArea {
            addr: 0x20_010,
            len: 8,
            token: 16,
        };
        assert!(c.locate(&forged, 0, 1).is_err() && !c.free(&forged));
        let longer = ControlArea {
            addr: b.addr,
            len: 32,
            token: 16,
        };
        assert!(c.locate(&longer, 0, 1).is_err());
        assert!(c.free(&a) && !c.free(&a));
        assert!(c.free(&b));
        assert_eq!(c.outstanding(), 0);
        assert_eq!(c.alloc(64).map(|a| a.addr), Ok(0x10_000));
    }
}
