// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Raw io-region access for the kernel-torture group: programs live in a DMA-mapped window of
//! their own (bump-allocated, every byte up to the window's end writable, so a case can put an
//! IDAL in the last mapped word) and go straight into vfio-ccw's io region, bypassing
//! ccw-translate.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use ccw_types::{Irb, Orb};
use css_conformance::{RawChannel, RawOutcome};
use css_core::BackendError;
use vfio_backend::{
    DEFAULT_CONTROL_IOVA, DmaBuffer, EventFd, VfioDevice, poll_readable, start_request, uapi,
};

/// The raw channel's window: 4 MiB below the backend's, 1 MiB long; nothing is mapped right
/// after it, so its end is the end of mapped memory for the IDAL cases.
const RAW_IOVA: u64 = DEFAULT_CONTROL_IOVA - (4 << 20);
const RAW_LEN: usize = 1 << 20;

/// `VFIO_CCW_ASYNC_CMD_HSCH` and `_CSCH`.
const HSCH: u32 = 1;
const CSCH: u32 = 2;

/// A vfio-ccw device driven through its regions only. Owns the io interrupt while it lives
/// (the backend's eventfd is no longer signalled) and disconnects it on drop; unmaps its
/// window on drop.
pub(crate) struct VfioRaw {
    device: Arc<VfioDevice>,
    window: DmaBuffer,
    efd: EventFd,
    /// Next free offset in the window (8-byte aligned).
    next: Mutex<usize>,
}

fn errno(e: &BackendError) -> i32 {
    e.errno.unwrap_or(libc::EIO)
}

impl VfioRaw {
    pub(crate) fn new(device: Arc<VfioDevice>) -> Result<Self, BackendError> {
        let window = device.alloc_dma(RAW_LEN)?;
        device.dma_map(window.host_addr(), RAW_IOVA, window.len() as u64)?;
        let efd = match device.eventfd(false).and_then(|e| {
            device
                .set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, Some(&e))
                .map(|()| e)
        }) {
            Ok(e) => e,
            Err(e) => {
                let _ = device.dma_unmap(RAW_IOVA, window.len() as u64);
                return Err(e);
            }
        };
        Ok(Self {
            device,
            window,
            efd,
            next: Mutex::new(0),
        })
    }

    /// The window offset of `addr..addr+len`, if it lies inside the window.
    fn offset(&self, addr: u32, len: usize) -> Result<usize, String> {
        let a = u64::from(addr);
        if a >= RAW_IOVA && a + len as u64 <= RAW_IOVA + self.window.len() as u64 {
            Ok((a - RAW_IOVA) as usize)
        } else {
            Err(format!("{addr:#x}+{len:#x} is outside the raw window"))
        }
    }
}

impl Drop for VfioRaw {
    fn drop(&mut self) {
        if let Err(e) = self.device.set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, None) {
            tracing::warn!(error = %e, "raw channel: disconnecting the io interrupt failed");
        }
        if let Err(e) = self.device.dma_unmap(RAW_IOVA, self.window.len() as u64) {
            tracing::warn!(error = %e, "raw channel: unmapping the window failed");
        }
    }
}

impl RawChannel for VfioRaw {
    fn alloc(&self, len: usize) -> Result<u32, String> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let at = *next;
        let end = at
            .checked_add(len.max(8).next_multiple_of(8))
            .filter(|&e| e <= self.window.len())
            .ok_or_else(|| format!("raw window exhausted ({len} more bytes at {at:#x})"))?;
        self.window
            .fill(at, end - at, 0)
            .map_err(|e| e.to_string())?;
        *next = end;
        Ok((RAW_IOVA + at as u64) as u32)
    }

    fn write(&self, addr: u32, bytes: &[u8]) -> Result<(), String> {
        let off = self.offset(addr, bytes.len())?;
        self.window.write(off, bytes).map_err(|e| e.to_string())
    }

    fn read(&self, addr: u32, buf: &mut [u8]) -> Result<(), String> {
        let off = self.offset(addr, buf.len())?;
        self.window.read(off, buf).map_err(|e| e.to_string())
    }

    fn end_of_mapped(&self) -> u32 {
        (RAW_IOVA + self.window.len() as u64) as u32
    }

    fn submit(&self, orb: &Orb) -> Result<(), i32> {
        self.device
            .write_io(&start_request(orb))
            .map_err(|e| errno(&e))
    }

    fn halt_or_clear(&self, clear: bool) -> Result<(), i32> {
        self.device
            .async_cmd(if clear { CSCH } else { HSCH })
            .map_err(|e| errno(&e))
    }

    fn wait(&self, timeout: Duration) -> RawOutcome {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        match poll_readable(&self.efd, ms) {
            Ok(true) => {}
            Ok(false) => return RawOutcome::NoInterrupt,
            Err(e) => return RawOutcome::Errno(e.errno()),
        }
        if let Err(e) = self.efd.read() {
            return RawOutcome::Errno(e.raw_os_error().unwrap_or(libc::EIO));
        }
        match self.device.read_io() {
            Ok(region) => match Irb::read_from(&region.irb_area) {
                Ok(irb) => RawOutcome::Irb(irb),
                Err(_) => RawOutcome::Errno(libc::EIO),
            },
            Err(e) => RawOutcome::Errno(errno(&e)),
        }
    }

    fn api(&self) -> String {
        self.device.api().to_string()
    }
}
