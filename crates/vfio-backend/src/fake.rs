// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A test double for [`Sys`]: a small model of the vfio, iommufd and vfio-ccw kernel code,
//! configured like the device s390x-guest.md recorded (flags CCW|RESET, four regions at
//! `index << 10`, three eventfd interrupts). Eventfds are real, so the backend's tokio
//! interrupt path runs unchanged. Every system call can be made to fail, every region read
//! can be made short, and the model records what it was asked so tests can check teardown.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use vfio_bindings::bindings::vfio as vb;
use vmm_sys_util::errno::Error as Errno;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

mod sysfs;

use crate::regions::tests::encode;
use crate::sys::{DeviceInfo, DmaBuffer, Fd, IrqInfo, Sys, SysResult};
use crate::uapi::{CmdRegion, IoRegion};

pub(crate) const UUID: &str = "6dfd3ec5-e8b3-4e18-a6fe-57bc9eceb920";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    Container,
    Group,
    Iommufd,
    Cdev,
    Device,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FakeRegion {
    pub(crate) index: u32,
    pub(crate) flags: u32,
    pub(crate) size: u64,
    pub(crate) cap: Option<(u32, u32)>,
}

impl FakeRegion {
    fn offset(&self) -> u64 {
        (self.index as u64) << 10
    }
}

#[derive(Debug)]
pub(crate) struct State {
    next_fd: i32,
    pub(crate) open_fds: HashMap<i32, Node>,
    pub(crate) closes: usize,
    links: HashMap<PathBuf, PathBuf>,
    dirs: HashMap<PathBuf, Vec<String>>,
    nodes: HashMap<PathBuf, Node>,
    /// sysfs attributes (driver_override) and procfs files.
    files: HashMap<PathBuf, String>,
    /// Subchannel -> the bus id of its ccw device. The device is on the ccw bus while the
    /// subchannel is bound to io_subchannel; `dev_busid` names it whatever the driver.
    pub(crate) ccw_devices: HashMap<String, String>,
    /// Subchannel -> its `type` (0: I/O subchannel, the default).
    pub(crate) sch_types: HashMap<String, u32>,
    // Configuration.
    pub(crate) extensions: HashSet<u32>,
    pub(crate) group_flags: u32,
    pub(crate) info: DeviceInfo,
    pub(crate) regions: Vec<FakeRegion>,
    pub(crate) irqs: Vec<IrqInfo>,
    /// op -> errno, every time.
    pub(crate) fail: HashMap<&'static str, i32>,
    /// op -> outcomes of the next calls (`None`: succeed), then normal behaviour.
    pub(crate) fail_next: HashMap<&'static str, VecDeque<Option<i32>>>,
    /// region index -> bytes a read returns at most.
    pub(crate) short_read: HashMap<u32, usize>,
    /// IRB the io region gets (and the io eventfd fires) on every start.
    pub(crate) auto_complete: Option<[u8; 96]>,
    // Kernel state.
    pub(crate) container_set: bool,
    pub(crate) iommu_type: Option<u32>,
    pub(crate) bound: bool,
    pub(crate) ioas: Option<u32>,
    pub(crate) attached: bool,
    pub(crate) dma: BTreeMap<u64, u64>,
    pub(crate) irq_fds: HashMap<u32, EventFd>,
    pub(crate) io: IoRegion,
    pub(crate) starts: Vec<IoRegion>,
    pub(crate) cmds: Vec<u32>,
    pub(crate) schib: [u8; 52],
    pub(crate) crws: VecDeque<u32>,
    pub(crate) resets: usize,
    pub(crate) calls: Vec<&'static str>,
    /// What the next adopted descriptors are (what a caller's pre-opened fds refer to).
    pub(crate) adopt: VecDeque<Node>,
}

/// The fake kernel. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub(crate) struct FakeSys(Arc<Mutex<State>>);

const RW: u32 = vb::VFIO_REGION_INFO_FLAG_READ | vb::VFIO_REGION_INFO_FLAG_WRITE;
const R: u32 = vb::VFIO_REGION_INFO_FLAG_READ;

/// A SCHIB like the one the guest's virtio-blk subchannel answered: the PMCW begins
/// `00 d3 00 00 18 81 00 05` (intparm, then ISC 3, E, DNV, devno 0x0005), with the one path
/// QEMU builds for a virtual subchannel (css_sch_build_virtual_schib: LPM, PIM and PAM 0x80,
/// POM 0xff, CHPID 0), so that css-core finds its path logically available.
pub(crate) fn guest_schib() -> [u8; 52] {
    let mut s = [0u8; 52];
    s[0..8].copy_from_slice(&[0x00, 0xd3, 0x00, 0x00, 0x18, 0x81, 0x00, 0x05]);
    s[8] = 0x80; // LPM
    s[11] = 0x80; // PIM
    s[14] = 0xFF; // POM
    s[15] = 0x80; // PAM
    s
}

impl FakeSys {
    /// A vfio-ccw mdev `UUID` on subchannel 0.0.0000, group 0, cdev vfio0.
    pub(crate) fn vfio_ccw() -> Self {
        let mdev = PathBuf::from(format!("/sys/bus/mdev/devices/{UUID}"));
        let mut links = HashMap::new();
        links.insert(
            mdev.clone(),
            PathBuf::from(format!("../../../devices/css0/0.0.0000/{UUID}")),
        );
        links.insert(
            mdev.join("iommu_group"),
            PathBuf::from("../../../../kernel/iommu_groups/0"),
        );
        links.insert(
            PathBuf::from("/sys/bus/css/devices/0.0.0000"),
            PathBuf::from("../../../devices/css0/0.0.0000"),
        );
        links.insert(
            PathBuf::from("/sys/bus/css/devices/0.0.0000/driver"),
            PathBuf::from("../../../../bus/css/drivers/vfio_ccw"),
        );
        let mut files = HashMap::new();
        files.insert(
            PathBuf::from("/sys/bus/css/devices/0.0.0000/driver_override"),
            "(null)\n".to_owned(),
        );
        // The kernel's random UUID: the one mdev name this model opens.
        files.insert(
            PathBuf::from("/proc/sys/kernel/random/uuid"),
            format!("{UUID}\n"),
        );
        let mut dirs = HashMap::new();
        dirs.insert(mdev.join("vfio-dev"), vec!["vfio0".to_owned()]);
        dirs.insert(
            PathBuf::from("/sys/bus/css/drivers/vfio_ccw"),
            vec!["bind".to_owned(), "unbind".to_owned()],
        );
        let mut nodes = HashMap::new();
        nodes.insert(PathBuf::from("/dev/vfio/vfio"), Node::Container);
        nodes.insert(PathBuf::from("/dev/vfio/0"), Node::Group);
        nodes.insert(PathBuf::from("/dev/iommu"), Node::Iommufd);
        nodes.insert(PathBuf::from("/dev/vfio/devices/vfio0"), Node::Cdev);
        let st = State {
            next_fd: 100,
            open_fds: HashMap::new(),
            closes: 0,
            links,
            dirs,
            nodes,
            files,
            ccw_devices: [("0.0.0000".to_owned(), "0.0.0005".to_owned())]
                .into_iter()
                .collect(),
            sch_types: HashMap::new(),
            extensions: [vb::VFIO_TYPE1_IOMMU, vb::VFIO_TYPE1v2_IOMMU]
                .into_iter()
                .collect(),
            group_flags: vb::VFIO_GROUP_FLAGS_VIABLE,
            info: DeviceInfo {
                flags: vb::VFIO_DEVICE_FLAGS_CCW | vb::VFIO_DEVICE_FLAGS_RESET,
                num_regions: 4,
                num_irqs: 3,
            },
            regions: vec![
                FakeRegion {
                    index: 0,
                    flags: RW,
                    size: 124,
                    cap: None,
                },
                FakeRegion {
                    index: 1,
                    flags: RW,
                    size: 8,
                    cap: Some((2, 1)),
                },
                FakeRegion {
                    index: 2,
                    flags: R,
                    size: 52,
                    cap: Some((2, 2)),
                },
                FakeRegion {
                    index: 3,
                    flags: R,
                    size: 8,
                    cap: Some((2, 3)),
                },
            ],
            irqs: (0..3)
                .map(|index| IrqInfo {
                    index,
                    flags: vb::VFIO_IRQ_INFO_EVENTFD,
                    count: 1,
                })
                .collect(),
            fail: HashMap::new(),
            fail_next: HashMap::new(),
            short_read: HashMap::new(),
            auto_complete: None,
            container_set: false,
            iommu_type: None,
            bound: false,
            ioas: None,
            attached: false,
            dma: BTreeMap::new(),
            irq_fds: HashMap::new(),
            io: IoRegion::new_zeroed(),
            starts: Vec::new(),
            cmds: Vec::new(),
            schib: guest_schib(),
            crws: VecDeque::new(),
            resets: 0,
            calls: Vec::new(),
            adopt: VecDeque::new(),
        };
        FakeSys(Arc::new(Mutex::new(st)))
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn sys(&self) -> Arc<dyn Sys> {
        Arc::new(self.clone())
    }

    /// Removes `path` from the openable nodes (the kernel lacks it).
    pub(crate) fn remove_node(&self, path: &str) {
        self.state().nodes.remove(Path::new(path));
    }

    pub(crate) fn remove_dir(&self, path: &str) {
        self.state().dirs.remove(Path::new(path));
    }

    /// Keeps only regions with these indexes.
    pub(crate) fn keep_regions(&self, keep: &[u32]) {
        let mut st = self.state();
        st.regions.retain(|r| keep.contains(&r.index));
        st.info.num_regions = st.regions.len() as u32;
    }

    pub(crate) fn fail(&self, op: &'static str, errno: i32) {
        self.state().fail.insert(op, errno);
    }

    pub(crate) fn fail_next(&self, op: &'static str, errnos: &[i32]) {
        self.script(op, &errnos.iter().map(|&e| Some(e)).collect::<Vec<_>>());
    }

    /// The next calls of `op` succeed (`None`) or fail with the errno, in order.
    pub(crate) fn script(&self, op: &'static str, outcomes: &[Option<i32>]) {
        self.state()
            .fail_next
            .insert(op, outcomes.iter().copied().collect());
    }

    fn signal(st: &State, index: u32) {
        if let Some(e) = st.irq_fds.get(&index) {
            e.write(1).expect("eventfd write");
        }
    }

    /// The kernel's interrupt handler: stores `irb` in the io region and fires the io eventfd.
    pub(crate) fn complete_io(&self, irb: [u8; 96]) {
        let mut st = self.state();
        st.io.irb_area = irb;
        Self::signal(&st, 0);
    }

    /// Queues a channel report and fires the crw eventfd.
    pub(crate) fn push_crw(&self, crw: u32) {
        let mut st = self.state();
        st.crws.push_back(crw);
        Self::signal(&st, 1);
    }

    /// Fires the request eventfd.
    pub(crate) fn request_release(&self) {
        Self::signal(&self.state(), 2);
    }

    pub(crate) fn open_fd_count(&self) -> usize {
        self.state().open_fds.len()
    }

    /// Asserts nothing is left: no fd open, no DMA mapping, no interrupt trigger, group not
    /// attached, IOAS destroyed.
    pub(crate) fn assert_clean(&self) {
        let st = self.state();
        assert!(st.open_fds.is_empty(), "fds left open: {:?}", st.open_fds);
        assert!(st.dma.is_empty(), "DMA mappings left: {:?}", st.dma);
        assert!(
            st.irq_fds.is_empty(),
            "interrupts left armed: {:?}",
            st.irq_fds.keys()
        );
        assert!(!st.container_set, "group still attached to the container");
        assert!(st.ioas.is_none(), "IOAS not destroyed");
    }

    fn enter(&self, op: &'static str) -> Result<MutexGuard<'_, State>, Errno> {
        let mut st = self.state();
        st.calls.push(op);
        if let Some(q) = st.fail_next.get_mut(op) {
            match q.pop_front() {
                Some(Some(e)) => return Err(Errno::new(e)),
                Some(None) => return Ok(st),
                None => {}
            }
        }
        if let Some(&e) = st.fail.get(op) {
            return Err(Errno::new(e));
        }
        Ok(st)
    }

    fn node(st: &State, fd: &Fd) -> SysResult<Node> {
        use std::os::fd::AsRawFd;
        st.open_fds
            .get(&fd.as_raw_fd())
            .copied()
            .ok_or(Errno::new(libc::EBADF))
    }

    fn expect(st: &State, fd: &Fd, node: Node) -> SysResult<()> {
        if Self::node(st, fd)? == node {
            Ok(())
        } else {
            Err(Errno::new(libc::ENOTTY))
        }
    }

    fn new_fd(st: &mut State, node: Node) -> Fd {
        let n = st.next_fd;
        st.next_fd += 1;
        st.open_fds.insert(n, node);
        Fd::from_raw(n)
    }

    fn device(st: &State, fd: &Fd) -> SysResult<()> {
        match Self::node(st, fd)? {
            Node::Device => Ok(()),
            Node::Cdev if st.attached => Ok(()),
            Node::Cdev => Err(Errno::new(libc::EINVAL)),
            _ => Err(Errno::new(libc::ENOTTY)),
        }
    }

    fn region_at(st: &State, offset: u64, len: usize) -> SysResult<FakeRegion> {
        let r = st
            .regions
            .iter()
            .copied()
            .find(|r| r.offset() == offset)
            .ok_or(Errno::new(libc::EINVAL))?;
        if len as u64 > r.size {
            return Err(Errno::new(libc::EINVAL));
        }
        Ok(r)
    }
}

impl Sys for FakeSys {
    fn open(&self, path: &Path) -> SysResult<Fd> {
        let mut st = self.enter("open")?;
        let key: &'static str = match path.to_str() {
            Some("/dev/vfio/vfio") => "open container",
            Some("/dev/iommu") => "open iommufd",
            Some(p) if p.starts_with("/dev/vfio/devices/") => "open cdev",
            _ => "open group",
        };
        st.calls.push(key);
        if let Some(&e) = st.fail.get(key) {
            return Err(Errno::new(e));
        }
        let node = *st.nodes.get(path).ok_or(Errno::new(libc::ENOENT))?;
        Ok(Self::new_fd(&mut st, node))
    }

    fn adopt(&self, fd: std::os::fd::OwnedFd) -> SysResult<Fd> {
        let mut st = self.enter("adopt")?;
        // The real descriptor (a stand-in the test opened) is closed here; the model hands
        // out its own number for the node the test said the caller passed.
        drop(fd);
        let node = st.adopt.pop_front().ok_or(Errno::new(libc::EBADF))?;
        Ok(Self::new_fd(&mut st, node))
    }

    fn close(&self, fd: Fd) {
        use std::os::fd::AsRawFd;
        let mut st = self.state();
        let node = st.open_fds.remove(&fd.as_raw_fd());
        assert!(
            node.is_some(),
            "close of fd {} that is not open",
            fd.as_raw_fd()
        );
        st.closes += 1;
        st.calls.push(match node {
            Some(Node::Container) => "close container",
            Some(Node::Group) => "close group",
            Some(Node::Iommufd) => "close iommufd",
            Some(Node::Cdev) => "close cdev",
            Some(Node::Device) => "close device",
            None => "close",
        });
        match node {
            Some(Node::Device) | Some(Node::Cdev) => {
                // Closing the device drops its triggers and its IOAS attachment.
                st.irq_fds.clear();
                if node == Some(Node::Cdev) {
                    st.attached = false;
                    st.bound = false;
                }
            }
            Some(Node::Group) => {
                st.container_set = false;
            }
            _ => {}
        }
    }

    fn read_link(&self, path: &Path) -> SysResult<PathBuf> {
        let st = self.enter("readlink")?;
        sysfs::read_link(&st, path)
    }

    fn read_dir(&self, path: &Path) -> SysResult<Vec<String>> {
        let st = self.enter("read_dir")?;
        sysfs::read_dir(&st, path)
    }

    fn read_file(&self, path: &Path) -> SysResult<String> {
        let st = self.enter("read_file")?;
        sysfs::read_file(&st, path)
    }

    fn write_file(&self, path: &Path, value: &str) -> SysResult<()> {
        let mut st = self.enter("write_file")?;
        sysfs::write_file(&mut st, path, value)
    }

    fn get_api_version(&self, container: &Fd) -> SysResult<i32> {
        let st = self.enter("VFIO_GET_API_VERSION")?;
        Self::expect(&st, container, Node::Container)?;
        Ok(0)
    }

    fn check_extension(&self, container: &Fd, ext: u32) -> SysResult<bool> {
        let st = self.enter("VFIO_CHECK_EXTENSION")?;
        Self::expect(&st, container, Node::Container)?;
        Ok(st.extensions.contains(&ext))
    }

    fn set_iommu(&self, container: &Fd, iommu_type: u32) -> SysResult<()> {
        let mut st = self.enter("VFIO_SET_IOMMU")?;
        Self::expect(&st, container, Node::Container)?;
        if !st.container_set || !st.extensions.contains(&iommu_type) {
            return Err(Errno::new(libc::EINVAL));
        }
        st.iommu_type = Some(iommu_type);
        Ok(())
    }

    fn group_status(&self, group: &Fd) -> SysResult<u32> {
        let st = self.enter("VFIO_GROUP_GET_STATUS")?;
        Self::expect(&st, group, Node::Group)?;
        Ok(st.group_flags)
    }

    fn group_set_container(&self, group: &Fd, container: &Fd) -> SysResult<()> {
        let mut st = self.enter("VFIO_GROUP_SET_CONTAINER")?;
        Self::expect(&st, group, Node::Group)?;
        Self::expect(&st, container, Node::Container)?;
        if st.container_set {
            return Err(Errno::new(libc::EBUSY));
        }
        st.container_set = true;
        Ok(())
    }

    fn group_unset_container(&self, group: &Fd) -> SysResult<()> {
        let mut st = self.enter("VFIO_GROUP_UNSET_CONTAINER")?;
        Self::expect(&st, group, Node::Group)?;
        if !st.container_set {
            return Err(Errno::new(libc::EINVAL));
        }
        if st.open_fds.values().any(|n| *n == Node::Device) {
            return Err(Errno::new(libc::EBUSY));
        }
        st.container_set = false;
        st.iommu_type = None;
        Ok(())
    }

    fn group_get_device_fd(&self, group: &Fd, name: &str) -> SysResult<Fd> {
        let mut st = self.enter("VFIO_GROUP_GET_DEVICE_FD")?;
        Self::expect(&st, group, Node::Group)?;
        if st.iommu_type.is_none() {
            return Err(Errno::new(libc::EINVAL));
        }
        if name != UUID {
            return Err(Errno::new(libc::ENODEV));
        }
        Ok(Self::new_fd(&mut st, Node::Device))
    }

    fn dma_map(&self, container: &Fd, _vaddr: u64, iova: u64, size: u64) -> SysResult<()> {
        let mut st = self.enter("VFIO_IOMMU_MAP_DMA")?;
        Self::expect(&st, container, Node::Container)?;
        if st.iommu_type.is_none() {
            return Err(Errno::new(libc::EINVAL));
        }
        if st.dma.insert(iova, size).is_some() {
            return Err(Errno::new(libc::EEXIST));
        }
        Ok(())
    }

    fn dma_unmap(&self, container: &Fd, iova: u64, size: u64) -> SysResult<u64> {
        let mut st = self.enter("VFIO_IOMMU_UNMAP_DMA")?;
        Self::expect(&st, container, Node::Container)?;
        match st.dma.remove(&iova) {
            Some(s) if s == size => Ok(size),
            _ => Err(Errno::new(libc::EINVAL)),
        }
    }

    fn bind_iommufd(&self, device: &Fd, iommufd: &Fd) -> SysResult<u32> {
        let mut st = self.enter("VFIO_DEVICE_BIND_IOMMUFD")?;
        Self::expect(&st, device, Node::Cdev)?;
        Self::expect(&st, iommufd, Node::Iommufd)?;
        st.bound = true;
        Ok(1)
    }

    fn ioas_alloc(&self, iommufd: &Fd) -> SysResult<u32> {
        let mut st = self.enter("IOMMU_IOAS_ALLOC")?;
        Self::expect(&st, iommufd, Node::Iommufd)?;
        st.ioas = Some(7);
        Ok(7)
    }

    fn attach_pt(&self, device: &Fd, pt_id: u32) -> SysResult<()> {
        let mut st = self.enter("VFIO_DEVICE_ATTACH_IOMMUFD_PT")?;
        Self::expect(&st, device, Node::Cdev)?;
        if !st.bound || st.ioas != Some(pt_id) {
            return Err(Errno::new(libc::EINVAL));
        }
        st.attached = true;
        Ok(())
    }

    fn detach_pt(&self, device: &Fd) -> SysResult<()> {
        let mut st = self.enter("VFIO_DEVICE_DETACH_IOMMUFD_PT")?;
        Self::expect(&st, device, Node::Cdev)?;
        st.attached = false;
        Ok(())
    }

    fn ioas_map(&self, iommufd: &Fd, ioas: u32, _vaddr: u64, iova: u64, len: u64) -> SysResult<()> {
        let mut st = self.enter("IOMMU_IOAS_MAP")?;
        Self::expect(&st, iommufd, Node::Iommufd)?;
        if st.ioas != Some(ioas) {
            return Err(Errno::new(libc::ENOENT));
        }
        if st.dma.insert(iova, len).is_some() {
            return Err(Errno::new(libc::EEXIST));
        }
        Ok(())
    }

    fn ioas_unmap(&self, iommufd: &Fd, ioas: u32, iova: u64, len: u64) -> SysResult<u64> {
        let mut st = self.enter("IOMMU_IOAS_UNMAP")?;
        Self::expect(&st, iommufd, Node::Iommufd)?;
        if st.ioas != Some(ioas) {
            return Err(Errno::new(libc::ENOENT));
        }
        match st.dma.remove(&iova) {
            Some(s) if s == len => Ok(len),
            _ => Err(Errno::new(libc::ENOENT)),
        }
    }

    fn iommu_destroy(&self, iommufd: &Fd, id: u32) -> SysResult<()> {
        let mut st = self.enter("IOMMU_DESTROY")?;
        Self::expect(&st, iommufd, Node::Iommufd)?;
        if st.ioas != Some(id) {
            return Err(Errno::new(libc::ENOENT));
        }
        if st.attached || !st.dma.is_empty() {
            return Err(Errno::new(libc::EBUSY));
        }
        st.ioas = None;
        Ok(())
    }

    fn device_info(&self, device: &Fd) -> SysResult<DeviceInfo> {
        let st = self.enter("VFIO_DEVICE_GET_INFO")?;
        Self::device(&st, device)?;
        Ok(st.info)
    }

    fn region_info(&self, device: &Fd, index: u32, argsz: u32) -> SysResult<Vec<u8>> {
        let st = self.enter("VFIO_DEVICE_GET_REGION_INFO")?;
        Self::device(&st, device)?;
        let r = st
            .regions
            .iter()
            .find(|r| r.index == index)
            .copied()
            .ok_or(Errno::new(libc::EINVAL))?;
        Ok(encode(
            argsz,
            index,
            r.flags,
            r.size,
            r.offset(),
            r.cap,
            argsz as usize,
        ))
    }

    fn irq_info(&self, device: &Fd, index: u32) -> SysResult<IrqInfo> {
        let st = self.enter("VFIO_DEVICE_GET_IRQ_INFO")?;
        Self::device(&st, device)?;
        st.irqs
            .iter()
            .copied()
            .find(|i| i.index == index)
            .ok_or(Errno::new(libc::EINVAL))
    }

    fn set_irq_eventfd(&self, device: &Fd, index: u32, eventfd: Option<&EventFd>) -> SysResult<()> {
        let mut st = self.enter("VFIO_DEVICE_SET_IRQS")?;
        Self::device(&st, device)?;
        if !st.irqs.iter().any(|i| i.index == index) {
            return Err(Errno::new(libc::EINVAL));
        }
        match eventfd {
            Some(e) => {
                let dup = e.try_clone().map_err(|_| Errno::new(libc::EBADF))?;
                st.irq_fds.insert(index, dup);
            }
            None => {
                st.irq_fds.remove(&index);
            }
        }
        Ok(())
    }

    fn device_reset(&self, device: &Fd) -> SysResult<()> {
        let mut st = self.enter("VFIO_DEVICE_RESET")?;
        Self::device(&st, device)?;
        st.resets += 1;
        Ok(())
    }

    fn pread(&self, fd: &Fd, buf: &mut [u8], offset: u64) -> SysResult<usize> {
        let mut st = self.enter("pread")?;
        Self::device(&st, fd)?;
        let r = Self::region_at(&st, offset, buf.len())?;
        let bytes: Vec<u8> = match r.cap {
            None => st.io.as_bytes().to_vec(),
            Some((2, 2)) => st.schib.to_vec(),
            Some((2, 3)) => {
                let crw = st.crws.pop_front().unwrap_or(0);
                if !st.crws.is_empty() {
                    Self::signal(&st, 1);
                }
                // ccw-types reads the CRW word in architected (big-endian) order, which is
                // the kernel's native order on s390x.
                let mut b = crw.to_be_bytes().to_vec();
                b.extend_from_slice(&[0; 4]);
                b
            }
            Some((2, 1)) => CmdRegion::new_zeroed().as_bytes().to_vec(),
            _ => return Err(Errno::new(libc::EINVAL)),
        };
        let n = buf
            .len()
            .min(st.short_read.get(&r.index).copied().unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn pwrite(&self, fd: &Fd, buf: &[u8], offset: u64) -> SysResult<usize> {
        let st = self.enter("pwrite")?;
        Self::device(&st, fd)?;
        let r = Self::region_at(&st, offset, buf.len())?;
        drop(st);
        match r.cap {
            None => {
                let mut st = self.enter("write io")?;
                let req = IoRegion::read_from_bytes(buf).map_err(|_| Errno::new(libc::EINVAL))?;
                st.starts.push(req);
                st.io.orb_area = req.orb_area;
                st.io.scsw_area = req.scsw_area;
                if let Some(mut irb) = st.auto_complete {
                    // Like a one-CCW program ending: SCSW cpa = the ORB's cpa + 8 (vfio-ccw
                    // maps the host address back to the IOVA the ORB used).
                    let cpa = u32::from_be_bytes([
                        req.orb_area[8],
                        req.orb_area[9],
                        req.orb_area[10],
                        req.orb_area[11],
                    ]);
                    irb[4..8].copy_from_slice(&cpa.wrapping_add(8).to_be_bytes());
                    st.io.irb_area = irb;
                    Self::signal(&st, 0);
                }
            }
            Some((2, 1)) => {
                let mut st = self.enter("write cmd")?;
                let cmd = CmdRegion::read_from_bytes(buf).map_err(|_| Errno::new(libc::EINVAL))?;
                st.cmds.push(cmd.command.get());
            }
            _ => return Err(Errno::new(libc::EINVAL)),
        }
        Ok(buf.len())
    }

    fn eventfd(&self, nonblocking: bool) -> SysResult<EventFd> {
        let _st = self.enter("eventfd")?;
        EventFd::new(libc::EFD_CLOEXEC | if nonblocking { EFD_NONBLOCK } else { 0 })
            .map_err(|e| Errno::new(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    fn alloc_dma(&self, len: usize) -> SysResult<DmaBuffer> {
        let _st = self.enter("alloc_dma")?;
        DmaBuffer::new(len)
    }
}
