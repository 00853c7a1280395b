// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `ccw-probe`: the s390x lane's own smoke test, run inside the emulated guest by `cargo xtask s390x`.
//!
//! It proves the lane (kernel, binding, mdev, both VFIO APIs) independently of vfio-backend: it opens
//! the mediated device through the legacy container/group API or the iommufd cdev API, checks what
//! the device reports, and runs SENSE ID through the raw vfio-ccw I/O region (pwrite ORB+SCSW, wait
//! on the eventfd, pread the IRB). When a later step fails, this tells whether the guest or the
//! backend is at fault. On a DASD (the Hercules lane, kind `dasd`) it goes on with real ECKD
//! programs: RDC; Define Extent + Locate Record + Read Data of the record the host wrote, also
//! through two format-2 IDAWs across a page and data-chained 100 + 3996 bytes; an update write the
//! host checks after power-off; HSCH and CSCH (async region) of a running NOP -> TIC loop, each
//! followed by a SENSE ID.
//!
//! Built by xtask with rustc alone (standard library only, no crates), so it never depends on the
//! workspace compiling. Usage: `ccw-probe legacy|cdev <mdev-uuid> <devno-hex> [virtio|dasd]`.
//! Prints `probe <api>: N passed, M failed` (and `probe <api> halt-completion: N passed, M failed`
//! for the halt checks) and exits non-zero if any check failed. `ccw-probe pace` copies stdin to
//! the 3215 console without losing output (see `pace`).

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
        pub(crate) fn tcdrain(fd: i32) -> i32;
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
    pub(crate) const VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD: u32 = 1;
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
/// Size of the DMA buffer: the CCW page (vfio-ccw reads 2 KiB at the CPA) plus the data pages.
const BUF_LEN: usize = 0x8000;
/// Offset of the SENSE ID and RDC data inside the buffer.
const DATA_OFF: usize = 0x1000;
/// Round trips timed for the raw SENSE ID median.
const TIMED_ROUNDS: usize = 50;

/// Layout of the DASD checks inside the buffer (offsets from IOVA).
mod lay {
    /// Define Extent parameters (16 bytes).
    pub(crate) const DE: usize = 0x800;
    /// Locate Record parameters (16 bytes).
    pub(crate) const LR: usize = 0x810;
    /// The IDAL of the IDAW read: two format-2 IDAWs.
    pub(crate) const IDAL: usize = 0x820;
    /// The NOP -> TIC loop that HSCH and CSCH stop.
    pub(crate) const LOOP: usize = 0x100;
    /// A record read into one page (and the data written).
    pub(crate) const RECORD: usize = 0x2000;
    /// A record read through the IDAL: 0x800 bytes before the page boundary, 0x800 after.
    pub(crate) const SPLIT: usize = 0x3800;
    /// The data-chained read: first 100 bytes here ...
    pub(crate) const CHAIN_HEAD: usize = 0x5000;
    /// ... the other 3996 in the next page but one.
    pub(crate) const CHAIN_TAIL: usize = 0x6000;
}

/// What the device behind the subchannel is, which decides the expected SENSE ID and the checks.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// QEMU's virtio-blk-ccw: control unit 0x3832.
    Virtio,
    /// Hercules' 3390 on a 3990 control unit, image made by `cargo xtask s390x --lane hercules`.
    Dasd,
}

include!("dasd_records.rs");

/// The outcome of every named check; printed as one `N passed, M failed` line.
struct Checks {
    api: String,
    passed: u32,
    failed: u32,
    /// Failures printed on a separate line (the halt-completion checks), still failures.
    apart_failed: u32,
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

/// A format-1 CCW.
fn ccw(cmd: u8, flags: u8, count: u16, cda_off: usize) -> [u8; 8] {
    let c = count.to_be_bytes();
    let a = (IOVA as u32 + cda_off as u32).to_be_bytes();
    [cmd, flags, c[0], c[1], a[0], a[1], a[2], a[3]]
}

/// CCW flags.
const CD: u8 = 0x80;
const CC: u8 = 0x40;
const SLI: u8 = 0x20;
const IDA: u8 = 0x04;

/// SCSW word 0 fields (s390-io-reference.md §3.1).
const FC_HALT: u32 = 0x2000;
const FC_CLEAR: u32 = 0x1000;
const AC_MASK: u32 = 0x0FE0;
const SC_PENDING: u32 = 0x01;
/// vfio-ccw's async command region: `VFIO_CCW_ASYNC_CMD_HSCH` and `_CSCH`.
const ASYNC_HSCH: u32 = 1;
const ASYNC_CSCH: u32 = 2;
const EBUSY: i32 = 16;

/// The SCSW of an I/O region read back: word 0, device status, subchannel status, residual.
struct Scsw {
    w0: u32,
    dstat: u8,
    cstat: u8,
    residual: u16,
    raw: [u8; 12],
}

impl Scsw {
    fn of(region: &[u8; 124]) -> Self {
        let mut raw = [0u8; 12];
        raw.copy_from_slice(&region[24..36]);
        Scsw {
            w0: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            dstat: raw[8],
            cstat: raw[9],
            residual: u16::from_be_bytes([raw[10], raw[11]]),
            raw,
        }
    }
    /// Channel end + device end, no subchannel status: the program ended normally.
    fn clean(&self) -> bool {
        self.dstat == 0x0c && self.cstat == 0
    }
}

impl std::fmt::Display for Scsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.raw {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The device fd with its I/O region, async region and I/O eventfd.
struct Dev<'a> {
    dev: &'a File,
    io: u64,
    async_off: Option<u64>,
    event: File,
}

impl Dev<'_> {
    /// Writes ORB (intparm, F|P|C64|LPM ff, cpa) + SCSW (fctl start) to the I/O region: SSCH.
    fn start(&self, cpa_off: usize) -> std::io::Result<()> {
        let mut region = [0u8; 124];
        region[0..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        region[4..8].copy_from_slice(&0x00C2_FF00u32.to_be_bytes());
        region[8..12].copy_from_slice(&(IOVA as u32 + cpa_off as u32).to_be_bytes());
        region[12..16].copy_from_slice(&0x0000_4000u32.to_be_bytes());
        self.dev.write_all_at(&region, self.io)
    }

    /// Waits up to `ms` for the I/O eventfd; `Ok(None)` when nothing arrived.
    fn wait(&mut self, ms: i32) -> Result<Option<[u8; 124]>, String> {
        let mut pfd = sys::PollFd { fd: self.event.as_raw_fd(), events: 1, revents: 0 };
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { sys::poll(&mut pfd, 1, ms) };
        if n == 0 {
            return Ok(None);
        }
        if n != 1 {
            return Err(format!("poll: {}", errno()));
        }
        let mut counter = [0u8; 8];
        self.event.read_exact(&mut counter).map_err(|e| format!("read eventfd: {e}"))?;
        let mut back = [0u8; 124];
        self.dev.read_exact_at(&mut back, self.io).map_err(|e| format!("pread io region: {e}"))?;
        Ok(Some(back))
    }

    /// One channel program to its interrupt.
    fn run(&mut self, cpa_off: usize) -> Result<Scsw, String> {
        self.start(cpa_off).map_err(|e| format!("pwrite io region: {e}"))?;
        match self.wait(5000)? {
            Some(back) => Ok(Scsw::of(&back)),
            None => Err("no I/O interrupt within 5 s".to_string()),
        }
    }

    /// HSCH or CSCH through the async command region.
    fn async_cmd(&self, cmd: u32) -> Result<(), String> {
        let off = self.async_off.ok_or("no async command region")?;
        let mut region = [0u8; 8];
        region[0..4].copy_from_slice(&cmd.to_be_bytes());
        self.dev.write_all_at(&region, off).map_err(|e| format!("pwrite async region: {e}"))
    }
}

/// The checks both APIs share once a device fd exists: info, regions, IRQ, SENSE ID, and on a
/// DASD the channel programs of `dasd_checks`.
fn device_checks(c: &mut Checks, dev: &File, buf: &mut DmaBuf, devno: u16, kind: Kind) {
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

    // Find the SCHIB region through the capability chain and compare the device number; note
    // the async command region on the way.
    let mut schib_found = false;
    let mut async_off = None;
    for index in 1..info.num_regions {
        let Ok(r) = region_info(dev, index) else { continue };
        let typed = r.flags & sys::VFIO_REGION_INFO_FLAG_CAPS != 0
            && r.cap_offset == 32
            && r.cap_id == sys::VFIO_REGION_INFO_CAP_TYPE
            && r.cap_type == sys::VFIO_REGION_TYPE_CCW;
        if typed && r.cap_subtype == sys::VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD {
            async_off = Some(r.offset);
        }
        if typed && r.cap_subtype == sys::VFIO_REGION_SUBTYPE_CCW_SCHIB {
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
    let event = unsafe { File::from_raw_fd(efd) };
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
    let mut d = Dev { dev, io: io.offset, async_off, event };

    if !sense_id(c, &mut d, buf, kind, "sense-id") {
        return;
    }
    let mut times = Vec::with_capacity(TIMED_ROUNDS);
    for _ in 0..TIMED_ROUNDS {
        let t = Instant::now();
        if let Err(e) = d.run(0) {
            c.check("sense-id-repeat", false, e);
            return;
        }
        times.push(t.elapsed());
    }
    times.sort();
    c.check(
        "sense-id-repeat",
        true,
        // Microseconds spelled out: the 3215 console under Hercules has no µ.
        format!("{TIMED_ROUNDS} round trips, raw median={} us", times[TIMED_ROUNDS / 2].as_micros()),
    );
    if kind == Kind::Dasd {
        c.check("async-region", async_off.is_some(), format!("offset={async_off:?}"));
        dasd_checks(c, &mut d, buf);
    }
}

/// SENSE ID (one CCW at offset 0, data at DATA_OFF): the control unit the kind expects.
fn sense_id(c: &mut Checks, d: &mut Dev, buf: &mut DmaBuf, kind: Kind, name: &str) -> bool {
    let bytes = buf.bytes();
    bytes[..0x800].fill(0);
    bytes[DATA_OFF..DATA_OFF + 256].fill(0);
    bytes[..8].copy_from_slice(&ccw(0xE4, SLI, 256, DATA_OFF));
    match d.run(0) {
        Ok(scsw) => {
            let data = &buf.bytes()[DATA_OFF..DATA_OFF + 12];
            let cu = u16::from_be_bytes([data[1], data[2]]);
            let dt = u16::from_be_bytes([data[4], data[5]]);
            let want = match kind {
                Kind::Virtio => cu == 0x3832,
                Kind::Dasd => cu == 0x3990 && dt == 0x3390,
            };
            c.check(
                name,
                scsw.clean() && data[0] == 0xff && want,
                format!("scsw={scsw} data={} cu={cu:04x} dev={dt:04x}", hex(data)),
            )
        }
        Err(e) => c.check(name, false, e),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Define Extent parameters over cylinder `cyl`, heads 0-14, with file mask `mask` (ECKD mode).
fn define_extent(mask: u8, cyl: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = mask;
    p[1] = 0xC0;
    p[8..10].copy_from_slice(&cyl.to_be_bytes());
    p[12..14].copy_from_slice(&cyl.to_be_bytes());
    p[14..16].copy_from_slice(&14u16.to_be_bytes());
    p
}

/// Locate Record parameters: operation `op` (0x06 read data, 0x01 write data) on one record of
/// `RECORD_LEN` bytes at (cyl, head, record), count orientation.
fn locate_record(op: u8, (cyl, head, rec): (u16, u16, u8)) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = op;
    p[1] = 0x80; // transfer length factor valid
    p[3] = 1;
    p[4..6].copy_from_slice(&cyl.to_be_bytes());
    p[6..8].copy_from_slice(&head.to_be_bytes());
    p.copy_within(4..8, 8);
    p[12] = rec;
    p[14..16].copy_from_slice(&(RECORD_LEN as u16).to_be_bytes());
    p
}

/// Lays out Define Extent + Locate Record at offset 0 and returns the offset of the third CCW.
fn domain(buf: &mut DmaBuf, mask: u8, op: u8, at: (u16, u16, u8)) -> usize {
    let b = buf.bytes();
    b[..0x800].fill(0);
    b[lay::DE..lay::DE + 16].copy_from_slice(&define_extent(mask, at.0));
    b[lay::LR..lay::LR + 16].copy_from_slice(&locate_record(op, at));
    b[0..8].copy_from_slice(&ccw(0x63, CC, 16, lay::DE));
    b[8..16].copy_from_slice(&ccw(0x47, CC, 16, lay::LR));
    16
}

/// Compares `got` with the pattern bytes `range` of seed `seed`; describes the first mismatch.
fn compare(got: &[u8], seed: u8, start: usize) -> Result<(), String> {
    match got.iter().enumerate().find(|(i, b)| **b != pattern(seed, start + i)) {
        None => Ok(()),
        Some((i, b)) => Err(format!(
            "byte {} is {b:02x}, want {:02x}",
            start + i,
            pattern(seed, start + i)
        )),
    }
}

/// The DASD's channel programs through the I/O and async regions.
fn dasd_checks(c: &mut Checks, d: &mut Dev, buf: &mut DmaBuf) {
    // Read Device Characteristics: 64 bytes, 3990 / 3390, 15 heads.
    {
        let b = buf.bytes();
        b[..0x800].fill(0);
        b[DATA_OFF..DATA_OFF + 64].fill(0);
        b[..8].copy_from_slice(&ccw(0x64, SLI, 64, DATA_OFF));
    }
    match d.run(0) {
        Ok(s) => {
            let r = &buf.bytes()[DATA_OFF..DATA_OFF + 64];
            let (sd, dt) = (u16::from_be_bytes([r[0], r[1]]), u16::from_be_bytes([r[3], r[4]]));
            let (cyls, heads) = (u16::from_be_bytes([r[12], r[13]]), u16::from_be_bytes([r[14], r[15]]));
            c.check(
                "rdc",
                s.clean() && s.residual == 0 && sd == 0x3990 && dt == 0x3390 && heads == 15,
                format!("scsw={s} {sd:04x}/{dt:04x}-{:02x} cyls={cyls} heads={heads}", r[5]),
            );
        }
        Err(e) => {
            c.check("rdc", false, e);
        }
    }

    // The record the host wrote, three ways: into one page, through two format-2 IDAWs across a
    // page boundary, and data-chained 100 + 3996 bytes.
    let n = RECORD_LEN as u16;
    let reads: [(&str, Vec<(usize, usize)>); 3] = [
        ("read-record", vec![(lay::RECORD, RECORD_LEN)]),
        ("read-2-idaws", vec![(lay::SPLIT, RECORD_LEN)]),
        ("read-data-chained", vec![(lay::CHAIN_HEAD, 100), (lay::CHAIN_TAIL, RECORD_LEN - 100)]),
    ];
    for (name, areas) in reads {
        let third = domain(buf, 0x40, 0x06, READ_AT);
        let b = buf.bytes();
        b[0x2000..].fill(0);
        match name {
            "read-record" => b[third..third + 8].copy_from_slice(&ccw(0x86, 0, n, lay::RECORD)),
            "read-2-idaws" => {
                b[third..third + 8].copy_from_slice(&ccw(0x86, IDA, n, lay::IDAL));
                b[lay::IDAL..lay::IDAL + 8].copy_from_slice(&(IOVA + lay::SPLIT as u64).to_be_bytes());
                b[lay::IDAL + 8..lay::IDAL + 16].copy_from_slice(&(IOVA + 0x4000).to_be_bytes());
            }
            _ => {
                b[third..third + 8].copy_from_slice(&ccw(0x86, CD, 100, lay::CHAIN_HEAD));
                b[third + 8..third + 16].copy_from_slice(&ccw(0x86, 0, n - 100, lay::CHAIN_TAIL));
            }
        }
        let res = d.run(0).and_then(|s| {
            if !s.clean() || s.residual != 0 {
                return Err(format!("scsw={s}"));
            }
            let mut at = 0;
            for (off, len) in &areas {
                compare(&buf.bytes()[*off..*off + *len], READ_SEED, at)?;
                at += len;
            }
            Ok(format!("scsw={s} {} bytes as written by the host", at))
        });
        match res {
            Ok(detail) => c.check(name, true, detail),
            Err(e) => c.check(name, false, e),
        };
    }

    // Write a record (update write) and read it back; the host checks the image after power-off.
    let third = domain(buf, 0x80, 0x01, WRITE_AT);
    {
        let b = buf.bytes();
        b[third..third + 8].copy_from_slice(&ccw(0x85, 0, n, lay::RECORD));
        for (i, x) in b[lay::RECORD..lay::RECORD + RECORD_LEN].iter_mut().enumerate() {
            *x = pattern(WRITE_SEED, i);
        }
    }
    let wrote = match d.run(0) {
        Ok(s) => c.check("write-record", s.clean() && s.residual == 0, format!("scsw={s} c{}h{}r{}", WRITE_AT.0, WRITE_AT.1, WRITE_AT.2)),
        Err(e) => c.check("write-record", false, e),
    };
    if wrote {
        let third = domain(buf, 0x40, 0x06, WRITE_AT);
        let b = buf.bytes();
        b[third..third + 8].copy_from_slice(&ccw(0x86, 0, n, lay::RECORD));
        b[lay::RECORD..lay::RECORD + RECORD_LEN].fill(0);
        let res = d.run(0).and_then(|s| {
            if !s.clean() {
                return Err(format!("scsw={s}"));
            }
            compare(&buf.bytes()[lay::RECORD..lay::RECORD + RECORD_LEN], WRITE_SEED, 0).map(|()| format!("scsw={s}"))
        });
        match res {
            Ok(detail) => c.check("read-back-written", true, detail),
            Err(e) => c.check("read-back-written", false, e),
        };
    }

    halt_and_clear(c, d, buf);
}

/// Starts the NOP -> TIC loop at `lay::LOOP` and checks it is still running 20 ms later.
fn start_loop(c: &mut Checks, d: &mut Dev, buf: &mut DmaBuf, name: &str) -> bool {
    {
        let b = buf.bytes();
        b[lay::LOOP..lay::LOOP + 16].fill(0);
        b[lay::LOOP..lay::LOOP + 8].copy_from_slice(&ccw(0x03, CC | SLI, 1, DATA_OFF));
        b[lay::LOOP + 8..lay::LOOP + 16].copy_from_slice(&ccw(0x08, 0, 0, lay::LOOP));
    }
    if let Err(e) = d.start(lay::LOOP) {
        return c.check(name, false, format!("start NOP->TIC loop: {e}"));
    }
    match d.wait(20) {
        Ok(None) => c.check(name, true, "NOP->TIC loop started, no interrupt after 20 ms"),
        Ok(Some(back)) => c.check(name, false, format!("the loop ended on its own: scsw={}", Scsw::of(&back))),
        Err(e) => c.check(name, false, e),
    }
}

/// HSCH and CSCH of a running channel program, each followed by a SENSE ID that must work.
///
/// After a completed HSCH the activity control must be 0 (s390-io-reference.md §3.3, §3.4;
/// TEST SUBCHANNEL never clears subchannel- and device-active, §10.4). Hercules 3.13 leaves
/// both set (SCSW word 0 `00c060c1`); those checks print their own line, `probe <api>
/// halt-completion: N passed, M failed`, so the lane can report that emulator defect apart
/// while every other check still counts.
fn halt_and_clear(c: &mut Checks, d: &mut Dev, buf: &mut DmaBuf) {
    let mut hc = Checks { api: format!("{} halt-completion", c.api), passed: 0, failed: 0, apart_failed: 0 };
    if start_loop(c, d, buf, "hsch-loop-running") {
        let halted = d.async_cmd(ASYNC_HSCH).and_then(|()| d.wait(5000)).and_then(|b| b.ok_or_else(|| "no interrupt within 5 s of HSCH".to_string()));
        match halted {
            Ok(back) => {
                let s = Scsw::of(&back);
                c.check("hsch-interrupt", s.w0 & FC_HALT != 0 && s.w0 & SC_PENDING != 0, format!("scsw={s} (fctl halt, status pending)"));
                let settled = s.w0 & AC_MASK == 0;
                hc.check("activity-cleared", settled, format!("scsw={s} actl={:#04x}, POP: 0 after HSCH", (s.w0 & AC_MASK) >> 5));
                if !settled {
                    // What the kernel makes of it: vfio_ccw keeps the program, so a new start
                    // is refused with EBUSY until CSCH ends it.
                    let r = d.start(0);
                    let busy = matches!(&r, Err(e) if e.raw_os_error() == Some(EBUSY));
                    let what = if busy { "next SSCH: EBUSY".to_string() } else { format!("next SSCH: {r:?}") };
                    hc.check("kernel-busy-until-csch", busy, what);
                    if r.is_ok() {
                        let _ = d.wait(5000);
                    }
                    let cleared = d.async_cmd(ASYNC_CSCH).and_then(|()| d.wait(5000)).and_then(|b| b.ok_or_else(|| "no interrupt within 5 s of CSCH".to_string()));
                    match cleared {
                        Ok(back) => {
                            let s = Scsw::of(&back);
                            hc.check("csch-ends-it", s.w0 & FC_CLEAR != 0 && s.w0 & AC_MASK == 0, format!("scsw={s}"));
                        }
                        Err(e) => {
                            hc.check("csch-ends-it", false, e);
                        }
                    }
                }
            }
            Err(e) => {
                c.check("hsch-interrupt", false, e);
            }
        }
        sense_id(c, d, buf, Kind::Dasd, "sense-id-after-hsch");
    }
    if start_loop(c, d, buf, "csch-loop-running") {
        let cleared = d.async_cmd(ASYNC_CSCH).and_then(|()| d.wait(5000)).and_then(|b| b.ok_or_else(|| "no interrupt within 5 s of CSCH".to_string()));
        match cleared {
            Ok(back) => {
                let s = Scsw::of(&back);
                c.check(
                    "csch-interrupt",
                    s.w0 & FC_CLEAR != 0 && s.w0 & AC_MASK == 0 && s.w0 & 0x1F == SC_PENDING,
                    format!("scsw={s} (fctl clear, activity 0, status pending alone)"),
                );
            }
            Err(e) => {
                c.check("csch-interrupt", false, e);
            }
        }
        sense_id(c, d, buf, Kind::Dasd, "sense-id-after-csch");
    }
    if hc.passed + hc.failed > 0 {
        println!("probe {}: {} passed, {} failed", hc.api, hc.passed, hc.failed);
    }
    c.apart_failed += hc.failed;
}

fn legacy(c: &mut Checks, uuid: &str, devno: u16, kind: Kind) {
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
            device_checks(c, &dev, &mut buf, devno, kind);
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

fn cdev(c: &mut Checks, uuid: &str, devno: u16, kind: Kind) {
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
    device_checks(c, &dev, &mut buf, devno, kind);
    // Closing the device detaches it; closing the iommufd destroys the IOAS and its mappings.
    drop(dev);
    drop(iommufd);
}

/// `ccw-probe pace`: copies stdin to /dev/console in pieces of at most `PACE_CHUNK` bytes, each
/// drained (tcdrain) before the next. Hercules' 3215 console takes at most 150 bytes per write
/// CCW and drops the rest, and Linux's 3215 driver writes its whole buffer in one CCW.
fn pace() -> std::io::Result<()> {
    use std::io::{BufRead, Write};
    const PACE_CHUNK: usize = 120;
    let mut console = OpenOptions::new().write(true).open("/dev/console")?;
    let stdin = std::io::stdin();
    for line in stdin.lock().split(b'\n') {
        let line = line?;
        let line = if line.is_empty() { &b" "[..] } else { &line[..] };
        for piece in line.chunks(PACE_CHUNK) {
            console.write_all(piece)?;
            console.write_all(b"\n")?;
            // SAFETY: plain syscall on an fd this function owns.
            unsafe { sys::tcdrain(console.as_raw_fd()) };
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("pace") {
        if let Err(e) = pace() {
            eprintln!("ccw-probe pace: {e}");
            std::process::exit(1);
        }
        return;
    }
    let (Some(api), Some(uuid), Some(devno)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: ccw-probe legacy|cdev <mdev-uuid> <devno-hex> [virtio|dasd]\n       ccw-probe pace");
        std::process::exit(2);
    };
    let Ok(devno) = u16::from_str_radix(devno.trim_start_matches("0x"), 16) else {
        eprintln!("ccw-probe: bad device number {devno:?}");
        std::process::exit(2);
    };
    let kind = match args.get(4).map(String::as_str) {
        None | Some("virtio") => Kind::Virtio,
        Some("dasd") => Kind::Dasd,
        Some(other) => {
            eprintln!("ccw-probe: unknown device kind {other:?} (virtio|dasd)");
            std::process::exit(2);
        }
    };
    let mut c = Checks { api: api.clone(), passed: 0, failed: 0, apart_failed: 0 };
    match api.as_str() {
        "legacy" => legacy(&mut c, uuid, devno, kind),
        "cdev" => cdev(&mut c, uuid, devno, kind),
        other => {
            eprintln!("ccw-probe: unknown api {other:?} (legacy|cdev)");
            std::process::exit(2);
        }
    }
    println!("probe {api}: {} passed, {} failed", c.passed, c.failed);
    let ok = c.failed == 0 && c.apart_failed == 0 && c.passed > 0;
    std::process::exit(if ok { 0 } else { 1 });
}
