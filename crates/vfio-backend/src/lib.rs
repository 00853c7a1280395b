// SPDX-License-Identifier: Apache-2.0 OR MIT

//! css-core's [`Backend`](css_core::Backend) over Linux's vfio-ccw driver.
//!
//! [`VfioBackend`] drives one vfio-ccw mediated device (one subchannel):
//!
//! - opens it through the legacy container/group API (type1v2, falling back to type1) or the
//!   iommufd cdev API (bind, IOAS alloc, attach), chosen automatically or by [`ApiChoice`];
//!   the device is named by its mdev UUID or sysfs directory;
//! - checks `VFIO_DEVICE_GET_INFO` (the CCW flag), discovers the io, async command, schib and
//!   crw regions through the region capability chain (an absent optional region makes its
//!   operations `Unsupported`) and the io, crw and req interrupts;
//! - starts I/O through the io region, halts and clears through the async command region,
//!   stores the SCHIB through the schib region, and maps errnos to condition codes as QEMU
//!   does (`EBUSY` -> cc 2, `ENODEV`/`EACCES` -> cc 3, `EAGAIN` -> retry);
//! - reports interruptions, channel reports and release requests from eventfds on tokio;
//! - gives ccw-translate a [`Mapper`](ccw_translate::Mapper) ([`VfioMapper`]) whose control
//!   memory is DMA-mapped below 2 GiB with the kernel's 2 KiB read-ahead kept mapped;
//! - tears everything down (interrupts disarmed, DMA unmapped, every fd closed) on drop and on
//!   every error path.
//!
//! [`VfioDevice`] is the synchronous layer below (one method per region access), useful for
//! tools and measurements. All system calls go through one internal module with a test
//! double, so everything above it is unit-tested on any Linux machine.
//!
//! ```no_run
//! use std::sync::Arc;
//! use css_core::{Backend, BackendEvent};
//! use vfio_backend::{ApiChoice, VfioBackend, VfioOptions};
//!
//! # async fn run() -> Result<(), css_core::BackendError> {
//! let options = VfioOptions { api: ApiChoice::Legacy, ..VfioOptions::default() };
//! let backend = VfioBackend::open_with_options("/sys/bus/mdev/devices/6dfd3ec5-e8b3-4e18-a6fe-57bc9eceb920", &options)?;
//! let mut events = backend.take_events()?;
//! let sch = backend.subchannel();
//! let schib = backend.store_schib(sch).await?;
//! println!("{sch}: devno {:04x}, via {}", schib.pmcw.flags.devno(), backend.device().api());
//! # Ok(()) }
//! ```

// `unsafe` lives in `sys` (the OS boundary) only; the compiler keeps it that way.
#![deny(unsafe_code)]

mod backend;
mod device;
mod error;
mod iommu;
mod lifecycle;
mod mapper;
mod regions;
#[allow(unsafe_code)]
mod sys;
mod sysfs;
pub mod uapi;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use backend::{VfioBackend, VfioOptions, channel_control_check_irb, start_request, start_scsw};
pub use device::{Api, ApiChoice, VfioDevice};
pub use iommu::SharedIoas;
pub use lifecycle::{ClaimedSubchannel, MdevType, is_mdev_name, subchannel_of};
pub use mapper::{DEFAULT_CONTROL_IOVA, DEFAULT_CONTROL_LEN, KERNEL_CCW_READ, VfioMapper};
pub use regions::{RegionInfo, Regions};
pub use sys::{DeviceInfo, DmaBuffer, IrqInfo, poll_readable};
pub use sysfs::is_uuid;
pub use vmm_sys_util::eventfd::EventFd;
