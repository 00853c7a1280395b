// SPDX-License-Identifier: Apache-2.0 OR MIT

//! An open vfio-ccw device: the IOMMU context (legacy container/group or iommufd), the device
//! fd, its regions and interrupts, and DMA mappings. Synchronous; [`crate::VfioBackend`] puts
//! the async interface on top.

use std::collections::BTreeMap;
use std::fmt;
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
use crate::regions::{FIRST_ARGSZ, Parsed, Regions, parse_region_info};
use crate::sys::{DeviceInfo, DmaBuffer, Fd, HostSys, IrqInfo, Sys};
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

/// The IOMMU side of an open device; every field is released in `Drop`.
#[derive(Debug)]
enum Iommu {
    Legacy {
        container: Option<Fd>,
        group: Option<Fd>,
        group_set: bool,
    },
    Cdev {
        iommufd: Option<Fd>,
        ioas: Option<u32>,
        attached: bool,
    },
}

/// An open vfio-ccw mediated device.
///
/// Everything it acquired (fds, DMA mappings, interrupt triggers) is released when it is
/// dropped, and when opening fails half-way.
pub struct VfioDevice {
    sys: Arc<dyn Sys>,
    api: Api,
    mdev: Mdev,
    iommu: Iommu,
    device: Option<Fd>,
    info: DeviceInfo,
    regions: Option<Regions>,
    irqs: Vec<IrqInfo>,
    /// IOVA -> size of every DMA mapping made through this device.
    dma: Mutex<BTreeMap<u64, u64>>,
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

    fn empty(sys: Arc<dyn Sys>, mdev: Mdev, iommu: Iommu, api: Api) -> Self {
        Self {
            sys,
            api,
            mdev,
            iommu,
            device: None,
            info: DeviceInfo {
                flags: 0,
                num_regions: 0,
                num_irqs: 0,
            },
            regions: None,
            irqs: Vec::new(),
            dma: Mutex::new(BTreeMap::new()),
            armed: Mutex::new([false; uapi::VFIO_CCW_NUM_IRQS as usize]),
        }
    }

    fn open_legacy(sys: Arc<dyn Sys>, mdev: Mdev) -> Result<Self, BackendError> {
        let group_no = mdev.iommu_group(&*sys)?;
        let iommu = Iommu::Legacy {
            container: None,
            group: None,
            group_set: false,
        };
        // From here on, dropping `dev` releases whatever was acquired.
        let mut dev = Self::empty(sys.clone(), mdev, iommu, Api::Legacy);
        let container = sys
            .open(Path::new("/dev/vfio/vfio"))
            .map_err(|e| sys_error("open /dev/vfio/vfio", e))?;
        let Iommu::Legacy {
            container: c_slot,
            group: g_slot,
            group_set,
        } = &mut dev.iommu
        else {
            unreachable!("constructed as legacy above")
        };
        let container = &*c_slot.insert(container);
        let version = sys
            .get_api_version(container)
            .map_err(|e| sys_error("VFIO_GET_API_VERSION", e))?;
        if version != vb::VFIO_API_VERSION as i32 {
            return Err(error(
                BackendErrorKind::Unsupported,
                "VFIO_GET_API_VERSION",
                format!("API version {version}, expected {}", vb::VFIO_API_VERSION),
            ));
        }
        let mut iommu_type = None;
        for t in [vb::VFIO_TYPE1v2_IOMMU, vb::VFIO_TYPE1_IOMMU] {
            if sys
                .check_extension(container, t)
                .map_err(|e| sys_error("VFIO_CHECK_EXTENSION", e))?
            {
                iommu_type = Some(t);
                break;
            }
        }
        let iommu_type = iommu_type.ok_or_else(|| {
            error(
                BackendErrorKind::Unsupported,
                "VFIO_CHECK_EXTENSION",
                "the container supports neither type1v2 nor type1 (vfio_iommu_type1 not loaded?)",
            )
        })?;
        let group_path = format!("/dev/vfio/{group_no}");
        let group =
            &*g_slot
                .insert(sys.open(Path::new(&group_path)).map_err(|e| {
                    sys_error("open VFIO group", e).with_detail(group_path.clone())
                })?);
        let status = sys
            .group_status(group)
            .map_err(|e| sys_error("VFIO_GROUP_GET_STATUS", e))?;
        if status & vb::VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                "VFIO_GROUP_GET_STATUS",
                format!("group {group_no} is not viable (flags {status:#x})"),
            ));
        }
        sys.group_set_container(group, container)
            .map_err(|e| sys_error("VFIO_GROUP_SET_CONTAINER", e))?;
        *group_set = true;
        sys.set_iommu(container, iommu_type)
            .map_err(|e| sys_error("VFIO_SET_IOMMU", e))?;
        let fd = sys
            .group_get_device_fd(group, &dev.mdev.uuid)
            .map_err(|e| sys_error("VFIO_GROUP_GET_DEVICE_FD", e))?;
        dev.device = Some(fd);
        dev.init_device()?;
        Ok(dev)
    }

    fn open_cdev(sys: Arc<dyn Sys>, mdev: Mdev) -> Result<Self, BackendError> {
        let node = mdev.cdev(&*sys)?;
        let iommu = Iommu::Cdev {
            iommufd: None,
            ioas: None,
            attached: false,
        };
        let mut dev = Self::empty(sys.clone(), mdev, iommu, Api::Cdev);
        let Iommu::Cdev {
            iommufd: i_slot,
            ioas: ioas_slot,
            attached,
        } = &mut dev.iommu
        else {
            unreachable!("constructed as cdev above")
        };
        let iommufd = &*i_slot.insert(
            sys.open(Path::new("/dev/iommu"))
                .map_err(|e| sys_error("open /dev/iommu", e))?,
        );
        let device =
            &*dev.device.insert(sys.open(&node).map_err(|e| {
                sys_error("open VFIO cdev", e).with_detail(node.display().to_string())
            })?);
        sys.bind_iommufd(device, iommufd)
            .map_err(|e| sys_error("VFIO_DEVICE_BIND_IOMMUFD", e))?;
        let ioas = *ioas_slot.insert(
            sys.ioas_alloc(iommufd)
                .map_err(|e| sys_error("IOMMU_IOAS_ALLOC", e))?,
        );
        sys.attach_pt(device, ioas)
            .map_err(|e| sys_error("VFIO_DEVICE_ATTACH_IOMMUFD_PT", e))?;
        *attached = true;
        dev.init_device()?;
        Ok(dev)
    }

    /// GET_INFO, region discovery, interrupt discovery.
    fn init_device(&mut self) -> Result<(), BackendError> {
        let sys = &*self.sys;
        let fd = self.device.as_ref().ok_or_else(|| {
            error(
                BackendErrorKind::Closed,
                "VFIO_DEVICE_GET_INFO",
                "no device fd",
            )
        })?;
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

    fn fd(&self, op: &'static str) -> Result<&Fd, BackendError> {
        self.device
            .as_ref()
            .ok_or_else(|| error(BackendErrorKind::Closed, op, "device is closed"))
    }

    fn read_exact(
        &self,
        op: &'static str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), BackendError> {
        let n = self
            .sys
            .pread(self.fd(op)?, buf, offset)
            .map_err(|e| sys_error(op, e))?;
        whole(op, "read", n, buf.len())
    }

    fn write_exact(&self, op: &'static str, offset: u64, buf: &[u8]) -> Result<(), BackendError> {
        let n = self
            .sys
            .pwrite(self.fd(op)?, buf, offset)
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
            .set_irq_eventfd(self.fd(OP)?, index, eventfd)
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
            .device_reset(self.fd(OP)?)
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
        const OP: &str = "DMA map";
        let end = iova.checked_add(size).filter(|_| size > 0).ok_or_else(|| {
            error(
                BackendErrorKind::InvalidArgument,
                OP,
                format!("bad range {iova:#x}+{size:#x}"),
            )
        })?;
        let mut dma = lock(&self.dma);
        if let Some((&a, &s)) = dma.range(..end).next_back() {
            if a + s > iova {
                return Err(error(
                    BackendErrorKind::InvalidArgument,
                    OP,
                    format!("{iova:#x}+{size:#x} overlaps the mapping at {a:#x}+{s:#x}"),
                ));
            }
        }
        match &self.iommu {
            Iommu::Legacy {
                container: Some(c), ..
            } => self
                .sys
                .dma_map(c, vaddr, iova, size)
                .map_err(|e| sys_error("VFIO_IOMMU_MAP_DMA", e))?,
            Iommu::Cdev {
                iommufd: Some(i),
                ioas: Some(ioas),
                ..
            } => self
                .sys
                .ioas_map(i, *ioas, vaddr, iova, size)
                .map_err(|e| sys_error("IOMMU_IOAS_MAP", e))?,
            _ => return Err(error(BackendErrorKind::Closed, OP, "no IOMMU context")),
        }
        dma.insert(iova, size);
        Ok(())
    }

    /// Removes a mapping made by [`VfioDevice::dma_map`] (same `iova` and `size`).
    pub fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), BackendError> {
        let mut dma = lock(&self.dma);
        if dma.get(&iova) != Some(&size) {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                "DMA unmap",
                format!("no mapping {iova:#x}+{size:#x}"),
            ));
        }
        self.unmap_one(iova, size)?;
        dma.remove(&iova);
        Ok(())
    }

    fn unmap_one(&self, iova: u64, size: u64) -> Result<(), BackendError> {
        match &self.iommu {
            Iommu::Legacy {
                container: Some(c), ..
            } => self
                .sys
                .dma_unmap(c, iova, size)
                .map(drop)
                .map_err(|e| sys_error("VFIO_IOMMU_UNMAP_DMA", e)),
            Iommu::Cdev {
                iommufd: Some(i),
                ioas: Some(ioas),
                ..
            } => self
                .sys
                .ioas_unmap(i, *ioas, iova, size)
                .map(drop)
                .map_err(|e| sys_error("IOMMU_IOAS_UNMAP", e)),
            _ => Err(error(
                BackendErrorKind::Closed,
                "DMA unmap",
                "no IOMMU context",
            )),
        }
    }

    /// The DMA mappings currently made through this device (IOVA, size).
    pub fn dma_mappings(&self) -> Vec<(u64, u64)> {
        lock(&self.dma).iter().map(|(&a, &s)| (a, s)).collect()
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
        let sys = self.sys.clone();
        // 1. Disconnect interrupt triggers.
        let armed = *lock(&self.armed);
        if let Some(fd) = &self.device {
            for (index, on) in armed.iter().enumerate() {
                if !*on {
                    continue;
                }
                if let Err(e) = sys.set_irq_eventfd(fd, index as u32, None) {
                    tracing::warn!(index, %e, "teardown: disarming interrupt failed");
                }
            }
        }
        // 2. Close the device (detaching it from the IOAS first).
        if let Some(fd) = self.device.take() {
            if let Iommu::Cdev { attached: true, .. } = self.iommu {
                if let Err(e) = sys.detach_pt(&fd) {
                    tracing::warn!(%e, "teardown: detach from IOAS failed");
                }
            }
            sys.close(fd);
        }
        // 3. Remove DMA mappings.
        let maps: Vec<(u64, u64)> = std::mem::take(&mut *lock(&self.dma)).into_iter().collect();
        for (iova, size) in maps {
            if let Err(e) = self.unmap_one(iova, size) {
                tracing::warn!(iova, size, %e, "teardown: DMA unmap failed");
            }
        }
        // 4. Release the IOMMU context.
        match &mut self.iommu {
            Iommu::Legacy {
                container,
                group,
                group_set,
            } => {
                if let Some(g) = group.take() {
                    if *group_set {
                        if let Err(e) = sys.group_unset_container(&g) {
                            tracing::warn!(%e, "teardown: VFIO_GROUP_UNSET_CONTAINER failed");
                        }
                    }
                    sys.close(g);
                }
                if let Some(c) = container.take() {
                    sys.close(c);
                }
            }
            Iommu::Cdev { iommufd, ioas, .. } => {
                if let Some(i) = iommufd.take() {
                    if let Some(id) = ioas.take() {
                        if let Err(e) = sys.iommu_destroy(&i, id) {
                            tracing::warn!(%e, "teardown: IOMMU_DESTROY failed");
                        }
                    }
                    sys.close(i);
                }
            }
        }
    }
}
