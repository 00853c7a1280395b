// SPDX-License-Identifier: Apache-2.0 OR MIT

//! ccw-translate's [`Mapper`] over a vfio-ccw device's IOVA space.
//!
//! - Guest memory is attached once (as a VMM maps guest RAM into a VFIO container at start-up)
//!   with IOVA = guest physical address. vfio-ccw pins pages itself when a channel program
//!   references them, so [`Mapper::pin`] only checks that the range is attached and counts
//!   the pin (so leaks are visible).
//! - Control memory (host CCWs and IDALs) comes from one DMA buffer mapped at an IOVA below
//!   2 GiB. The kernel copies 2 KiB starting at the ORB's CPA whatever the program's length,
//!   so the last 2 KiB of the buffer are never handed out: any program inside the usable part
//!   has 2 KiB of mapped memory behind it.

use std::any::Any;
use std::sync::{Arc, Mutex};

use ccw_translate::ledger::{ControlLedger, PinLedger, check_pin};
use ccw_translate::sync::lock;
use ccw_translate::{ControlArea, DeviceAddr, DmaAccess, GuestRange, MapError, Mapper};
use css_core::{BackendError, BackendErrorKind};
use vm_memory::{Address, GuestMemoryBackend, GuestMemoryRegion, MemoryRegionAddress};

use crate::device::VfioDevice;
use crate::error::error;
use crate::sys::{DmaBuffer, page_size};

/// How many bytes vfio-ccw reads at a channel program's address, whatever its length.
pub const KERNEL_CCW_READ: usize = 2048;
/// Default IOVA of the control-memory window: the last MiB below 2 GiB.
pub const DEFAULT_CONTROL_IOVA: u64 = 0x7FF0_0000;
/// Default size of the control-memory window.
pub const DEFAULT_CONTROL_LEN: usize = 1 << 20;
/// Control allocations are aligned to this (CCWs and IDAWs are 8 bytes).
const ALIGN: u64 = 8;

/// One attached guest-memory region.
#[derive(Debug, Clone, Copy)]
struct Attached {
    gpa: u64,
    len: u64,
}

/// The device address space of one vfio-ccw device, for ccw-translate.
pub struct VfioMapper {
    device: Arc<VfioDevice>,
    control: DmaBuffer,
    control_iova: u64,
    /// Bytes of `control` that may be allocated (the rest is the kernel's 2 KiB read-ahead).
    usable: usize,
    alloc: Mutex<ControlLedger>,
    memory: Mutex<Vec<Attached>>,
    pins: Mutex<PinLedger>,
    /// Guest memory objects kept alive while mapped.
    keep: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for VfioMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioMapper")
            .field("control_iova", &self.control_iova)
            .field("usable", &self.usable)
            .finish_non_exhaustive()
    }
}

pub(crate) fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    a < b.saturating_add(blen) && b < a.saturating_add(alen)
}

/// Every region of `mem` as (host address, guest physical address, length); each must be
/// page aligned and non-empty (`op` names the caller in the error).
pub(crate) fn guest_regions<M: GuestMemoryBackend>(
    mem: &M,
    op: &'static str,
) -> Result<Vec<(u64, u64, u64)>, BackendError> {
    let page = page_size() as u64;
    let mut out = Vec::new();
    for region in mem.iter() {
        let gpa = region.start_addr().raw_value();
        let len = region.len();
        let host = region
            .get_host_address(MemoryRegionAddress(0))
            .map_err(|e| error(BackendErrorKind::InvalidArgument, op, e.to_string()))?
            as u64;
        if gpa % page != 0 || len % page != 0 || host % page != 0 || len == 0 {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                op,
                format!("region {gpa:#x}+{len:#x} is not page aligned"),
            ));
        }
        out.push((host, gpa, len));
    }
    Ok(out)
}

impl VfioMapper {
    /// Allocates `len` bytes of control memory and maps them at `iova` (page aligned; the
    /// window must end at or below 2 GiB).
    pub fn new(device: Arc<VfioDevice>, iova: u64, len: usize) -> Result<Self, BackendError> {
        const OP: &str = "control memory";
        let page = page_size();
        let end = iova.checked_add(len as u64);
        if iova % page as u64 != 0
            || len % page != 0
            || len <= KERNEL_CCW_READ
            || end.is_none_or(|e| e > 1 << 31)
        {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                OP,
                format!(
                    "window {iova:#x}+{len:#x} must be page aligned, below 2 GiB and larger than 2 KiB"
                ),
            ));
        }
        let control = device.alloc_dma(len)?;
        device.dma_map(control.host_addr(), iova, control.len() as u64)?;
        let usable = control.len() - KERNEL_CCW_READ;
        Ok(Self {
            device,
            control_iova: iova,
            usable,
            alloc: Mutex::new(ControlLedger::new(
                iova,
                usable as u64,
                ALIGN,
                "vfio control memory",
            )),
            control,
            memory: Mutex::new(Vec::new()),
            pins: Mutex::new(PinLedger::new()),
            keep: Mutex::new(Vec::new()),
        })
    }

    /// The device this mapper maps for.
    pub fn device(&self) -> &Arc<VfioDevice> {
        &self.device
    }

    /// The control-memory window (IOVA, length including the 2 KiB read-ahead).
    pub fn control_window(&self) -> (u64, usize) {
        (self.control_iova, self.control.len())
    }

    /// Maps every region of `mem` at IOVA = guest physical address, and keeps `mem` alive
    /// until the mapper is dropped. Regions must be page aligned and must not overlap the
    /// control window or memory attached before.
    pub fn attach_memory<M>(&self, mem: Arc<M>) -> Result<(), BackendError>
    where
        M: GuestMemoryBackend + Send + Sync + 'static,
    {
        const OP: &str = "attach guest memory";
        if self.device.shared_ioas().is_some() {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                OP,
                "the device shares an IOAS: map guest memory once, with SharedIoas::map_guest_memory",
            ));
        }
        let regions = guest_regions(&*mem, OP)?;
        let mut plan = Vec::new();
        {
            let attached = lock(&self.memory);
            for (host, gpa, len) in regions {
                let (ci, cl) = self.control_window();
                if overlaps(gpa, len, ci, cl as u64)
                    || attached.iter().any(|a| overlaps(gpa, len, a.gpa, a.len))
                {
                    return Err(error(
                        BackendErrorKind::InvalidArgument,
                        OP,
                        format!("region {gpa:#x}+{len:#x} overlaps mapped IOVA space"),
                    ));
                }
                plan.push((host, Attached { gpa, len }));
            }
        }
        let mut done: Vec<Attached> = Vec::new();
        for (host, a) in &plan {
            if let Err(e) = self.device.dma_map(*host, a.gpa, a.len) {
                for d in &done {
                    let _ = self.device.dma_unmap(d.gpa, d.len);
                }
                return Err(e);
            }
            done.push(*a);
        }
        lock(&self.memory).extend(done);
        lock(&self.keep).push(mem);
        Ok(())
    }

    /// How many pins are outstanding (each `pin` not yet matched by an `unpin`).
    pub fn outstanding_pins(&self) -> usize {
        lock(&self.pins).outstanding()
    }

    /// How many control areas are allocated and not yet freed.
    pub fn outstanding_control(&self) -> usize {
        lock(&self.alloc).outstanding()
    }

    /// Reads back `buf.len()` bytes of control memory at `offset` in `area` (diagnostics and
    /// tests: what the device will read).
    pub fn read_control(
        &self,
        area: &ControlArea,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), MapError> {
        let base = lock(&self.alloc).locate(area, offset, buf.len())?;
        self.control.read(base, buf).map_err(|e| MapError::Os {
            op: "read control",
            errno: e.errno(),
        })
    }
}

impl Mapper for VfioMapper {
    fn pin(&self, range: GuestRange, _access: DmaAccess) -> Result<DeviceAddr, MapError> {
        let end = check_pin(range)?;
        let inside = lock(&self.memory)
            .iter()
            .any(|a| range.gpa >= a.gpa && end <= a.gpa + a.len)
            || self
                .device
                .shared_ioas()
                .is_some_and(|s| s.covers(range.gpa, end));
        if !inside {
            return Err(MapError::NotMapped(range));
        }
        lock(&self.pins).pin(range)?;
        // Identity: IOVA = guest physical address.
        Ok(range.gpa)
    }

    fn unpin(&self, range: GuestRange) {
        if !lock(&self.pins).unpin(range) {
            tracing::error!(%range, "unpin of a range that is not pinned");
        }
    }

    fn alloc_control(&self, len: usize) -> Result<ControlArea, MapError> {
        let (area, off) = {
            let mut ledger = lock(&self.alloc);
            let area = ledger.alloc(len)?;
            match ledger.locate(&area, 0, len) {
                Ok(off) => (area, off),
                Err(e) => {
                    ledger.free(&area);
                    return Err(e);
                }
            }
        };
        // Fresh areas read as zero, like newly allocated kernel memory.
        if let Err(e) = self.control.fill(off, len, 0) {
            lock(&self.alloc).free(&area);
            return Err(MapError::Os {
                op: "write control",
                errno: e.errno(),
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
        let base = lock(&self.alloc).locate(area, offset, bytes.len())?;
        self.control.write(base, bytes).map_err(|e| MapError::Os {
            op: "write control",
            errno: e.errno(),
        })
    }

    fn free_control(&self, area: ControlArea) {
        let ok = lock(&self.alloc).free(&area);
        if !ok {
            tracing::error!(addr = area.addr, "free of an unknown control area");
        }
    }
}

impl Drop for VfioMapper {
    fn drop(&mut self) {
        for a in std::mem::take(&mut *lock(&self.memory)) {
            if let Err(e) = self.device.dma_unmap(a.gpa, a.len) {
                tracing::warn!(gpa = a.gpa, %e, "teardown: guest memory unmap failed");
            }
        }
        if let Err(e) = self
            .device
            .dma_unmap(self.control_iova, self.control.len() as u64)
        {
            tracing::warn!(%e, "teardown: control memory unmap failed");
        }
        // `control` (the host memory) is freed after this, once nothing maps it.
    }
}
