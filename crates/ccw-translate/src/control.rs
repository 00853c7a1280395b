// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A first-fit allocator for a backend's control memory, shared by the backends.
//!
//! Every [`Mapper`](crate::Mapper) hands out [`ControlArea`](crate::ControlArea)s from a fixed
//! window of its device address space (the simulator's arena, vfio's DMA-mapped buffer). This
//! is the bookkeeping for such a window: offsets only, no memory. Written by hand because the
//! window is small and fixed, frees must coalesce, and a backend needs to ask whether a device
//! access falls inside allocated extents ([`ControlAllocator::covers`]), which general-purpose
//! allocator crates do not answer.

use std::collections::BTreeMap;

/// First-fit allocation of `[0, len)` with coalescing frees.
///
/// ```
/// use ccw_translate::control::ControlAllocator;
/// let mut a = ControlAllocator::new(64, 8);
/// let x = a.alloc(10).unwrap(); // rounded up to 16
/// let y = a.alloc(8).unwrap();
/// assert_eq!((x, y), (0, 16));
/// assert!(a.covers(4, 20));
/// assert!(a.free(x) && a.free(y));
/// assert_eq!(a.outstanding(), 0);
/// assert_eq!(a.alloc(64), Some(0)); // coalesced back into one extent
/// ```
#[derive(Debug, Clone)]
pub struct ControlAllocator {
    align: u64,
    /// Free extents: offset -> length.
    free: BTreeMap<u64, u64>,
    /// Allocated extents: offset -> length.
    used: BTreeMap<u64, u64>,
}

impl ControlAllocator {
    /// An allocator over `[0, len)` whose blocks start and end on multiples of `align` (a power
    /// of two; 8 for CCWs and IDAWs, 16 where MIDAW lists may be placed).
    pub fn new(len: u64, align: u64) -> Self {
        let align = align.max(1).next_power_of_two();
        let len = len - len % align;
        let mut free = BTreeMap::new();
        if len > 0 {
            free.insert(0, len);
        }
        Self {
            align,
            free,
            used: BTreeMap::new(),
        }
    }

    /// Allocates at least `len` bytes (at least one alignment unit) and returns the offset, or
    /// `None` when no free extent is large enough.
    pub fn alloc(&mut self, len: u64) -> Option<u64> {
        let len = len.max(1).checked_next_multiple_of(self.align)?;
        let (&off, &flen) = self.free.iter().find(|&(_, &l)| l >= len)?;
        self.free.remove(&off);
        if flen > len {
            self.free.insert(off + len, flen - len);
        }
        self.used.insert(off, len);
        Some(off)
    }

    /// Frees the block at `off`; `false` if no block starts there (a double or wild free).
    pub fn free(&mut self, off: u64) -> bool {
        let Some(len) = self.used.remove(&off) else {
            return false;
        };
        let (mut start, mut end) = (off, off + len);
        if let Some((&prev, &plen)) = self.free.range(..off).next_back() {
            if prev + plen == start {
                self.free.remove(&prev);
                start = prev;
            }
        }
        if let Some(nlen) = self.free.remove(&end) {
            end += nlen;
        }
        self.free.insert(start, end - start);
        true
    }

    /// The (rounded) length of the block at `off`, if one is allocated there.
    pub fn len_of(&self, off: u64) -> Option<u64> {
        self.used.get(&off).copied()
    }

    /// Whether every byte of `[off, off + len)` lies inside allocated blocks.
    pub fn covers(&self, off: u64, len: u64) -> bool {
        let Some(end) = off.checked_add(len) else {
            return false;
        };
        let mut at = off;
        while at < end {
            match self.used.range(..=at).next_back() {
                Some((&s, &l)) if s + l > at => at = s + l,
                _ => return false,
            }
        }
        true
    }

    /// How many blocks are allocated.
    pub fn outstanding(&self) -> usize {
        self.used.len()
    }

    /// Bytes allocated (rounded to the alignment).
    pub fn used_bytes(&self) -> u64 {
        self.used.values().sum()
    }

    /// How many free extents there are (1 when everything has coalesced).
    pub fn free_extents(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_and_coalescing() {
        let mut a = ControlAllocator::new(64, 8);
        let x = a.alloc(10).unwrap();
        let y = a.alloc(8).unwrap();
        let z = a.alloc(40).unwrap();
        assert_eq!((x, y, z), (0, 16, 24));
        assert_eq!(a.alloc(1), None);
        assert!(a.free(y));
        assert!(!a.free(y), "double free is refused");
        assert!(a.free(x));
        assert_eq!(a.alloc(24), Some(0), "x and y coalesced into 24 bytes at 0");
        assert!(a.free(0));
        assert!(a.free(z));
        assert_eq!(a.outstanding(), 0);
        assert_eq!(a.free_extents(), 1);
        assert_eq!(a.alloc(64), Some(0));
    }

    #[test]
    fn rejects_overflow_and_zero_window() {
        let mut a = ControlAllocator::new(64, 8);
        assert_eq!(a.alloc(u64::MAX), None);
        let mut empty = ControlAllocator::new(0, 8);
        assert_eq!(empty.alloc(1), None);
    }

    #[test]
    fn covers_spans_adjacent_blocks_only() {
        let mut a = ControlAllocator::new(256, 16);
        let x = a.alloc(16).unwrap();
        let y = a.alloc(16).unwrap();
        assert!(a.covers(x, 32));
        assert!(!a.covers(y, 17), "past the last block");
        assert!(!a.covers(u64::MAX, 2), "wrapping range");
        assert!(a.free(x));
        assert!(!a.covers(0, 1));
        assert_eq!(a.used_bytes(), 16);
        assert_eq!(a.len_of(y), Some(16));
    }
}
