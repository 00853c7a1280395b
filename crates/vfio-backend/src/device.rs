// SPDX-License-Identifier: Apache-2.0 OR MIT

//! An open vfio-ccw device: the IOMMU context (legacy container/group or iommufd), the device
//! fd, its regions and interrupts, and DMA mappings. Synchronous; [`crate::VfioBackend`] puts
//! the async interface on top.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use ccw_translate::sync::lock;

use ccw_types::{Crw, Schib, SubchannelId};
use css_core::{BackendError, BackendErrorKind};
use vfio_bindings::bindings::vfio as vb;
use vmm_sys_util::eventfd::EventFd;
use zerocopy::{FromZeros, IntoBytes};

use crate::error::{error, sys_error};
use crate::iommu::{AttachedDevice, Container, DmaSpace, Ioas, Iommu, SharedIoas, SharedRef};
use crate::regions::{FIRST_ARGSZ, Parsed, Regions, parse_region_info};
use crate::sys::{DeviceInfo, DmaBuffer, Fd, HostSys, IrqInfo, Sys, SysFd};
use crate::sysfs::{self, Mdev};
use crate::uapi::{self, CmdRegion, CrwRegion, IoRegion, SchibRegion};

/// Which VFIO user-space API a device was opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `/dev/vfio/vfio` container + `/dev/vfio/<group>` (type1 IOMMU).
    Legacy,
    /// `/dev/vfio/devices/vfioN` bound to `/dev/iommu` (an IOAS).
    Cdev,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Legacy => "legacy",
            Api::Cdev => "cdev",
        })
    }
}

/// Which API to open a device with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ApiChoice {
    /// The cdev API when the kernel offers it, else the legacy API.
    #[default]
    Auto,
    /// Only the legacy container/group API.
    Legacy,
    /// Only the iommufd cdev API.
    Cdev,
}

impl FromStr for ApiChoice {
    type Err = BackendError;
    /// `auto`, `legacy` or `cdev`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ApiChoice::Auto),
            "legacy" => Ok(ApiChoice::Legacy),
            "cdev" => Ok(ApiChoice::Cdev),
            _ => Err(error(
                BackendErrorKind::InvalidArgument,
                "parse api",
                format!("`{s}`: expected auto, legacy or cdev"),
            )),
        }
    }
}

/// An open vfio-ccw mediated device.
///
/// Everything it acquired (fds, DMA mappings, interrupt triggers) is released when it is
/// dropped, and when opening fails half-way.
pub struct VfioDevice {
    sys: Arc<dyn Sys>,
    api: Api,
    mdev: Mdev,
    // Teardown order: `Drop` disarms the interrupts; then the fields drop in this order:
    // the device fd (detached from its IOAS first), the DMA mappings, the IOMMU context.
    device: AttachedDevice,
    dma: DmaSpace,
    /// The IOAS this device shares with others (dropped after the device's own mappings).
    shared: Option<Arc<SharedIoas>>,
    info: DeviceInfo,
    regions: Option<Regions>,
    irqs: Vec<IrqInfo>,
    /// Which interrupt indexes have an eventfd connected.
    armed: Mutex<[bool; uapi::VFIO_CCW_NUM_IRQS as usize]>,
}

impl fmt::Debug for VfioDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioDevice")
            .field("uuid", &self.mdev.uuid)
            .field("sch", &self.mdev.sch)
            .field("api", &self.api)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl VfioDevice {
    /// Opens the vfio-ccw mdev `name` (its UUID or its sysfs directory) with `api`.
    ///
    /// ```no_run
    /// use vfio_backend::{ApiChoice, VfioDevice};
    /// let dev = VfioDevice::open("6dfd3ec5-e8b3-4e18-a6fe-57bc9eceb920", ApiChoice::Auto)?;
    /// println!("{} via {}: {:?}", dev.subchannel(), dev.api(), dev.read_schib()?);
    /// # Ok::<(), css_core::BackendError>(())
    /// ```
    pub fn open(name: &str, api: ApiChoice) -> Result<Self, BackendError> {
        Self::open_with(Arc::new(HostSys), name, api)
    }

    pub(crate) fn open_with(
        sys: Arc<dyn Sys>,
        name: &str,
        api: ApiChoice,
    ) -> Result<Self, BackendError> {
        let mdev = sysfs::resolve(&*sys, name)?;
        match api {
            ApiChoice::Legacy => Self::open_legacy(sys, mdev),
            ApiChoice::Cdev => Self::open_cdev(sys, mdev),
            ApiChoice::Auto => {
                let cdev_err = match Self::open_cdev(sys.clone(), mdev.clone()) {
                    Ok(dev) => return Ok(dev),
                    Err(e) => e,
                };
                tracing::debug!(error = %cdev_err, "cdev API unavailable, trying legacy");
                Self::open_legacy(sys, mdev).map_err(|mut e| {
                    e.detail = format!("{} (cdev API: {cdev_err})", e.detail);
                    e
                })
            }
        }
    }

    /// The device around its open fd and IOMMU context; discovers regions and interrupts.
    /// On failure everything acquired is released (the handles drop).
    fn new(
        sys: Arc<dyn Sys>,
        mdev: Mdev,
        api: Api,
        device: AttachedDevice,
        iommu: Box<dyn Iommu>,
        shared: Option<Arc<SharedIoas>>,
    ) -> Result<Self, BackendError> {
        let mut dev = Self {
            sys,
            api,
            mdev,
            device,
            dma: DmaSpace::new(iommu),
            shared,
            info: DeviceInfo {
                flags: 0,
                num_regions: 0,
                num_irqs: 0,
            },
            regions: None,
            irqs: Vec::new(),
            armed: Mutex::new([false; uapi::VFIO_CCW_NUM_IRQS as usize]),
        };
        dev.init_device()?;
        Ok(dev)
    }

    fn open_legacy(sys: Arc<dyn Sys>, mdev: Mdev) -> Result<Self, BackendError> {
        let group_no = mdev.iommu_group(&*sys)?;
        let container = Container::open(&sys, group_no)?;
        let device = AttachedDevice::plain(container.device(&mdev.uuid)?);
        Self::new(sys, mdev, Api::Legacy, device, Box::new(container), None)
    }

    fn open_cdev(sys: Arc<dyn Sys>, mdev: Mdev) -> Result<Self, BackendError> {
        let node = mdev.cdev(&*sys)?;
        let iommufd = SysFd::open(&sys, Path::new("/dev/iommu"))
            .map_err(|e| sys_error("open /dev/iommu", e))?;
        let device = SysFd::open(&sys, &node)
            .map_err(|e| sys_error("open VFIO cdev", e).with_detail(node.display().to_string()))?;
        sys.bind_iommufd(device.fd(), iommufd.fd())
            .map_err(|e| sys_error("VFIO_DEVICE_BIND_IOMMUFD", e))?;
        let ioas = Ioas::alloc(iommufd)?;
        let device = AttachedDevice::attach(device, &ioas)?;
        Self::new(sys, mdev, Api::Cdev, device, Box::new(ioas), None)
    }

    /// Opens the mdev `name` through the cdev API and attaches it to `ioas`, an IOAS shared
    /// with other devices (see [`SharedIoas`]).
    pub fn open_in(name: &str, ioas: &Arc<SharedIoas>) -> Result<Self, BackendError> {
        Self::open_in_with(Arc::new(HostSys), name, ioas)
    }

    pub(crate) fn open_in_with(
        sys: Arc<dyn Sys>,
        name: &str,
        ioas: &Arc<SharedIoas>,
    ) -> Result<Self, BackendError> {
        let mdev = sysfs::resolve(&*sys, name)?;
        let node = mdev.cdev(&*sys)?;
        let device = SysFd::open(&sys, &node)
            .map_err(|e| sys_error("open VFIO cdev", e).with_detail(node.display().to_string()))?;
        Self::in_shared(sys, mdev, device, ioas)
    }

    /// A vfio-ccw cdev the caller opened (`/dev/vfio/devices/vfioN`, passed by a management
    /// layer as QEMU's `fd=` takes it) for subchannel `sch`: bound to a fresh iommufd and IOAS
    /// of its own, or attached to `ioas` when one is given. The fd is owned from here on.
    /// [`VfioDevice::uuid`] is empty: the device was not found through sysfs.
    pub fn from_cdev_fd(
        fd: OwnedFd,
        sch: SubchannelId,
        ioas: Option<&Arc<SharedIoas>>,
    ) -> Result<Self, BackendError> {
        Self::from_cdev_fd_with(Arc::new(HostSys), fd, sch, ioas)
    }

    pub(crate) fn from_cdev_fd_with(
        sys: Arc<dyn Sys>,
        fd: OwnedFd,
        sch: SubchannelId,
        ioas: Option<&Arc<SharedIoas>>,
    ) -> Result<Self, BackendError> {
        let device = SysFd::adopt(&sys, fd).map_err(|e| sys_error("adopt VFIO cdev fd", e))?;
        let mdev = Mdev {
            uuid: String::new(),
            dir: std::path::PathBuf::new(),
            sch,
        };
        match ioas {
            Some(ioas) => Self::in_shared(sys, mdev, device, ioas),
            None => {
                let iommufd = SysFd::open(&sys, Path::new("/dev/iommu"))
                    .map_err(|e| sys_error("open /dev/iommu", e))?;
                sys.bind_iommufd(device.fd(), iommufd.fd())
                    .map_err(|e| sys_error("VFIO_DEVICE_BIND_IOMMUFD", e))?;
                let ioas = Ioas::alloc(iommufd)?;
                let device = AttachedDevice::attach(device, &ioas)?;
                Self::new(sys, mdev, Api::Cdev, device, Box::new(ioas), None)
            }
        }
    }

    /// Binds the cdev `device` to the shared IOAS's iommufd and attaches it to the IOAS.
    fn in_shared(
        sys: Arc<dyn Sys>,
        mdev: Mdev,
        device: SysFd,
        ioas: &Arc<SharedIoas>,
    ) -> Result<Self, BackendError> {
        sys.bind_iommufd(device.fd(), ioas.ioas().iommufd())
            .map_err(|e| sys_error("VFIO_DEVICE_BIND_IOMMUFD", e))?;
        let device = AttachedDevice::attach(device, ioas.ioas())?;
        let iommu = Box::new(SharedRef(ioas.ioas().clone()));
        Self::new(sys, mdev, Api::Cdev, device, iommu, Some(ioas.clone()))
    }

    /// The IOAS this device shares with others, if it was opened in one.
    pub fn shared_ioas(&self) -> Option<&Arc<SharedIoas>> {
        self.shared.as_ref()
    }

    /// GET_INFO, region discovery, interrupt discovery.
    fn init_device(&mut self) -> Result<(), BackendError> {
        let sys = &*self.sys;
        let fd = self.device.fd();
        let info = sys
            .device_info(fd)
            .map_err(|e| sys_error("VFIO_DEVICE_GET_INFO", e))?;
        if info.flags & vb::VFIO_DEVICE_FLAGS_CCW == 0 {
            return Err(error(
                BackendErrorKind::Unsupported,
                "VFIO_DEVICE_GET_INFO",
                format!("not a vfio-ccw device (flags {:#x})", info.flags),
            ));
        }
        self.info = info;
        let mut all = Vec::with_capacity(info.num_regions as usize);
        for index in 0..info.num_regions.min(64) {
            all.push(region_info(sys, fd, index)?);
        }
        self.regions = Some(Regions::classify(all)?);
        for index in 0..info.num_irqs.min(uapi::VFIO_CCW_NUM_IRQS) {
            let irq = sys
                .irq_info(fd, index)
                .map_err(|e| sys_error("VFIO_DEVICE_GET_IRQ_INFO", e))?;
            self.irqs.push(irq);
        }
        if self.irq(uapi::VFIO_CCW_IO_IRQ_INDEX).is_none() {
            return Err(error(
                BackendErrorKind::Unsupported,
                "VFIO_DEVICE_GET_IRQ_INFO",
                "the device has no eventfd-capable io interrupt",
            ));
        }
        tracing::debug!(uuid = %self.mdev.uuid, api = %self.api, ?info, "vfio-ccw device open");
        Ok(())
    }

    /// The API the device was opened with.
    pub fn api(&self) -> Api {
        self.api
    }
    /// The mdev UUID.
    pub fn uuid(&self) -> &str {
        &self.mdev.uuid
    }
    /// The subchannel the mdev mediates (its sysfs parent).
    pub fn subchannel(&self) -> SubchannelId {
        self.mdev.sch
    }
    /// What `VFIO_DEVICE_GET_INFO` returned.
    pub fn info(&self) -> DeviceInfo {
        self.info
    }
    /// The device's regions.
    pub fn regions(&self) -> &Regions {
        // Set by `init_device`, which every constructor runs before returning.
        self.regions
            .as_ref()
            .expect("regions are discovered at open")
    }
    /// The interrupt indexes the device offers.
    pub fn irqs(&self) -> &[IrqInfo] {
        &self.irqs
    }
    /// Interrupt `index` if the device offers it with an eventfd trigger.
    pub fn irq(&self, index: u32) -> Option<IrqInfo> {
        self.irqs
            .iter()
            .copied()
            .find(|i| i.index == index && i.count >= 1 && i.flags & vb::VFIO_IRQ_INFO_EVENTFD != 0)
    }

    fn fd(&self) -> &Fd {
        self.device.fd()
    }

    fn read_exact(
        &self,
        op: &'static str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), BackendError> {
        let n = self
            .sys
            .pread(self.fd(), buf, offset)
            .map_err(|e| sys_error(op, e))?;
        whole(op, "read", n, buf.len())
    }

    fn write_exact(&self, op: &'static str, offset: u64, buf: &[u8]) -> Result<(), BackendError> {
        let n = self
            .sys
            .pwrite(self.fd(), buf, offset)
            .map_err(|e| sys_error(op, e))?;
        whole(op, "write", n, buf.len())
    }

    /// Writes the io region (a start request). The errno of a failed write is what vfio-ccw
    /// answered (`EBUSY`, `ENODEV`, `EAGAIN`, ...).
    pub fn write_io(&self, region: &IoRegion) -> Result<(), BackendError> {
        self.write_exact(
            "write io region",
            self.regions().io.offset,
            region.as_bytes(),
        )
    }

    /// Reads the io region (the IRB of the last interruption).
    pub fn read_io(&self) -> Result<IoRegion, BackendError> {
        let mut r = IoRegion::new_zeroed();
        self.read_exact("read io region", self.regions().io.offset, r.as_mut_bytes())?;
        Ok(r)
    }

    /// Writes `command` (`VFIO_CCW_ASYNC_CMD_HSCH` / `_CSCH`) to the async command region.
    pub fn async_cmd(&self, command: u32) -> Result<(), BackendError> {
        const OP: &str = "write async cmd region";
        let r = self.regions().async_cmd.ok_or_else(|| {
            error(
                BackendErrorKind::Unsupported,
                OP,
                "the device has no async command region",
            )
        })?;
        let cmd = CmdRegion::command(command);
        self.write_exact(OP, r.offset, cmd.as_bytes())
    }

    /// Reads the schib region: STORE SUBCHANNEL on the real subchannel.
    pub fn read_schib(&self) -> Result<Schib, BackendError> {
        const OP: &str = "read schib region";
        let r = self.regions().schib.ok_or_else(|| {
            error(
                BackendErrorKind::Unsupported,
                OP,
                "the device has no schib region",
            )
        })?;
        let mut s = SchibRegion::new_zeroed();
        self.read_exact(OP, r.offset, s.as_mut_bytes())?;
        Ok(s.schib_area)
    }

    /// Reads (and so consumes) one channel report from the crw region; `None` when none is
    /// pending.
    pub fn read_crw(&self) -> Result<Option<Crw>, BackendError> {
        const OP: &str = "read crw region";
        let r = self.regions().crw.ok_or_else(|| {
            error(
                BackendErrorKind::Unsupported,
                OP,
                "the device has no crw region",
            )
        })?;
        let mut c = CrwRegion::new_zeroed();
        self.read_exact(OP, r.offset, c.as_mut_bytes())?;
        Ok(c.pending())
    }

    /// Connects `eventfd` to interrupt `index` (or disconnects it with `None`).
    pub fn set_irq(&self, index: u32, eventfd: Option<&EventFd>) -> Result<(), BackendError> {
        const OP: &str = "VFIO_DEVICE_SET_IRQS";
        if self.irq(index).is_none() {
            return Err(error(
                BackendErrorKind::Unsupported,
                OP,
                format!("the device has no interrupt index {index}"),
            ));
        }
        self.sys
            .set_irq_eventfd(self.fd(), index, eventfd)
            .map_err(|e| sys_error(OP, e))?;
        lock(&self.armed)[index as usize] = eventfd.is_some();
        Ok(())
    }

    /// `VFIO_DEVICE_RESET`: vfio-ccw disables and re-enables the subchannel.
    pub fn reset(&self) -> Result<(), BackendError> {
        const OP: &str = "VFIO_DEVICE_RESET";
        if self.info.flags & vb::VFIO_DEVICE_FLAGS_RESET == 0 {
            return Err(error(
                BackendErrorKind::Unsupported,
                OP,
                "the device cannot be reset",
            ));
        }
        self.sys
            .device_reset(self.fd())
            .map_err(|e| sys_error(OP, e))
    }

    /// A new eventfd.
    pub fn eventfd(&self, nonblocking: bool) -> Result<EventFd, BackendError> {
        self.sys
            .eventfd(nonblocking)
            .map_err(|e| sys_error("eventfd", e))
    }

    /// Page-aligned DMA-able memory (not mapped yet).
    pub fn alloc_dma(&self, len: usize) -> Result<DmaBuffer, BackendError> {
        self.sys.alloc_dma(len).map_err(|e| sys_error("mmap", e))
    }

    /// Makes `[iova, iova + size)` of the device address space refer to host memory at
    /// `vaddr`, readable and writable.
    ///
    /// The caller keeps the host memory alive until [`VfioDevice::dma_unmap`]; a device that
    /// is dropped unmaps what is still mapped.
    pub fn dma_map(&self, vaddr: u64, iova: u64, size: u64) -> Result<(), BackendError> {
        self.dma.map(vaddr, iova, size)
    }

    /// Removes a mapping made by [`VfioDevice::dma_map`] (same `iova` and `size`).
    pub fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), BackendError> {
        self.dma.unmap(iova, size)
    }

    /// The DMA mappings currently made through this device (IOVA, size).
    pub fn dma_mappings(&self) -> Vec<(u64, u64)> {
        self.dma.mappings()
    }
}

/// `Ok` when a region `what` ("read" / "write") moved all `want` bytes; a short transfer is an
/// `Io` error (the regions are fixed-size structures, so a partial one means nothing).
fn whole(op: &'static str, what: &str, n: usize, want: usize) -> Result<(), BackendError> {
    if n == want {
        Ok(())
    } else {
        Err(error(
            BackendErrorKind::Io,
            op,
            format!("short {what}: {n} of {want} bytes"),
        ))
    }
}

fn region_info(sys: &dyn Sys, fd: &Fd, index: u32) -> Result<crate::RegionInfo, BackendError> {
    let mut argsz = FIRST_ARGSZ;
    // One retry with the size the kernel asked for is enough; a second "too small" answer
    // means the kernel keeps growing its answer, which is malformed.
    for _ in 0..2 {
        let buf = sys
            .region_info(fd, index, argsz)
            .map_err(|e| sys_error("VFIO_DEVICE_GET_REGION_INFO", e))?;
        match parse_region_info(index, &buf)? {
            Parsed::Info(info) => return Ok(info),
            Parsed::NeedArgsz(n) if n > argsz => argsz = n,
            Parsed::NeedArgsz(n) => {
                return Err(error(
                    BackendErrorKind::Io,
                    "VFIO_DEVICE_GET_REGION_INFO",
                    format!("region {index}: kernel asks for argsz {n} after {argsz}"),
                ));
            }
        }
    }
    Err(error(
        BackendErrorKind::Io,
        "VFIO_DEVICE_GET_REGION_INFO",
        format!("region {index}: capability chain keeps growing"),
    ))
}

impl Drop for VfioDevice {
    fn drop(&mut self) {
        // Disconnect the interrupt triggers; the fields then release the rest (see the
        // struct): device fd, DMA mappings, IOMMU context.
        let armed = *lock(&self.armed);
        for (index, on) in armed.iter().enumerate() {
            if *on {
                if let Err(e) = self.sys.set_irq_eventfd(self.fd(), index as u32, None) {
                    tracing::warn!(index, %e, "teardown: disarming interrupt failed");
                }
            }
        }
    }
}
