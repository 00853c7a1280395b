// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The ECKD device: executes one channel command at a time against a [`CkdImage`].
//!
//! The channel (the simulated channel subsystem) resolves chaining, IDAWs, data chaining and
//! skipping and hands the device a [`ChannelData`] stream per command; the device answers with
//! device status and how many bytes it wanted to transfer (the channel derives incorrect
//! length from that and the CCW count). State that spans commands of one channel program
//! (extent, file mask, locate-record domain, orientation) lives in the device and is reset by
//! [`Eckd::start_chain`].
//!
//! Orientation is modelled as a cursor on the current track: at the index, after the home
//! address, after the count area of record *i* (its key and data not yet passed), or after
//! record *i* entirely. A search or a locate-record search leaves the cursor after the count of
//! the matching record, so the following Read Data transfers that record and a following Read
//! Count the next one's count, which is what Linux's `dasd_eckd` relies on.

use ccw_types::DeviceStatus;

use super::geometry::{CMD_RCD, HEADS, Identity, RDC_LEN, SENSE_LEN, TrackAddr};
use super::image::{CkdImage, ImageError, ImageErrorKind};
use super::track::{COUNT_LEN, Count, Record, Track};

/// The data side of one command, as the channel presents it (after IDAW/data-chaining
/// resolution).
pub trait ChannelData {
    /// Read command: moves `data` into storage; returns how many bytes the channel took
    /// (less than `data.len()` when the CCW count runs out).
    fn store(&mut self, data: &[u8]) -> usize;
    /// Write/control command: fills `buf` from storage; returns how many bytes the channel
    /// supplied (less than `buf.len()` when the CCW count runs out).
    fn fetch(&mut self, buf: &mut [u8]) -> usize;
}

/// A [`ChannelData`] over one contiguous buffer (a CCW without chaining or IDAWs), for direct
/// use of the device without a channel.
///
/// ```
/// use mock_backend::dasd::{ChannelData, SliceData};
/// let mut buf = [0u8; 4];
/// let mut d = SliceData::new(&mut buf);
/// assert_eq!(d.store(&[1, 2, 3, 4, 5]), 4);
/// assert_eq!(buf, [1, 2, 3, 4]);
/// ```
#[derive(Debug)]
pub struct SliceData<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> SliceData<'a> {
    /// A stream over `buf` (the CCW count is `buf.len()`).
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceData { buf, pos: 0 }
    }
    /// Bytes transferred so far.
    pub fn transferred(&self) -> usize {
        self.pos
    }
}

impl ChannelData for SliceData<'_> {
    fn store(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.buf.len() - self.pos);
        self.buf[self.pos..self.pos + n].copy_from_slice(&data[..n]);
        self.pos += n;
        n
    }
    fn fetch(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.buf.len() - self.pos);
        buf[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        n
    }
}

/// What one command ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EckdOutcome {
    /// Device status: `CE|DE`, plus `SM` for a search hit, or `UC` (sense is then pending).
    pub status: DeviceStatus,
    /// Bytes the device wanted to transfer; the channel compares this with the CCW count
    /// for incorrect length.
    pub length: usize,
}

/// Sense bytes the device sets (32-byte 3990 format; byte 7 carries format 0 message codes).
pub mod sense {
    /// Byte 0: command reject.
    pub const CMD_REJECT: u8 = 0x80;
    /// Byte 0: equipment check (host I/O error on the image).
    pub const EQUIPMENT_CHECK: u8 = 0x10;
    /// Byte 1: invalid track format.
    pub const INVALID_TRACK_FORMAT: u8 = 0x40;
    /// Byte 1: no record found.
    pub const NO_RECORD_FOUND: u8 = 0x08;
    /// Byte 1: file protected (outside the extent, or the file mask forbids it).
    pub const FILE_PROTECTED: u8 = 0x04;
    /// Byte 1: write inhibited (the volume is read-only).
    pub const WRITE_INHIBITED: u8 = 0x02;
    /// Byte 7 message: invalid command code.
    pub const MSG_INVALID_COMMAND: u8 = 0x01;
    /// Byte 7 message: invalid command sequence.
    pub const MSG_INVALID_SEQUENCE: u8 = 0x02;
    /// Byte 7 message: CCW count less than required.
    pub const MSG_COUNT_TOO_SMALL: u8 = 0x03;
    /// Byte 7 message: invalid parameter.
    pub const MSG_INVALID_PARAMETER: u8 = 0x04;
    /// Byte 7 message: the record does not fit on the track.
    pub const MSG_TRACK_FULL: u8 = 0x0C;
}

/// ECKD command codes the device implements.
mod cmd {
    pub(super) const WRITE_DATA: u8 = 0x05;
    pub(super) const READ_DATA: u8 = 0x06;
    pub(super) const SEEK: u8 = 0x07;
    pub(super) const READ_HA_DIAG: u8 = 0x0A;
    pub(super) const SEEK_CYL: u8 = 0x0B;
    pub(super) const WRITE_KD: u8 = 0x0D;
    pub(super) const READ_KD: u8 = 0x0E;
    pub(super) const READ_COUNT: u8 = 0x12;
    pub(super) const UNCOND_RESERVE: u8 = 0x14;
    pub(super) const WRITE_R0: u8 = 0x15;
    pub(super) const READ_R0: u8 = 0x16;
    pub(super) const READ_HA: u8 = 0x1A;
    pub(super) const SEEK_HEAD: u8 = 0x1B;
    pub(super) const WRITE_CKD: u8 = 0x1D;
    pub(super) const READ_CKD: u8 = 0x1E;
    pub(super) const SET_FILE_MASK: u8 = 0x1F;
    pub(super) const SEARCH_ID_EQ: u8 = 0x31;
    pub(super) const LOCATE: u8 = 0x47;
    pub(super) const LOCATE_EXT: u8 = 0x4B;
    pub(super) const DEFINE_EXTENT: u8 = 0x63;
    pub(super) const RDC: u8 = 0x64;
    pub(super) const RELEASE: u8 = 0x94;
    pub(super) const RESERVE: u8 = 0xB4;
    pub(super) const SENSE_ID: u8 = 0xE4;
    pub(super) const MT: u8 = 0x80;
}

/// Locate Record operation codes (low 6 bits of parameter byte 0).
mod op {
    pub(super) const ORIENT: u8 = 0x00;
    pub(super) const WRITE_DATA: u8 = 0x01;
    pub(super) const FORMAT_WRITE: u8 = 0x03;
    pub(super) const READ_DATA: u8 = 0x06;
    pub(super) const READ_ANY: u8 = 0x16;
}

/// File-mask write-control values (mask bits 0-1).
const MASK_WRITE: u8 = 0xC0;
const MASK_INHIBIT_HA_R0: u8 = 0x00;
const MASK_INHIBIT_ALL: u8 = 0x40;
const MASK_UPDATE_ONLY: u8 = 0x80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    Index,
    AfterHa,
    AfterCount(usize),
    AfterRecord(usize),
}

#[derive(Debug, Clone, Copy)]
struct Extent {
    beg: u64,
    end: u64,
}

#[derive(Debug, Clone, Copy)]
struct Domain {
    op: u8,
    remaining: u32,
}

#[derive(Debug, Default)]
struct Chain {
    extent: Option<Extent>,
    mask: u8,
    mask_set: bool,
    domain: Option<Domain>,
    track: Option<Track>,
    cursor: Option<Cursor>,
    index_passes: u8,
}

/// A failed command: the sense to present with unit check.
#[derive(Debug, Clone, Copy)]
struct Check {
    byte0: u8,
    byte1: u8,
    msg: u8,
}

impl Check {
    const fn reject(msg: u8) -> Self {
        Check {
            byte0: sense::CMD_REJECT,
            byte1: 0,
            msg,
        }
    }
    const fn byte1(byte1: u8) -> Self {
        Check {
            byte0: 0,
            byte1,
            msg: 0,
        }
    }
}

impl From<ImageError> for Check {
    fn from(e: ImageError) -> Self {
        tracing::debug!(error = %e, "image error");
        match e.kind() {
            ImageErrorKind::InvalidTrack => Check::byte1(sense::INVALID_TRACK_FORMAT),
            ImageErrorKind::ReadOnly => Check {
                byte0: sense::CMD_REJECT,
                byte1: sense::WRITE_INHIBITED,
                msg: 0,
            },
            ImageErrorKind::OutOfRange => Check::reject(sense::MSG_INVALID_PARAMETER),
            _ => Check {
                byte0: sense::EQUIPMENT_CHECK,
                byte1: 0,
                msg: 0,
            },
        }
    }
}

type CmdResult = Result<(DeviceStatus, usize), Check>;

const OK: DeviceStatus = DeviceStatus::CHANNEL_END.union(DeviceStatus::DEVICE_END);

/// An ECKD 3390 device on a CKD image.
///
/// ```
/// use mock_backend::dasd::{CkdImage, CreateOptions, Eckd, Model3390, SliceData};
/// let dir = std::env::temp_dir().join(format!("eckd-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("doc.3390");
/// # let _ = std::fs::remove_file(&path);
/// let opts = CreateOptions { cylinders: Some(1), volser: None };
/// let mut dev = Eckd::new(CkdImage::create(&path, Model3390::M1, &opts).unwrap(), 0x0100);
/// let mut rdc = [0u8; 64];
/// dev.start_chain();
/// let out = dev.execute(0x64, &mut SliceData::new(&mut rdc));
/// assert_eq!(out.length, 64);
/// assert_eq!(&rdc[3..5], &[0x33, 0x90]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct Eckd {
    image: CkdImage,
    identity: Identity,
    chain: Chain,
    sense: [u8; SENSE_LEN],
}

impl Eckd {
    /// A device on `image` with device number `devno` (reported as the unit address).
    pub fn new(image: CkdImage, devno: u16) -> Self {
        let identity = Identity {
            model: image.model(),
            cylinders: image.cylinders(),
            devno,
        };
        Eckd {
            image,
            identity,
            chain: Chain::default(),
            sense: [0; SENSE_LEN],
        }
    }

    /// The identification data the device answers with.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The image behind the device.
    pub fn image(&self) -> &CkdImage {
        &self.image
    }

    /// Starts a new channel program: forgets extent, file mask, locate domain and orientation.
    pub fn start_chain(&mut self) {
        self.chain = Chain::default();
    }

    /// Selective reset / clear: ends the channel program and drops pending sense.
    pub fn reset(&mut self) {
        self.chain = Chain::default();
        self.sense = [0; SENSE_LEN];
    }

    /// The sense bytes describing the last unit check (all zero if none is pending).
    pub fn sense_bytes(&self) -> [u8; SENSE_LEN] {
        self.sense
    }

    /// Executes one command. On unit check the sense is stored for a following Sense and
    /// the channel program should end (the channel does not chain after unit check).
    pub fn execute(&mut self, code: u8, data: &mut dyn ChannelData) -> EckdOutcome {
        let res = self.dispatch(code, data);
        match res {
            Ok((status, length)) => {
                tracing::trace!(cmd = format_args!("{code:#04x}"), %status, length, "eckd command");
                EckdOutcome { status, length }
            }
            Err(c) => {
                tracing::debug!(
                    cmd = format_args!("{code:#04x}"),
                    byte0 = c.byte0,
                    byte1 = c.byte1,
                    msg = c.msg,
                    "eckd unit check"
                );
                self.sense = [0; SENSE_LEN];
                self.sense[0] = c.byte0;
                self.sense[1] = c.byte1;
                self.sense[7] = c.msg;
                if let Some(t) = &self.chain.track {
                    // Bytes 8-11: the track the check happened on (CCHH).
                    self.sense[8..12].copy_from_slice(&t.addr.to_cchh());
                }
                self.chain.domain = None;
                EckdOutcome {
                    status: OK | DeviceStatus::UNIT_CHECK,
                    length: 0,
                }
            }
        }
    }

    fn dispatch(&mut self, code: u8, data: &mut dyn ChannelData) -> CmdResult {
        match code {
            0x03 => Ok((OK, 0)),
            0x04 => {
                let s = self.sense;
                self.sense = [0; SENSE_LEN];
                Ok((OK, send(data, &s)))
            }
            cmd::SENSE_ID => Ok((OK, send(data, &self.identity.sense_id()))),
            cmd::RDC => Ok((OK, send(data, &self.identity.rdc()))),
            CMD_RCD => Ok((OK, send(data, &self.identity.rcd()))),
            cmd::RESERVE | cmd::RELEASE | cmd::UNCOND_RESERVE => {
                // Single-host simulation: reservation always succeeds; the device returns its
                // 32 sense bytes like a real 3990 does.
                Ok((OK, send(data, &self.sense)))
            }
            cmd::SET_FILE_MASK => self.set_file_mask(data),
            cmd::DEFINE_EXTENT => self.define_extent(data),
            cmd::LOCATE => self.locate(data, false),
            cmd::LOCATE_EXT => self.locate(data, true),
            cmd::SEEK | cmd::SEEK_CYL | cmd::SEEK_HEAD => self.seek(data),
            c if c & !cmd::MT == cmd::SEARCH_ID_EQ => self.search_id(data),
            cmd::READ_HA | cmd::READ_HA_DIAG | 0x9A => self.read_ha(data),
            cmd::READ_R0 | 0x96 => self.read_r0(data),
            c if c & !cmd::MT == cmd::READ_COUNT => self.read_count(data),
            c if c & !cmd::MT == cmd::READ_DATA => self.read(data, false, c & cmd::MT != 0),
            c if c & !cmd::MT == cmd::READ_KD => self.read(data, true, c & cmd::MT != 0),
            c if c & !cmd::MT == cmd::READ_CKD => self.read_ckd(data, c & cmd::MT != 0),
            c if c & !cmd::MT == cmd::WRITE_DATA => self.write(data, false, c & cmd::MT != 0),
            c if c & !cmd::MT == cmd::WRITE_KD => self.write(data, true, c & cmd::MT != 0),
            c if c & !cmd::MT == cmd::WRITE_CKD => self.write_ckd(data),
            cmd::WRITE_R0 => self.write_r0(data),
            _ => Err(Check::reject(sense::MSG_INVALID_COMMAND)),
        }
    }

    // ---- positioning -------------------------------------------------------------------

    fn in_extent(&self, t: TrackAddr) -> bool {
        self.chain
            .extent
            .is_none_or(|e| (e.beg..=e.end).contains(&t.index()))
    }

    fn move_to(&mut self, t: TrackAddr) -> Result<(), Check> {
        if t.cyl >= self.image.cylinders() || t.head >= HEADS {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        if !self.in_extent(t) {
            return Err(Check::byte1(sense::FILE_PROTECTED));
        }
        let track = self.image.read_track(t)?;
        self.chain.track = Some(track);
        self.chain.cursor = Some(Cursor::Index);
        self.chain.index_passes = 0;
        Ok(())
    }

    fn track(&self) -> Result<&Track, Check> {
        self.chain
            .track
            .as_ref()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))
    }

    fn cursor(&self) -> Cursor {
        self.chain.cursor.unwrap_or(Cursor::Index)
    }

    /// Moves on to the next track of a multitrack operation (within the extent).
    fn next_track(&mut self) -> Result<(), Check> {
        let cur = self.track()?.addr;
        let next = TrackAddr::from_index(cur.index() + 1);
        if next.cyl >= self.image.cylinders() || !self.in_extent(next) {
            return Err(Check::byte1(sense::FILE_PROTECTED));
        }
        self.move_to(next)?;
        // Data operations continue with R1.
        self.chain.cursor = Some(Cursor::AfterRecord(0));
        Ok(())
    }

    /// Index of the next count area to pass, wrapping through the index point (two index
    /// passes without success end in "no record found").
    fn next_count(&mut self) -> Result<usize, Check> {
        let n = self.track()?.records.len();
        let next = match self.cursor() {
            Cursor::Index | Cursor::AfterHa => 0,
            Cursor::AfterCount(i) | Cursor::AfterRecord(i) => i + 1,
        };
        if next < n {
            return Ok(next);
        }
        self.chain.index_passes += 1;
        if self.chain.index_passes >= 2 || n == 0 {
            return Err(Check::byte1(sense::NO_RECORD_FOUND));
        }
        Ok(0)
    }

    /// The record whose key/data a Read/Write (Key and) Data acts on: the one whose count was
    /// just passed, or else the next record (R0 is skipped coming from the index; `mt` and
    /// locate domains continue onto the next track).
    fn data_record(&mut self, mt: bool) -> Result<usize, Check> {
        let n = self.track()?.records.len();
        let target = match self.cursor() {
            Cursor::AfterCount(i) => i,
            Cursor::Index | Cursor::AfterHa => 1,
            Cursor::AfterRecord(i) => i + 1,
        };
        if target < n {
            return Ok(target);
        }
        if mt || self.chain.domain.is_some() {
            self.next_track()?;
            if self.track()?.records.len() > 1 {
                return Ok(1);
            }
        }
        Err(Check::byte1(sense::NO_RECORD_FOUND))
    }

    // ---- domain bookkeeping ------------------------------------------------------------

    /// Checks a data-transfer command against the locate-record domain and uses up one
    /// record of it.
    fn take_domain(&mut self, allowed: &[u8]) -> Result<(), Check> {
        match &mut self.chain.domain {
            None => Ok(()),
            Some(d) if d.remaining > 0 && allowed.contains(&d.op) => {
                d.remaining -= 1;
                Ok(())
            }
            Some(_) => Err(Check::reject(sense::MSG_INVALID_SEQUENCE)),
        }
    }

    fn domain_complete(&self) -> bool {
        self.chain.domain.is_none_or(|d| d.remaining == 0)
    }

    fn check_write(&self, format: bool, r0: bool) -> Result<(), Check> {
        if self.image.is_read_only() {
            return Err(Check {
                byte0: sense::CMD_REJECT,
                byte1: sense::WRITE_INHIBITED,
                msg: 0,
            });
        }
        let mask = self.chain.mask & MASK_WRITE;
        let permitted = match mask {
            MASK_INHIBIT_ALL => false,
            MASK_UPDATE_ONLY => !format,
            MASK_INHIBIT_HA_R0 => !r0,
            _ => true,
        };
        if permitted {
            Ok(())
        } else {
            Err(Check {
                byte0: sense::CMD_REJECT,
                byte1: sense::FILE_PROTECTED,
                msg: sense::MSG_INVALID_PARAMETER,
            })
        }
    }

    fn commit(&mut self) -> Result<(), Check> {
        let track = self
            .chain
            .track
            .as_ref()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))?;
        self.image.write_track(track)?;
        Ok(())
    }

    // ---- control commands --------------------------------------------------------------

    fn set_file_mask(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        if self.chain.extent.is_some() || self.chain.mask_set {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let [mask] = recv::<1>(data)?;
        self.chain.mask = mask;
        self.chain.mask_set = true;
        Ok((OK, 1))
    }

    fn define_extent(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        if self.chain.extent.is_some() || self.chain.mask_set || self.chain.track.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        // 16 bytes of parameters; Linux sends 32 (extended parameters) when it time-stamps.
        let mut p = [0u8; 32];
        let got = data.fetch(&mut p);
        if got < 16 {
            return Err(Check::reject(sense::MSG_COUNT_TOO_SMALL));
        }
        let mask = p[0];
        if mask & 0x20 != 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        let beg = TrackAddr::from_cchh([p[8], p[9], p[10], p[11]]);
        let end = TrackAddr::from_cchh([p[12], p[13], p[14], p[15]]);
        let cyls = self.image.cylinders();
        if beg > end || end.cyl >= cyls || beg.head >= HEADS || end.head >= HEADS {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        self.chain.extent = Some(Extent {
            beg: beg.index(),
            end: end.index(),
        });
        self.chain.mask = mask;
        Ok((OK, if got > 16 { 32 } else { 16 }))
    }

    fn locate(&mut self, data: &mut dyn ChannelData, extended: bool) -> CmdResult {
        if self.chain.extent.is_none() || !self.domain_complete() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let want = if extended { 20 } else { 16 };
        let mut p = [0u8; 20];
        if data.fetch(&mut p[..want]) < want {
            return Err(Check::reject(sense::MSG_COUNT_TOO_SMALL));
        }
        if extended && (p[0] & 0x3F == 0x3F || p[1] & 0x20 != 0) {
            // Extended operations and imbedded CCWs are not modelled.
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        let orient = p[0] >> 6;
        let operation = p[0] & 0x3F;
        let count = u32::from(p[3]);
        let seek = TrackAddr::from_cchh([p[4], p[5], p[6], p[7]]);
        let search = [p[8], p[9], p[10], p[11], p[12]];
        match operation {
            op::ORIENT if count != 0 => return Err(Check::reject(sense::MSG_INVALID_PARAMETER)),
            op::WRITE_DATA | op::FORMAT_WRITE | op::READ_DATA | op::READ_ANY if count == 0 => {
                return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
            }
            op::ORIENT | op::READ_DATA | op::READ_ANY => {}
            op::WRITE_DATA => self.check_write(false, false)?,
            op::FORMAT_WRITE => self.check_write(true, orient != 0)?,
            _ => return Err(Check::reject(sense::MSG_INVALID_PARAMETER)),
        }
        self.move_to(seek)?;
        let cursor = match (orient, operation) {
            (3, op::READ_ANY | op::ORIENT) => Cursor::Index,
            (1, op::FORMAT_WRITE | op::ORIENT) => Cursor::AfterHa,
            (0 | 2, op::READ_ANY) => {
                // Read any: start at the record the sector argument points at (search R).
                let t = self.track()?;
                match t.records.iter().position(|r| r.count.record == search[4]) {
                    Some(i) if i > 0 => Cursor::AfterRecord(i - 1),
                    _ => Cursor::AfterRecord(0),
                }
            }
            (0 | 2, _) => {
                let t = self.track()?;
                match t.find(search) {
                    Some(i) => Cursor::AfterCount(i),
                    None => return Err(Check::byte1(sense::NO_RECORD_FOUND)),
                }
            }
            _ => return Err(Check::reject(sense::MSG_INVALID_PARAMETER)),
        };
        self.chain.cursor = Some(cursor);
        self.chain.domain = Some(Domain {
            op: operation,
            remaining: count,
        });
        Ok((OK, want))
    }

    fn seek(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        if self.chain.domain.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let b = recv::<6>(data)?;
        if b[0] != 0 || b[1] != 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        self.move_to(TrackAddr::from_cchh([b[2], b[3], b[4], b[5]]))?;
        Ok((OK, 6))
    }

    fn search_id(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        if self.chain.domain.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        self.track()?;
        let arg = recv::<5>(data)?;
        let i = self.next_count()?;
        self.chain.cursor = Some(Cursor::AfterCount(i));
        let hit = self.track()?.records[i].count.id() == arg;
        let status = if hit {
            OK | DeviceStatus::STATUS_MODIFIER
        } else {
            OK
        };
        Ok((status, 5))
    }

    // ---- reads -------------------------------------------------------------------------

    fn read_ha(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        let ha = self.track()?.home_address();
        self.chain.cursor = Some(Cursor::AfterHa);
        Ok((OK, send(data, &ha)))
    }

    fn read_r0(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        self.take_domain(&[op::READ_ANY])?;
        let t = self.track()?;
        let r0 = t
            .records
            .first()
            .ok_or(Check::byte1(sense::NO_RECORD_FOUND))?;
        let bytes = ckd_bytes(r0);
        self.chain.cursor = Some(Cursor::AfterRecord(0));
        Ok((OK, send(data, &bytes)))
    }

    fn read_count(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        self.take_domain(&[op::READ_DATA, op::READ_ANY])?;
        let i = match self.next_count() {
            Ok(i) => i,
            Err(_) if self.chain.domain.is_some() => {
                self.next_track()?;
                1
            }
            Err(e) => return Err(e),
        };
        self.chain.cursor = Some(Cursor::AfterCount(i));
        let c = self.track()?.records[i].count.to_bytes();
        Ok((OK, send(data, &c)))
    }

    fn read(&mut self, data: &mut dyn ChannelData, key: bool, mt: bool) -> CmdResult {
        self.take_domain(&[op::READ_DATA, op::READ_ANY])?;
        let i = self.data_record(mt)?;
        let r = &self.track()?.records[i];
        let n = if key {
            let mut b = r.key.clone();
            b.extend_from_slice(&r.data);
            send(data, &b)
        } else {
            send(data, &r.data)
        };
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        Ok((OK, n))
    }

    fn read_ckd(&mut self, data: &mut dyn ChannelData, mt: bool) -> CmdResult {
        self.take_domain(&[op::READ_DATA, op::READ_ANY])?;
        let n = self.track()?.records.len();
        let mut i = match self.cursor() {
            Cursor::Index | Cursor::AfterHa => 1,
            Cursor::AfterCount(i) | Cursor::AfterRecord(i) => i + 1,
        };
        if i >= n {
            if !(mt || self.chain.domain.is_some()) {
                return Err(Check::byte1(sense::NO_RECORD_FOUND));
            }
            self.next_track()?;
            i = 1;
            if self.track()?.records.len() <= 1 {
                return Err(Check::byte1(sense::NO_RECORD_FOUND));
            }
        }
        let bytes = ckd_bytes(&self.track()?.records[i]);
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        Ok((OK, send(data, &bytes)))
    }

    // ---- writes ------------------------------------------------------------------------

    fn write(&mut self, data: &mut dyn ChannelData, key: bool, mt: bool) -> CmdResult {
        self.check_write(false, false)?;
        self.take_domain(&[op::WRITE_DATA])?;
        let i = self.data_record(mt)?;
        let t = self
            .chain
            .track
            .as_mut()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))?;
        let r = &mut t.records[i];
        let mut buf = vec![0u8; if key { r.key.len() } else { 0 } + r.data.len()];
        // Short transfers are padded with zeros, as the control unit does; the channel
        // reports the incorrect length.
        data.fetch(&mut buf);
        let len = buf.len();
        if key {
            let kl = r.key.len();
            r.key.copy_from_slice(&buf[..kl]);
            r.data.copy_from_slice(&buf[kl..]);
        } else {
            r.data.copy_from_slice(&buf);
        }
        self.commit()?;
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        Ok((OK, len))
    }

    fn receive_record(data: &mut dyn ChannelData) -> Result<(Record, usize), Check> {
        let cb = recv::<COUNT_LEN>(data)?;
        let count = Count::from_bytes(cb);
        let mut kd = vec![0u8; count.key_len as usize + count.data_len as usize];
        data.fetch(&mut kd);
        let data_part = kd.split_off(count.key_len as usize);
        let len = COUNT_LEN + kd.len() + data_part.len();
        Ok((
            Record {
                count,
                key: kd,
                data: data_part,
            },
            len,
        ))
    }

    fn write_ckd(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        self.check_write(true, false)?;
        self.take_domain(&[op::FORMAT_WRITE])?;
        let after = match self.cursor() {
            Cursor::AfterCount(i) | Cursor::AfterRecord(i) => i,
            Cursor::Index | Cursor::AfterHa => {
                return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
            }
        };
        let (rec, len) = Self::receive_record(data)?;
        if rec.count.record == 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        let t = self
            .chain
            .track
            .as_mut()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))?;
        let mut new = t.clone();
        new.records.truncate(after + 1);
        new.records.push(rec);
        if new.to_slot().is_err() {
            return Err(Check::reject(sense::MSG_TRACK_FULL));
        }
        *t = new;
        self.commit()?;
        self.chain.cursor = Some(Cursor::AfterRecord(after + 1));
        Ok((OK, len))
    }

    fn write_r0(&mut self, data: &mut dyn ChannelData) -> CmdResult {
        self.check_write(true, true)?;
        self.take_domain(&[op::FORMAT_WRITE])?;
        if !matches!(self.cursor(), Cursor::Index | Cursor::AfterHa) {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let (rec, len) = Self::receive_record(data)?;
        if rec.count.record != 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        let t = self
            .chain
            .track
            .as_mut()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))?;
        t.records = vec![rec];
        self.commit()?;
        self.chain.cursor = Some(Cursor::AfterRecord(0));
        Ok((OK, len))
    }
}

fn ckd_bytes(r: &Record) -> Vec<u8> {
    let mut b = Vec::with_capacity(r.stored_len());
    b.extend_from_slice(&r.count.to_bytes());
    b.extend_from_slice(&r.key);
    b.extend_from_slice(&r.data);
    b
}

/// Transfers `bytes` to storage; returns the device's length (all of `bytes`).
fn send(data: &mut dyn ChannelData, bytes: &[u8]) -> usize {
    data.store(bytes);
    bytes.len()
}

/// Receives exactly `N` parameter bytes or rejects the command.
fn recv<const N: usize>(data: &mut dyn ChannelData) -> Result<[u8; N], Check> {
    let mut b = [0u8; N];
    if data.fetch(&mut b) < N {
        return Err(Check::reject(sense::MSG_COUNT_TOO_SMALL));
    }
    Ok(b)
}

const _: () = assert!(RDC_LEN == 64);
