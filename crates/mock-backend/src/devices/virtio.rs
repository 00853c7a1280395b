// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A virtio-blk-ccw device: the control plane QEMU's answers byte for byte, and the data plane
//! (one request virtqueue over a backing store in memory or in a file).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ccw_types::CommandClass;
use vcss::{GuestIo, VirtioNotify};

use super::virtqueue::{QueueAddrs, Segment, SplitQueue, VirtqueueError, pieces};
use crate::device::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData,
};

/// virtio-ccw command codes (reference §9.3, QEMU).
pub(crate) mod vcmd {
    pub(crate) const WRITE_FEAT: u8 = 0x11;
    pub(crate) const READ_FEAT: u8 = 0x12;
    pub(crate) const SET_VQ: u8 = 0x13;
    pub(crate) const WRITE_CONF: u8 = 0x21;
    pub(crate) const READ_CONF: u8 = 0x22;
    pub(crate) const WRITE_STATUS: u8 = 0x31;
    pub(crate) const READ_VQ_CONF: u8 = 0x32;
    pub(crate) const VDEV_RESET: u8 = 0x33;
    pub(crate) const SET_IND: u8 = 0x43;
    pub(crate) const SET_CONF_IND: u8 = 0x53;
    pub(crate) const READ_STATUS: u8 = 0x72;
    pub(crate) const SET_IND_ADAPTER: u8 = 0x73;
    pub(crate) const SET_VIRTIO_REV: u8 = 0x83;
}

/// virtio-ccw control-unit type.
const CU_TYPE: u16 = 0x3832;
/// virtio device id of a block device (the CU model).
const VIRTIO_ID_BLOCK: u8 = 2;
/// Highest virtio-ccw revision the device accepts (QEMU: 2).
const MAX_REVISION: u16 = 2;
/// Queue size QEMU's virtio-blk offers.
const QUEUE_SIZE: u16 = 256;

/// Feature bits offered in word 0 (virtio-blk + transport bits).
const FEATURES_LO: u32 = (1 << 2) // SEG_MAX
    | (1 << 4) // GEOMETRY
    | (1 << 6) // BLK_SIZE
    | (1 << 9) // FLUSH
    | (1 << 10) // TOPOLOGY
    | (1 << 11) // CONFIG_WCE
    | (1 << 24) // NOTIFY_ON_EMPTY
    | (1 << 27) // ANY_LAYOUT
    | (1 << 28) // RING_INDIRECT_DESC
    | (1 << 29); // RING_EVENT_IDX
/// Feature bit 32: VIRTIO_F_VERSION_1 (bit 0 of word 1).
const VERSION_1: u32 = 1;
/// Feature bit 29 (word 0): VIRTIO_F_RING_EVENT_IDX.
const RING_EVENT_IDX: u32 = 1 << 29;

/// Device status bits (virtio 1.x §2.1).
pub mod status {
    /// The driver is ready: the device may process its queues.
    pub const DRIVER_OK: u8 = 0x04;
    /// The device hit an error it cannot recover from (a broken ring): it needs a reset.
    pub const NEEDS_RESET: u8 = 0x40;
}

/// virtio-blk request types and status bytes (virtio 1.x §5.2.6).
pub mod blk {
    /// Read sectors.
    pub const T_IN: u32 = 0;
    /// Write sectors.
    pub const T_OUT: u32 = 1;
    /// Flush (offered: VIRTIO_BLK_F_FLUSH).
    pub const T_FLUSH: u32 = 4;
    /// The device's serial (20 bytes).
    pub const T_GET_ID: u32 = 8;
    /// Success.
    pub const S_OK: u8 = 0;
    /// The request failed (out of range, not whole sectors, a backing-store error).
    pub const S_IOERR: u8 = 1;
    /// The request type is not supported.
    pub const S_UNSUPP: u8 = 2;
}

/// The serial T_GET_ID answers (zero padded to 20 bytes).
const SERIAL: &[u8] = b"ccw-rs-virtio-blk";
/// Bytes moved between the guest and the store at a time.
const CHUNK: u64 = 64 * 1024;

/// Walks `len` bytes of the chain's buffers `segs` (after their first `skip` bytes) against
/// the disk from byte `offset`, in pieces of at most [`CHUNK`] through one buffer:
/// `step(guest address, disk position, buffer)` moves each piece and answers `false` to stop
/// (a backing-store error), which is returned.
fn by_chunks(
    segs: &[Segment],
    skip: u64,
    offset: u64,
    len: u64,
    mut step: impl FnMut(u64, u64, &mut [u8]) -> Result<bool, VirtqueueError>,
) -> Result<bool, VirtqueueError> {
    let mut buf = vec![0u8; len.min(CHUNK) as usize];
    let mut pos = offset;
    for (addr, n) in pieces(segs, skip, len) {
        let mut done = 0;
        while done < n {
            let k = (n - done).min(CHUNK);
            if !step(addr.wrapping_add(done), pos, &mut buf[..k as usize])? {
                return Ok(false);
            }
            done += k;
            pos += k;
        }
    }
    Ok(true)
}

/// Where the disk's sectors live.
#[derive(Debug, Clone)]
enum Backing {
    /// In memory, sparse: sectors never written read as zeros.
    Memory(BTreeMap<u64, Box<[u8; 512]>>),
    /// A file, read and written in place.
    File(Arc<std::fs::File>),
}

impl Backing {
    fn read(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        match self {
            Self::File(f) => std::os::unix::fs::FileExt::read_exact_at(&**f, buf, offset),
            Self::Memory(m) => {
                let mut done = 0usize;
                while done < buf.len() {
                    let at = offset + done as u64;
                    let (sector, within) = (at / 512, (at % 512) as usize);
                    let n = (512 - within).min(buf.len() - done);
                    match m.get(&sector) {
                        Some(s) => buf[done..done + n].copy_from_slice(&s[within..within + n]),
                        None => buf[done..done + n].fill(0),
                    }
                    done += n;
                }
                Ok(())
            }
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::File(f) => std::os::unix::fs::FileExt::write_all_at(&**f, data, offset),
            Self::Memory(m) => {
                let mut done = 0usize;
                while done < data.len() {
                    let at = offset + done as u64;
                    let (sector, within) = (at / 512, (at % 512) as usize);
                    let n = (512 - within).min(data.len() - done);
                    let s = m.entry(sector).or_insert_with(|| Box::new([0u8; 512]));
                    s[within..within + n].copy_from_slice(&data[done..done + n]);
                    done += n;
                }
                Ok(())
            }
        }
    }

    fn flush(&self) -> std::io::Result<()> {
        match self {
            Self::File(f) => f.sync_data(),
            Self::Memory(_) => Ok(()),
        }
    }
}

/// The control plane of a virtio-blk-ccw device, as QEMU's answered (s390x-guest.md).
///
/// | command | code | behaviour |
/// |---|---|---|
/// | SENSE ID | 0xE4 | `ff 38 32 02 00 00 00 00`, zero padded to 256 bytes |
/// | SET_VIRTIO_REV | 0x83 | revision (u16 BE), length (u16 BE); only as the first virtio command after reset, revision ≤ 2, length 0 — else command reject |
/// | READ_FEAT | 0x12 | reads the index byte at offset 4 of the buffer, stores the feature word (u32 LE); word 1 is VERSION_1 only in revision ≥ 1 |
/// | WRITE_FEAT | 0x11 | features (u32 LE) + index; VERSION_1 accepted in revision ≥ 1 |
/// | READ_CONF | 0x22 | configuration space (capacity, size_max, seg_max, geometry, blk_size): big-endian until VERSION_1 is negotiated, then little-endian; at most the CCW count |
/// | WRITE_CONF | 0x21 | accepted, ignored (read-only fields) |
/// | WRITE_STATUS / READ_STATUS | 0x31 / 0x72 | the device status byte |
/// | READ_VQ_CONF | 0x32 | index (u16 BE) in, queue size (u16 BE) out; one queue |
/// | SET_VQ | 0x13 | revision 0: queue (u64), align (u32), index, num (u16), big-endian, 16 bytes; revision ≥ 1: desc (u64), reserved (u32), index, num (u16), avail, used (u64), 32 bytes. Index 0 only, num a power of two ≤ 256 (or desc 0: the queue is unset), count exact unless SLI — else command reject. The data is also recorded |
/// | SET_IND, SET_CONF_IND | 0x43, 0x53 | the address (u64 BE, 8 bytes) of the classic queue / configuration indicators; recorded |
/// | SET_IND_ADAPTER | 0x73 | recorded only: adapter interruptions are not modelled, so a driver that uses them gets no interruption and polls the used ring |
/// | VDEV_RESET | 0x33 | no features, status 0, no queue, no indicators; the revision stays (virtio 1.x 4.3.2.1.1: unset only from subchannel enable) |
/// | anything else | | unit check, sense byte 0 = 0x80 (command reject) |
///
/// The data plane: on a notification ([`DeviceModel::virtio_notify`], which a VMM reaches from
/// DIAGNOSE 0x500 subcode 3 through `vcss::Vcss::virtio_notify`) after DRIVER_OK, the device
/// takes every available request of queue 0 (a split ring in the guest's memory, fields
/// little-endian after VERSION_1, big-endian before) and answers VIRTIO_BLK_T_IN, T_OUT,
/// T_FLUSH and T_GET_ID against its backing store; any other type gets VIRTIO_BLK_S_UNSUPP, a
/// range past the capacity or not whole sectors VIRTIO_BLK_S_IOERR. Each request gets its
/// status byte and one used-ring element. Then, with classic indicators, it sets the queue's
/// bit (bit 0 = 2^0 of the big-endian doubleword, as QEMU) and asks for the subchannel's
/// I/O interruption. A broken ring ([`VirtqueueError`]) sets VIRTIO_CONFIG_S_NEEDS_RESET, is
/// kept for [`VirtioBlkCcw::error`], raises the configuration indicator (bit 0) if there is
/// one, and the queue is not touched again until a reset. Interruption suppression
/// (VRING_AVAIL_F_NO_INTERRUPT, `used_event`) is not honoured: the device interrupts after
/// every notification that used a buffer, which a driver must tolerate; with EVENT_IDX it
/// publishes `avail_event` so the driver keeps notifying.
///
/// ```
/// use mock_backend::{DeviceModel, devices::VirtioBlkCcw};
/// let dev = VirtioBlkCcw::new(131_072); // 64 MiB
/// assert_eq!(&dev.sense_id().unwrap().as_bytes()[..4], &[0xff, 0x38, 0x32, 0x02]);
/// ```
#[derive(Debug, Clone)]
pub struct VirtioBlkCcw {
    capacity: u64,
    revision: Option<u16>,
    guest_features: [u32; 2],
    status: u8,
    sense: SenseData,
    /// Last data of SET_VQ / SET_IND / SET_CONF_IND / SET_IND_ADAPTER, per command.
    recorded: Vec<(u8, Vec<u8>)>,
    backing: Backing,
    queue: Option<QueueAddrs>,
    /// The ring state once the device first processed the queue.
    ring: Option<SplitQueue>,
    indicators: Option<u64>,
    conf_indicators: Option<u64>,
    error: Option<VirtqueueError>,
}

impl VirtioBlkCcw {
    /// A device whose disk has `capacity` 512-byte sectors, in memory, all zero.
    pub fn new(capacity: u64) -> Self {
        Self::with_backing(capacity, Backing::Memory(BTreeMap::new()))
    }

    /// A device whose disk is the file at `path`, read and written in place; its capacity is
    /// the file's whole 512-byte sectors.
    pub fn with_file(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let capacity = f.metadata()?.len() / 512;
        Ok(Self::with_backing(capacity, Backing::File(Arc::new(f))))
    }

    fn with_backing(capacity: u64, backing: Backing) -> Self {
        Self {
            capacity,
            revision: None,
            guest_features: [0; 2],
            status: 0,
            sense: SenseData::default(),
            recorded: Vec::new(),
            backing,
            queue: None,
            ring: None,
            indicators: None,
            conf_indicators: None,
            error: None,
        }
    }

    /// The disk's capacity in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The device status byte (as READ_STATUS stores it).
    pub fn status(&self) -> u8 {
        self.status
    }

    /// The ring error that made the device need a reset, if any.
    pub fn error(&self) -> Option<&VirtqueueError> {
        self.error.as_ref()
    }

    /// Reads `buf.len()` bytes of the disk at byte `offset` (tools and tests).
    pub fn read_disk(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.backing.read(offset, buf)
    }

    /// Writes `data` to the disk at byte `offset` (tools and tests: a preloaded image).
    pub fn write_disk(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.backing.write(offset, data)
    }

    /// Takes every available request of the queue (after SET_VQ): returns how many were
    /// completed, and the ring error that stopped it, if any.
    pub fn process_queue(&mut self, mem: &dyn GuestIo) -> (usize, Option<VirtqueueError>) {
        let Some(addrs) = self.queue else {
            return (0, None);
        };
        let le = self.is_little_endian();
        let mut ring = match self.ring.take() {
            Some(r) if r.addrs == addrs && r.little_endian == le => r,
            _ => SplitQueue::new(addrs, le),
        };
        let mut done = 0;
        let mut error = None;
        loop {
            match ring.pop(mem) {
                Ok(None) => break,
                Ok(Some((head, segs))) => {
                    match self
                        .request(mem, head, &segs)
                        .and_then(|n| ring.push_used(mem, head, n))
                    {
                        Ok(()) => done += 1,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_none() && self.guest_features[0] & RING_EVENT_IDX != 0 {
            error = ring.set_avail_event(mem).err();
        }
        self.ring = Some(ring);
        (done, error)
    }

    /// One request: returns the bytes written into the chain's device-writable buffers.
    fn request(
        &mut self,
        mem: &dyn GuestIo,
        head: u16,
        segs: &[Segment],
    ) -> Result<u32, VirtqueueError> {
        let split = segs.iter().position(|s| s.write).unwrap_or(segs.len());
        let (out, inb) = segs.split_at(split);
        let out_len: u64 = out.iter().map(|s| u64::from(s.len)).sum();
        let in_len: u64 = inb.iter().map(|s| u64::from(s.len)).sum();
        if out_len < 16 {
            return Err(VirtqueueError::Request {
                head,
                what: "the device-readable header is shorter than 16 bytes",
            });
        }
        if in_len < 1 {
            return Err(VirtqueueError::Request {
                head,
                what: "no device-writable status byte",
            });
        }
        let mut hdr = [0u8; 16];
        let mut at = 0usize;
        for (addr, n) in pieces(out, 0, 16) {
            let n = n as usize;
            mem.read_at(addr, &mut hdr[at..at + n])
                .map_err(VirtqueueError::Memory)?;
            at += n;
        }
        let le = self.is_little_endian();
        let (ty, sector) = if le {
            (
                u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]),
                u64::from_le_bytes(hdr[8..16].try_into().unwrap_or_default()),
            )
        } else {
            (
                u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]),
                u64::from_be_bytes(hdr[8..16].try_into().unwrap_or_default()),
            )
        };
        let data_in = in_len - 1;
        let (status, written) = match ty {
            blk::T_IN => match self.range_ok(sector, data_in) {
                false => (blk::S_IOERR, 0),
                true => match self.disk_to_guest(mem, inb, sector * 512, data_in)? {
                    true => (blk::S_OK, data_in),
                    false => (blk::S_IOERR, 0),
                },
            },
            blk::T_OUT => {
                let len = out_len - 16;
                match self.range_ok(sector, len)
                    && self.disk_from_guest(mem, out, sector * 512, len)?
                {
                    true => (blk::S_OK, 0),
                    false => (blk::S_IOERR, 0),
                }
            }
            blk::T_FLUSH => match self.backing.flush() {
                Ok(()) => (blk::S_OK, 0),
                Err(_) => (blk::S_IOERR, 0),
            },
            blk::T_GET_ID => {
                let mut id = [0u8; 20];
                id[..SERIAL.len()].copy_from_slice(SERIAL);
                let n = data_in.min(20);
                let mut at = 0usize;
                for (addr, len) in pieces(inb, 0, n) {
                    let len = len as usize;
                    mem.write_at(addr, &id[at..at + len])
                        .map_err(VirtqueueError::Memory)?;
                    at += len;
                }
                (blk::S_OK, n)
            }
            _ => (blk::S_UNSUPP, 0),
        };
        if let Some(&(addr, _)) = pieces(inb, data_in, 1).first() {
            mem.write_at(addr, &[status])
                .map_err(VirtqueueError::Memory)?;
        }
        // A used length is 32 bits: a larger read (over 4 GiB) saturates.
        Ok(u32::try_from(written + 1).unwrap_or(u32::MAX))
    }

    /// `len` bytes from `sector` lie within the disk and are whole sectors (QEMU's
    /// `virtio_blk_sect_range_ok`).
    fn range_ok(&self, sector: u64, len: u64) -> bool {
        len % 512 == 0
            && sector
                .checked_add(len / 512)
                .is_some_and(|end| end <= self.capacity && end.checked_mul(512).is_some())
    }

    /// Disk bytes at `offset` into the chain's buffers; `false` on a backing-store error.
    fn disk_to_guest(
        &self,
        mem: &dyn GuestIo,
        segs: &[Segment],
        offset: u64,
        len: u64,
    ) -> Result<bool, VirtqueueError> {
        by_chunks(segs, 0, offset, len, |addr, pos, buf| {
            if self.backing.read(pos, buf).is_err() {
                return Ok(false);
            }
            mem.write_at(addr, buf).map_err(VirtqueueError::Memory)?;
            Ok(true)
        })
    }

    /// The chain's bytes after the 16-byte header onto the disk at `offset`; `false` on a
    /// backing-store error.
    fn disk_from_guest(
        &mut self,
        mem: &dyn GuestIo,
        segs: &[Segment],
        offset: u64,
        len: u64,
    ) -> Result<bool, VirtqueueError> {
        let backing = &mut self.backing;
        by_chunks(segs, 16, offset, len, |addr, pos, buf| {
            mem.read_at(addr, buf).map_err(VirtqueueError::Memory)?;
            Ok(backing.write(pos, buf).is_ok())
        })
    }

    /// Sets bit `bit` (2^bit of the big-endian doubleword) of the indicators at `addr`.
    fn indicate(mem: &dyn GuestIo, addr: u64, bit: u32) -> Result<(), VirtqueueError> {
        let mut b = [0u8; 8];
        mem.read_at(addr, &mut b).map_err(VirtqueueError::Memory)?;
        let v = u64::from_be_bytes(b) | (1u64 << bit);
        mem.write_at(addr, &v.to_be_bytes())
            .map_err(VirtqueueError::Memory)
    }

    /// Forgets the queue and indicators (VDEV_RESET, status 0).
    fn reset_virtio(&mut self) {
        self.guest_features = [0; 2];
        self.status = 0;
        self.recorded.clear();
        self.queue = None;
        self.ring = None;
        self.indicators = None;
        self.conf_indicators = None;
        self.error = None;
    }

    /// SET_VQ: the queue's addresses, or `None` for a command reject.
    fn set_vq(&mut self, d: &[u8]) -> Option<()> {
        let u64b = |s: &[u8]| s.try_into().ok().map(u64::from_be_bytes);
        let u16b = |s: &[u8]| s.try_into().ok().map(u16::from_be_bytes);
        let (desc, index, num, avail, used) = if self.revision.unwrap_or(0) == 0 {
            let queue = u64b(&d[0..8])?;
            let align = u32::from_be_bytes(d[8..12].try_into().ok()?);
            let (index, num) = (u16b(&d[12..14])?, u16b(&d[14..16])?);
            if queue != 0 && !align.is_power_of_two() {
                return None;
            }
            // The legacy layout: descriptors, the available ring (flags, idx, ring,
            // used_event), the used ring at the next `align` boundary.
            let avail = queue.checked_add(16 * u64::from(num))?;
            let end = avail.checked_add(2 * (3 + u64::from(num)))?;
            let a = u64::from(align.max(1));
            let used = end.checked_add(a - 1)? & !(a - 1);
            (queue, index, num, avail, used)
        } else {
            (
                u64b(&d[0..8])?,
                u16b(&d[12..14])?,
                u16b(&d[14..16])?,
                u64b(&d[16..24])?,
                u64b(&d[24..32])?,
            )
        };
        if index != 0 {
            return None;
        }
        if desc == 0 {
            self.queue = None;
            self.ring = None;
            return Some(());
        }
        if !num.is_power_of_two() || num > QUEUE_SIZE {
            return None;
        }
        self.queue = Some(QueueAddrs {
            desc,
            avail,
            used,
            size: num,
        });
        self.ring = None;
        Some(())
    }

    /// The negotiated revision (`None` before SET_VIRTIO_REV or another virtio command).
    pub fn revision(&self) -> Option<u16> {
        self.revision
    }

    /// Whether the configuration space is little-endian (VERSION_1 negotiated).
    pub fn is_little_endian(&self) -> bool {
        self.guest_features[1] & VERSION_1 != 0
    }

    /// The last data the driver gave with `cmd` (SET_VQ, SET_IND, ...).
    pub fn recorded(&self, cmd: u8) -> Option<&[u8]> {
        self.recorded
            .iter()
            .rev()
            .find(|(c, _)| *c == cmd)
            .map(|(_, d)| d.as_slice())
    }

    fn reject(&mut self) -> DeviceOutcome {
        self.sense = SenseData::command_reject();
        DeviceOutcome::unit_check()
    }

    fn config(&self) -> [u8; 24] {
        let le = self.is_little_endian();
        let mut c = [0u8; 24];
        let u64b = |v: u64| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let u32b = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let u16b = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        c[0..8].copy_from_slice(&u64b(self.capacity));
        c[8..12].copy_from_slice(&u32b(0)); // size_max
        c[12..16].copy_from_slice(&u32b(u32::from(QUEUE_SIZE) - 2)); // seg_max
        let cylinders = (self.capacity / (16 * 63)).min(u64::from(u16::MAX)) as u16;
        c[16..18].copy_from_slice(&u16b(cylinders));
        c[18] = 16; // heads
        c[19] = 63; // sectors
        c[20..24].copy_from_slice(&u32b(512)); // blk_size
        c
    }

    fn read_all(data: &mut dyn DataStream, max: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let n = data.read(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }
}

impl DeviceModel for VirtioBlkCcw {
    fn sense_id(&self) -> Option<SenseIdData> {
        Some(SenseIdData::basic(CU_TYPE, VIRTIO_ID_BLOCK, 0, 0).padded_to(256))
    }

    fn execute(
        &mut self,
        cmd: &Command,
        data: &mut dyn DataStream,
        _ctx: &mut ChainContext,
    ) -> DeviceOutcome {
        use vcmd::*;
        if cmd.code == SET_VIRTIO_REV {
            if self.revision.is_some() {
                return self.reject();
            }
            let mut b = [0u8; 4];
            match data.read(&mut b) {
                Ok(4) => {}
                Ok(_) => return self.reject(),
                Err(_) => return DeviceOutcome::done(),
            }
            let rev = u16::from_be_bytes([b[0], b[1]]);
            let len = u16::from_be_bytes([b[2], b[3]]);
            if rev > MAX_REVISION || (rev >= 1 && len != 0) {
                return self.reject();
            }
            self.revision = Some(rev);
            return DeviceOutcome::done();
        }
        let known = matches!(
            cmd.code,
            WRITE_FEAT
                | READ_FEAT
                | SET_VQ
                | WRITE_CONF
                | READ_CONF
                | WRITE_STATUS
                | READ_VQ_CONF
                | VDEV_RESET
                | SET_IND
                | SET_CONF_IND
                | READ_STATUS
                | SET_IND_ADAPTER
        );
        if !known {
            return self.reject();
        }
        // Any virtio command other than SET_VIRTIO_REV fixes the revision at 0 (legacy).
        if self.revision.is_none() && cmd.code != VDEV_RESET {
            self.revision = Some(0);
        }
        let rev = self.revision.unwrap_or(0);
        match cmd.code {
            VDEV_RESET => {
                // The revision stays: it is unset only from the time the subchannel is
                // enabled (virtio 1.x, 4.3.2.1.1; QEMU unsets it when the subchannel is
                // disabled), see `enabled`.
                self.reset_virtio();
            }
            READ_FEAT => {
                let mut idx = [0u8; 1];
                let index = match data.peek(4, &mut idx) {
                    Ok(1) => idx[0],
                    _ => 0,
                };
                let word = match index {
                    0 => FEATURES_LO,
                    1 if rev >= 1 => VERSION_1,
                    _ => 0,
                };
                let _ = data.write(&word.to_le_bytes());
                // The index byte stays as the driver wrote it.
                let _ = data.write(&[index]);
            }
            WRITE_FEAT => {
                let mut b = [0u8; 5];
                match data.read(&mut b) {
                    Ok(5) => {
                        let word = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        match b[4] {
                            0 => self.guest_features[0] = word & FEATURES_LO,
                            1 if rev >= 1 => self.guest_features[1] = word & VERSION_1,
                            _ => {}
                        }
                    }
                    Ok(_) => return self.reject(),
                    // The channel already recorded its check; no sense of the device's own.
                    Err(_) => return DeviceOutcome::done(),
                }
            }
            READ_CONF => {
                let conf = self.config();
                // Like QEMU: transfer at most the count (a shorter read is not an error).
                let n = conf.len().min(data.remaining().max(1));
                let _ = data.write(&conf[..n]);
            }
            WRITE_CONF => {
                let _ = Self::read_all(data, self.config().len());
            }
            WRITE_STATUS => {
                let mut b = [0u8; 1];
                match data.read(&mut b) {
                    Ok(1) if b[0] == 0 => self.reset_virtio(),
                    // NEEDS_RESET stays until the driver resets the device.
                    Ok(1) => self.status = b[0] | (self.status & status::NEEDS_RESET),
                    Ok(_) => return self.reject(),
                    Err(_) => return DeviceOutcome::done(),
                }
            }
            READ_STATUS => {
                let _ = data.write(&[self.status]);
            }
            READ_VQ_CONF => {
                let mut idx = [0u8; 2];
                if data.peek(0, &mut idx) != Ok(2) || u16::from_be_bytes(idx) != 0 {
                    return self.reject();
                }
                let _ = data.write(&idx);
                let _ = data.write(&QUEUE_SIZE.to_be_bytes());
            }
            _ => {
                // SET_VQ, SET_IND, SET_CONF_IND, SET_IND_ADAPTER: apply and record the
                // driver's data. The length must be exact unless SLI (QEMU's check_len).
                let len = match cmd.code {
                    SET_VQ if rev == 0 => 16,
                    SET_VQ => 32,
                    SET_IND | SET_CONF_IND => 8,
                    _ => 16,
                };
                if cmd.class == CommandClass::Read {
                    return self.reject();
                }
                let Some(d) = Self::read_all(data, len + 1) else {
                    return DeviceOutcome::done();
                };
                let exact = d.len() == len || (cmd.sli_effective() && d.len() > len);
                let fixed = cmd.code == SET_VQ || cmd.code == SET_IND || cmd.code == SET_CONF_IND;
                if fixed && !exact {
                    return self.reject();
                }
                let d = d[..d.len().min(len)].to_vec();
                let addr = || u64::from_be_bytes(d[..8].try_into().unwrap_or_default());
                match cmd.code {
                    SET_VQ if self.set_vq(&d).is_none() => return self.reject(),
                    SET_IND => self.indicators = Some(addr()),
                    SET_CONF_IND => self.conf_indicators = Some(addr()),
                    _ => {}
                }
                self.recorded.push((cmd.code, d));
                if self.recorded.len() > 16 {
                    self.recorded.remove(0);
                }
            }
        }
        DeviceOutcome::done()
    }

    fn sense(&mut self) -> SenseData {
        std::mem::take(&mut self.sense)
    }

    /// The clear signal ends the unit-check condition; the virtio state (revision, features)
    /// stays, as in QEMU where only VDEV_RESET or a subsystem reset resets it.
    fn reset(&mut self) {
        self.sense = SenseData::default();
    }

    /// Virtio 1.x, 4.3.2.1.1: the device treats the revision as unset from the time its
    /// subchannel is enabled until the driver sets one; revisions do not persist across
    /// disabling and enabling. VDEV_RESET does not unset it.
    fn enabled(&mut self) {
        self.revision = None;
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &'static str {
        "virtio-blk-ccw"
    }

    fn virtio_notify(&mut self, mem: &dyn GuestIo, queue: u16) -> VirtioNotify {
        if queue != 0 || self.queue.is_none() {
            return VirtioNotify::NoQueue;
        }
        // Nothing before DRIVER_OK (virtio 1.x 3.1.2), nothing once broken: the next
        // notification after DRIVER_OK (or after the reset) takes what is available.
        if self.status & status::DRIVER_OK == 0 || self.status & status::NEEDS_RESET != 0 {
            return VirtioNotify::Processed { interrupt: false };
        }
        let (done, error) = self.process_queue(mem);
        let mut interrupt = false;
        if done > 0 {
            if let Some(ind) = self.indicators {
                match Self::indicate(mem, ind, u32::from(queue)) {
                    Ok(()) => interrupt = true,
                    Err(e) => self.error = Some(e),
                }
            }
        }
        if let Some(e) = error {
            self.error = Some(e);
        }
        if let Some(e) = &self.error {
            tracing::warn!(error = %e, "virtio-blk-ccw needs a reset");
            self.status |= status::NEEDS_RESET;
            // The configuration-change indicator tells the driver to look at the status.
            if let Some(ind) = self.conf_indicators {
                interrupt |= Self::indicate(mem, ind, 0).is_ok();
            }
        }
        VirtioNotify::Processed { interrupt }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    const DESC: u64 = 0x1_0000;
    const AVAIL: u64 = 0x2_0000;
    const USED: u64 = 0x3_0000;
    const IND: u64 = 0x4_0000;
    const CONF_IND: u64 = 0x4_0008;
    const BUF: u64 = 0x5_0000;
    const SIZE: u16 = 16;

    /// The guest's driver side of the ring, in the byte order of `le`.
    struct Driver {
        mem: GuestMemoryMmap<()>,
        le: bool,
        avail_idx: u16,
    }

    impl Driver {
        fn new(le: bool) -> Self {
            let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
            Self {
                mem,
                le,
                avail_idx: 0,
            }
        }
        fn put(&self, addr: u64, b: &[u8]) {
            self.mem.write_slice(b, GuestAddress(addr)).unwrap();
        }
        fn get(&self, addr: u64, len: usize) -> Vec<u8> {
            let mut v = vec![0; len];
            self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
            v
        }
        fn n16(&self, v: u16) -> [u8; 2] {
            if self.le {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        }
        fn n32(&self, v: u32) -> [u8; 4] {
            if self.le {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        }
        fn n64(&self, v: u64) -> [u8; 8] {
            if self.le {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        }
        fn r16(&self, addr: u64) -> u16 {
            let b: [u8; 2] = self.get(addr, 2).try_into().unwrap();
            if self.le {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        }
        fn r32(&self, addr: u64) -> u32 {
            let b: [u8; 4] = self.get(addr, 4).try_into().unwrap();
            if self.le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        }
        /// Descriptor `i` of the table at `table`.
        fn desc_in(&self, table: u64, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
            let mut d = Vec::new();
            d.extend_from_slice(&self.n64(addr));
            d.extend_from_slice(&self.n32(len));
            d.extend_from_slice(&self.n16(flags));
            d.extend_from_slice(&self.n16(next));
            self.put(table + 16 * u64::from(i), &d);
        }
        fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
            self.desc_in(DESC, i, addr, len, flags, next);
        }
        fn header(&self, at: u64, ty: u32, sector: u64) {
            let mut h = Vec::new();
            h.extend_from_slice(&self.n32(ty));
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(&self.n64(sector));
            self.put(at, &h);
        }
        /// Makes chain `head` available.
        fn offer(&mut self, avail: u64, head: u16) {
            let slot = u64::from(self.avail_idx % SIZE);
            self.put(avail + 4 + 2 * slot, &self.n16(head));
            self.avail_idx = self.avail_idx.wrapping_add(1);
            self.put(avail + 2, &self.n16(self.avail_idx));
        }
        /// A three-descriptor request at descriptors `first..first + 3`: header, data
        /// (`write`: device-writable), status.
        fn request(&mut self, first: u16, ty: u32, sector: u64, data: u64, len: u32, write: bool) {
            let hdr = BUF + 0x8000 + 0x100 * u64::from(first);
            self.header(hdr, ty, sector);
            self.desc(first, hdr, 16, 1, first + 1);
            self.desc(
                first + 1,
                data,
                len,
                1 | if write { 2 } else { 0 },
                first + 2,
            );
            self.desc(first + 2, hdr + 0x80, 1, 2, 0);
            self.put(hdr + 0x80, &[0xEE]);
            self.offer(AVAIL, first);
        }
        fn status_of(&self, first: u16) -> u8 {
            self.get(BUF + 0x8000 + 0x100 * u64::from(first) + 0x80, 1)[0]
        }
        /// Used element `i`: (id, len).
        fn used(&self, used: u64, i: u16) -> (u32, u32) {
            let e = used + 4 + 8 * u64::from(i % SIZE);
            (self.r32(e), self.r32(e + 4))
        }
    }

    /// A revision-1 device with VERSION_1, its queue at DESC/AVAIL/USED, classic indicators,
    /// DRIVER_OK.
    fn ready(capacity: u64) -> VirtioBlkCcw {
        let mut d = VirtioBlkCcw::new(capacity);
        d.revision = Some(1);
        d.guest_features = [0, VERSION_1];
        d.queue = Some(QueueAddrs {
            desc: DESC,
            avail: AVAIL,
            used: USED,
            size: SIZE,
        });
        d.indicators = Some(IND);
        d.conf_indicators = Some(CONF_IND);
        d.status = 0x0F;
        d
    }

    fn processed(interrupt: bool) -> VirtioNotify {
        VirtioNotify::Processed { interrupt }
    }

    #[test]
    fn read_request_fills_the_buffer_sets_status_used_ring_and_indicator() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        dev.write_disk(3 * 512, &pattern).unwrap();
        drv.request(0, blk::T_IN, 3, BUF, 1024, true);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(drv.get(BUF, 1024), pattern);
        assert_eq!(drv.status_of(0), blk::S_OK);
        assert_eq!(drv.r16(USED + 2), 1);
        assert_eq!(drv.used(USED, 0), (0, 1025));
        assert_eq!(drv.get(IND, 8), [0, 0, 0, 0, 0, 0, 0, 1], "queue 0 = 2^0");
        assert_eq!(dev.error(), None);
        // Nothing new: processed, no interruption.
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(false));
    }

    #[test]
    fn write_then_read_back() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        let data: Vec<u8> = (0..512u32).map(|i| (i ^ 0x5A) as u8).collect();
        drv.put(BUF, &data);
        drv.request(0, blk::T_OUT, 63, BUF, 512, false);
        drv.request(3, blk::T_IN, 63, BUF + 0x1000, 512, true);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!((drv.status_of(0), drv.status_of(3)), (blk::S_OK, blk::S_OK));
        assert_eq!(drv.used(USED, 0), (0, 1));
        assert_eq!(drv.used(USED, 1), (3, 513));
        assert_eq!(drv.get(BUF + 0x1000, 512), data);
        let mut disk = vec![0; 512];
        dev.read_disk(63 * 512, &mut disk).unwrap();
        assert_eq!(disk, data);
    }

    #[test]
    fn out_of_range_or_partial_sectors_are_ioerr_and_the_device_goes_on() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.request(0, blk::T_IN, 64, BUF, 512, true); // first sector past the end
        drv.request(3, blk::T_OUT, 63, BUF, 1024, false); // runs past the end
        drv.request(6, blk::T_IN, 0, BUF, 100, true); // not whole sectors
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        for first in [0, 3, 6] {
            assert_eq!(drv.status_of(first), blk::S_IOERR, "request {first}");
        }
        assert_eq!(drv.used(USED, 0), (0, 1));
        assert_eq!(drv.r16(USED + 2), 3);
        assert_eq!(dev.status() & status::NEEDS_RESET, 0);
        // u64::MAX sectors: no overflow, IOERR.
        drv.request(0, blk::T_IN, u64::MAX, BUF, 512, true);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(drv.status_of(0), blk::S_IOERR);
    }

    #[test]
    fn get_id_flush_and_unsupported_types() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.request(0, blk::T_GET_ID, 0, BUF, 20, true);
        drv.request(3, blk::T_FLUSH, 0, BUF + 0x100, 0, false);
        drv.request(6, 11, 0, BUF + 0x200, 0, false); // DISCARD: not offered
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(&drv.get(BUF, 20)[..17], b"ccw-rs-virtio-blk");
        assert_eq!(drv.used(USED, 0), (0, 21));
        assert_eq!(drv.status_of(0), blk::S_OK);
        assert_eq!(drv.status_of(3), blk::S_OK);
        assert_eq!(drv.status_of(6), blk::S_UNSUPP);
    }

    fn broken(dev: &mut VirtioBlkCcw, drv: &Driver, want: &VirtqueueError) {
        let used = drv.r16(USED + 2);
        assert_eq!(
            dev.virtio_notify(&drv.mem, 0),
            processed(true),
            "config indicator"
        );
        assert_eq!(dev.error(), Some(want));
        assert_ne!(dev.status() & status::NEEDS_RESET, 0);
        assert_eq!(drv.get(CONF_IND, 8), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(drv.r16(USED + 2), used, "nothing used");
        // Broken until reset: a second notification does nothing.
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(false));
        dev.reset_virtio();
        assert_eq!((dev.status(), dev.error()), (0, None));
    }

    #[test]
    fn bad_head_index_needs_reset() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.offer(AVAIL, 300);
        broken(
            &mut dev,
            &drv,
            &VirtqueueError::DescriptorIndex {
                index: 300,
                size: 16,
            },
        );
    }

    #[test]
    fn bad_next_index_needs_reset() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.request(0, blk::T_IN, 0, BUF, 512, true);
        drv.desc(1, BUF, 512, 3, 16); // next = 16, past the table
        broken(
            &mut dev,
            &drv,
            &VirtqueueError::DescriptorIndex {
                index: 16,
                size: 16,
            },
        );
    }

    #[test]
    fn descriptor_loop_needs_reset() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.header(BUF, blk::T_IN, 0);
        drv.desc(0, BUF, 16, 1, 1);
        drv.desc(1, BUF + 0x100, 512, 1, 0); // back to 0
        drv.offer(AVAIL, 0);
        broken(&mut dev, &drv, &VirtqueueError::ChainLoop { head: 0 });
    }

    #[test]
    fn avail_index_too_far_ahead_and_missing_parts() {
        let drv = Driver::new(true);
        let mut dev = ready(64);
        drv.put(AVAIL + 2, &drv.n16(SIZE + 1));
        let e = VirtqueueError::AvailIndex {
            avail: SIZE + 1,
            seen: 0,
            size: SIZE,
        };
        broken(&mut dev, &drv, &e);
        // No status byte: a header alone.
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.header(BUF, blk::T_IN, 0);
        drv.desc(0, BUF, 16, 0, 0);
        drv.offer(AVAIL, 0);
        let e = VirtqueueError::Request {
            head: 0,
            what: "no device-writable status byte",
        };
        broken(&mut dev, &drv, &e);
        // Readable after writable.
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.request(0, blk::T_OUT, 0, BUF, 512, false);
        drv.desc(1, BUF, 512, 3, 2); // writable data, then
        drv.desc(2, BUF, 1, 0, 0); // a readable status

        broken(&mut dev, &drv, &VirtqueueError::Layout { head: 0 });
    }

    #[test]
    fn buffer_outside_guest_memory_needs_reset() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.request(0, blk::T_IN, 0, 0xFFFF_0000, 512, true);
        broken(&mut dev, &drv, &VirtqueueError::Memory(0xFFFF_0000));
    }

    #[test]
    fn indirect_table() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        dev.write_disk(0, &[0xAB; 512]).unwrap();
        let table = BUF + 0x4000;
        drv.header(BUF + 0x3000, blk::T_IN, 0);
        drv.desc_in(table, 0, BUF + 0x3000, 16, 1, 1);
        // The data split over two buffers, then the status.
        drv.desc_in(table, 1, BUF, 200, 3, 2);
        drv.desc_in(table, 2, BUF + 0x1000, 312, 3, 3);
        drv.desc_in(table, 3, BUF + 0x3080, 1, 2, 0);
        drv.desc(5, table, 64, 4, 0);
        drv.offer(AVAIL, 5);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(drv.get(BUF + 0x3080, 1), [blk::S_OK]);
        assert_eq!(drv.get(BUF, 200), vec![0xAB; 200]);
        assert_eq!(drv.get(BUF + 0x1000, 312), vec![0xAB; 312]);
        assert_eq!(drv.used(USED, 0), (5, 513));
        // A table longer than the queue is a ring error.
        drv.desc(5, table, 16 * u32::from(SIZE + 1), 4, 0);
        drv.offer(AVAIL, 5);
        let e = VirtqueueError::IndirectTable {
            head: 5,
            addr: table,
            len: 16 * u32::from(SIZE + 1),
        };
        broken(&mut dev, &drv, &e);
        // A nested or odd-sized indirect table is a ring error.
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        drv.desc(5, table, 64, 4, 0);
        drv.desc_in(table, 0, table, 64, 4, 0);
        drv.offer(AVAIL, 5);
        let e = VirtqueueError::IndirectTable {
            head: 5,
            addr: table,
            len: 64,
        };
        broken(&mut dev, &drv, &e);
    }

    #[test]
    fn nothing_before_driver_ok_and_no_queue() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        dev.status = 0x0B; // ACKNOWLEDGE | DRIVER | FEATURES_OK
        drv.request(0, blk::T_IN, 0, BUF, 512, true);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(false));
        assert_eq!(drv.r16(USED + 2), 0);
        dev.status = 0x0F;
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(drv.r16(USED + 2), 1);
        assert_eq!(dev.virtio_notify(&drv.mem, 1), VirtioNotify::NoQueue);
        assert_eq!(
            VirtioBlkCcw::new(8).virtio_notify(&drv.mem, 0),
            VirtioNotify::NoQueue
        );
    }

    #[test]
    fn legacy_ring_is_big_endian_with_the_legacy_layout() {
        let mut drv = Driver::new(false);
        let mut dev = VirtioBlkCcw::new(64);
        dev.revision = Some(0);
        // SET_VQ legacy: queue DESC, align 4096, index 0, num 8.
        let mut vq = Vec::new();
        vq.extend_from_slice(&DESC.to_be_bytes());
        vq.extend_from_slice(&4096u32.to_be_bytes());
        vq.extend_from_slice(&0u16.to_be_bytes());
        vq.extend_from_slice(&SIZE.to_be_bytes());
        assert_eq!(dev.set_vq(&vq), Some(()));
        let q = dev.queue.unwrap();
        let avail = DESC + 16 * u64::from(SIZE);
        assert_eq!((q.avail, q.used), (avail, DESC + 0x1000));
        dev.status = 0x07;
        dev.write_disk(512, &[0x42; 512]).unwrap();
        drv.header(BUF + 0x3000, blk::T_IN, 1);
        drv.desc(0, BUF + 0x3000, 16, 1, 1);
        drv.desc(1, BUF, 512, 3, 2);
        drv.desc(2, BUF + 0x3080, 1, 2, 0);
        drv.offer(avail, 0);
        // No indicators: processed, no interruption (the driver polls the used ring).
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(false));
        assert_eq!(drv.get(BUF, 512), vec![0x42; 512]);
        assert_eq!(drv.r16(q.used + 2), 1);
        assert_eq!(drv.used(q.used, 0), (0, 513));
    }

    #[test]
    fn a_queue_size_not_a_power_of_two_is_an_error_not_a_panic() {
        let drv = Driver::new(true);
        let addrs = QueueAddrs {
            desc: DESC,
            avail: AVAIL,
            used: USED,
            size: 0,
        };
        let mut q = SplitQueue::new(addrs, true);
        drv.put(AVAIL + 2, &[1, 0]);
        assert_eq!(q.pop(&drv.mem), Err(VirtqueueError::Size(0)));
        assert_eq!(q.push_used(&drv.mem, 0, 1), Err(VirtqueueError::Size(0)));
    }

    #[test]
    fn rings_and_buffers_at_the_top_of_the_address_space_are_memory_errors() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        dev.queue = Some(QueueAddrs {
            desc: DESC,
            avail: u64::MAX - 3,
            used: u64::MAX - 3,
            size: SIZE,
        });
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(dev.error(), Some(&VirtqueueError::Memory(u64::MAX - 1)));
        // A data buffer that wraps: the device stops at the first inaccessible byte.
        let mut dev = ready(u64::MAX);
        drv.request(0, blk::T_IN, 0, u64::MAX - 100, 512, true);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(dev.error(), Some(&VirtqueueError::Memory(u64::MAX - 100)));
        // Sectors whose byte offset does not fit in 64 bits are out of range, not an overflow.
        let mut dev = ready(u64::MAX);
        let mut drv = Driver::new(true);
        drv.request(0, blk::T_IN, u64::MAX / 512 + 1, BUF, 512, true);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(drv.status_of(0), blk::S_IOERR);
    }

    #[test]
    fn set_vq_checks() {
        let mut dev = VirtioBlkCcw::new(64);
        dev.revision = Some(1);
        let vq = |index: u16, num: u16, desc: u64| {
            let mut v = Vec::new();
            v.extend_from_slice(&desc.to_be_bytes());
            v.extend_from_slice(&[0; 4]);
            v.extend_from_slice(&index.to_be_bytes());
            v.extend_from_slice(&num.to_be_bytes());
            v.extend_from_slice(&AVAIL.to_be_bytes());
            v.extend_from_slice(&USED.to_be_bytes());
            v
        };
        assert_eq!(dev.set_vq(&vq(0, 256, DESC)), Some(()));
        assert_eq!(dev.queue.map(|q| (q.used, q.size)), Some((USED, 256)));
        assert_eq!(dev.set_vq(&vq(1, 256, DESC)), None, "one queue");
        assert_eq!(dev.set_vq(&vq(0, 512, DESC)), None, "larger than offered");
        assert_eq!(dev.set_vq(&vq(0, 6, DESC)), None, "not a power of two");
        assert_eq!(dev.set_vq(&vq(0, 0, 0)), Some(()), "unset");
        assert_eq!(dev.queue, None);
    }

    #[test]
    fn event_idx_publishes_avail_event() {
        let mut drv = Driver::new(true);
        let mut dev = ready(64);
        dev.guest_features[0] = RING_EVENT_IDX;
        drv.request(0, blk::T_IN, 0, BUF, 512, true);
        drv.request(3, blk::T_IN, 1, BUF, 512, true);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(true));
        assert_eq!(drv.r16(USED + 4 + 8 * u64::from(SIZE)), 2);
    }

    #[test]
    fn file_backing_gives_capacity_and_keeps_writes() {
        let path = std::env::temp_dir().join(format!("vblk-{}.img", std::process::id()));
        std::fs::write(&path, vec![0u8; 8 * 512 + 100]).unwrap();
        let mut drv = Driver::new(true);
        let mut dev = VirtioBlkCcw::with_file(&path).unwrap();
        assert_eq!(dev.capacity(), 8);
        let mut d2 = ready(8);
        dev.revision = d2.revision;
        dev.guest_features = d2.guest_features;
        dev.queue = d2.queue.take();
        dev.status = 0x0F;
        drv.put(BUF, &[0x77; 512]);
        drv.request(0, blk::T_OUT, 7, BUF, 512, false);
        drv.request(3, blk::T_OUT, 8, BUF, 512, false);
        assert_eq!(dev.virtio_notify(&drv.mem, 0), processed(false));
        assert_eq!(
            (drv.status_of(0), drv.status_of(3)),
            (blk::S_OK, blk::S_IOERR)
        );
        let file = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&file[7 * 512..8 * 512], &[0x77; 512]);
    }
}
