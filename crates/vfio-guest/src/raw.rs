// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Raw io-region access for the kernel-torture group: programs live in a DMA-mapped control
//! window of their own and go straight into vfio-ccw's io region, bypassing ccw-translate.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccw_translate::{ControlArea, Mapper};
use ccw_types::{Irb, Orb};
use css_conformance::{RawChannel, RawOutcome};
use css_core::BackendError;
use vfio_backend::{
    DEFAULT_CONTROL_IOVA, EventFd, VfioDevice, VfioMapper, poll_readable, start_request, uapi,
};

/// The raw channel's window: 4 MiB below the backend's, 1 MiB long; nothing is mapped right
/// after it, so its end is the end of mapped memory for the IDAL cases.
const RAW_IOVA: u64 = DEFAULT_CONTROL_IOVA - (4 << 20);
const RAW_LEN: usize = 1 << 20;

/// `VFIO_CCW_ASYNC_CMD_HSCH` and `_CSCH`.
const HSCH: u32 = 1;
const CSCH: u32 = 2;

/// A vfio-ccw device driven through its regions only. Owns the io interrupt while it lives
/// (the backend must be shut down first) and disconnects it on drop.
pub(crate) struct VfioRaw {
    device: Arc<VfioDevice>,
    mapper: VfioMapper,
    efd: EventFd,
    areas: Mutex<Vec<ControlArea>>,
}

fn errno(e: &BackendError) -> i32 {
    e.errno.unwrap_or(libc::EIO)
}

impl VfioRaw {
    pub(crate) fn new(device: Arc<VfioDevice>) -> Result<Self, BackendError> {
        let mapper = VfioMapper::new(device.clone(), RAW_IOVA, RAW_LEN)?;
        let efd = device.eventfd(false)?;
        device.set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, Some(&efd))?;
        Ok(Self {
            device,
            mapper,
            efd,
            areas: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on the allocation holding `addr..addr+len` and the offset of `addr` in it.
    fn with_area<T>(
        &self,
        addr: u32,
        len: usize,
        f: impl FnOnce(&ControlArea, usize) -> Result<T, String>,
    ) -> Result<T, String> {
        let areas = self.areas.lock().unwrap_or_else(|p| p.into_inner());
        let a = areas
            .iter()
            .find(|a| {
                u64::from(addr) >= a.addr && u64::from(addr) + len as u64 <= a.addr + a.len as u64
            })
            .ok_or_else(|| format!("{addr:#x}+{len:#x} is in no raw allocation"))?;
        f(a, (u64::from(addr) - a.addr) as usize)
    }
}

impl Drop for VfioRaw {
    fn drop(&mut self) {
        if let Err(e) = self.device.set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, None) {
            tracing::warn!(error = %e, "raw channel: disconnecting the io interrupt failed");
        }
        let areas = std::mem::take(&mut *self.areas.lock().unwrap_or_else(|p| p.into_inner()));
        for a in areas {
            self.mapper.free_control(a);
        }
    }
}

impl RawChannel for VfioRaw {
    fn alloc(&self, len: usize) -> Result<u32, String> {
        let a = self.mapper.alloc_control(len).map_err(|e| e.to_string())?;
        let zeros = vec![0u8; a.len];
        self.mapper
            .write_control(&a, 0, &zeros)
            .map_err(|e| e.to_string())?;
        let addr = u32::try_from(a.addr).map_err(|_| format!("area at {:#x} above 4 GiB", a.addr));
        self.areas.lock().unwrap_or_else(|p| p.into_inner()).push(a);
        addr
    }

    fn write(&self, addr: u32, bytes: &[u8]) -> Result<(), String> {
        self.with_area(addr, bytes.len(), |a, off| {
            self.mapper
                .write_control(a, off, bytes)
                .map_err(|e| e.to_string())
        })
    }

    fn read(&self, addr: u32, buf: &mut [u8]) -> Result<(), String> {
        let len = buf.len();
        self.with_area(addr, len, |a, off| {
            self.mapper
                .read_control(a, off, buf)
                .map_err(|e| e.to_string())
        })
    }

    fn end_of_mapped(&self) -> u32 {
        (RAW_IOVA + RAW_LEN as u64) as u32
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
