// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The ECKD device: executes one channel command at a time against a [`CkdImage`].
//!
//! The channel (the simulated channel subsystem) resolves chaining, IDAWs, data chaining and
//! skipping and hands the device a [`DataStream`] stream per command; the device answers with
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
//!
//! `impl Eckd` is split by concern: this file holds the state, command dispatch, sense, the
//! write-back (a failed one is an equipment check) and the channel contract; `orient` the
//! orientation (tracks, counts, Seek, Search ID); `extent` Define Extent, Locate Record and
//! the checks against them; `records` the reads and writes of records.

mod extent;
mod orient;
mod records;
mod subsystem;

use subsystem::PathGroup;
pub use subsystem::pg;

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
    /// Commands of the chain executed so far.
    commands: usize,
    /// Data a Perform Subsystem Function prepared for Read Subsystem Data.
    subsystem_data: Option<Vec<u8>>,
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
    /// The subchannel's path group (Set / Sense Path Group ID); survives resets.
    pgroup: PathGroup,
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
            pgroup: PathGroup::default(),
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
        self.chain.commands += 1;
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
            subsystem::code::READ_IPL => self.read_ipl(data),
            subsystem::code::SNID => self.sense_pgid(data),
            subsystem::code::SPID => self.set_pgid(data),
            subsystem::code::PSF => self.psf(data),
            subsystem::code::RSSD => self.rssd(data),
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

    // ---- domain bookkeeping ------------------------------------------------------------

    // ---- control commands --------------------------------------------------------------

    // ---- reads -------------------------------------------------------------------------

    // ---- writes ------------------------------------------------------------------------
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
mod tests;
