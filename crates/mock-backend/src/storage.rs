// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The simulated host storage the channel dereferences, and the [`Mapper`] over it.
//!
//! Device address layout:
//!
//! | device addresses | what |
//! |---|---|
//! | `0 .. ARENA_BASE` | nothing: any access is a check |
//! | [`ARENA_BASE`] `..` `ARENA_BASE + arena size` | control arena (host CCWs, IDALs, MIDAW lists); only allocated areas are accessible |
//! | above the arena, below [`GUEST_BASE`] | nothing |
//! | [`GUEST_BASE`] `+ gpa` | the attached guest memory (zero-copy: the same mmap), accessible while pinned |
//!
//! The arena sits below 16 MiB by default so that format-0 programs can run from it; guest
//! memory sits above 4 GiB so a guest address that the translator forgot to translate never
//! reaches guest memory: format-1 CCWs and format-1 IDAWs cannot address it at all, and a
//! format-2 IDAW that holds a raw guest address points at nothing.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use ccw_translate::ledger::{ControlLedger, PinLedger, check_pin};
use ccw_translate::sync::{lock, read, write};
use ccw_translate::{ControlArea, DeviceAddr, DmaAccess, GuestRange, MapError, Mapper};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

/// Device address of the first byte of the control arena.
pub const ARENA_BASE: u64 = 0x0001_0000;
/// Default arena size: 8 MiB, so the whole arena lies below 16 MiB (format-0 reach).
pub const DEFAULT_ARENA_SIZE: usize = 8 << 20;
/// Largest arena: it must end below 2 GiB (31-bit CCW and IDAL addresses).
pub const MAX_ARENA_SIZE: usize = (0x8000_0000 - ARENA_BASE) as usize;
/// Device address at which guest physical address 0 appears.
pub const GUEST_BASE: u64 = 0x1_0000_0000;
/// Allocation granularity of the arena (quadword, so MIDAW lists can live anywhere in it).
const ARENA_ALIGN: u64 = 16;
const PAGE: u64 = 4096;

/// Why the channel could not access storage. Becomes a subchannel-status check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageCheck {
    /// No storage at that address (program check).
    Nonexistent,
    /// Storage exists but is not accessible to the channel now (guest page not pinned):
    /// channel-data check.
    NotPinned,
    /// Storage key mismatch: protection check.
    Protection,
}

/// Outstanding mappings, for tests that assert nothing leaked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MappingStats {
    /// Successful `pin` calls not yet matched by `unpin`.
    pub pins: usize,
    /// Distinct guest pages currently pinned.
    pub pinned_pages: usize,
    /// Control areas allocated and not freed.
    pub control_areas: usize,
    /// Bytes of arena in those areas (rounded to the allocation granularity).
    pub control_bytes: usize,
    /// `unpin` calls for ranges that were not pinned (a caller bug).
    pub unbalanced_unpins: usize,
}

impl MappingStats {
    /// Whether nothing is pinned or allocated.
    pub fn is_idle(&self) -> bool {
        self.pins == 0 && self.pinned_pages == 0 && self.control_areas == 0
    }
}

/// The simulated host storage: control arena plus the attached guest memory.
#[derive(Debug)]
pub(crate) struct HostStorage {
    arena_mem: GuestMemoryMmap,
    arena_size: u64,
    arena: Mutex<ControlLedger>,
    guest: RwLock<Option<GuestMemoryMmap>>,
    /// The pinned guest ranges, with a count per guest page.
    pins: Mutex<PinLedger>,
    require_pins: bool,
    /// Storage keys per device page: (key, fetch protection). Absent = key 0, not protected.
    keys: Mutex<HashMap<u64, (u8, bool)>>,
}

impl HostStorage {
    pub(crate) fn new(
        arena_size: usize,
        guest: Option<GuestMemoryMmap>,
        require_pins: bool,
    ) -> std::io::Result<Self> {
        let arena_size = arena_size.clamp(PAGE as usize, MAX_ARENA_SIZE);
        let arena_mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(ARENA_BASE), arena_size)])
            .map_err(|e| std::io::Error::other(format!("arena mmap: {e}")))?;
        Ok(Self {
            arena_mem,
            arena_size: arena_size as u64,
            arena: Mutex::new(ControlLedger::new(
                ARENA_BASE,
                arena_size as u64,
                ARENA_ALIGN,
                "control arena",
            )),
            guest: RwLock::new(guest),
            pins: Mutex::new(PinLedger::new()),
            require_pins,
            keys: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn attach_guest(&self, mem: GuestMemoryMmap) {
        *write(&self.guest) = Some(mem);
    }

    pub(crate) fn stats(&self) -> MappingStats {
        let arena = lock(&self.arena);
        let pins = lock(&self.pins);
        MappingStats {
            pins: pins.outstanding(),
            pinned_pages: pins.pinned_pages(),
            control_areas: arena.outstanding(),
            control_bytes: arena.allocator().used_bytes() as usize,
            unbalanced_unpins: pins.unbalanced(),
        }
    }

    pub(crate) fn set_storage_key(&self, addr: u64, key: u8, fetch_protect: bool) {
        let mut keys = lock(&self.keys);
        if key == 0 && !fetch_protect {
            keys.remove(&(addr / PAGE));
        } else {
            keys.insert(addr / PAGE, (key & 0xF, fetch_protect));
        }
    }

    fn check_key(&self, addr: u64, len: u64, key: u8, store: bool) -> Result<(), StorageCheck> {
        if key == 0 || len == 0 {
            return Ok(());
        }
        let keys = lock(&self.keys);
        if keys.is_empty() {
            // Every page has key 0: only key 0 may store.
            return if store {
                Err(StorageCheck::Protection)
            } else {
                Ok(())
            };
        }
        for page in addr / PAGE..=(addr + len - 1) / PAGE {
            let (k, fp) = keys.get(&page).copied().unwrap_or((0, false));
            if k != key && (store || fp) {
                return Err(StorageCheck::Protection);
            }
        }
        Ok(())
    }

    /// Whether storage exists at every byte of `[addr, addr + len)` (at `addr` for `len`
    /// 0). Pins and keys are not looked at: this is the addressing part of a storage access,
    /// which the channel checks for a whole data area before it transfers into it.
    pub(crate) fn exists(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        if addr >= ARENA_BASE && end <= ARENA_BASE + self.arena_size {
            lock(&self.arena)
                .allocator()
                .covers(addr - ARENA_BASE, len.max(1))
        } else if addr >= GUEST_BASE {
            let guest = read(&self.guest);
            let Ok(len) = usize::try_from(len.max(1)) else {
                return false;
            };
            guest
                .as_ref()
                .is_some_and(|g| g.check_range(GuestAddress(addr - GUEST_BASE), len))
        } else {
            false
        }
    }

    /// Checks `[addr, addr + len)` for a channel access with storage key `key`.
    fn check(&self, addr: u64, len: u64, key: u8, store: bool) -> Result<(), StorageCheck> {
        if !self.exists(addr, len) {
            return Err(StorageCheck::Nonexistent);
        }
        if addr >= GUEST_BASE {
            let gpa = addr - GUEST_BASE;
            if self.require_pins && len > 0 {
                let pins = lock(&self.pins);
                for page in gpa / PAGE..=(gpa + len - 1) / PAGE {
                    if !pins.is_page_pinned(page) {
                        return Err(StorageCheck::NotPinned);
                    }
                }
            }
        }
        self.check_key(addr, len, key, store)
    }

    /// Debug read: existence is checked, pins and keys are not.
    pub(crate) fn peek(&self, addr: u64, buf: &mut [u8]) -> Result<(), StorageCheck> {
        self.access(addr, buf.len(), |mem, a| mem.read_slice(buf, a).is_ok())
    }

    /// Debug write: existence is checked, pins and keys are not.
    pub(crate) fn poke(&self, addr: u64, buf: &[u8]) -> Result<(), StorageCheck> {
        self.access(addr, buf.len(), |mem, a| mem.write_slice(buf, a).is_ok())
    }

    fn access(
        &self,
        addr: u64,
        len: usize,
        f: impl FnOnce(&GuestMemoryMmap, GuestAddress) -> bool,
    ) -> Result<(), StorageCheck> {
        let end = addr
            .checked_add(len as u64)
            .ok_or(StorageCheck::Nonexistent)?;
        let ok = if addr >= ARENA_BASE && end <= ARENA_BASE + self.arena_size {
            lock(&self.arena)
                .allocator()
                .covers(addr - ARENA_BASE, (len as u64).max(1))
                && f(&self.arena_mem, GuestAddress(addr))
        } else if addr >= GUEST_BASE {
            let guest = read(&self.guest);
            guest
                .as_ref()
                .is_some_and(|g| f(g, GuestAddress(addr - GUEST_BASE)))
        } else {
            false
        };
        if ok {
            Ok(())
        } else {
            Err(StorageCheck::Nonexistent)
        }
    }

    /// Channel fetch (CCW, IDAW, MIDAW, write data) of `buf.len()` bytes at `addr`.
    pub(crate) fn read(&self, addr: u64, buf: &mut [u8], key: u8) -> Result<(), StorageCheck> {
        self.check(addr, buf.len() as u64, key, false)?;
        self.peek(addr, buf)
    }

    /// Channel store (read data, sense) of `buf` at `addr`.
    pub(crate) fn write(&self, addr: u64, buf: &[u8], key: u8) -> Result<(), StorageCheck> {
        self.check(addr, buf.len() as u64, key, true)?;
        self.poke(addr, buf)
    }
}

impl Mapper for HostStorage {
    fn pin(&self, range: GuestRange, _access: DmaAccess) -> Result<DeviceAddr, MapError> {
        check_pin(range)?;
        {
            let guest = read(&self.guest);
            match guest.as_ref() {
                Some(g) if g.check_range(GuestAddress(range.gpa), range.len as usize) => {}
                _ => return Err(MapError::NotMapped(range)),
            }
        }
        lock(&self.pins).pin(range)?;
        Ok(GUEST_BASE + range.gpa)
    }

    fn unpin(&self, range: GuestRange) {
        if !lock(&self.pins).unpin(range) {
            tracing::warn!(%range, "unpin of a range that is not pinned");
        }
    }

    /// As `pin` per range, with each lock taken once per batch and the guest region found
    /// last reused while the ranges stay inside it.
    fn pin_many(
        &self,
        ranges: &[(GuestRange, DmaAccess)],
        out: &mut [DeviceAddr],
    ) -> Result<(), (usize, MapError)> {
        let guest = read(&self.guest);
        let mut pins = lock(&self.pins);
        // The guest region `[start, end)` that held the last range.
        let mut region = (0u64, 0u64);
        for (i, (&(range, _), dev)) in ranges.iter().zip(out.iter_mut()).enumerate() {
            let end = check_pin(range).map_err(|e| (i, e))?;
            if range.gpa < region.0 || end > region.1 {
                let found = guest.as_ref().and_then(|g| {
                    g.check_range(GuestAddress(range.gpa), range.len as usize)
                        .then(|| g.find_region(GuestAddress(range.gpa)))
                        .flatten()
                });
                let Some(r) = found else {
                    return Err((i, MapError::NotMapped(range)));
                };
                let start = r.start_addr().raw_value();
                region = (start, start + r.len());
            }
            pins.pin(range).map_err(|e| (i, e))?;
            *dev = GUEST_BASE + range.gpa;
        }
        Ok(())
    }

    /// As `unpin` per range, with the lock taken once.
    fn unpin_many(&self, ranges: &[GuestRange]) {
        let mut pins = lock(&self.pins);
        for &range in ranges {
            if !pins.unpin(range) {
                tracing::warn!(%range, "unpin of a range that is not pinned");
            }
        }
    }

    fn alloc_control(&self, len: usize) -> Result<ControlArea, MapError> {
        lock(&self.arena).alloc(len)
    }

    fn write_control(
        &self,
        area: &ControlArea,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), MapError> {
        let end = offset
            .checked_add(bytes.len())
            .ok_or(MapError::Invalid("offset overflows"))?;
        if end > area.len {
            return Err(MapError::Invalid("write past the end of the control area"));
        }
        if area.addr != ARENA_BASE + area.token
            || !lock(&self.arena).allocator().covers(area.token, 1)
        {
            return Err(MapError::Invalid("not a live control area of this backend"));
        }
        self.arena_mem
            .write_slice(bytes, GuestAddress(area.addr + offset as u64))
            .map_err(|_| MapError::Invalid("control area outside the arena"))
    }

    fn free_control(&self, area: ControlArea) {
        if !lock(&self.arena).free(&area) {
            tracing::warn!(
                addr = area.addr,
                "free of a control area that is not allocated"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    #[test]
    fn arena_alloc_free_coalesces() {
        let s = HostStorage::new(1 << 16, None, true).unwrap();
        let a = s.alloc_control(10).unwrap();
        let b = s.alloc_control(100).unwrap();
        assert_eq!(a.addr, ARENA_BASE);
        assert_eq!(b.addr, ARENA_BASE + 16);
        assert_eq!(a.addr % 8, 0);
        assert!(b.addr + 100 < 0x8000_0000);
        assert_eq!(s.stats().control_areas, 2);
        s.free_control(a);
        s.free_control(b);
        assert!(s.stats().is_idle());
        // After coalescing the whole arena is one extent again.
        let big = s.alloc_control(1 << 16).unwrap();
        assert_eq!(big.addr, ARENA_BASE);
        s.free_control(big);
    }

    #[test]
    fn arena_exhaustion_is_typed() {
        let s = HostStorage::new(4096, None, true).unwrap();
        assert_eq!(
            s.alloc_control(8192),
            Err(MapError::Exhausted("control arena"))
        );
    }

    #[test]
    fn only_allocated_arena_is_accessible() {
        let s = HostStorage::new(1 << 16, None, true).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(
            s.read(ARENA_BASE, &mut b, 0),
            Err(StorageCheck::Nonexistent)
        );
        let a = s.alloc_control(8).unwrap();
        s.write_control(&a, 0, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        s.read(a.addr, &mut b, 0).unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            s.write_control(&a, 4, &[0; 8]),
            Err(MapError::Invalid("write past the end of the control area"))
        );
        let copy = ControlArea {
            addr: a.addr,
            len: a.len,
            token: a.token,
        };
        s.free_control(a);
        assert_eq!(s.read(copy.addr, &mut b, 0), Err(StorageCheck::Nonexistent));
        assert!(s.write_control(&copy, 0, &[0]).is_err());
    }

    #[test]
    fn guest_access_needs_pin_and_is_zero_copy() {
        let g = guest();
        let s = HostStorage::new(1 << 16, Some(g.clone()), true).unwrap();
        let r = GuestRange::new(0x2000, 16);
        let mut b = [0u8; 4];
        assert_eq!(
            s.read(GUEST_BASE + 0x2000, &mut b, 0),
            Err(StorageCheck::NotPinned)
        );
        let da = s.pin(r, DmaAccess::Write).unwrap();
        assert_eq!(da, GUEST_BASE + 0x2000);
        s.write(da, &[9, 8, 7, 6], 0).unwrap();
        // The write landed in the caller's own mapping.
        let mut seen = [0u8; 4];
        g.read_slice(&mut seen, GuestAddress(0x2000)).unwrap();
        assert_eq!(seen, [9, 8, 7, 6]);
        assert_eq!(s.stats().pins, 1);
        s.unpin(r);
        assert!(s.stats().is_idle());
        s.unpin(r);
        assert_eq!(s.stats().unbalanced_unpins, 1);
    }

    #[test]
    fn pin_many_pins_a_prefix_as_pin_does() {
        // Two regions with a hole between them.
        let g = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), 0x4000),
            (GuestAddress(0x10000), 0x4000),
        ])
        .unwrap();
        let s = HostStorage::new(1 << 16, Some(g), true).unwrap();
        let w = DmaAccess::Write;
        let ok = [
            (GuestRange::new(0x1000, 0x1000), w),
            (GuestRange::new(0x3ff0, 0x10), w),
            (GuestRange::new(0x10000, 8), w),
            (GuestRange::new(0x1000, 0x1000), w),
        ];
        let mut out = [0; 4];
        s.pin_many(&ok, &mut out).unwrap();
        assert_eq!(
            out,
            [0x1000, 0x3ff0, 0x10000, 0x1000].map(|a| GUEST_BASE + a)
        );
        assert_eq!((s.stats().pins, s.stats().pinned_pages), (4, 3));
        s.unpin_many(&ok.map(|(r, _)| r));
        assert!(s.stats().is_idle());
        // In the hole, then crossing a page: the batch stops there, the prefix stays pinned.
        for (bad, err) in [
            (
                GuestRange::new(0x8000, 8),
                MapError::NotMapped(GuestRange::new(0x8000, 8)),
            ),
            (
                GuestRange::new(0x1ff8, 16),
                MapError::Invalid("range crosses a 4 KiB boundary"),
            ),
        ] {
            let batch = [ok[0], (bad, w), ok[2]];
            let mut out = [0; 3];
            assert_eq!(s.pin_many(&batch, &mut out), Err((1, err)));
            assert_eq!(s.stats().pins, 1);
            s.unpin(ok[0].0);
            assert!(s.stats().is_idle());
        }
        assert_eq!(s.stats().unbalanced_unpins, 0);
    }

    #[test]
    fn pin_rejects_bad_ranges() {
        let s = HostStorage::new(1 << 16, Some(guest()), true).unwrap();
        assert!(matches!(
            s.pin(GuestRange::new(0xFFF, 2), DmaAccess::Read),
            Err(MapError::Invalid(_))
        ));
        assert!(matches!(
            s.pin(GuestRange::new(1 << 20, 8), DmaAccess::Read),
            Err(MapError::NotMapped(_))
        ));
        assert!(matches!(
            s.pin(GuestRange::new(0, 0), DmaAccess::Read),
            Err(MapError::Invalid(_))
        ));
    }

    #[test]
    fn nothing_below_the_arena_or_between_spaces() {
        let s = HostStorage::new(1 << 16, Some(guest()), false).unwrap();
        let mut b = [0u8; 8];
        for addr in [0, 0x8, ARENA_BASE - 8, 0x7FFF_FFF8, GUEST_BASE - 8] {
            assert_eq!(s.read(addr, &mut b, 0), Err(StorageCheck::Nonexistent));
        }
        assert_eq!(
            s.read(GUEST_BASE + (1 << 20) - 4, &mut b, 0),
            Err(StorageCheck::Nonexistent)
        );
        assert_eq!(
            s.read(u64::MAX - 3, &mut b, 0),
            Err(StorageCheck::Nonexistent)
        );
        // Without pin enforcement any attached guest byte is reachable.
        s.read(GUEST_BASE + 0x100, &mut b, 0).unwrap();
    }

    #[test]
    fn storage_keys() {
        let s = HostStorage::new(1 << 16, None, true).unwrap();
        let a = s.alloc_control(4096).unwrap();
        // Key 0 accesses anything.
        s.write(a.addr, &[1], 0).unwrap();
        // Key 3 may fetch unprotected key-0 storage but not store into it.
        let mut b = [0u8; 1];
        s.read(a.addr, &mut b, 3).unwrap();
        assert_eq!(s.write(a.addr, &[1], 3), Err(StorageCheck::Protection));
        s.set_storage_key(a.addr, 3, true);
        s.write(a.addr, &[1], 3).unwrap();
        assert_eq!(s.read(a.addr, &mut b, 4), Err(StorageCheck::Protection));
        s.free_control(a);
    }
}
