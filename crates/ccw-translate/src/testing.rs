// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Test support (feature `test-utils`): an in-memory [`Mapper`] that records what happens.
//!
//! [`RecordingMapper`] maps guest addresses to device addresses by identity or a fixed
//! offset, keeps control memory in a `Vec`, counts and (optionally) logs every call, checks
//! the [`Mapper`] contract (pins inside a 4 KiB page, unpins matching pins, areas freed
//! once: the [`ledger`](crate::ledger) every backend's mapper uses) and can inject failures. css-core's unit tests, the benchmarks and the fuzz target
//! use it.
//!
//! ```
//! use ccw_translate::{DmaAccess, GuestRange, Mapper, testing::RecordingMapper};
//! let m = RecordingMapper::new().with_offset(0x1000_0000);
//! let dev = m.pin(GuestRange::new(0x2010, 16), DmaAccess::Write)?;
//! assert_eq!(dev, 0x1000_2010);
//! assert_eq!(m.device_to_guest(dev), Some(0x2010));
//! m.unpin(GuestRange::new(0x2010, 16));
//! assert!(m.live_pins().is_empty() && m.violations().is_empty());
//! # Ok::<(), ccw_translate::MapError>(())
//! ```

use std::sync::{Mutex, MutexGuard};

use crate::ledger::{ControlLedger, PinLedger, check_pin};
use crate::mapper::{ControlArea, DeviceAddr, DmaAccess, GuestRange, MapError, Mapper, Premapped};

/// One mapper call, as logged with [`RecordingMapper::recording`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A successful pin.
    Pin(GuestRange, DmaAccess, DeviceAddr),
    /// An unpin.
    Unpin(GuestRange),
    /// A control area was allocated.
    Alloc {
        /// Device address.
        addr: DeviceAddr,
        /// Length.
        len: usize,
    },
    /// A control area was freed.
    Free {
        /// Device address.
        addr: DeviceAddr,
    },
}

/// Call counters of a [`RecordingMapper`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful pins.
    pub pins: u64,
    /// Unpins.
    pub unpins: u64,
    /// Successful control allocations.
    pub allocs: u64,
    /// Control frees.
    pub frees: u64,
    /// Successful control writes.
    pub writes: u64,
}

#[derive(Debug)]
struct State {
    offset: u64,
    control: Vec<u8>,
    areas: ControlLedger,
    pins: PinLedger,
    log: Option<Vec<Event>>,
    stats: Stats,
    violations: Vec<String>,
    fail_pin_at: Option<u64>,
    fail_alloc: bool,
    fail_write: bool,
    guest_limit: Option<u64>,
    premapped: Option<(u64, u64)>,
}

/// An in-memory [`Mapper`] for tests: identity or offset device addresses, control memory in
/// a `Vec`, every call counted, contract violations collected, failures injectable.
#[derive(Debug)]
pub struct RecordingMapper {
    state: Mutex<State>,
}

impl Default for RecordingMapper {
    fn default() -> Self {
        Self::new()
    }
}

/// Default device address of the control memory.
pub const CONTROL_BASE: u64 = 0x7000_0000;
/// Default size of the control memory.
pub const CONTROL_SIZE: usize = 2 << 20;

impl RecordingMapper {
    /// Identity device addresses; 2 MiB of control memory at device address 0x7000_0000.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                offset: 0,
                control: vec![0; CONTROL_SIZE],
                areas: ControlLedger::new(CONTROL_BASE, CONTROL_SIZE as u64, 8, "control memory"),
                pins: PinLedger::new(),
                log: None,
                stats: Stats::default(),
                violations: Vec::new(),
                fail_pin_at: None,
                fail_alloc: false,
                fail_write: false,
                guest_limit: None,
                premapped: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Device address = guest address + `offset` (wrapping).
    pub fn with_offset(self, offset: u64) -> Self {
        self.lock().offset = offset;
        self
    }

    /// Control memory of `size` bytes at device address `base` (8-aligned, below 2 GiB for a
    /// well-behaved mapper; tests of the translator's checks may break that on purpose).
    pub fn with_control(self, base: u64, size: usize) -> Self {
        {
            let mut s = self.lock();
            s.areas = ControlLedger::new(base, size as u64, 8, "control memory");
            s.control = vec![0; size];
        }
        self
    }

    /// Logs every call (see [`Self::events`]); off by default so a warm mapper allocates
    /// nothing.
    pub fn recording(self, on: bool) -> Self {
        self.lock().log = on.then(Vec::new);
        self
    }

    /// Guest memory ends at `limit`: pins at or beyond it fail with [`MapError::NotMapped`].
    pub fn with_guest_limit(self, limit: u64) -> Self {
        self.lock().guest_limit = Some(limit);
        self
    }

    /// Declares guest `[start, end)` premapped ([`Mapper::premapped`], at the mapper's
    /// offset): the translator must neither pin nor unpin inside it, and a pin or unpin
    /// there is recorded as a violation.
    pub fn with_premapped(self, start: u64, end: u64) -> Self {
        self.lock().premapped = Some((start, end));
        self
    }

    /// The pin after `n` more successful pins fails with [`MapError::Exhausted`]
    /// (`None`: never).
    pub fn fail_pin_after(&self, n: Option<u64>) {
        let mut s = self.lock();
        s.fail_pin_at = n.map(|n| s.stats.pins + n);
    }

    /// Control allocations fail with [`MapError::Exhausted`].
    pub fn fail_alloc(&self, on: bool) {
        self.lock().fail_alloc = on;
    }

    /// Control writes fail with [`MapError::Os`] (`EIO`).
    pub fn fail_write(&self, on: bool) {
        self.lock().fail_write = on;
    }

    /// The device-address offset.
    pub fn offset(&self) -> u64 {
        self.lock().offset
    }

    /// The guest address a data device address stands for.
    pub fn device_to_guest(&self, dev: DeviceAddr) -> Option<u64> {
        Some(dev.wrapping_sub(self.lock().offset))
    }

    /// Currently pinned ranges (a multiset, sorted by address).
    pub fn live_pins(&self) -> Vec<GuestRange> {
        self.lock().pins.ranges()
    }

    /// Number of control areas not yet freed.
    pub fn live_areas(&self) -> usize {
        self.lock().areas.outstanding()
    }

    /// Call counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats
    }

    /// The call log (empty unless [`Self::recording`] is on).
    pub fn events(&self) -> Vec<Event> {
        self.lock().log.clone().unwrap_or_default()
    }

    /// Contract violations seen so far (unpin without pin, pin across 4 KiB, double free, ...).
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Copies `out.len()` bytes of control memory at device address `addr`; `false` if the
    /// range is not inside the control memory.
    pub fn read_control(&self, addr: DeviceAddr, out: &mut [u8]) -> bool {
        let s = self.lock();
        let Some(off) = addr.checked_sub(s.areas.base()) else {
            return false;
        };
        let Ok(off) = usize::try_from(off) else {
            return false;
        };
        match s.control.get(off..off + out.len()) {
            Some(src) => {
                out.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

impl State {
    fn premapped(&self) -> Option<Premapped> {
        self.premapped.map(|(start, end)| Premapped {
            start,
            end,
            offset: self.offset,
        })
    }

    #[inline(always)]
    fn pin(&mut self, range: GuestRange, access: DmaAccess) -> Result<DeviceAddr, MapError> {
        self.check_not_premapped("pin", range);
        if let Err(e) = check_pin(range) {
            self.violations
                .push(format!("pin of {range} crosses 4 KiB or is empty"));
            return Err(e);
        }
        if self.fail_pin_at == Some(self.stats.pins) {
            self.fail_pin_at = None;
            return Err(MapError::Exhausted("injected pin failure"));
        }
        if let Some(limit) = self.guest_limit {
            if range.gpa + range.len > limit {
                return Err(MapError::NotMapped(range));
            }
        }
        let dev = range.gpa.wrapping_add(self.offset);
        self.pins.pin(range)?;
        self.stats.pins += 1;
        if let Some(log) = self.log.as_mut() {
            log.push(Event::Pin(range, access, dev));
        }
        Ok(dev)
    }

    #[inline(always)]
    fn unpin(&mut self, range: GuestRange) {
        self.check_not_premapped("unpin", range);
        if !self.pins.unpin(range) {
            self.violations
                .push(format!("unpin of {range} that is not pinned"));
        }
        self.stats.unpins += 1;
        if let Some(log) = self.log.as_mut() {
            log.push(Event::Unpin(range));
        }
    }

    #[inline]
    fn check_not_premapped(&mut self, what: &str, range: GuestRange) {
        let inside = self.premapped.is_some()
            && self
                .premapped()
                .and_then(|p| p.device_addr(range))
                .is_some();
        if inside {
            self.violations
                .push(format!("{what} of premapped range {range}"));
        }
    }
}

impl Mapper for RecordingMapper {
    fn premapped(&self) -> Option<Premapped> {
        self.lock().premapped()
    }

    fn pin(&self, range: GuestRange, access: DmaAccess) -> Result<DeviceAddr, MapError> {
        self.lock().pin(range, access)
    }

    fn unpin(&self, range: GuestRange) {
        self.lock().unpin(range);
    }

    /// One lock for the batch; each range is checked, counted and logged as by `pin`.
    fn pin_many(
        &self,
        ranges: &[(GuestRange, DmaAccess)],
        out: &mut [DeviceAddr],
    ) -> Result<(), (usize, MapError)> {
        let mut s = self.lock();
        for (i, (&(range, access), dev)) in ranges.iter().zip(out.iter_mut()).enumerate() {
            *dev = s.pin(range, access).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// One lock for the batch.
    fn unpin_many(&self, ranges: &[GuestRange]) {
        let mut s = self.lock();
        for &range in ranges {
            s.unpin(range);
        }
    }

    fn alloc_control(&self, len: usize) -> Result<ControlArea, MapError> {
        let mut s = self.lock();
        if s.fail_alloc {
            return Err(MapError::Exhausted("injected control allocation failure"));
        }
        let area = s.areas.alloc(len)?;
        s.stats.allocs += 1;
        if let Some(log) = s.log.as_mut() {
            log.push(Event::Alloc {
                addr: area.addr,
                len,
            });
        }
        Ok(area)
    }

    fn write_control(
        &self,
        area: &ControlArea,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), MapError> {
        let mut s = self.lock();
        if s.fail_write {
            return Err(MapError::Os {
                op: "write_control (injected)",
                errno: libc::EIO,
            });
        }
        let at = match s.areas.locate(area, offset, bytes.len()) {
            Ok(at) => at,
            Err(e) => {
                if s.areas.allocator().len_of(area.token).is_none() {
                    s.violations
                        .push(format!("write to unknown area {:#x}", area.addr));
                }
                return Err(e);
            }
        };
        s.control[at..at + bytes.len()].copy_from_slice(bytes);
        s.stats.writes += 1;
        Ok(())
    }

    fn free_control(&self, area: ControlArea) {
        let mut s = self.lock();
        if !s.areas.free(&area) {
            s.violations
                .push(format!("free of unknown area {:#x}", area.addr));
        }
        s.stats.frees += 1;
        if let Some(log) = s.log.as_mut() {
            log.push(Event::Free { addr: area.addr });
        }
    }
}
