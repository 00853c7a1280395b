// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The operating-system boundary: every system call the backend makes goes through [`Sys`].
//!
//! [`HostSys`] is the real implementation (the only `unsafe` code of the crate); the unit
//! tests substitute a model of the vfio-ccw kernel driver, so everything above this module
//! (region discovery, capability chains, errno mapping, the io region protocol, interrupt
//! handling, teardown) runs on any Linux machine.
//!
//! The trait is typed at the level of VFIO operations, not raw `ioctl` numbers: a test double
//! then models the kernel's behaviour rather than parsing pointers.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use vfio_bindings::bindings::vfio as vb;
use vm_memory::VolatileMemory;
use vm_memory::mmap::MmapRegion;
use vmm_sys_util::errno::Error as Errno;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use vmm_sys_util::ioctl::{
    ioctl, ioctl_with_mut_ptr, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref, ioctl_with_val,
};

use crate::uapi;

/// The result of a system call: the value or the errno.
pub(crate) type SysResult<T> = Result<T, Errno>;

/// An open file descriptor owned by whoever holds it; closed only through [`Sys::close`]
/// (so a test double can check that every descriptor was closed exactly once).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Fd(RawFd);

impl Fd {
    /// Wraps a descriptor number (the test double hands out its own numbers).
    #[cfg(test)]
    pub(crate) const fn from_raw(fd: RawFd) -> Self {
        Fd(fd)
    }
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A descriptor owned through [`Sys`]: closed exactly once, when the value is dropped.
pub(crate) struct SysFd {
    sys: std::sync::Arc<dyn Sys>,
    fd: Fd,
}

impl SysFd {
    /// Takes ownership of `fd`, which `sys` opened.
    pub(crate) fn new(sys: std::sync::Arc<dyn Sys>, fd: Fd) -> Self {
        Self { sys, fd }
    }

    /// Opens `path` through `sys`.
    pub(crate) fn open(sys: &std::sync::Arc<dyn Sys>, path: &Path) -> SysResult<Self> {
        Ok(Self::new(sys.clone(), sys.open(path)?))
    }

    /// Takes ownership of a descriptor the caller opened (a management layer passed it).
    pub(crate) fn adopt(sys: &std::sync::Arc<dyn Sys>, fd: OwnedFd) -> SysResult<Self> {
        Ok(Self::new(sys.clone(), sys.adopt(fd)?))
    }

    /// The descriptor, for system calls.
    pub(crate) fn fd(&self) -> &Fd {
        &self.fd
    }

    /// The system interface the descriptor belongs to.
    pub(crate) fn sys(&self) -> &dyn Sys {
        &*self.sys
    }

    /// The system interface, shared.
    pub(crate) fn sys_arc(&self) -> std::sync::Arc<dyn Sys> {
        self.sys.clone()
    }
}

impl fmt::Debug for SysFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SysFd({})", self.fd.0)
    }
}

impl Drop for SysFd {
    fn drop(&mut self) {
        // `Fd` has no destructor: the number left in `self.fd` is never used again.
        self.sys.close(Fd(self.fd.0));
    }
}

/// What `VFIO_DEVICE_GET_INFO` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Number of regions.
    pub num_regions: u32,
    /// Number of interrupt indexes.
    pub num_irqs: u32,
}

/// What `VFIO_DEVICE_GET_IRQ_INFO` returned for one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqInfo {
    /// The index asked for.
    pub index: u32,
    /// `VFIO_IRQ_INFO_*`.
    pub flags: u32,
    /// Number of vectors.
    pub count: u32,
}

/// Every system call the backend makes.
pub(crate) trait Sys: Send + Sync + 'static {
    /// `open(path, O_RDWR | O_CLOEXEC)`.
    fn open(&self, path: &Path) -> SysResult<Fd>;
    /// `close(fd)`; errors are not actionable and are ignored.
    fn close(&self, fd: Fd);
    /// Takes ownership of `fd`, opened by someone else; from here on it is closed through
    /// [`Sys::close`] like any other.
    fn adopt(&self, fd: OwnedFd) -> SysResult<Fd>;
    /// `readlink(path)`.
    fn read_link(&self, path: &Path) -> SysResult<PathBuf>;
    /// The names in directory `path`.
    fn read_dir(&self, path: &Path) -> SysResult<Vec<String>>;
    /// The contents of the sysfs attribute `path`.
    fn read_file(&self, path: &Path) -> SysResult<String>;
    /// Writes `value` to the sysfs attribute `path` in one `write`, as sysfs expects.
    fn write_file(&self, path: &Path, value: &str) -> SysResult<()>;

    /// `VFIO_GET_API_VERSION`.
    fn get_api_version(&self, container: &Fd) -> SysResult<i32>;
    /// `VFIO_CHECK_EXTENSION`: whether the container supports `ext`.
    fn check_extension(&self, container: &Fd, ext: u32) -> SysResult<bool>;
    /// `VFIO_SET_IOMMU`.
    fn set_iommu(&self, container: &Fd, iommu_type: u32) -> SysResult<()>;
    /// `VFIO_GROUP_GET_STATUS`: the group's flags.
    fn group_status(&self, group: &Fd) -> SysResult<u32>;
    /// `VFIO_GROUP_SET_CONTAINER`.
    fn group_set_container(&self, group: &Fd, container: &Fd) -> SysResult<()>;
    /// `VFIO_GROUP_UNSET_CONTAINER`.
    fn group_unset_container(&self, group: &Fd) -> SysResult<()>;
    /// `VFIO_GROUP_GET_DEVICE_FD` for device `name` (the mdev UUID).
    fn group_get_device_fd(&self, group: &Fd, name: &str) -> SysResult<Fd>;
    /// `VFIO_IOMMU_MAP_DMA`, readable and writable.
    fn dma_map(&self, container: &Fd, vaddr: u64, iova: u64, size: u64) -> SysResult<()>;
    /// `VFIO_IOMMU_UNMAP_DMA`: the number of bytes unmapped.
    fn dma_unmap(&self, container: &Fd, iova: u64, size: u64) -> SysResult<u64>;

    /// `VFIO_DEVICE_BIND_IOMMUFD`: the device id.
    fn bind_iommufd(&self, device: &Fd, iommufd: &Fd) -> SysResult<u32>;
    /// `IOMMU_IOAS_ALLOC`: the IOAS id.
    fn ioas_alloc(&self, iommufd: &Fd) -> SysResult<u32>;
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`.
    fn attach_pt(&self, device: &Fd, pt_id: u32) -> SysResult<()>;
    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT`.
    fn detach_pt(&self, device: &Fd) -> SysResult<()>;
    /// `IOMMU_IOAS_MAP` at a fixed IOVA, readable and writable.
    fn ioas_map(&self, iommufd: &Fd, ioas: u32, vaddr: u64, iova: u64, len: u64) -> SysResult<()>;
    /// `IOMMU_IOAS_UNMAP`: the number of bytes unmapped.
    fn ioas_unmap(&self, iommufd: &Fd, ioas: u32, iova: u64, len: u64) -> SysResult<u64>;
    /// `IOMMU_DESTROY`.
    fn iommu_destroy(&self, iommufd: &Fd, id: u32) -> SysResult<()>;

    /// `VFIO_DEVICE_GET_INFO`.
    fn device_info(&self, device: &Fd) -> SysResult<DeviceInfo>;
    /// `VFIO_DEVICE_GET_REGION_INFO` with an `argsz`-byte buffer; returns the buffer as the
    /// kernel filled it (a `vfio_region_info` followed by its capability chain).
    fn region_info(&self, device: &Fd, index: u32, argsz: u32) -> SysResult<Vec<u8>>;
    /// `VFIO_DEVICE_GET_IRQ_INFO`.
    fn irq_info(&self, device: &Fd, index: u32) -> SysResult<IrqInfo>;
    /// `VFIO_DEVICE_SET_IRQS` with `ACTION_TRIGGER | DATA_EVENTFD`: connects `eventfd` to
    /// vector 0 of `index`, or disconnects it when `None` (eventfd -1).
    fn set_irq_eventfd(&self, device: &Fd, index: u32, eventfd: Option<&EventFd>) -> SysResult<()>;
    /// `VFIO_DEVICE_RESET`.
    fn device_reset(&self, device: &Fd) -> SysResult<()>;
    /// `pread(fd, buf, offset)`: the number of bytes read.
    fn pread(&self, fd: &Fd, buf: &mut [u8], offset: u64) -> SysResult<usize>;
    /// `pwrite(fd, buf, offset)`: the number of bytes written.
    fn pwrite(&self, fd: &Fd, buf: &[u8], offset: u64) -> SysResult<usize>;

    /// A new eventfd (`EFD_CLOEXEC`, plus `EFD_NONBLOCK` when `nonblocking`).
    fn eventfd(&self, nonblocking: bool) -> SysResult<EventFd>;
    /// Page-aligned, zeroed anonymous memory for DMA.
    fn alloc_dma(&self, len: usize) -> SysResult<DmaBuffer>;
}

fn check(ret: libc::c_int) -> SysResult<libc::c_int> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

fn io_errno(e: io::Error) -> Errno {
    Errno::new(e.raw_os_error().unwrap_or(libc::EIO))
}

const fn argsz<T>() -> u32 {
    size_of::<T>() as u32
}

// ioctl request numbers: `_IO(';', 100 + n)` for VFIO, `_IO(';', 0x80 + n)` for iommufd
// (type and numbers from vfio-bindings and iommufd-bindings; bindgen cannot expand `_IO`).
// The size is carried in `argsz`, not in the request number.
#[allow(unreachable_pub, clippy::missing_docs_in_private_items)]
mod nr {
    use vfio_bindings::bindings::vfio::{VFIO_BASE, VFIO_TYPE};
    use vmm_sys_util::ioctl_io_nr;

    const T: u32 = VFIO_TYPE as u32;
    ioctl_io_nr!(VFIO_GET_API_VERSION, T, VFIO_BASE);
    ioctl_io_nr!(VFIO_CHECK_EXTENSION, T, VFIO_BASE + 1);
    ioctl_io_nr!(VFIO_SET_IOMMU, T, VFIO_BASE + 2);
    ioctl_io_nr!(VFIO_GROUP_GET_STATUS, T, VFIO_BASE + 3);
    ioctl_io_nr!(VFIO_GROUP_SET_CONTAINER, T, VFIO_BASE + 4);
    ioctl_io_nr!(VFIO_GROUP_UNSET_CONTAINER, T, VFIO_BASE + 5);
    ioctl_io_nr!(VFIO_GROUP_GET_DEVICE_FD, T, VFIO_BASE + 6);
    ioctl_io_nr!(VFIO_DEVICE_GET_INFO, T, VFIO_BASE + 7);
    ioctl_io_nr!(VFIO_DEVICE_GET_REGION_INFO, T, VFIO_BASE + 8);
    ioctl_io_nr!(VFIO_DEVICE_GET_IRQ_INFO, T, VFIO_BASE + 9);
    ioctl_io_nr!(VFIO_DEVICE_SET_IRQS, T, VFIO_BASE + 10);
    ioctl_io_nr!(VFIO_DEVICE_RESET, T, VFIO_BASE + 11);
    ioctl_io_nr!(VFIO_IOMMU_MAP_DMA, T, VFIO_BASE + 13);
    ioctl_io_nr!(VFIO_IOMMU_UNMAP_DMA, T, VFIO_BASE + 14);
    ioctl_io_nr!(VFIO_DEVICE_BIND_IOMMUFD, T, VFIO_BASE + 18);
    ioctl_io_nr!(VFIO_DEVICE_ATTACH_IOMMUFD_PT, T, VFIO_BASE + 19);
    ioctl_io_nr!(VFIO_DEVICE_DETACH_IOMMUFD_PT, T, VFIO_BASE + 20);
    const I: u32 = crate::uapi::IOMMUFD_TYPE as u32;
    ioctl_io_nr!(IOMMU_DESTROY, I, crate::uapi::IOMMUFD_CMD_DESTROY);
    ioctl_io_nr!(IOMMU_IOAS_ALLOC, I, crate::uapi::IOMMUFD_CMD_IOAS_ALLOC);
    ioctl_io_nr!(IOMMU_IOAS_MAP, I, crate::uapi::IOMMUFD_CMD_IOAS_MAP);
    ioctl_io_nr!(IOMMU_IOAS_UNMAP, I, crate::uapi::IOMMUFD_CMD_IOAS_UNMAP);
}

/// The real operating system.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HostSys;

impl Sys for HostSys {
    fn open(&self, path: &Path) -> SysResult<Fd> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Errno::new(libc::EINVAL))?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call; open has no
        // other memory effects.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        check(fd).map(Fd)
    }

    fn close(&self, fd: Fd) {
        // SAFETY: `fd` is owned (not `Clone`) and consumed here, so it is closed exactly once
        // and nobody uses the number afterwards.
        unsafe { libc::close(fd.0) };
    }

    fn adopt(&self, fd: OwnedFd) -> SysResult<Fd> {
        // The descriptor moves from the OwnedFd to the Fd, which `close` consumes.
        Ok(Fd(fd.into_raw_fd()))
    }

    fn read_link(&self, path: &Path) -> SysResult<PathBuf> {
        std::fs::read_link(path).map_err(io_errno)
    }

    fn read_file(&self, path: &Path) -> SysResult<String> {
        std::fs::read_to_string(path).map_err(io_errno)
    }

    fn write_file(&self, path: &Path, value: &str) -> SysResult<()> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_errno)?;
        f.write_all(value.as_bytes()).map_err(io_errno)
    }

    fn read_dir(&self, path: &Path) -> SysResult<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io_errno)? {
            let entry = entry.map_err(io_errno)?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn get_api_version(&self, container: &Fd) -> SysResult<i32> {
        // SAFETY: VFIO_GET_API_VERSION takes no argument.
        check(unsafe { ioctl(container, nr::VFIO_GET_API_VERSION()) })
    }

    fn check_extension(&self, container: &Fd, ext: u32) -> SysResult<bool> {
        // SAFETY: VFIO_CHECK_EXTENSION takes the extension by value; no memory is passed.
        let r = unsafe { ioctl_with_val(container, nr::VFIO_CHECK_EXTENSION(), ext.into()) };
        check(r).map(|v| v > 0)
    }

    fn set_iommu(&self, container: &Fd, iommu_type: u32) -> SysResult<()> {
        // SAFETY: VFIO_SET_IOMMU takes the IOMMU type by value; no memory is passed.
        let r = unsafe { ioctl_with_val(container, nr::VFIO_SET_IOMMU(), iommu_type.into()) };
        check(r).map(drop)
    }

    fn group_status(&self, group: &Fd) -> SysResult<u32> {
        let mut st = vb::vfio_group_status {
            argsz: argsz::<vb::vfio_group_status>(),
            flags: 0,
        };
        // SAFETY: `st` is a valid vfio_group_status of `argsz` bytes the kernel may write.
        check(unsafe { ioctl_with_mut_ref(group, nr::VFIO_GROUP_GET_STATUS(), &mut st) })?;
        Ok(st.flags)
    }

    fn group_set_container(&self, group: &Fd, container: &Fd) -> SysResult<()> {
        let fd: libc::c_int = container.0;
        // SAFETY: the kernel reads one int (the container fd) from the pointer.
        check(unsafe { ioctl_with_ref(group, nr::VFIO_GROUP_SET_CONTAINER(), &fd) }).map(drop)
    }

    fn group_unset_container(&self, group: &Fd) -> SysResult<()> {
        // SAFETY: VFIO_GROUP_UNSET_CONTAINER takes no argument.
        check(unsafe { ioctl(group, nr::VFIO_GROUP_UNSET_CONTAINER()) }).map(drop)
    }

    fn group_get_device_fd(&self, group: &Fd, name: &str) -> SysResult<Fd> {
        let c = std::ffi::CString::new(name).map_err(|_| Errno::new(libc::EINVAL))?;
        // SAFETY: the kernel reads a NUL-terminated string from the pointer; `c` outlives the
        // call.
        let fd = unsafe { ioctl_with_ptr(group, nr::VFIO_GROUP_GET_DEVICE_FD(), c.as_ptr()) };
        check(fd).map(Fd)
    }

    fn dma_map(&self, container: &Fd, vaddr: u64, iova: u64, size: u64) -> SysResult<()> {
        let map = vb::vfio_iommu_type1_dma_map {
            argsz: argsz::<vb::vfio_iommu_type1_dma_map>(),
            flags: vb::VFIO_DMA_MAP_FLAG_READ | vb::VFIO_DMA_MAP_FLAG_WRITE,
            vaddr,
            iova,
            size,
        };
        // SAFETY: the kernel reads a vfio_iommu_type1_dma_map from the pointer. The mapped
        // host memory's lifetime is managed by the caller (unmapped before it is freed).
        check(unsafe { ioctl_with_ref(container, nr::VFIO_IOMMU_MAP_DMA(), &map) }).map(drop)
    }

    fn dma_unmap(&self, container: &Fd, iova: u64, size: u64) -> SysResult<u64> {
        let mut unmap = vb::vfio_iommu_type1_dma_unmap {
            argsz: argsz::<vb::vfio_iommu_type1_dma_unmap>(),
            flags: 0,
            iova,
            size,
            data: Default::default(),
        };
        // SAFETY: `unmap` is a valid vfio_iommu_type1_dma_unmap (no bitmap) the kernel reads
        // and updates (size = bytes unmapped).
        check(unsafe { ioctl_with_mut_ref(container, nr::VFIO_IOMMU_UNMAP_DMA(), &mut unmap) })?;
        Ok(unmap.size)
    }

    fn bind_iommufd(&self, device: &Fd, iommufd: &Fd) -> SysResult<u32> {
        // argsz 16: the fields up to out_devid, which every kernel with cdev support accepts
        // (token_uuid_ptr came later and is optional).
        let mut bind = vb::vfio_device_bind_iommufd {
            argsz: 16,
            flags: 0,
            iommufd: iommufd.0,
            out_devid: 0,
            token_uuid_ptr: 0,
        };
        // SAFETY: `bind` is a valid vfio_device_bind_iommufd of at least `argsz` bytes the
        // kernel reads and writes `out_devid` into.
        check(unsafe { ioctl_with_mut_ref(device, nr::VFIO_DEVICE_BIND_IOMMUFD(), &mut bind) })?;
        Ok(bind.out_devid)
    }

    fn ioas_alloc(&self, iommufd: &Fd) -> SysResult<u32> {
        let mut a = uapi::iommu_ioas_alloc {
            size: argsz::<uapi::iommu_ioas_alloc>(),
            ..Default::default()
        };
        // SAFETY: `a` is a valid iommu_ioas_alloc the kernel reads and writes the id into.
        check(unsafe { ioctl_with_mut_ref(iommufd, nr::IOMMU_IOAS_ALLOC(), &mut a) })?;
        Ok(a.out_ioas_id)
    }

    fn attach_pt(&self, device: &Fd, pt_id: u32) -> SysResult<()> {
        // argsz 12: up to pt_id (pasid is newer and optional).
        let mut at = vb::vfio_device_attach_iommufd_pt {
            argsz: 12,
            flags: 0,
            pt_id,
            pasid: 0,
        };
        // SAFETY: `at` is a valid vfio_device_attach_iommufd_pt the kernel reads and updates.
        let r = unsafe { ioctl_with_mut_ref(device, nr::VFIO_DEVICE_ATTACH_IOMMUFD_PT(), &mut at) };
        check(r).map(drop)
    }

    fn detach_pt(&self, device: &Fd) -> SysResult<()> {
        let dt = vb::vfio_device_detach_iommufd_pt {
            argsz: 8,
            flags: 0,
            pasid: 0,
        };
        // SAFETY: the kernel reads a vfio_device_detach_iommufd_pt (argsz, flags) from `dt`.
        let r = unsafe { ioctl_with_ref(device, nr::VFIO_DEVICE_DETACH_IOMMUFD_PT(), &dt) };
        check(r).map(drop)
    }

    fn ioas_map(&self, iommufd: &Fd, ioas: u32, vaddr: u64, iova: u64, len: u64) -> SysResult<()> {
        let mut m = uapi::iommu_ioas_map {
            size: argsz::<uapi::iommu_ioas_map>(),
            flags: uapi::IOMMU_IOAS_MAP_FIXED_IOVA
                | uapi::IOMMU_IOAS_MAP_READABLE
                | uapi::IOMMU_IOAS_MAP_WRITEABLE,
            ioas_id: ioas,
            __reserved: 0,
            user_va: vaddr,
            length: len,
            iova,
        };
        // SAFETY: `m` is a valid iommu_ioas_map; the mapped memory's lifetime is managed by
        // the caller (unmapped before it is freed).
        check(unsafe { ioctl_with_mut_ref(iommufd, nr::IOMMU_IOAS_MAP(), &mut m) }).map(drop)
    }

    fn ioas_unmap(&self, iommufd: &Fd, ioas: u32, iova: u64, len: u64) -> SysResult<u64> {
        let mut u = uapi::iommu_ioas_unmap {
            size: argsz::<uapi::iommu_ioas_unmap>(),
            ioas_id: ioas,
            iova,
            length: len,
        };
        // SAFETY: `u` is a valid iommu_ioas_unmap the kernel reads and updates.
        check(unsafe { ioctl_with_mut_ref(iommufd, nr::IOMMU_IOAS_UNMAP(), &mut u) })?;
        Ok(u.length)
    }

    fn iommu_destroy(&self, iommufd: &Fd, id: u32) -> SysResult<()> {
        let d = uapi::iommu_destroy {
            size: argsz::<uapi::iommu_destroy>(),
            id,
        };
        // SAFETY: the kernel reads an iommu_destroy from `d`.
        check(unsafe { ioctl_with_ref(iommufd, nr::IOMMU_DESTROY(), &d) }).map(drop)
    }

    fn device_info(&self, device: &Fd) -> SysResult<DeviceInfo> {
        let mut info = vb::vfio_device_info {
            argsz: argsz::<vb::vfio_device_info>(),
            ..Default::default()
        };
        // SAFETY: `info` is a valid vfio_device_info of `argsz` bytes the kernel fills in.
        check(unsafe { ioctl_with_mut_ref(device, nr::VFIO_DEVICE_GET_INFO(), &mut info) })?;
        Ok(DeviceInfo {
            flags: info.flags,
            num_regions: info.num_regions,
            num_irqs: info.num_irqs,
        })
    }

    fn region_info(&self, device: &Fd, index: u32, argsz: u32) -> SysResult<Vec<u8>> {
        let base = size_of::<vb::vfio_region_info>();
        let len = (argsz as usize).max(base);
        // u64 storage: the buffer is aligned for the struct's u64 fields.
        let mut buf = vec![0u64; len.div_ceil(8)];
        let head = vb::vfio_region_info {
            argsz: len as u32,
            index,
            ..Default::default()
        };
        let p = buf.as_mut_ptr().cast::<vb::vfio_region_info>();
        // SAFETY: `buf` holds at least `size_of::<vfio_region_info>()` bytes, is 8-aligned
        // and exclusively ours; writing the header through the cast pointer is in bounds.
        unsafe { p.write(head) };
        // SAFETY: the kernel writes at most `argsz` (= `len` <= buffer size) bytes through
        // the pointer: the struct and the capability chain after it.
        check(unsafe { ioctl_with_mut_ptr(device, nr::VFIO_DEVICE_GET_REGION_INFO(), p) })?;
        let mut out = Vec::with_capacity(len);
        for w in &buf {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        out.truncate(len);
        Ok(out)
    }

    fn irq_info(&self, device: &Fd, index: u32) -> SysResult<IrqInfo> {
        let mut info = vb::vfio_irq_info {
            argsz: argsz::<vb::vfio_irq_info>(),
            flags: 0,
            index,
            count: 0,
        };
        // SAFETY: `info` is a valid vfio_irq_info the kernel fills in.
        check(unsafe { ioctl_with_mut_ref(device, nr::VFIO_DEVICE_GET_IRQ_INFO(), &mut info) })?;
        Ok(IrqInfo {
            index,
            flags: info.flags,
            count: info.count,
        })
    }

    fn set_irq_eventfd(&self, device: &Fd, index: u32, eventfd: Option<&EventFd>) -> SysResult<()> {
        /// `struct vfio_irq_set` with room for one eventfd.
        #[repr(C)]
        struct IrqSetOne {
            argsz: u32,
            flags: u32,
            index: u32,
            start: u32,
            count: u32,
            data: [i32; 1],
        }
        const _: () = assert!(size_of::<IrqSetOne>() == 24);
        // Disconnecting is an eventfd of -1: vfio-ccw answers DATA_NONE by *signalling* the
        // trigger (vfio_ccw_mdev_set_irqs), not by removing it as vfio-pci does.
        let fd = eventfd.map_or(-1, |e| e.as_raw_fd());
        let set = IrqSetOne {
            argsz: size_of::<IrqSetOne>() as u32,
            flags: vb::VFIO_IRQ_SET_DATA_EVENTFD | vb::VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            start: 0,
            count: 1,
            data: [fd],
        };
        // SAFETY: `set` is a valid vfio_irq_set followed by `count` eventfds (argsz bytes),
        // which the kernel only reads.
        check(unsafe { ioctl_with_ref(device, nr::VFIO_DEVICE_SET_IRQS(), &set) }).map(drop)
    }

    fn device_reset(&self, device: &Fd) -> SysResult<()> {
        // SAFETY: VFIO_DEVICE_RESET takes no argument.
        check(unsafe { ioctl(device, nr::VFIO_DEVICE_RESET()) }).map(drop)
    }

    fn pread(&self, fd: &Fd, buf: &mut [u8], offset: u64) -> SysResult<usize> {
        let off = libc::off_t::try_from(offset).map_err(|_| Errno::new(libc::EINVAL))?;
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
        let n = unsafe { libc::pread(fd.0, buf.as_mut_ptr().cast(), buf.len(), off) };
        if n < 0 {
            Err(Errno::last())
        } else {
            Ok(n as usize)
        }
    }

    fn pwrite(&self, fd: &Fd, buf: &[u8], offset: u64) -> SysResult<usize> {
        let off = libc::off_t::try_from(offset).map_err(|_| Errno::new(libc::EINVAL))?;
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call.
        let n = unsafe { libc::pwrite(fd.0, buf.as_ptr().cast(), buf.len(), off) };
        if n < 0 {
            Err(Errno::last())
        } else {
            Ok(n as usize)
        }
    }

    fn eventfd(&self, nonblocking: bool) -> SysResult<EventFd> {
        let flags = libc::EFD_CLOEXEC | if nonblocking { EFD_NONBLOCK } else { 0 };
        EventFd::new(flags).map_err(io_errno)
    }

    fn alloc_dma(&self, len: usize) -> SysResult<DmaBuffer> {
        DmaBuffer::new(len)
    }
}

/// Page-aligned anonymous memory that a device may access by DMA (control memory for host
/// channel programs). Freed on drop; whoever maps it for DMA must unmap it first.
///
/// A vm-memory [`MmapRegion`]: the mapping, its unmapping and the bounds-checked volatile
/// copies are vm-memory's (copies never create Rust references to memory a device writes).
#[derive(Debug)]
pub struct DmaBuffer {
    region: MmapRegion<()>,
}

impl DmaBuffer {
    /// `len` bytes (rounded up to whole pages) of zeroed anonymous memory.
    pub(crate) fn new(len: usize) -> SysResult<Self> {
        if len == 0 {
            return Err(Errno::new(libc::EINVAL));
        }
        let page = page_size();
        let len = len
            .checked_next_multiple_of(page)
            .ok_or_else(|| Errno::new(libc::EINVAL))?;
        let region = MmapRegion::new(len).map_err(|e| match e {
            vm_memory::mmap::MmapRegionError::Mmap(io) => io_errno(io),
            _ => Errno::new(libc::EINVAL),
        })?;
        Ok(Self { region })
    }

    /// Host virtual address of the first byte.
    pub fn host_addr(&self) -> u64 {
        self.region.as_ptr() as u64
    }

    /// Length in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.region.size()
    }

    /// Always false: a buffer has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes `offset..offset + n`; `EINVAL` when they do not fit.
    fn slice(&self, offset: usize, n: usize) -> SysResult<vm_memory::VolatileSlice<'_, ()>> {
        self.region
            .get_slice(offset, n)
            .map_err(|_| Errno::new(libc::EINVAL))
    }

    /// Copies `bytes` to `offset`; `EINVAL` when it does not fit.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> SysResult<()> {
        self.slice(offset, bytes.len())?.copy_from(bytes);
        Ok(())
    }

    /// Sets `n` bytes at `offset` to `byte`; `EINVAL` when it does not fit.
    pub fn fill(&self, offset: usize, n: usize, byte: u8) -> SysResult<()> {
        let s = self.slice(offset, n)?;
        let chunk = [byte; 256];
        let mut at = 0;
        while at < n {
            let k = (n - at).min(chunk.len());
            s.subslice(at, k)
                .map_err(|_| Errno::new(libc::EINVAL))?
                .copy_from(&chunk[..k]);
            at += k;
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes from `offset`; `EINVAL` when out of bounds.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> SysResult<()> {
        self.slice(offset, buf.len())?.copy_to(buf);
        Ok(())
    }
}

/// The host page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// Blocks until `efd` is readable, for at most `timeout_ms` (negative: forever). Returns
/// whether it became readable. For synchronous users of [`crate::VfioDevice`] (tools, the
/// raw-loop measurement); the backend itself waits on tokio.
pub fn poll_readable(efd: &EventFd, timeout_ms: i32) -> Result<bool, Errno> {
    let mut pfd = libc::pollfd {
        fd: efd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n < 0 { Err(Errno::last()) } else { Ok(n > 0) }
}

/// Registers `efd` with the tokio reactor (must be called inside a runtime).
pub(crate) fn async_eventfd(efd: EventFd) -> io::Result<tokio::io::unix::AsyncFd<EventFd>> {
    // SAFETY: an `EventFd` owns its descriptor: it stays open and refers to the same eventfd
    // until the `EventFd` (moved into the `AsyncFd`) is dropped, and `as_raw_fd` always
    // returns that descriptor.
    unsafe { tokio::io::unix::AsyncFd::register(efd) }.map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_uapi() {
        // Reference §12.4: `_IO(';', 100 + n)` and `_IO(';', 0x80 + n)`.
        let table = [
            (nr::VFIO_GET_API_VERSION(), 0x3B64),
            (nr::VFIO_CHECK_EXTENSION(), 0x3B65),
            (nr::VFIO_SET_IOMMU(), 0x3B66),
            (nr::VFIO_GROUP_GET_STATUS(), 0x3B67),
            (nr::VFIO_GROUP_SET_CONTAINER(), 0x3B68),
            (nr::VFIO_GROUP_UNSET_CONTAINER(), 0x3B69),
            (nr::VFIO_GROUP_GET_DEVICE_FD(), 0x3B6A),
            (nr::VFIO_DEVICE_GET_INFO(), 0x3B6B),
            (nr::VFIO_DEVICE_GET_REGION_INFO(), 0x3B6C),
            (nr::VFIO_DEVICE_GET_IRQ_INFO(), 0x3B6D),
            (nr::VFIO_DEVICE_SET_IRQS(), 0x3B6E),
            (nr::VFIO_DEVICE_RESET(), 0x3B6F),
            (nr::VFIO_IOMMU_MAP_DMA(), 0x3B71),
            (nr::VFIO_IOMMU_UNMAP_DMA(), 0x3B72),
            (nr::VFIO_DEVICE_BIND_IOMMUFD(), 0x3B76),
            (nr::VFIO_DEVICE_ATTACH_IOMMUFD_PT(), 0x3B77),
            (nr::VFIO_DEVICE_DETACH_IOMMUFD_PT(), 0x3B78),
            (nr::IOMMU_DESTROY(), 0x3B80),
            (nr::IOMMU_IOAS_ALLOC(), 0x3B81),
            (nr::IOMMU_IOAS_MAP(), 0x3B85),
            (nr::IOMMU_IOAS_UNMAP(), 0x3B86),
        ];
        for (got, want) in table {
            assert_eq!(got, want, "{want:#x}");
        }
    }

    #[test]
    fn dma_buffer_is_bounds_checked() {
        let b = DmaBuffer::new(100).unwrap();
        assert_eq!(b.len() % page_size(), 0);
        assert_eq!(b.host_addr() % page_size() as u64, 0);
        b.write(b.len() - 4, &[1, 2, 3, 4]).unwrap();
        let mut x = [0u8; 4];
        b.read(b.len() - 4, &mut x).unwrap();
        assert_eq!(x, [1, 2, 3, 4]);
        assert!(b.write(b.len() - 3, &[0; 4]).is_err());
        assert!(b.read(usize::MAX, &mut x).is_err());
        assert!(DmaBuffer::new(0).is_err());
        b.fill(b.len() - 4, 3, 0).unwrap();
        b.read(b.len() - 4, &mut x).unwrap();
        assert_eq!(x, [0, 0, 0, 4], "fill clears exactly its range");
        assert!(b.fill(b.len() - 3, 4, 0).is_err());
        assert!(b.fill(usize::MAX, 2, 0).is_err());
    }

    #[test]
    fn eventfds_and_poll() {
        let e = HostSys.eventfd(true).unwrap();
        assert!(!poll_readable(&e, 0).unwrap());
        e.write(1).unwrap();
        assert!(poll_readable(&e, 0).unwrap());
        assert_eq!(e.read().unwrap(), 1);
    }

    #[test]
    fn host_open_of_a_missing_node_is_enoent() {
        let e = HostSys.open(Path::new("/nonexistent/vfio")).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        let fd = HostSys.open(Path::new("/dev/null")).unwrap();
        // Not a VFIO container: the ioctl is refused, nothing breaks.
        assert!(HostSys.get_api_version(&fd).is_err());
        HostSys.close(fd);
    }
}
