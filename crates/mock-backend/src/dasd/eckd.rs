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

use ccw_types::{CcwFlags, DeviceStatus};

use crate::device::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData,
    TransferError,
};

use super::identity::Identity;
use super::image::{CkdImage, ImageError, ImageErrorKind};
use super::track::{Record, Track};
use ccw_types::eckd::{CMD_RCD, COUNT_LEN, Count, HEADS, RDC_LEN, SENSE_LEN, TrackAddr};

/// A [`DataStream`] over one contiguous buffer (a CCW without chaining or IDAWs), for direct
/// use of the device without a channel (offline tools, unit tests).
///
/// ```
/// use mock_backend::DataStream;
/// use mock_backend::dasd::SliceData;
/// let mut buf = [0u8; 4];
/// let mut d = SliceData::new(&mut buf);
/// assert_eq!(d.write(&[1, 2, 3, 4, 5]).unwrap(), 4);
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
}

impl DataStream for SliceData<'_> {
    fn write(&mut self, data: &[u8]) -> Result<usize, TransferError> {
        let n = data.len().min(self.buf.len() - self.pos);
        self.buf[self.pos..self.pos + n].copy_from_slice(&data[..n]);
        self.pos += n;
        Ok(n)
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransferError> {
        let n = buf.len().min(self.buf.len() - self.pos);
        buf[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn chains_data(&self) -> bool {
        false
    }
    fn transferred(&self) -> usize {
        self.pos
    }
    fn peek(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, TransferError> {
        let at = (self.pos + offset).min(self.buf.len());
        let n = buf.len().min(self.buf.len() - at);
        buf[..n].copy_from_slice(&self.buf[at..at + n]);
        Ok(n)
    }
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
    /// The current track was changed and not yet written to the image.
    dirty: bool,
}

/// A failed command: the sense to present with unit check.
#[derive(Debug, Clone, Copy)]
struct Check {
    byte0: u8,
    byte1: u8,
    msg: u8,
    /// Set when the channel stopped the transfer: its check replaces our status and nothing
    /// was written.
    transfer: Option<TransferError>,
}

impl Check {
    const fn reject(msg: u8) -> Self {
        Check {
            byte0: sense::CMD_REJECT,
            byte1: 0,
            msg,
            transfer: None,
        }
    }
    const fn byte1(byte1: u8) -> Self {
        Check {
            byte0: 0,
            byte1,
            msg: 0,
            transfer: None,
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
                transfer: None,
            },
            ImageErrorKind::OutOfRange => Check::reject(sense::MSG_INVALID_PARAMETER),
            _ => Check {
                byte0: sense::EQUIPMENT_CHECK,
                byte1: 0,
                msg: 0,
                transfer: None,
            },
        }
    }
}

impl From<TransferError> for Check {
    fn from(e: TransferError) -> Self {
        Check {
            byte0: 0,
            byte1: 0,
            msg: 0,
            transfer: Some(e),
        }
    }
}

type CmdResult = Result<DeviceStatus, Check>;

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
/// assert_eq!(out, mock_backend::DeviceOutcome::done());
/// assert_eq!(&rdc[3..5], &[0x33, 0x90]); // device type 3390
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
        self.flush_quietly();
        self.chain = Chain::default();
    }

    /// Selective reset / clear: ends the channel program and drops pending sense.
    pub fn reset(&mut self) {
        self.flush_quietly();
        self.chain = Chain::default();
        self.sense = [0; SENSE_LEN];
    }

    /// Writes the current track if a command changed it. On failure the cached track is
    /// dropped, so that later commands see what the image holds.
    fn flush(&mut self) -> Result<(), Check> {
        if !self.chain.dirty {
            return Ok(());
        }
        self.chain.dirty = false;
        let Some(track) = self.chain.track.as_ref() else {
            return Ok(());
        };
        if let Err(e) = self.image.write_track(track) {
            self.chain.track = None;
            return Err(e.into());
        }
        Ok(())
    }

    /// [`Eckd::flush`] where no status can report a failure (a new chain, a reset): the
    /// channel program that made the change has already ended, so this only happens if the
    /// channel ended it without telling the device.
    fn flush_quietly(&mut self) {
        if let Err(c) = self.flush() {
            tracing::warn!(
                byte0 = c.byte0,
                "could not write a track left dirty by an ended program"
            );
        }
    }

    /// The sense bytes describing the last unit check (all zero if none is pending).
    pub fn sense_bytes(&self) -> [u8; SENSE_LEN] {
        self.sense
    }

    /// Executes one command, for use without a channel. Whatever it wrote is in the image
    /// (journalled and synced) when it returns. On unit check the sense is kept for
    /// [`Eckd::sense_bytes`] / Sense.
    pub fn execute(&mut self, code: u8, data: &mut dyn DataStream) -> DeviceOutcome {
        self.execute_in_chain(code, data, false)
    }

    /// Executes one command; `chained` says the program certainly continues with another
    /// command (the CCW chains commands, does not chain data, has no PCI). Only then may a
    /// changed track stay in memory until the program moves to another track or ends: status
    /// is presented to the program only at its end, so every write is in the image before
    /// the program can see it complete, at one journalled write per track instead of one per
    /// record.
    fn execute_in_chain(
        &mut self,
        code: u8,
        data: &mut dyn DataStream,
        chained: bool,
    ) -> DeviceOutcome {
        let mut res = self.dispatch(code, data);
        // If the count was not used up the channel will end the chain (incorrect length).
        let defer = chained && res.is_ok() && data.remaining() == 0;
        if !defer {
            if let Err(c) = self.flush() {
                if res.is_ok() {
                    res = Err(c);
                } else {
                    tracing::warn!(byte0 = c.byte0, "track write failed after another check");
                }
            }
        }
        match res {
            Ok(status) => {
                tracing::trace!(cmd = format_args!("{code:#04x}"), %status, "eckd command");
                DeviceOutcome::with_status(status)
            }
            Err(Check {
                transfer: Some(e), ..
            }) => {
                tracing::debug!(cmd = format_args!("{code:#04x}"), error = %e, "transfer stopped");
                DeviceOutcome::done()
            }
            Err(c) => {
                tracing::debug!(
                    cmd = format_args!("{code:#04x}"),
                    byte0 = c.byte0,
                    byte1 = c.byte1,
                    msg = c.msg,
                    "eckd unit check"
                );
                let addr = self.chain.track.as_ref().map(|t| t.addr);
                self.set_sense(&c, addr);
                self.chain.domain = None;
                if c.byte0 & sense::CMD_REJECT != 0 {
                    // Rejected before any data moved: unit check alone.
                    DeviceOutcome::unit_check()
                } else {
                    DeviceOutcome::unit_check_after_transfer()
                }
            }
        }
    }

    /// Records the sense of a unit check: bytes 0, 1 and 7 from `c`, bytes 8-11 the track
    /// it happened on (CCHH), if any.
    fn set_sense(&mut self, c: &Check, track: Option<TrackAddr>) {
        self.sense = [0; SENSE_LEN];
        self.sense[0] = c.byte0;
        self.sense[1] = c.byte1;
        self.sense[7] = c.msg;
        if let Some(t) = track {
            self.sense[8..12].copy_from_slice(&t.to_cchh());
        }
    }

    fn dispatch(&mut self, code: u8, data: &mut dyn DataStream) -> CmdResult {
        match code {
            0x03 => Ok(OK),
            0x04 => {
                let s = self.sense;
                self.sense = [0; SENSE_LEN];
                send(data, &s)
            }
            cmd::SENSE_ID => send(data, &self.identity.sense_id()),
            cmd::RDC => send(data, &self.identity.rdc()),
            CMD_RCD => send(data, &self.identity.rcd()),
            cmd::RESERVE | cmd::RELEASE | cmd::UNCOND_RESERVE => {
                // Single-host simulation: reservation always succeeds; the device returns its
                // 32 sense bytes like a real 3990 does.
                send(data, &self.sense)
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
        self.flush()?;
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
                transfer: None,
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
                transfer: None,
            })
        }
    }

    /// Records that the current track was changed; [`Eckd::flush`] writes it.
    fn commit(&mut self) -> Result<(), Check> {
        self.chain.dirty = true;
        Ok(())
    }

    // ---- control commands --------------------------------------------------------------

    fn set_file_mask(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if self.chain.extent.is_some() || self.chain.mask_set {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let [mask] = recv::<1>(data)?;
        self.chain.mask = mask;
        self.chain.mask_set = true;
        Ok(OK)
    }

    fn define_extent(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if self.chain.extent.is_some() || self.chain.mask_set || self.chain.track.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        // 16 bytes of parameters; Linux sends 32 (extended parameters: time stamp) when it
        // time-stamps writes. Ask for the extension only if the program supplies it, so that
        // a 16-byte Define Extent is not an incorrect length.
        let mut p = [0u8; 32];
        if data.read(&mut p[..16])? < 16 {
            return Err(Check::reject(sense::MSG_COUNT_TOO_SMALL));
        }
        if data.remaining() > 0 || data.chains_data() {
            data.read(&mut p[16..])?;
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
        Ok(OK)
    }

    fn locate(&mut self, data: &mut dyn DataStream, extended: bool) -> CmdResult {
        if self.chain.extent.is_none() || !self.domain_complete() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let want = if extended { 20 } else { 16 };
        let mut p = [0u8; 20];
        if data.read(&mut p[..want])? < want {
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
        Ok(OK)
    }

    fn seek(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if self.chain.domain.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let b = recv::<6>(data)?;
        if b[0] != 0 || b[1] != 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        self.move_to(TrackAddr::from_cchh([b[2], b[3], b[4], b[5]]))?;
        Ok(OK)
    }

    fn search_id(&mut self, data: &mut dyn DataStream) -> CmdResult {
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
        Ok(status)
    }

    // ---- reads -------------------------------------------------------------------------

    fn read_ha(&mut self, data: &mut dyn DataStream) -> CmdResult {
        let ha = self.track()?.home_address();
        self.chain.cursor = Some(Cursor::AfterHa);
        send(data, &ha)
    }

    fn read_r0(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.take_domain(&[op::READ_ANY])?;
        let t = self.track()?;
        let r0 = t
            .records
            .first()
            .ok_or(Check::byte1(sense::NO_RECORD_FOUND))?;
        let bytes = ckd_bytes(r0);
        self.chain.cursor = Some(Cursor::AfterRecord(0));
        send(data, &bytes)
    }

    fn read_count(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.take_domain(&[op::READ_DATA, op::READ_ANY])?;
        let i = match self.next_count() {
            Ok(i) => i,
            Err(_) if self.chain.domain.is_some() => {
                self.next_track()?;
                1
            }
            Err(e) => return Err(e),
        };
        // After a move to the next track, R1 may not exist (a track with only R0).
        let c = self
            .track()?
            .records
            .get(i)
            .ok_or(Check::byte1(sense::NO_RECORD_FOUND))?
            .count
            .to_bytes();
        self.chain.cursor = Some(Cursor::AfterCount(i));
        send(data, &c)
    }

    fn read(&mut self, data: &mut dyn DataStream, key: bool, mt: bool) -> CmdResult {
        self.take_domain(&[op::READ_DATA, op::READ_ANY])?;
        let i = self.data_record(mt)?;
        let r = &self.track()?.records[i];
        let bytes = if key {
            let mut b = r.key.clone();
            b.extend_from_slice(&r.data);
            b
        } else {
            r.data.clone()
        };
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        send(data, &bytes)
    }

    fn read_ckd(&mut self, data: &mut dyn DataStream, mt: bool) -> CmdResult {
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
        send(data, &bytes)
    }

    // ---- writes ------------------------------------------------------------------------

    fn write(&mut self, data: &mut dyn DataStream, key: bool, mt: bool) -> CmdResult {
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
        data.read(&mut buf)?;
        if key {
            let kl = r.key.len();
            r.key.copy_from_slice(&buf[..kl]);
            r.data.copy_from_slice(&buf[kl..]);
        } else {
            r.data.copy_from_slice(&buf);
        }
        self.commit()?;
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        Ok(OK)
    }

    /// Receives count, key and data of a record being formatted (short transfers are padded
    /// with zeros; the channel reports the incorrect length).
    fn receive_record(data: &mut dyn DataStream) -> Result<Record, Check> {
        let cb = recv::<COUNT_LEN>(data)?;
        let count = Count::from_bytes(cb);
        let mut kd = vec![0u8; count.key_len as usize + count.data_len as usize];
        data.read(&mut kd)?;
        let data_part = kd.split_off(count.key_len as usize);
        Ok(Record {
            count,
            key: kd,
            data: data_part,
        })
    }

    fn write_ckd(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.check_write(true, false)?;
        self.take_domain(&[op::FORMAT_WRITE])?;
        let after = match self.cursor() {
            Cursor::AfterCount(i) | Cursor::AfterRecord(i) => i,
            Cursor::Index | Cursor::AfterHa => {
                return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
            }
        };
        let rec = Self::receive_record(data)?;
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
        Ok(OK)
    }

    fn write_r0(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.check_write(true, true)?;
        self.take_domain(&[op::FORMAT_WRITE])?;
        if !matches!(self.cursor(), Cursor::Index | Cursor::AfterHa) {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let rec = Self::receive_record(data)?;
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
        Ok(OK)
    }
}

impl DeviceModel for Eckd {
    fn sense_id(&self) -> Option<SenseIdData> {
        let b = self.identity.sense_id();
        let id = SenseIdData::basic(
            u16::from_be_bytes([b[1], b[2]]),
            b[3],
            u16::from_be_bytes([b[4], b[5]]),
            b[6],
        );
        Some(id.with_ciw(0, b[9], u16::from_be_bytes([b[10], b[11]])))
    }

    fn execute(
        &mut self,
        cmd: &Command,
        data: &mut dyn DataStream,
        ctx: &mut ChainContext,
    ) -> DeviceOutcome {
        if ctx.is_first() {
            self.start_chain();
        }
        let chained =
            cmd.flags.contains(CcwFlags::CC) && !cmd.flags.intersects(CcwFlags::CD | CcwFlags::PCI);
        self.execute_in_chain(cmd.code, data, chained)
    }

    fn sense(&mut self) -> SenseData {
        let bytes = std::mem::take(&mut self.sense);
        SenseData {
            bytes,
            len: SENSE_LEN as u8,
        }
    }

    fn reset(&mut self) {
        Eckd::reset(self);
    }

    fn begin_chain(&mut self) {
        self.start_chain();
    }

    fn end_chain(&mut self) -> DeviceStatus {
        // Normally nothing is left: the last command of a program writes its track. This
        // covers a program the channel ended (or suspended, or halted) after a chained write,
        // e.g. with a program check on the next CCW, before its status becomes pending. A
        // write that does not reach the image ends in unit check with its sense.
        let addr = self.chain.track.as_ref().map(|t| t.addr);
        match self.flush() {
            Ok(()) => DeviceStatus::NONE,
            Err(c) => {
                tracing::warn!(
                    byte0 = c.byte0,
                    "write-back of a changed track failed at the end of the chain"
                );
                self.set_sense(&c, addr);
                DeviceStatus::UNIT_CHECK
            }
        }
    }

    fn name(&self) -> &'static str {
        "eckd-3390"
    }
}

fn ckd_bytes(r: &Record) -> Vec<u8> {
    let mut b = Vec::with_capacity(r.stored_len());
    b.extend_from_slice(&r.count.to_bytes());
    b.extend_from_slice(&r.key);
    b.extend_from_slice(&r.data);
    b
}

/// Offers `bytes` to storage (the channel takes what the count allows and reports incorrect
/// length itself) and ends the command normally.
fn send(data: &mut dyn DataStream, bytes: &[u8]) -> CmdResult {
    data.write(bytes)?;
    Ok(OK)
}

/// Receives exactly `N` parameter bytes or rejects the command.
fn recv<const N: usize>(data: &mut dyn DataStream) -> Result<[u8; N], Check> {
    let mut b = [0u8; N];
    if data.read(&mut b)? < N {
        return Err(Check::reject(sense::MSG_COUNT_TOO_SMALL));
    }
    Ok(b)
}

const _: () = assert!(RDC_LEN == 64);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dasd::image::tests::Scratch;
    use crate::dasd::{CreateOptions, Model3390};

    const DONE: DeviceStatus = OK;
    const SM: DeviceStatus = OK.union(DeviceStatus::STATUS_MODIFIER);

    fn device(dir: &Scratch, cyls: u32) -> Eckd {
        let opts = CreateOptions {
            cylinders: Some(cyls),
            volser: Some("TEST01".into()),
        };
        let img = CkdImage::create(&dir.file("d.3390"), Model3390::M1, &opts).unwrap();
        Eckd::new(img, 0x0A01)
    }

    /// Executes one command with `buf` as its data; returns the status.
    fn ex(dev: &mut Eckd, code: u8, buf: &mut [u8]) -> DeviceStatus {
        dev.execute(code, &mut SliceData::new(buf)).status
    }

    // The parameter blocks as the device reads them (the driver's builders are ccw-dasd's;
    // the device's tests encode their own so that they test the layout, not agree with it).
    fn de(mask: u8, beg: TrackAddr, end: TrackAddr) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[0] = mask;
        p[1] = 0xC0; // ECKD mode
        p[8..12].copy_from_slice(&beg.to_cchh());
        p[12..16].copy_from_slice(&end.to_cchh());
        p
    }

    fn lr(orient: u8, op: u8, count: u8, seek: TrackAddr, rec: u8, len: u16) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[0] = (orient << 6) | op;
        if len != 0 {
            p[1] = 0x80; // length valid
        }
        p[3] = count;
        p[4..8].copy_from_slice(&seek.to_cchh());
        p[8..12].copy_from_slice(&seek.to_cchh());
        p[12] = rec;
        p[14..16].copy_from_slice(&len.to_be_bytes());
        p
    }

    fn count(t: TrackAddr, r: u8, kl: u8, dl: u16) -> Vec<u8> {
        let c = t.to_cchh();
        let mut b = c.to_vec();
        b.extend_from_slice(&[r, kl]);
        b.extend_from_slice(&dl.to_be_bytes());
        b
    }

    /// A new chain with Define Extent (`mask`, `beg..=end`), then Locate Record `lr`.
    fn domain(
        dev: &mut Eckd,
        mask: u8,
        beg: TrackAddr,
        end: TrackAddr,
        mut lr: Vec<u8>,
    ) -> DeviceStatus {
        dev.start_chain();
        assert_eq!(ex(dev, cmd::DEFINE_EXTENT, &mut de(mask, beg, end)), DONE);
        ex(dev, cmd::LOCATE, &mut lr)
    }

    /// A new chain with a read-only extent of track `t` and Locate Record `lr`, both accepted.
    fn read_domain(dev: &mut Eckd, t: TrackAddr, lr: Vec<u8>) {
        assert_eq!(domain(dev, 0x40, t, t, lr), DONE);
    }

    /// Formats `t` with R0 and `n` records of `dl` bytes filled with `r` (Linux's format
    /// program: DE allow-all, LR orient-HA format-write, Write R0, Write CKD...).
    fn format_track(dev: &mut Eckd, t: TrackAddr, n: u8, dl: u16) {
        dev.start_chain();
        assert_eq!(ex(dev, cmd::DEFINE_EXTENT, &mut de(0xC0, t, t)), DONE);
        assert_eq!(
            ex(
                dev,
                cmd::LOCATE,
                &mut lr(1, op::FORMAT_WRITE, n + 1, t, 0, 8)
            ),
            DONE
        );
        let mut r0 = count(t, 0, 0, 8);
        r0.extend([0; 8]);
        assert_eq!(ex(dev, cmd::WRITE_R0, &mut r0), DONE);
        for r in 1..=n {
            let mut rec = count(t, r, 0, dl);
            rec.extend(std::iter::repeat_n(r, dl as usize));
            assert_eq!(ex(dev, cmd::WRITE_CKD, &mut rec), DONE, "record {r}");
        }
    }

    #[test]
    fn format_write_and_read_back_across_tracks() {
        let dir = Scratch::new("fmt");
        let mut dev = device(&dir, 1);
        let (t1, t2) = (TrackAddr::new(0, 5), TrackAddr::new(0, 6));
        format_track(&mut dev, t1, 12, 4096);
        format_track(&mut dev, t2, 12, 4096);
        // Update R12 of t1 and R1 of t2 in one domain (write, multitrack).
        assert_eq!(
            domain(
                &mut dev,
                0x80,
                t1,
                t2,
                lr(0, op::WRITE_DATA, 2, t1, 12, 4096)
            ),
            DONE
        );
        assert_eq!(ex(&mut dev, 0x85, &mut vec![0xA1; 4096]), DONE);
        assert_eq!(ex(&mut dev, 0x85, &mut vec![0xA2; 4096]), DONE);
        // A third write exceeds the domain.
        let st = ex(&mut dev, 0x85, &mut vec![0; 4096]);
        assert!(st.contains(DeviceStatus::UNIT_CHECK));
        assert_eq!(dev.sense_bytes()[0], sense::CMD_REJECT);
        // Read R11..t2 R2 back (Linux: DE read-only, LR read data, Read MT...).
        assert_eq!(
            domain(
                &mut dev,
                0x40,
                t1,
                t2,
                lr(0, op::READ_DATA, 4, t1, 11, 4096)
            ),
            DONE
        );
        let mut got = Vec::new();
        for _ in 0..4 {
            let mut b = vec![0u8; 4096];
            assert_eq!(ex(&mut dev, 0x86, &mut b), DONE);
            got.push(b[0]);
        }
        assert_eq!(got, [11, 0xA1, 0xA2, 2]);
        // Durable: a fresh device on the reopened image sees the update.
        let img = CkdImage::open(&dir.file("d.3390"), true).unwrap();
        let t = img.read_track(t2).unwrap();
        assert_eq!(t.records[1].data, vec![0xA2; 4096]);
        assert_eq!(t.records.len(), 13);
    }

    #[test]
    fn read_count_after_r0_search_reads_r1_onwards() {
        // dasd_eckd's volume analysis: LR read-data search R0, then Read Count x4.
        let dir = Scratch::new("rc");
        let mut dev = device(&dir, 1);
        let t0 = TrackAddr::new(0, 0);
        read_domain(&mut dev, t0, lr(0, op::READ_DATA, 3, t0, 0, 0));
        let mut seen = Vec::new();
        for _ in 0..3 {
            let mut c = [0u8; 8];
            assert_eq!(ex(&mut dev, cmd::READ_COUNT, &mut c), DONE);
            seen.push((c[4], c[5], u16::from_be_bytes([c[6], c[7]])));
        }
        // IPL1 (key 4, 24), IPL2 (key 4, 144), VOL1 (key 4, 80).
        assert_eq!(seen, [(1, 4, 24), (2, 4, 144), (3, 4, 80)]);
    }

    #[test]
    fn read_count_into_a_track_with_only_r0_is_no_record_found() {
        // A read domain that runs off a track onto one holding only R0: Read Count has no
        // record to pass there (it used to index R1 and panic).
        let dir = Scratch::new("rc-empty");
        let mut dev = device(&dir, 1);
        let (a, b) = (TrackAddr::new(0, 1), TrackAddr::new(0, 2));
        assert_eq!(dev.image.read_track(b).unwrap().records.len(), 1);
        assert_eq!(
            domain(&mut dev, 0x40, a, b, lr(3, op::READ_ANY, 8, a, 0, 0)),
            DONE
        );
        let mut st = DONE;
        for _ in 0..4 {
            st = ex(&mut dev, cmd::READ_COUNT, &mut [0u8; 8]);
            if st != DONE {
                break;
            }
        }
        assert!(st.contains(DeviceStatus::UNIT_CHECK), "{st:?}");
        assert_eq!(dev.sense_bytes()[1], sense::NO_RECORD_FOUND);
    }

    #[test]
    fn read_key_and_data_of_vol1() {
        let dir = Scratch::new("vol1");
        let mut dev = device(&dir, 1);
        let t0 = TrackAddr::new(0, 0);
        read_domain(&mut dev, t0, lr(0, op::READ_DATA, 1, t0, 3, 84));
        let mut kd = vec![0u8; 84];
        assert_eq!(ex(&mut dev, 0x8E, &mut kd), DONE);
        assert_eq!(crate::dasd::parse_vol1(&kd[4..]).as_deref(), Some("TEST01"));
        assert_eq!(&kd[..4], &[0xE5, 0xD6, 0xD3, 0xF1]);
    }

    #[test]
    fn home_address_and_record_zero() {
        let dir = Scratch::new("ha");
        let mut dev = device(&dir, 1);
        let t = TrackAddr::new(0, 9);
        read_domain(&mut dev, t, lr(3, op::READ_ANY, 1, t, 0, 0));
        let mut ha = [0u8; 5];
        assert_eq!(ex(&mut dev, cmd::READ_HA_DIAG, &mut ha), DONE);
        assert_eq!(ha, [0, 0, 0, 0, 9]);
        let mut r0 = [0u8; 16];
        assert_eq!(ex(&mut dev, cmd::READ_R0, &mut r0), DONE);
        assert_eq!(&r0[..8], &[0, 0, 0, 9, 0, 0, 0, 8]);
    }

    #[test]
    fn search_id_equal_loop_finds_record() {
        // Seek, Search ID Equal (TIC back while not found), Read Data: the channel re-drives
        // the search until status modifier; here the loop is the test's.
        let dir = Scratch::new("search");
        let mut dev = device(&dir, 1);
        let t = TrackAddr::new(0, 2);
        format_track(&mut dev, t, 5, 100);
        dev.start_chain();
        let mut seek = vec![0, 0, 0, 0, 0, 2];
        assert_eq!(ex(&mut dev, cmd::SEEK, &mut seek), DONE);
        let mut id = [0, 0, 0, 2, 4];
        let mut tries = 0;
        loop {
            tries += 1;
            let st = ex(&mut dev, cmd::SEARCH_ID_EQ, &mut id);
            if st == SM {
                break;
            }
            assert_eq!(st, DONE);
            assert!(tries < 10);
        }
        assert_eq!(tries, 5, "R0..R4 passed");
        let mut d = vec![0u8; 100];
        assert_eq!(ex(&mut dev, cmd::READ_DATA, &mut d), DONE);
        assert_eq!(d, vec![4; 100]);
        // A record that does not exist: two index passes, then no record found.
        let mut missing = [0, 0, 0, 2, 9];
        let mut st = DONE;
        for _ in 0..20 {
            st = ex(&mut dev, cmd::SEARCH_ID_EQ, &mut missing);
            if st != DONE {
                break;
            }
        }
        assert!(st.contains(DeviceStatus::UNIT_CHECK));
        assert_eq!(dev.sense_bytes()[1], sense::NO_RECORD_FOUND);
    }

    #[test]
    fn sense_for_extent_violation_missing_record_and_write_inhibit() {
        let dir = Scratch::new("sense");
        let mut dev = device(&dir, 2);
        let (a, b) = (TrackAddr::new(0, 1), TrackAddr::new(0, 3));
        // Outside the extent: file protected.
        let st = domain(
            &mut dev,
            0x40,
            a,
            b,
            lr(0, op::READ_DATA, 1, TrackAddr::new(1, 0), 1, 0),
        );
        assert!(st.contains(DeviceStatus::UNIT_CHECK));
        let s = DeviceModel::sense(&mut dev);
        assert_eq!((s.bytes[0], s.bytes[1]), (0, sense::FILE_PROTECTED));
        assert_eq!(
            DeviceModel::sense(&mut dev).bytes,
            [0; 32],
            "sense is consumed"
        );
        // No such record: no record found.
        let st = domain(&mut dev, 0x40, a, b, lr(0, op::READ_DATA, 1, a, 7, 0));
        assert!(st.contains(DeviceStatus::UNIT_CHECK));
        assert_eq!(dev.sense_bytes()[1], sense::NO_RECORD_FOUND);
        assert_eq!(&dev.sense_bytes()[8..12], &a.to_cchh());
        // File mask "inhibit all writes": a write domain is rejected.
        let st = domain(&mut dev, 0x40, a, b, lr(0, op::WRITE_DATA, 1, a, 0, 8));
        assert_eq!(st, DeviceStatus::UNIT_CHECK);
        assert_eq!(dev.sense_bytes()[0], sense::CMD_REJECT);
        assert_eq!(dev.sense_bytes()[1], sense::FILE_PROTECTED);
        // A read-only volume: write inhibited.
        drop(dev);
        let img = CkdImage::open(&dir.file("d.3390"), true).unwrap();
        let mut dev = Eckd::new(img, 1);
        let st = domain(&mut dev, 0x80, a, b, lr(0, op::WRITE_DATA, 1, a, 0, 8));
        assert_eq!(st, DeviceStatus::UNIT_CHECK);
        assert_eq!(dev.sense_bytes()[0], sense::CMD_REJECT);
        assert_eq!(dev.sense_bytes()[1], sense::WRITE_INHIBITED);
    }

    #[test]
    fn sequence_rules() {
        let dir = Scratch::new("seq");
        let mut dev = device(&dir, 1);
        let t = TrackAddr::new(0, 1);
        // Locate without Define Extent.
        dev.start_chain();
        let st = ex(&mut dev, cmd::LOCATE, &mut lr(0, op::READ_DATA, 1, t, 0, 0));
        assert_eq!(st, DeviceStatus::UNIT_CHECK);
        assert_eq!(dev.sense_bytes()[7], sense::MSG_INVALID_SEQUENCE);
        // Two Define Extents.
        dev.start_chain();
        assert_eq!(ex(&mut dev, cmd::DEFINE_EXTENT, &mut de(0x40, t, t)), DONE);
        assert_eq!(
            ex(&mut dev, cmd::DEFINE_EXTENT, &mut de(0x40, t, t)),
            DeviceStatus::UNIT_CHECK
        );
        // Inverted extent, short parameters, unknown command.
        dev.start_chain();
        let st = ex(
            &mut dev,
            cmd::DEFINE_EXTENT,
            &mut de(0x40, t, TrackAddr::new(0, 0)),
        );
        assert_eq!(st, DeviceStatus::UNIT_CHECK);
        dev.start_chain();
        assert_eq!(
            ex(&mut dev, cmd::DEFINE_EXTENT, &mut [0u8; 8]),
            DeviceStatus::UNIT_CHECK
        );
        assert_eq!(dev.sense_bytes()[7], sense::MSG_COUNT_TOO_SMALL);
        assert_eq!(ex(&mut dev, 0xC3, &mut []), DeviceStatus::UNIT_CHECK);
        assert_eq!(dev.sense_bytes()[7], sense::MSG_INVALID_COMMAND);
        // Reserve/Release: accepted, 32 bytes.
        let mut b = [0xEEu8; 32];
        assert_eq!(ex(&mut dev, cmd::RESERVE, &mut b), DONE);
        assert_eq!(ex(&mut dev, cmd::RELEASE, &mut b), DONE);
        // A track that is full refuses another record.
        format_track(&mut dev, t, 1, 56000);
        assert_eq!(
            domain(&mut dev, 0x00, t, t, lr(0, op::FORMAT_WRITE, 1, t, 1, 1000)),
            DONE
        );
        let mut rec = count(t, 2, 0, 1000);
        rec.extend([0; 1000]);
        assert_eq!(
            ex(&mut dev, cmd::WRITE_CKD, &mut rec),
            DeviceStatus::UNIT_CHECK
        );
        assert_eq!(dev.sense_bytes()[7], sense::MSG_TRACK_FULL);
    }

    /// Runs `code` as the channel would, with `flags` on its CCW.
    fn ex_chained(
        dev: &mut Eckd,
        code: u8,
        flags: CcwFlags,
        buf: &mut [u8],
        first: bool,
    ) -> DeviceStatus {
        let cmd = Command {
            code,
            class: ccw_types::CommandClass::of(code, ccw_types::CcwFormat::Format1),
            flags,
            count: buf.len() as u16,
            format: ccw_types::CcwFormat::Format1,
            ccw_addr: 0,
        };
        let mut ctx = ChainContext::new();
        ctx.index = usize::from(!first);
        DeviceModel::execute(dev, &cmd, &mut SliceData::new(buf), &mut ctx).status
    }

    #[test]
    fn chained_writes_reach_the_image_before_the_program_ends() {
        let dir = Scratch::new("defer");
        let mut dev = device(&dir, 1);
        let path = dir.file("d.3390");
        let t = TrackAddr::new(0, 7);
        let on_disk = |n: usize| {
            let img = CkdImage::open(&path, true).unwrap();
            assert_eq!(img.read_track(t).unwrap().records.len(), n);
        };
        let cc = CcwFlags::CC;
        DeviceModel::begin_chain(&mut dev);
        assert_eq!(
            ex_chained(&mut dev, cmd::DEFINE_EXTENT, cc, &mut de(0xC0, t, t), true),
            DONE
        );
        let mut p = lr(0, op::FORMAT_WRITE, 3, t, 0, 100);
        assert_eq!(ex_chained(&mut dev, cmd::LOCATE, cc, &mut p, false), DONE);
        for r in 1..=2u8 {
            let mut rec = count(t, r, 0, 100);
            rec.extend([r; 100]);
            assert_eq!(
                ex_chained(&mut dev, cmd::WRITE_CKD, cc, &mut rec, false),
                DONE
            );
        }
        // Chained: one journalled write per track, not yet done.
        on_disk(1);
        // The last command (no command chaining) writes the track before its status.
        let mut rec = count(t, 3, 0, 100);
        rec.extend([3; 100]);
        assert_eq!(
            ex_chained(&mut dev, cmd::WRITE_CKD, CcwFlags::NONE, &mut rec, false),
            DONE
        );
        on_disk(4);
        // A chained write whose count is not used up (incorrect length ends the chain) is
        // written at once.
        DeviceModel::begin_chain(&mut dev);
        assert_eq!(
            ex_chained(&mut dev, cmd::DEFINE_EXTENT, cc, &mut de(0xC0, t, t), true),
            DONE
        );
        let mut p = lr(0, op::FORMAT_WRITE, 1, t, 3, 100);
        assert_eq!(ex_chained(&mut dev, cmd::LOCATE, cc, &mut p, false), DONE);
        let mut rec = count(t, 4, 0, 100);
        rec.extend([4; 120]);
        assert_eq!(
            ex_chained(&mut dev, cmd::WRITE_CKD, cc, &mut rec, false),
            DONE
        );
        on_disk(5);
    }

    #[test]
    fn identification() {
        let dir = Scratch::new("id");
        let mut dev = device(&dir, 3);
        let id = DeviceModel::sense_id(&dev).unwrap();
        assert_eq!(
            id.as_bytes(),
            &[
                0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x02, 0x00, 0x40, 0xFA, 0x01, 0x00
            ]
        );
        let mut rcd = vec![0u8; 256];
        assert_eq!(ex(&mut dev, CMD_RCD, &mut rcd), DONE);
        assert_eq!(rcd[235], 0x01);
        let mut rdc = [0u8; 64];
        assert_eq!(ex(&mut dev, cmd::RDC, &mut rdc), DONE);
        assert_eq!(u16::from_be_bytes([rdc[12], rdc[13]]), 3);
        assert_eq!(DeviceModel::name(&dev), "eckd-3390");
    }
}
