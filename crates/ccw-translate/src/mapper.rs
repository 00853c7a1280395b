// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The contract between the translator and a backend's device address space.
//!
//! A backend's channel subsystem dereferences *device addresses* (vfio: IOVAs; the mock: its
//! simulated host storage). The translator never copies guest data: it asks the [`Mapper`] to
//! pin a guest range and tell it the device address of that range, and it writes the host
//! channel program (CCWs and format-2 IDALs, a few bytes per CCW) into *control memory* that
//! the mapper allocates in the device address space.
//!
//! How the backend knows the guest's memory (which host pages back a guest address) is
//! decided between the consumer and the backend when the memory is attached, as a VMM maps
//! guest RAM into a VFIO container once at start-up: it is not part of this trait.

use core::fmt;

/// An address in a backend's device address space (an IOVA for vfio).
pub type DeviceAddr = u64;

/// A range of guest physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestRange {
    /// First guest address.
    pub gpa: u64,
    /// Length in bytes (at least 1).
    pub len: u64,
}

impl GuestRange {
    /// The range `[gpa, gpa + len)`.
    pub const fn new(gpa: u64, len: u64) -> Self {
        Self { gpa, len }
    }

    /// One past the last address, or `None` if the range wraps the address space.
    pub const fn end(&self) -> Option<u64> {
        self.gpa.checked_add(self.len)
    }

    /// Whether the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &GuestRange) -> bool {
        let (Some(a_end), Some(b_end)) = (self.end(), other.end()) else {
            return true;
        };
        self.gpa < b_end && other.gpa < a_end
    }
}

impl fmt::Display for GuestRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}, +{:#x})", self.gpa, self.len)
    }
}

/// The direction the device will access a pinned range in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DmaAccess {
    /// The device reads the range (a write command: storage to device).
    Read,
    /// The device writes the range (read, read backward, sense).
    Write,
}

/// A block of control memory in the device address space, allocated by
/// [`Mapper::alloc_control`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ControlArea {
    /// Device address of the first byte; 8-byte aligned and below 2 GiB (format-1 CCW and
    /// IDAL addresses are 31-bit).
    pub addr: DeviceAddr,
    /// Usable length in bytes.
    pub len: usize,
    /// Backend-private handle (slot index, offset, ...).
    pub token: u64,
}

/// Why a mapper operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The guest range is not backed by memory the backend knows.
    #[error("guest range {0} is not mapped")]
    NotMapped(GuestRange),
    /// The backend ran out of pins or control memory.
    #[error("out of mapping resources: {0}")]
    Exhausted(&'static str),
    /// The request itself is malformed (crosses a page, zero length, bad area offset).
    #[error("invalid mapping request: {0}")]
    Invalid(&'static str),
    /// The operating system refused (errno).
    #[error("{op} failed: errno {errno}")]
    Os {
        /// The operation, e.g. `"VFIO_IOMMU_MAP_DMA"`.
        op: &'static str,
        /// The errno.
        errno: i32,
    },
}

/// Guest memory that a mapper keeps mapped for the device for as long as it lives, at a
/// fixed offset: what a VMM has when it maps all guest RAM into the device's address space
/// once at start-up (IOVA = guest physical address, as QEMU maps guest RAM into a VFIO
/// container). See [`Mapper::premapped`].
///
/// ```
/// use ccw_translate::{GuestRange, Premapped};
/// let p = Premapped { start: 0x1000, end: 0x10_0000, offset: 0 };
/// assert_eq!(p.device_addr(GuestRange::new(0x2000, 0x1000)), Some(0x2000));
/// assert_eq!(p.device_addr(GuestRange::new(0xF_F000, 0x1001)), None); // past the end
/// assert_eq!(p.device_addr(GuestRange::new(0, 8)), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Premapped {
    /// First guest address of the span.
    pub start: u64,
    /// One past the last guest address of the span.
    pub end: u64,
    /// Device address = guest address + `offset`.
    pub offset: u64,
}

impl Premapped {
    /// Every guest address below `u64::MAX`, at device address = guest address.
    pub const IDENTITY: Premapped = Premapped {
        start: 0,
        end: u64::MAX,
        offset: 0,
    };

    /// The device address of `range.gpa` when the whole (non-empty) range lies inside the
    /// span and its device addresses do not wrap; `None` otherwise (the range must be pinned).
    #[inline]
    pub const fn device_addr(&self, range: GuestRange) -> Option<DeviceAddr> {
        let Some(end) = range.end() else {
            return None;
        };
        if range.len == 0 || range.gpa < self.start || end > self.end {
            return None;
        }
        match end.checked_add(self.offset) {
            Some(_) => Some(range.gpa + self.offset),
            None => None,
        }
    }
}

/// A backend's device address space as the translator sees it.
///
/// Contract:
/// - `pin` is called with ranges that never cross a 4 KiB boundary; every successful `pin` is
///   matched by exactly one `unpin` of the same range, on success and on every error path.
///   [`Mapper::pin_many`] and [`Mapper::unpin_many`] are the same calls, batched: a range
///   pinned by one may be unpinned by the other.
/// - Ranges inside the [`Mapper::premapped`] span are neither pinned nor unpinned: their
///   device address is the span's. A mapper that answers `Some` gives the same answer for as
///   long as it lives (programs hold their mapper and rely on it until they are dropped).
/// - `alloc_control` areas are 8-byte aligned and below 2 GiB; every one is freed exactly once.
/// - Implementations are thread safe: one mapper may serve several subchannels at once.
pub trait Mapper: Send + Sync {
    /// Pins `range` for device access in `access` direction and returns the device address of
    /// `range.gpa`.
    fn pin(&self, range: GuestRange, access: DmaAccess) -> Result<DeviceAddr, MapError>;

    /// Releases a pin made by [`Mapper::pin`] for the same range.
    fn unpin(&self, range: GuestRange);

    /// Pins `ranges` in order as [`Mapper::pin`] does, writing the device address of each
    /// to `out` (as long as `ranges`). It stops at the first failure: `Err((i, error))`
    /// with `ranges[..i]` pinned (the caller unpins them) and the others not.
    ///
    /// The default calls `pin` for each range; a mapper that locks or counts overrides it
    /// to do so once per batch (the translator pins a program's data with one call).
    fn pin_many(
        &self,
        ranges: &[(GuestRange, DmaAccess)],
        out: &mut [DeviceAddr],
    ) -> Result<(), (usize, MapError)> {
        debug_assert_eq!(ranges.len(), out.len());
        for (i, (&(range, access), dev)) in ranges.iter().zip(out.iter_mut()).enumerate() {
            *dev = self.pin(range, access).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Unpins `ranges` in order as [`Mapper::unpin`] does (a program's release is one
    /// call). The default calls `unpin` for each range.
    fn unpin_many(&self, ranges: &[GuestRange]) {
        for &range in ranges {
            self.unpin(range);
        }
    }

    /// Guest memory that stays mapped for the device for the mapper's whole life, if any:
    /// the translator asks once per translation, and for a data range inside the span it
    /// calls neither [`Mapper::pin`] nor [`Mapper::unpin`] and uses the span's device
    /// address (the range still appears in [`ChannelProgram::pins`](crate::ChannelProgram::pins)
    /// and [`ChannelProgram::is_pinned`](crate::ChannelProgram::is_pinned)). The guest
    /// memory check before any data is accepted is the translator's and stays.
    ///
    /// The default, `None`, pins every range: right for a mapper that counts pins or gates
    /// device access on them (the simulator, the test mapper).
    fn premapped(&self) -> Option<Premapped> {
        None
    }

    /// Allocates `len` bytes of control memory (host CCWs and IDALs).
    fn alloc_control(&self, len: usize) -> Result<ControlArea, MapError>;

    /// Writes `bytes` at `offset` inside `area`.
    fn write_control(
        &self,
        area: &ControlArea,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), MapError>;

    /// Returns control memory to the backend.
    fn free_control(&self, area: ControlArea);
}
