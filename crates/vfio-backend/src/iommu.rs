// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The IOMMU side of an open device as typed owning handles.
//!
//! - [`Container`]: the legacy API, a `/dev/vfio/vfio` container with a type1 IOMMU and the
//!   device's `/dev/vfio/<group>` set in it.
//! - [`Ioas`]: the cdev API, an IOAS allocated in `/dev/iommu`; [`AttachedDevice`] is a
//!   device fd bound to the iommufd and attached to that IOAS.
//!
//! - [`SharedIoas`]: an iommufd and IOAS several cdev devices attach to (QEMU's
//!   `-object iommufd`), with the guest's memory mapped in it once for all of them.
//!
//! Each handle exists only once everything it stands for is set up, and releases it when
//! dropped, in the kernel's order (group out of the container before either closes; the IOAS
//! destroyed before the iommufd closes; the device detached before it closes). Both contexts
//! map DMA through the one small [`Iommu`] trait; [`DmaSpace`] keeps the mappings made through
//! it and removes what is left when dropped.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ccw_translate::sync::lock;
use css_core::{BackendError, BackendErrorKind};
use vfio_bindings::bindings::vfio as vb;

use vm_memory::GuestMemoryBackend;

use crate::error::{error, sys_error};
use crate::mapper::{guest_regions, overlaps};
use crate::sys::{HostSys, Sys, SysFd};

/// Where the DMA mappings of a device go.
pub(crate) trait Iommu: Send + Sync + fmt::Debug {
    /// Maps `size` bytes of host memory at `vaddr` at device address `iova`.
    fn map(&self, vaddr: u64, iova: u64, size: u64) -> Result<(), BackendError>;
    /// Removes the mapping at `iova` of `size` bytes.
    fn unmap(&self, iova: u64, size: u64) -> Result<(), BackendError>;
}

/// A VFIO group set in a container; leaves it when dropped (then closes).
#[derive(Debug)]
struct GroupInContainer(SysFd);

impl Drop for GroupInContainer {
    fn drop(&mut self) {
        if let Err(e) = self.0.sys().group_unset_container(self.0.fd()) {
            tracing::warn!(%e, "teardown: VFIO_GROUP_UNSET_CONTAINER failed");
        }
    }
}

/// The legacy IOMMU context: a container with a type1 IOMMU holding the device's group.
#[derive(Debug)]
pub(crate) struct Container {
    // Fields drop in this order: the group leaves the container first.
    group: GroupInContainer,
    container: SysFd,
}

impl Container {
    /// Opens the container, checks its API version, picks type1v2 (else type1), opens group
    /// `group_no`, checks it is viable and sets it in the container.
    pub(crate) fn open(sys: &Arc<dyn Sys>, group_no: u32) -> Result<Self, BackendError> {
        let container = SysFd::open(sys, Path::new("/dev/vfio/vfio"))
            .map_err(|e| sys_error("open /dev/vfio/vfio", e))?;
        let version = sys
            .get_api_version(container.fd())
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
                .check_extension(container.fd(), t)
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
        let group = SysFd::open(sys, Path::new(&group_path))
            .map_err(|e| sys_error("open VFIO group", e).with_detail(group_path.clone()))?;
        let status = sys
            .group_status(group.fd())
            .map_err(|e| sys_error("VFIO_GROUP_GET_STATUS", e))?;
        if status & vb::VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                "VFIO_GROUP_GET_STATUS",
                format!("group {group_no} is not viable (flags {status:#x})"),
            ));
        }
        sys.group_set_container(group.fd(), container.fd())
            .map_err(|e| sys_error("VFIO_GROUP_SET_CONTAINER", e))?;
        let ctx = Container {
            group: GroupInContainer(group),
            container,
        };
        sys.set_iommu(ctx.container.fd(), iommu_type)
            .map_err(|e| sys_error("VFIO_SET_IOMMU", e))?;
        Ok(ctx)
    }

    /// The device `name` of the group.
    pub(crate) fn device(&self, name: &str) -> Result<SysFd, BackendError> {
        let group = &self.group.0;
        let fd = group
            .sys()
            .group_get_device_fd(group.fd(), name)
            .map_err(|e| sys_error("VFIO_GROUP_GET_DEVICE_FD", e))?;
        Ok(SysFd::new(self.sys_arc(), fd))
    }

    fn sys_arc(&self) -> Arc<dyn Sys> {
        self.container.sys_arc()
    }
}

impl Iommu for Container {
    fn map(&self, vaddr: u64, iova: u64, size: u64) -> Result<(), BackendError> {
        self.container
            .sys()
            .dma_map(self.container.fd(), vaddr, iova, size)
            .map_err(|e| sys_error("VFIO_IOMMU_MAP_DMA", e))
    }

    fn unmap(&self, iova: u64, size: u64) -> Result<(), BackendError> {
        self.container
            .sys()
            .dma_unmap(self.container.fd(), iova, size)
            .map(drop)
            .map_err(|e| sys_error("VFIO_IOMMU_UNMAP_DMA", e))
    }
}

/// The cdev IOMMU context: an IOAS in an iommufd; destroyed, then closed, when dropped.
#[derive(Debug)]
pub(crate) struct Ioas {
    id: u32,
    iommufd: SysFd,
}

impl Ioas {
    /// Allocates an IOAS in `iommufd`.
    pub(crate) fn alloc(iommufd: SysFd) -> Result<Self, BackendError> {
        let id = iommufd
            .sys()
            .ioas_alloc(iommufd.fd())
            .map_err(|e| sys_error("IOMMU_IOAS_ALLOC", e))?;
        Ok(Self { id, iommufd })
    }

    /// The iommufd the IOAS lives in (devices bind to it).
    pub(crate) fn iommufd(&self) -> &crate::sys::Fd {
        self.iommufd.fd()
    }
}

/// An IOAS shared with others: mappings go to it, it is destroyed when the last holder goes.
#[derive(Debug)]
pub(crate) struct SharedRef(pub(crate) Arc<Ioas>);

impl Iommu for SharedRef {
    fn map(&self, vaddr: u64, iova: u64, size: u64) -> Result<(), BackendError> {
        self.0.map(vaddr, iova, size).map_err(|mut e| {
            if e.errno == Some(libc::EEXIST) {
                e.detail = format!(
                    "{} (the IOVA is taken in the shared IOAS: give each device its own \
                     control window, VfioOptions::control_iova)",
                    e.detail
                );
            }
            e
        })
    }

    fn unmap(&self, iova: u64, size: u64) -> Result<(), BackendError> {
        self.0.unmap(iova, size)
    }
}

/// An iommufd and an IOAS in it that several vfio-ccw cdev devices attach to, as QEMU's
/// `-object iommufd` shares one among its devices: the guest's memory is mapped once
/// ([`SharedIoas::map_guest_memory`], IOVA = guest physical address) and every device opened
/// in it ([`crate::VfioDevice::open_in`], [`crate::VfioDevice::from_cdev_fd`]) reaches it.
/// Each device still maps its own control window, so devices sharing an IOAS need distinct
/// `VfioOptions::control_iova` values.
///
/// The IOAS is destroyed (and an iommufd this value opened is closed) when the last device
/// and the last handle are gone; the guest memory is unmapped before.
///
/// ```no_run
/// use std::sync::Arc;
/// use vfio_backend::{SharedIoas, VfioBackend, VfioDevice, VfioOptions};
/// # async fn run() -> Result<(), css_core::BackendError> {
/// let ioas = SharedIoas::open()?;
/// let a = VfioDevice::open_in("6dfd3ec5-e8b3-4e18-a6fe-57bc9eceb920", &ioas)?;
/// let b = VfioDevice::open_in("0e6ad4f5-9f3a-4b8e-8b4f-6d1f0f0d7a11", &ioas)?;
/// let a = VfioBackend::from_device(a, &VfioOptions::default())?;
/// let b = VfioBackend::from_device(
///     b,
///     &VfioOptions { control_iova: 0x7FE0_0000, ..VfioOptions::default() },
/// )?;
/// # Ok(()) }
/// ```
pub struct SharedIoas {
    // Drop order: the guest memory is unmapped, then released, then the IOAS goes.
    guest: DmaSpace,
    ranges: Mutex<Vec<(u64, u64)>>,
    keep: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
    ioas: Arc<Ioas>,
}

impl fmt::Debug for SharedIoas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedIoas")
            .field("ioas", &self.ioas.id)
            .field("guest", &*lock(&self.ranges))
            .finish_non_exhaustive()
    }
}

impl SharedIoas {
    /// Opens `/dev/iommu` and allocates an IOAS in it.
    pub fn open() -> Result<Arc<Self>, BackendError> {
        Self::open_with(&(Arc::new(HostSys) as Arc<dyn Sys>))
    }

    /// Allocates an IOAS in the caller's iommufd `fd` (one a management layer opened and
    /// passed, as QEMU's `iommufd=` takes); the fd is owned from here on and closed with the
    /// last holder.
    pub fn from_iommufd(fd: OwnedFd) -> Result<Arc<Self>, BackendError> {
        let sys: Arc<dyn Sys> = Arc::new(HostSys);
        Self::from_iommufd_with(&sys, fd)
    }

    pub(crate) fn open_with(sys: &Arc<dyn Sys>) -> Result<Arc<Self>, BackendError> {
        let iommufd = SysFd::open(sys, Path::new("/dev/iommu"))
            .map_err(|e| sys_error("open /dev/iommu", e))?;
        Ok(Self::around(Ioas::alloc(iommufd)?))
    }

    pub(crate) fn from_iommufd_with(
        sys: &Arc<dyn Sys>,
        fd: OwnedFd,
    ) -> Result<Arc<Self>, BackendError> {
        let iommufd = SysFd::adopt(sys, fd).map_err(|e| sys_error("adopt iommufd", e))?;
        Ok(Self::around(Ioas::alloc(iommufd)?))
    }

    fn around(ioas: Ioas) -> Arc<Self> {
        let ioas = Arc::new(ioas);
        Arc::new(Self {
            guest: DmaSpace::new(Box::new(SharedRef(ioas.clone()))),
            ranges: Mutex::new(Vec::new()),
            keep: Mutex::new(Vec::new()),
            ioas,
        })
    }

    /// The IOAS id.
    pub fn id(&self) -> u32 {
        self.ioas.id
    }

    pub(crate) fn ioas(&self) -> &Arc<Ioas> {
        &self.ioas
    }

    /// Maps every region of `mem` at IOVA = guest physical address, once for every device in
    /// this IOAS, and keeps `mem` alive until the IOAS goes. Regions must be page aligned and
    /// must not overlap memory mapped before; on failure nothing stays mapped.
    pub fn map_guest_memory<M>(&self, mem: Arc<M>) -> Result<(), BackendError>
    where
        M: GuestMemoryBackend + Send + Sync + 'static,
    {
        const OP: &str = "map guest memory in the shared IOAS";
        let regions = guest_regions(&*mem, OP)?;
        let mut ranges = lock(&self.ranges);
        for &(_, gpa, len) in &regions {
            if ranges.iter().any(|&(g, l)| overlaps(gpa, len, g, l)) {
                return Err(error(
                    BackendErrorKind::InvalidArgument,
                    OP,
                    format!("region {gpa:#x}+{len:#x} overlaps guest memory mapped before"),
                ));
            }
        }
        let mut done = Vec::new();
        for &(host, gpa, len) in &regions {
            if let Err(e) = self.guest.map(host, gpa, len) {
                for &(g, l) in &done {
                    let _ = self.guest.unmap(g, l);
                }
                return Err(e);
            }
            done.push((gpa, len));
        }
        ranges.extend(done);
        lock(&self.keep).push(mem);
        Ok(())
    }

    /// Whether `[gpa, end)` lies inside guest memory mapped in this IOAS.
    pub(crate) fn covers(&self, gpa: u64, end: u64) -> bool {
        lock(&self.ranges)
            .iter()
            .any(|&(g, l)| gpa >= g && end <= g + l)
    }
}

impl Drop for Ioas {
    fn drop(&mut self) {
        if let Err(e) = self.iommufd.sys().iommu_destroy(self.iommufd.fd(), self.id) {
            tracing::warn!(%e, "teardown: IOMMU_DESTROY failed");
        }
    }
}

impl Iommu for Ioas {
    fn map(&self, vaddr: u64, iova: u64, size: u64) -> Result<(), BackendError> {
        self.iommufd
            .sys()
            .ioas_map(self.iommufd.fd(), self.id, vaddr, iova, size)
            .map_err(|e| sys_error("IOMMU_IOAS_MAP", e))
    }

    fn unmap(&self, iova: u64, size: u64) -> Result<(), BackendError> {
        self.iommufd
            .sys()
            .ioas_unmap(self.iommufd.fd(), self.id, iova, size)
            .map(drop)
            .map_err(|e| sys_error("IOMMU_IOAS_UNMAP", e))
    }
}

/// An open device fd: plain (legacy), or bound to an iommufd and attached to an IOAS, in
/// which case it is detached before it closes.
#[derive(Debug)]
pub(crate) struct AttachedDevice {
    fd: SysFd,
    attached: bool,
}

impl AttachedDevice {
    /// A device fd of the legacy API (its group is in a container already).
    pub(crate) fn plain(fd: SysFd) -> Self {
        Self {
            fd,
            attached: false,
        }
    }

    /// Attaches the cdev `fd`, bound to `ioas`'s iommufd, to the IOAS.
    pub(crate) fn attach(fd: SysFd, ioas: &Ioas) -> Result<Self, BackendError> {
        fd.sys()
            .attach_pt(fd.fd(), ioas.id)
            .map_err(|e| sys_error("VFIO_DEVICE_ATTACH_IOMMUFD_PT", e))?;
        Ok(Self { fd, attached: true })
    }

    /// The device descriptor.
    pub(crate) fn fd(&self) -> &crate::sys::Fd {
        self.fd.fd()
    }
}

impl Drop for AttachedDevice {
    fn drop(&mut self) {
        if self.attached {
            if let Err(e) = self.fd.sys().detach_pt(self.fd.fd()) {
                tracing::warn!(%e, "teardown: detach from IOAS failed");
            }
        }
    }
}

/// The DMA mappings of one device in its IOMMU context; what is still mapped is unmapped
/// when dropped, before the context is released.
#[derive(Debug)]
pub(crate) struct DmaSpace {
    /// IOVA -> size of every mapping made through this device.
    maps: Mutex<BTreeMap<u64, u64>>,
    iommu: Box<dyn Iommu>,
}

impl DmaSpace {
    pub(crate) fn new(iommu: Box<dyn Iommu>) -> Self {
        Self {
            maps: Mutex::new(BTreeMap::new()),
            iommu,
        }
    }

    /// Maps `size` bytes at `vaddr` at `iova`; refuses an empty, wrapping or overlapping range.
    pub(crate) fn map(&self, vaddr: u64, iova: u64, size: u64) -> Result<(), BackendError> {
        const OP: &str = "DMA map";
        let end = iova.checked_add(size).filter(|_| size > 0).ok_or_else(|| {
            error(
                BackendErrorKind::InvalidArgument,
                OP,
                format!("bad range {iova:#x}+{size:#x}"),
            )
        })?;
        let mut maps = lock(&self.maps);
        if let Some((&a, &s)) = maps.range(..end).next_back() {
            if a + s > iova {
                return Err(error(
                    BackendErrorKind::InvalidArgument,
                    OP,
                    format!("{iova:#x}+{size:#x} overlaps the mapping at {a:#x}+{s:#x}"),
                ));
            }
        }
        self.iommu.map(vaddr, iova, size)?;
        maps.insert(iova, size);
        Ok(())
    }

    /// Removes a mapping made by [`Self::map`] (same `iova` and `size`).
    pub(crate) fn unmap(&self, iova: u64, size: u64) -> Result<(), BackendError> {
        let mut maps = lock(&self.maps);
        if maps.get(&iova) != Some(&size) {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                "DMA unmap",
                format!("no mapping {iova:#x}+{size:#x}"),
            ));
        }
        self.iommu.unmap(iova, size)?;
        maps.remove(&iova);
        Ok(())
    }

    /// The mappings (IOVA, size).
    pub(crate) fn mappings(&self) -> Vec<(u64, u64)> {
        lock(&self.maps).iter().map(|(&a, &s)| (a, s)).collect()
    }
}

impl Drop for DmaSpace {
    fn drop(&mut self) {
        let maps = std::mem::take(&mut *lock(&self.maps));
        for (iova, size) in maps {
            if let Err(e) = self.iommu.unmap(iova, size) {
                tracing::warn!(iova, size, %e, "teardown: DMA unmap failed");
            }
        }
    }
}
