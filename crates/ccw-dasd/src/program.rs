// SPDX-License-Identifier: Apache-2.0 OR MIT

//! ECKD channel programs as Linux's `dasd_eckd` builds them, as data: a list of commands with
//! their parameter or payload bytes. A program can be laid out as real CCWs for a channel
//! subsystem (the simulated one, or a real one through vfio-ccw) with [`crate::lay_out`] and
//! run by [`crate::DasdSession`].
//!
//! ```
//! use ccw_dasd::{EckdProgram, Payload, code};
//! use ccw_types::eckd::TrackAddr;
//! let p = EckdProgram::read_data(TrackAddr::new(0, 1), 2, 1, 4096);
//! let cmds: Vec<u8> = p.ccws.iter().map(|c| c.cmd).collect();
//! assert_eq!(cmds, [code::DEFINE_EXTENT, code::LOCATE_RECORD, code::READ_MT]);
//! assert_eq!(p.ccws[2].payload, Payload::In(4096));
//! ```

use ccw_types::{CcwFlags, DeviceStatus};

use ccw_types::eckd::{Count, HEADS, TrackAddr};

/// Command codes used by the programs.
pub mod code {
    /// Define Extent.
    pub const DEFINE_EXTENT: u8 = 0x63;
    /// Locate Record.
    pub const LOCATE_RECORD: u8 = 0x47;
    /// Read Data (multitrack).
    pub const READ_MT: u8 = 0x86;
    /// Read Key and Data (multitrack).
    pub const READ_KD_MT: u8 = 0x8E;
    /// Read Count.
    pub const READ_COUNT: u8 = 0x12;
    /// Write Data (multitrack).
    pub const WRITE_MT: u8 = 0x85;
    /// Write Record Zero.
    pub const WRITE_R0: u8 = 0x15;
    /// Write Count, Key and Data.
    pub const WRITE_CKD: u8 = 0x1D;
    /// Read Device Characteristics.
    pub const RDC: u8 = 0x64;
    /// Read Configuration Data.
    pub const RCD: u8 = 0xFA;
    /// Seek.
    pub const SEEK: u8 = 0x07;
    /// Search ID Equal.
    pub const SEARCH_ID_EQ: u8 = 0x31;
    /// Transfer in channel.
    pub const TIC: u8 = 0x08;
    /// Read Data.
    pub const READ: u8 = 0x06;
}

/// Define Extent file-mask values (write control, bits 0-1).
pub mod mask {
    /// Allow all writes except home address and record zero.
    pub const INHIBIT_HA_R0: u8 = 0x00;
    /// Inhibit all writes (reads only).
    pub const READ_ONLY: u8 = 0x40;
    /// Allow update writes only.
    pub const UPDATE: u8 = 0x80;
    /// Allow all writes.
    pub const ALL: u8 = 0xC0;
}

/// The data side of one command of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Bytes sent to the device (parameters or data to write).
    Out(Vec<u8>),
    /// A buffer of this many bytes the device reads into.
    In(usize),
    /// Transfer in channel to the command at this index.
    Tic(usize),
}

/// One command of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramCcw {
    /// Command code.
    pub cmd: u8,
    /// Flags other than command chaining (chaining is set between commands by the layout).
    pub flags: CcwFlags,
    /// Its data.
    pub payload: Payload,
}

/// A channel program that ended with unit check (or another unexpected status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command {index} ({cmd:#04x}) ended with {status}; sense {sense:02x?}")]
pub struct ProgramError {
    /// Index of the failing command.
    pub index: usize,
    /// Its code.
    pub cmd: u8,
    /// The device status.
    pub status: DeviceStatus,
    /// The sense bytes the device presented.
    pub sense: Vec<u8>,
}

/// A command-chained ECKD channel program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EckdProgram {
    /// The commands in order; each chains to the next.
    pub ccws: Vec<ProgramCcw>,
}

/// The 16 parameter bytes of Define Extent (ECKD extent architecture, byte 1 `0xC0`): file
/// mask `mask` (see [`mask`]) and the extent from track `beg` to track `end`.
///
/// ```
/// use ccw_dasd::{define_extent, mask};
/// use ccw_types::eckd::TrackAddr;
/// let p = define_extent(mask::READ_ONLY, TrackAddr::new(1, 0), TrackAddr::new(1, 14));
/// assert_eq!(p[..2], [0x40, 0xC0]);
/// assert_eq!(p[8..], [0, 1, 0, 0, 0, 1, 0, 14]);
/// ```
pub fn define_extent(mask: u8, beg: TrackAddr, end: TrackAddr) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = mask;
    p[1] = 0xC0; // ECKD mode
    p[8..12].copy_from_slice(&beg.to_cchh());
    p[12..16].copy_from_slice(&end.to_cchh());
    p
}

/// The 16 parameter bytes of Locate Record: orientation `orient` (0: count), operation `op`
/// (e.g. `0x06` Read Data), `count` records, track `seek` (also the search argument), record
/// `rec`, and the transfer length `len` (marked valid when not 0).
///
/// ```
/// use ccw_dasd::locate;
/// use ccw_types::eckd::TrackAddr;
/// let p = locate(0, 0x06, 1, TrackAddr::new(2, 3), 9, 4096);
/// assert_eq!(p[..4], [0x06, 0x80, 0, 1]);
/// assert_eq!(p[4..13], [0, 2, 0, 3, 0, 2, 0, 3, 9]);
/// assert_eq!(p[14..], [0x10, 0x00]);
/// ```
pub fn locate(orient: u8, op: u8, count: u8, seek: TrackAddr, rec: u8, len: u16) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = (orient << 6) | op;
    if len != 0 {
        p[1] = 0x80; // last bytes used / length valid
    }
    p[3] = count;
    p[4..8].copy_from_slice(&seek.to_cchh());
    p[8..12].copy_from_slice(&seek.to_cchh());
    p[12] = rec;
    p[14..16].copy_from_slice(&len.to_be_bytes());
    p
}

pub(crate) fn count_field(t: TrackAddr, record: u8, key_len: u8, data_len: u16) -> [u8; 8] {
    let c = t.to_cchh();
    Count {
        cyl: u16::from_be_bytes([c[0], c[1]]),
        head: u16::from_be_bytes([c[2], c[3]]),
        record,
        key_len,
        data_len,
    }
    .to_bytes()
}

/// The last track of `t`'s cylinder: the extent multitrack programs define.
fn cylinder_end(t: TrackAddr) -> TrackAddr {
    TrackAddr::new(t.cyl, HEADS - 1)
}

impl EckdProgram {
    fn push(&mut self, cmd: u8, payload: Payload) {
        self.ccws.push(ProgramCcw {
            cmd,
            flags: CcwFlags::NONE,
            payload,
        });
    }

    /// Define Extent over `beg..=end` with file mask `mask`, then Locate Record `lr`: how
    /// every `dasd_eckd` data program starts.
    fn domain(mask: u8, beg: TrackAddr, end: TrackAddr, lr: Vec<u8>) -> Self {
        let mut p = Self::default();
        p.push(
            code::DEFINE_EXTENT,
            Payload::Out(define_extent(mask, beg, end)),
        );
        p.push(code::LOCATE_RECORD, Payload::Out(lr));
        p
    }

    /// Read Device Characteristics (64 bytes).
    pub fn rdc() -> Self {
        let mut p = Self::default();
        p.push(code::RDC, Payload::In(64));
        p
    }

    /// Read Configuration Data (256 bytes).
    pub fn rcd() -> Self {
        let mut p = Self::default();
        p.push(code::RCD, Payload::In(256));
        p
    }

    /// Reads the data areas of `n` records of `data_len` bytes starting at record `first` of
    /// track `t`, continuing onto following tracks of the cylinder (Define Extent read-only,
    /// Locate Record read data, `n` x Read Data multitrack).
    pub fn read_data(t: TrackAddr, first: u8, n: u8, data_len: u16) -> Self {
        let end = cylinder_end(t);
        let mut p = Self::domain(
            mask::READ_ONLY,
            t,
            end,
            locate(0, 0x06, n, t, first, data_len),
        );
        for _ in 0..n {
            p.push(code::READ_MT, Payload::In(usize::from(data_len)));
        }
        p
    }

    /// Reads key and data of one record (`key_len + data_len` bytes).
    pub fn read_key_data(t: TrackAddr, record: u8, key_len: u8, data_len: u16) -> Self {
        let len = data_len + u16::from(key_len);
        let mut p = Self::domain(mask::READ_ONLY, t, t, locate(0, 0x06, 1, t, record, len));
        p.push(code::READ_KD_MT, Payload::In(usize::from(len)));
        p
    }

    /// Reads the count fields of all records after R0 on track `t` (up to `max`), the way
    /// `dasd_eckd` analyses a volume: Locate Record read data searching R0, then Read Count.
    pub fn read_counts(t: TrackAddr, max: u8) -> Self {
        let mut p = Self::domain(mask::READ_ONLY, t, t, locate(0, 0x06, max, t, 0, 0));
        for _ in 0..max {
            p.push(code::READ_COUNT, Payload::In(8));
        }
        p
    }

    /// Rewrites the data areas of consecutive records starting at record `first` of `t`
    /// (update write: the records keep their lengths), continuing onto following tracks of the
    /// cylinder.
    pub fn write_data(t: TrackAddr, first: u8, data: &[Vec<u8>]) -> Self {
        let len = data.first().map_or(0, |d| d.len() as u16);
        let lr = locate(0, 0x01, data.len() as u8, t, first, len);
        let mut p = Self::domain(mask::UPDATE, t, cylinder_end(t), lr);
        for d in data {
            p.push(code::WRITE_MT, Payload::Out(d.clone()));
        }
        p
    }

    /// Formats track `t`: a standard R0 and one keyless record per element of `records`
    /// (R1, R2, ...), erasing whatever followed (Define Extent allow-all, Locate Record
    /// orient-home-address format write, Write R0, Write CKD...).
    pub fn format_track(t: TrackAddr, records: &[Vec<u8>]) -> Self {
        let keyed: Vec<(Vec<u8>, Vec<u8>)> =
            records.iter().map(|d| (Vec::new(), d.clone())).collect();
        Self::format_track_keyed(t, &keyed)
    }

    /// Like [`EckdProgram::format_track`], with a key per record.
    pub fn format_track_keyed(t: TrackAddr, records: &[(Vec<u8>, Vec<u8>)]) -> Self {
        let mut p = Self::default();
        p.push(
            code::DEFINE_EXTENT,
            Payload::Out(define_extent(mask::ALL, t, t)),
        );
        p.push_format(t, records);
        p
    }

    /// Locate Record (orient home address, format write) on `t`, Write R0, then one Write
    /// CKD per record (R1, R2, ...).
    fn push_format(&mut self, t: TrackAddr, records: &[(Vec<u8>, Vec<u8>)]) {
        let n = u8::try_from(records.len() + 1).unwrap_or(u8::MAX);
        let len = records.first().map_or(8, |(_, d)| d.len() as u16);
        self.push(
            code::LOCATE_RECORD,
            Payload::Out(locate(1, 0x03, n, t, 0, len)),
        );
        let mut r0 = count_field(t, 0, 0, 8).to_vec();
        r0.extend([0u8; 8]);
        self.push(code::WRITE_R0, Payload::Out(r0));
        for (i, (key, data)) in records.iter().enumerate() {
            let mut b = count_field(t, (i + 1) as u8, key.len() as u8, data.len() as u16).to_vec();
            b.extend_from_slice(key);
            b.extend_from_slice(data);
            self.push(code::WRITE_CKD, Payload::Out(b));
        }
    }

    /// Formats `tracks` consecutive tracks from `first` (within one cylinder) with a standard
    /// R0 and `per_track` keyless records of `data_len` zero bytes each: one Define Extent
    /// over the range, then per track Locate Record (orient home address, format write),
    /// Write R0 and Write CKD... (how `dasdfmt` formats several tracks per request).
    pub fn format_tracks(first: TrackAddr, tracks: u16, per_track: u8, data_len: u16) -> Self {
        let last = TrackAddr::new(first.cyl, (first.head + tracks.max(1) - 1).min(HEADS - 1));
        let mut p = Self::default();
        p.push(
            code::DEFINE_EXTENT,
            Payload::Out(define_extent(mask::ALL, first, last)),
        );
        let records = vec![(Vec::new(), vec![0u8; usize::from(data_len)]); usize::from(per_track)];
        for head in first.head..=last.head {
            p.push_format(TrackAddr::new(first.cyl, head), &records);
        }
        p
    }

    /// Reads the count field of record `r` (>= 1) of `t`: Locate Record searching record
    /// `r - 1`, then Read Count (which reads the next count field).
    pub fn read_count_of(t: TrackAddr, r: u8) -> Self {
        let mut p = Self::domain(
            mask::READ_ONLY,
            t,
            t,
            locate(0, 0x06, 1, t, r.saturating_sub(1), 0),
        );
        p.push(code::READ_COUNT, Payload::In(8));
        p
    }

    /// Reads record zero of `t` (count, key and data; up to `max` bytes, SLI set): Locate
    /// Record oriented to the index with read-any, then Read Record Zero.
    pub fn read_r0(t: TrackAddr, max: u16) -> Self {
        let mut p = Self::domain(mask::READ_ONLY, t, t, locate(3, 0x16, 1, t, 0, 0));
        p.ccws.push(ProgramCcw {
            cmd: 0x16,
            flags: CcwFlags::SLI,
            payload: Payload::In(usize::from(max)),
        });
        p
    }

    /// The classic pre-ECKD way to read record `r` of `t`: Seek, Search ID Equal with a TIC
    /// back to it until the search succeeds (status modifier skips the TIC), Read Data.
    pub fn search_read(t: TrackAddr, r: u8, data_len: u16) -> Self {
        let mut p = Self::default();
        let c = t.to_cchh();
        p.push(code::SEEK, Payload::Out(vec![0, 0, c[0], c[1], c[2], c[3]]));
        p.push(
            code::SEARCH_ID_EQ,
            Payload::Out(vec![c[0], c[1], c[2], c[3], r]),
        );
        p.push(code::TIC, Payload::Tic(1));
        p.push(code::READ, Payload::In(usize::from(data_len)));
        p
    }
}
