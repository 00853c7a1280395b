// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `ccw-probe`: the s390x lane's own smoke test, run inside the emulated guest by `cargo xtask s390x`.
//!
//! It proves the lane (kernel, binding, mdev, both VFIO APIs) independently of vfio-backend: it opens
//! the mediated device through the legacy container/group API or the iommufd cdev API, checks what
//! the device reports, and runs one SENSE ID channel program through the raw vfio-ccw I/O region
//! (pwrite ORB+SCSW, wait on the eventfd, pread the IRB). When a later step fails, this tells whether
//! the guest or the backend is at fault.
//!
//! Built by xtask with rustc alone (standard library only, no crates), so it never depends on the
//! workspace compiling. Usage: `ccw-probe legacy|cdev <mdev-uuid> <devno-hex>`. Prints one line
//! `probe <api>: N passed, M failed` and exits non-zero if any check failed.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::time::Instant;

mod sys {
    //! The raw OS boundary: the few libc functions and VFIO/iommufd structs the probe needs.
    //! Layouts and numbers from the kernel's `linux/vfio.h`, `linux/iommufd.h`, `linux/vfio_ccw.h`.

    unsafe extern "C" {
        pub(crate) fn ioctl(fd: i32, request: std::ffi::c_ulong, ...) -> i32;
        pub(crate) fn eventfd(initval: u32, flags: i32) -> i32;
        pub(crate) fn poll(fds: *mut PollFd, nfds: u64, timeout_ms: i32) -> i32;
    }

    #[repr(C)]
    pub(crate) struct PollFd {
        pub(crate) fd: i32,
        pub(crate) events: i16,
        pub(crate) revents: i16,
    }

    const fn io(nr: u64) -> std::ffi::c_ulong {
        ((b';' as u64) << 8 | nr) as std::ffi::c_ulong
    }
    pub(crate) const VFIO_GET_API_VERSION: std::ffi::c_ulong = io(100);
    pub(crate) const VFIO_CHECK_EXTENSION: std::ffi::c_ulong = io(101);
    pub(crate) const VFIO_SET_IOMMU: std::ffi::c_ulong = io(102);
    pub(crate) const VFIO_GROUP_GET_STATUS: std::ffi::c_ulong = io(103);
    pub(crate) const VFIO_GROUP_SET_CONTAINER: std::ffi::c_ulong = io(104);
    pub(crate) const VFIO_GROUP_GET_DEVICE_FD: std::ffi::c_ulong = io(106);
    pub(crate) const VFIO_DEVICE_GET_INFO: std::ffi::c_ulong = io(107);
    pub(crate) const VFIO_DEVICE_GET_REGION_INFO: std::ffi::c_ulong = io(108);
    pub(crate) const VFIO_DEVICE_SET_IRQS: std::ffi::c_ulong = io(110);
    pub(crate) const VFIO_IOMMU_MAP_DMA: std::ffi::c_ulong = io(113);
    pub(crate) const VFIO_IOMMU_UNMAP_DMA: std::ffi::c_ulong = io(114);
    pub(crate) const VFIO_DEVICE_BIND_IOMMUFD: std::ffi::c_ulong = io(118);
    pub(crate) const VFIO_DEVICE_ATTACH_IOMMUFD_PT: std::ffi::c_ulong = io(119);
    pub(crate) const IOMMU_IOAS_ALLOC: std::ffi::c_ulong = io(0x81);
    pub(crate) const IOMMU_IOAS_MAP: std::ffi::c_ulong = io(0x85);

    pub(crate) const VFIO_TYPE1_IOMMU: u64 = 1;
    pub(crate) const VFIO_TYPE1V2_IOMMU: u64 = 3;
    pub(crate) const VFIO_DEVICE_FLAGS_CCW: u32 = 1 << 4;
    pub(crate) const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
    pub(crate) const VFIO_REGION_INFO_FLAG_CAPS: u32 = 8;
    pub(crate) const VFIO_REGION_INFO_CAP_TYPE: u16 = 2;
    pub(crate) const VFIO_REGION_TYPE_CCW: u32 = 2;
    pub(crate) const VFIO_REGION_SUBTYPE_CCW_SCHIB: u32 = 2;
    pub(crate) const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 4;
    pub(crate) const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 32;
    pub(crate) const VFIO_DMA_MAP_FLAG_READ_WRITE: u32 = 3;
    pub(crate) const IOMMU_IOAS_MAP_FIXED_IOVA_RW: u32 = 1 | 2 | 4;

    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct GroupStatus {
        pub(crate) argsz: u32,
        pub(crate) flags: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct DeviceInfo {
        pub(crate) argsz: u32,
        pub(crate) flags: u32,
        pub(crate) num_regions: u32,
        pub(crate) num_irqs: u32,
        pub(crate) cap_offset: u32,
        pub(crate) pad: u32,
    }
    /// `vfio_region_info` followed by room for one `vfio_region_info_cap_type`.
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct RegionInfo {
        pub(crate) argsz: u32,
        pub(crate) flags: u32,
        pub(crate) index: u32,
        pub(crate) cap_offset: u32,
        pub(crate) size: u64,
        pub(crate) offset: u64,
        pub(crate) cap_id: u16,
        pub(crate) cap_version: u16,
        pub(crate) cap_next: u32,
        pub(crate) cap_type: u32,
        pub(crate) cap_subtype: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct IrqSetOne {
        pub(crate) argsz: u32,
        pub(crate) flags: u32,
        pub(crate) index: u32,
        pub(crate) start: u32,
        pub(crate) count: u32,
        pub(crate) fd: i32,
    }
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct DmaMap {
        pub(crate) argsz: u32,
        pub(crate) flags: u32,
        pub(crate) vaddr: u64,
        pub(crate) iova: u64,
        pub(crate) size: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct DmaUnmap {
        pub(crate) argsz: u32,
        pub(crate) flags: u32,
        pub(crate) iova: u64,
        pub(crate) size: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct BindIommufd {
        pub(crate) argsz: u32,
        pub(crate) flags: u32,
        pub(crate) iommufd: i32,
        pub(crate) out_devid: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct IoasAlloc {
        pub(crate) size: u32,
        pub(crate) flags: u32,
        pub(crate) out_ioas_id: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct AttachPt {
        pub(crate) argsz: u32,
        pub(crate) flags: u32,
        pub(crate) pt_id: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    pub(crate) struct IoasMap {
        pub(crate) size: u32,
        pub(crate) flags: u32,
        pub(crate) ioas_id: u32,
        pub(crate) reserved: u32,
        pub(crate) user_va: u64,
        pub(crate) length: u64,
        pub(crate) iova: u64,
    }
}

/// IOVA where the probe's DMA buffer is mapped (below 2 GiB, as format-1 CCWs require).
const IOVA: u64 = 0x0010_0000;
/// Size of the DMA buffer: the CCW page (vfio-ccw reads 2 KiB at the CPA) plus the data page.
const BUF_LEN: usize = 0x4000;
/// Offset of the SENSE ID data inside the buffer.
const DATA_OFF: usize = 0x1000;
/// Round trips timed for the raw SENSE ID median.
const TIMED_ROUNDS: usize = 50;

/// The outcome of every named check; printed as one `N passed, M failed` line.
struct Checks {
    api: String,
    passed: u32,
    failed: u32,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Display) -> bool {
        if ok {
            self.passed += 1;
            println!("probe {} ok   {name}: {detail}", self.api);
        } else {
            self.failed += 1;
            println!("probe {} FAIL {name}: {detail}", self.api);
        }
        ok
    }
}

/// A page-aligned heap buffer that DMA mappings point at.
struct DmaBuf {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl DmaBuf {
    fn new() -> Self {
        let layout = std::alloc::Layout::from_size_align(BUF_LEN, 4096).expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        Self { ptr, layout }
    }
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: ptr is a live allocation of BUF_LEN bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, BUF_LEN) }
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// ioctl with a pointer argument; returns the raw result or the OS error.
fn ioctl_ptr<T>(fd: &impl AsRawFd, req: std::ffi::c_ulong, arg: &mut T) -> Result<i32, String> {
    // SAFETY: `arg` is a live, correctly laid out repr(C) struct for `req`, sized by its argsz.
    let r = unsafe { sys::ioctl(fd.as_raw_fd(), req, arg as *mut T) };
    if r < 0 { Err(errno().to_string()) } else { Ok(r) }
}

/// ioctl with an integer argument passed by value.
fn ioctl_val(fd: &impl AsRawFd, req: std::ffi::c_ulong, arg: u64) -> Result<i32, String> {
    // SAFETY: requests used here take their argument by value; no memory is passed.
    let r = unsafe { sys::ioctl(fd.as_raw_fd(), req, arg) };
    if r < 0 { Err(errno().to_string()) } else { Ok(r) }
}

fn open_rw(path: &str) -> Result<File, String> {
    OpenOptions::new().read(true).write(true).open(path).map_err(|e| format!("{path}: {e}"))
}

fn region_info(dev: &File, index: u32) -> Result<sys::RegionInfo, String> {
    let mut info = sys::RegionInfo {
        argsz: std::mem::size_of::<sys::RegionInfo>() as u32,
        index,
        ..Default::default()
    };
    ioctl_ptr(dev, sys::VFIO_DEVICE_GET_REGION_INFO, &mut info)?;
    Ok(info)
}

/// The checks both APIs share once a device fd exists: info, regions, IRQ, one SENSE ID.
fn device_checks(c: &mut Checks, dev: &File, buf: &mut DmaBuf, devno: u16) {
    let mut info = sys::DeviceInfo { argsz: 24, ..Default::default() };
    let r = ioctl_ptr(dev, sys::VFIO_DEVICE_GET_INFO, &mut info);
    if !c.check(
        "device-info",
        r.is_ok() && info.flags & sys::VFIO_DEVICE_FLAGS_CCW != 0 && info.num_irqs == 3,
        format!(
            "{r:?} flags={:#x} regions={} irqs={}",
            info.flags, info.num_regions, info.num_irqs
        ),
    ) {
        return;
    }
    let io = match region_info(dev, 0) {
        Ok(io) => io,
        Err(e) => {
            c.check("io-region", false, e);
            return;
        }
    };
    c.check("io-region", io.size == 124, format!("size={} offset={:#x}", io.size, io.offset));

    // Find the SCHIB region through the capability chain and compare the device number.
    let mut schib_found = false;
    for index in 1..info.num_regions {
        let Ok(r) = region_info(dev, index) else { continue };
        let typed = r.flags & sys::VFIO_REGION_INFO_FLAG_CAPS != 0
            && r.cap_offset == 32
            && r.cap_id == sys::VFIO_REGION_INFO_CAP_TYPE;
        if typed && r.cap_type == sys::VFIO_REGION_TYPE_CCW && r.cap_subtype == sys::VFIO_REGION_SUBTYPE_CCW_SCHIB {
            schib_found = true;
            let mut schib = [0u8; 52];
            let res = dev.read_exact_at(&mut schib, r.offset);
            let got = u16::from_be_bytes([schib[6], schib[7]]);
            c.check(
                "schib-region",
                res.is_ok() && got == devno && schib[5] & 0x80 != 0,
                format!("{res:?} index={index} pmcw={:02x?} devno={got:04x} (want {devno:04x}, dnv)", &schib[..8]),
            );
        }
    }
    if !schib_found {
        c.check("schib-region", false, "no region with type 2 subtype 2");
    }

    // SAFETY: plain syscall creating a new fd; ownership passes to the File right below.
    let efd = unsafe { sys::eventfd(0, 0) };
    if !c.check("eventfd", efd >= 0, format!("fd={efd}")) {
        return;
    }
    // SAFETY: efd is a fresh, valid fd that nothing else owns.
    let mut event = unsafe { File::from_raw_fd(efd) };
    let mut set = sys::IrqSetOne {
        argsz: 24,
        flags: sys::VFIO_IRQ_SET_DATA_EVENTFD | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
        index: 0,
        start: 0,
        count: 1,
        fd: efd,
    };
    let r = ioctl_ptr(dev, sys::VFIO_DEVICE_SET_IRQS, &mut set);
    if !c.check("io-irq-eventfd", r.is_ok(), format!("{r:?}")) {
        return;
    }

    // SENSE ID: one format-1 CCW at IOVA, data at IOVA + DATA_OFF.
    let bytes = buf.bytes();
    bytes.fill(0);
    let cda = (IOVA as u32 + DATA_OFF as u32).to_be_bytes();
    bytes[..8].copy_from_slice(&[0xE4, 0x20, 0x01, 0x00, cda[0], cda[1], cda[2], cda[3]]);
    let mut region = [0u8; 124];
    region[0..4].copy_from_slice(&0x1234_5678u32.to_be_bytes()); // intparm
    region[4..8].copy_from_slice(&0x00C2_FF00u32.to_be_bytes()); // F, P, C64, LPM ff
    region[8..12].copy_from_slice(&(IOVA as u32).to_be_bytes()); // cpa
    region[12..16].copy_from_slice(&0x0000_4000u32.to_be_bytes()); // SCSW: fctl start
    let mut round_trip = || -> Result<[u8; 124], String> {
        dev.write_all_at(&region, io.offset).map_err(|e| format!("pwrite io region: {e}"))?;
        let mut pfd = sys::PollFd { fd: efd, events: 1, revents: 0 };
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { sys::poll(&mut pfd, 1, 5000) };
        if n != 1 {
            return Err(format!("no I/O interrupt within 5 s (poll={n})"));
        }
        let mut counter = [0u8; 8];
        event.read_exact(&mut counter).map_err(|e| format!("read eventfd: {e}"))?;
        let mut back = [0u8; 124];
        dev.read_exact_at(&mut back, io.offset).map_err(|e| format!("pread io region: {e}"))?;
        Ok(back)
    };
    let first = round_trip();
    let ok = match &first {
        Ok(back) => {
            let scsw = &back[24..36];
            let data = &buf.bytes()[DATA_OFF..DATA_OFF + 8];
            let cu = u16::from_be_bytes([data[1], data[2]]);
            c.check(
                "sense-id",
                scsw[8] == 0x0c && scsw[9] == 0 && data[0] == 0xff && cu == 0x3832,
                format!("scsw={scsw:02x?} data={data:02x?} cu={cu:04x}"),
            )
        }
        Err(e) => c.check("sense-id", false, e),
    };
    if ok {
        let mut times = Vec::with_capacity(TIMED_ROUNDS);
        for _ in 0..TIMED_ROUNDS {
            let t = Instant::now();
            if let Err(e) = round_trip() {
                c.check("sense-id-repeat", false, e);
                return;
            }
            times.push(t.elapsed());
        }
        times.sort();
        c.check(
            "sense-id-repeat",
            true,
            format!("{TIMED_ROUNDS} round trips, raw median={:?}", times[TIMED_ROUNDS / 2]),
        );
    }
}

fn legacy(c: &mut Checks, uuid: &str, devno: u16) {
    let container = match open_rw("/dev/vfio/vfio") {
        Ok(f) => f,
        Err(e) => {
            c.check("container", false, e);
            return;
        }
    };
    let v = ioctl_val(&container, sys::VFIO_GET_API_VERSION, 0);
    c.check("api-version", v == Ok(0), format!("{v:?}"));
    let iommu = [sys::VFIO_TYPE1V2_IOMMU, sys::VFIO_TYPE1_IOMMU]
        .into_iter()
        .find(|t| ioctl_val(&container, sys::VFIO_CHECK_EXTENSION, *t).is_ok_and(|r| r > 0));
    if !c.check("iommu-extension", iommu.is_some(), format!("type {iommu:?}")) {
        return;
    }
    let link = std::fs::read_link(format!("/sys/bus/mdev/devices/{uuid}/iommu_group"));
    let group_no = link.as_ref().ok().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let Some(group_no) = group_no else {
        c.check("iommu-group", false, format!("{link:?}"));
        return;
    };
    let group = match open_rw(&format!("/dev/vfio/{group_no}")) {
        Ok(f) => f,
        Err(e) => {
            c.check("iommu-group", false, e);
            return;
        }
    };
    let mut st = sys::GroupStatus { argsz: 8, flags: 0 };
    let r = ioctl_ptr(&group, sys::VFIO_GROUP_GET_STATUS, &mut st);
    c.check(
        "iommu-group",
        r.is_ok() && st.flags & sys::VFIO_GROUP_FLAGS_VIABLE != 0,
        format!("group {group_no} {r:?} flags={:#x}", st.flags),
    );
    let mut cfd = container.as_raw_fd();
    let r = ioctl_ptr(&group, sys::VFIO_GROUP_SET_CONTAINER, &mut cfd)
        .and_then(|_| ioctl_val(&container, sys::VFIO_SET_IOMMU, iommu.unwrap_or_default()));
    if !c.check("set-container-iommu", r.is_ok(), format!("{r:?}")) {
        return;
    }
    let mut buf = DmaBuf::new();
    let mut map = sys::DmaMap {
        argsz: 32,
        flags: sys::VFIO_DMA_MAP_FLAG_READ_WRITE,
        vaddr: buf.ptr as u64,
        iova: IOVA,
        size: BUF_LEN as u64,
    };
    let r = ioctl_ptr(&container, sys::VFIO_IOMMU_MAP_DMA, &mut map);
    if !c.check("map-dma", r.is_ok(), format!("{r:?} iova={IOVA:#x} len={BUF_LEN:#x}")) {
        return;
    }
    let mut name = format!("{uuid}\0").into_bytes();
    let r = ioctl_ptr(&group, sys::VFIO_GROUP_GET_DEVICE_FD, &mut name[0]);
    match r {
        Ok(fd) => {
            c.check("device-fd", true, format!("fd={fd}"));
            // SAFETY: the ioctl returned a fresh fd that nothing else owns.
            let dev = unsafe { File::from_raw_fd(fd) };
            device_checks(c, &dev, &mut buf, devno);
            drop(dev);
        }
        Err(e) => {
            c.check("device-fd", false, e);
        }
    }
    let mut unmap = sys::DmaUnmap { argsz: 24, flags: 0, iova: IOVA, size: BUF_LEN as u64 };
    let r = ioctl_ptr(&container, sys::VFIO_IOMMU_UNMAP_DMA, &mut unmap);
    c.check("unmap-dma", r.is_ok() && unmap.size == BUF_LEN as u64, format!("{r:?} size={:#x}", unmap.size));
}

fn cdev(c: &mut Checks, uuid: &str, devno: u16) {
    let dir = format!("/sys/bus/mdev/devices/{uuid}/vfio-dev");
    let node = std::fs::read_dir(&dir)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned());
    let Some(node) = node else {
        c.check("cdev-node", false, format!("nothing under {dir}"));
        return;
    };
    let (dev, iommufd) = match (open_rw(&format!("/dev/vfio/devices/{node}")), open_rw("/dev/iommu")) {
        (Ok(d), Ok(i)) => (d, i),
        (d, i) => {
            c.check("cdev-node", false, format!("{:?} {:?}", d.err(), i.err()));
            return;
        }
    };
    c.check("cdev-node", true, format!("/dev/vfio/devices/{node}"));
    let mut bind = sys::BindIommufd { argsz: 16, flags: 0, iommufd: iommufd.as_raw_fd(), out_devid: 0 };
    let r = ioctl_ptr(&dev, sys::VFIO_DEVICE_BIND_IOMMUFD, &mut bind);
    if !c.check("bind-iommufd", r.is_ok(), format!("{r:?} devid={}", bind.out_devid)) {
        return;
    }
    let mut alloc = sys::IoasAlloc { size: 12, flags: 0, out_ioas_id: 0 };
    let r = ioctl_ptr(&iommufd, sys::IOMMU_IOAS_ALLOC, &mut alloc);
    if !c.check("ioas-alloc", r.is_ok(), format!("{r:?} ioas={}", alloc.out_ioas_id)) {
        return;
    }
    let mut attach = sys::AttachPt { argsz: 12, flags: 0, pt_id: alloc.out_ioas_id };
    let r = ioctl_ptr(&dev, sys::VFIO_DEVICE_ATTACH_IOMMUFD_PT, &mut attach);
    if !c.check("attach-ioas", r.is_ok(), format!("{r:?} pt={}", attach.pt_id)) {
        return;
    }
    let mut buf = DmaBuf::new();
    let mut map = sys::IoasMap {
        size: 40,
        flags: sys::IOMMU_IOAS_MAP_FIXED_IOVA_RW,
        ioas_id: alloc.out_ioas_id,
        reserved: 0,
        user_va: buf.ptr as u64,
        length: BUF_LEN as u64,
        iova: IOVA,
    };
    let r = ioctl_ptr(&iommufd, sys::IOMMU_IOAS_MAP, &mut map);
    if !c.check("ioas-map", r.is_ok() && map.iova == IOVA, format!("{r:?} iova={:#x}", map.iova)) {
        return;
    }
    device_checks(c, &dev, &mut buf, devno);
    // Closing the device detaches it; closing the iommufd destroys the IOAS and its mappings.
    drop(dev);
    drop(iommufd);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(api), Some(uuid), Some(devno)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: ccw-probe legacy|cdev <mdev-uuid> <devno-hex>");
        std::process::exit(2);
    };
    let Ok(devno) = u16::from_str_radix(devno.trim_start_matches("0x"), 16) else {
        eprintln!("ccw-probe: bad device number {devno:?}");
        std::process::exit(2);
    };
    let mut c = Checks { api: api.clone(), passed: 0, failed: 0 };
    match api.as_str() {
        "legacy" => legacy(&mut c, uuid, devno),
        "cdev" => cdev(&mut c, uuid, devno),
        other => {
            eprintln!("ccw-probe: unknown api {other:?} (legacy|cdev)");
            std::process::exit(2);
        }
    }
    println!("probe {api}: {} passed, {} failed", c.passed, c.failed);
    std::process::exit(if c.failed == 0 && c.passed > 0 { 0 } else { 1 });
}
