// SPDX-License-Identifier: Apache-2.0 OR MIT

//! What each `dasd` subcommand prints: text for a person, JSON with `--json`.

use std::fmt::Write as _;

use ccw_types::eckd::ebcdic_to_ascii;
use serde::Serialize;

use crate::commands::Report;

/// `dasd init` output.
#[derive(Debug, Serialize)]
pub struct InitReport {
    /// The image file.
    pub image: String,
    /// The model.
    pub model: String,
    /// Cylinders created.
    pub cylinders: u32,
    /// The volume serial read back from VOL1.
    pub volser: String,
}

impl Report for InitReport {
    fn text(&self) -> String {
        format!(
            "{}: {} with {} cylinders, volume {} (label written through channel programs)\n",
            self.image, self.model, self.cylinders, self.volser
        )
    }
}

/// `dasd format` output.
#[derive(Debug, Serialize)]
pub struct FormatReport {
    /// Tracks formatted.
    pub tracks: u64,
    /// Records per track.
    pub records_per_track: u16,
    /// Record size.
    pub blksize: u16,
    /// Channel programs run.
    pub programs: u64,
}

impl Report for FormatReport {
    fn text(&self) -> String {
        format!(
            "formatted {} tracks with {} x {}-byte records each ({} channel programs)\n",
            self.tracks, self.records_per_track, self.blksize, self.programs
        )
    }
}

/// `dasd read` output.
#[derive(Debug, Serialize)]
pub struct ReadReport {
    /// Cylinder.
    pub cyl: u32,
    /// Head.
    pub head: u16,
    /// Record.
    pub record: u8,
    /// Key length.
    pub key_len: u8,
    /// Data length.
    pub data_len: u16,
    /// The key in hex.
    pub key: String,
    /// The data in hex (empty when written to a file).
    pub data: String,
    /// Where the data went, if `--out`.
    pub out: Option<String>,
    #[serde(skip)]
    pub(super) raw: Vec<u8>,
    #[serde(skip)]
    pub(super) raw_key: Vec<u8>,
}

/// Hex dump with an EBCDIC text column (DASD contents are mostly EBCDIC).
fn dump(out: &mut String, bytes: &[u8]) {
    crate::commands::hexdump_with(out, 0, bytes, "  ", ebcdic_to_ascii);
}

impl Report for ReadReport {
    fn text(&self) -> String {
        let mut s = format!(
            "cyl {} head {} record {}: key length {}, data length {}\n",
            self.cyl, self.head, self.record, self.key_len, self.data_len
        );
        if !self.raw_key.is_empty() {
            s.push_str("key (EBCDIC at right):\n");
            dump(&mut s, &self.raw_key);
        }
        match &self.out {
            Some(p) => {
                let _ = writeln!(s, "data written to {p}");
            }
            None => {
                s.push_str("data (EBCDIC at right):\n");
                dump(&mut s, &self.raw);
            }
        }
        s
    }
}

/// `dasd write` output.
#[derive(Debug, Serialize)]
pub struct WriteReport {
    /// Cylinder.
    pub cyl: u32,
    /// Head.
    pub head: u16,
    /// Record.
    pub record: u8,
    /// Bytes written (the record's data length).
    pub bytes: usize,
}

impl Report for WriteReport {
    fn text(&self) -> String {
        format!(
            "wrote {} bytes to cyl {} head {} record {}\n",
            self.bytes, self.cyl, self.head, self.record
        )
    }
}

/// `dasd rdc` output: the fields of Read Device Characteristics.
#[derive(Debug, Serialize)]
pub struct RdcReport {
    /// Control-unit type.
    pub cu_type: String,
    /// Control-unit model.
    pub cu_model: String,
    /// Device type.
    pub dev_type: String,
    /// Device model.
    pub dev_model: String,
    /// Device class.
    pub dev_class: String,
    /// Primary cylinders (16-bit field).
    pub cylinders: u16,
    /// Tracks per cylinder.
    pub tracks_per_cylinder: u16,
    /// Sectors per track.
    pub sectors: u8,
    /// Track capacity in bytes.
    pub track_capacity: u32,
    /// Maximum record zero length.
    pub max_r0: u16,
    /// Cylinders (32-bit field, large volumes).
    pub long_cylinders: u32,
    /// The 64 bytes in hex.
    pub raw: String,
}

impl RdcReport {
    pub(super) fn from_bytes(d: &[u8]) -> Option<Self> {
        if d.len() < 64 {
            return None;
        }
        let be16 = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
        Some(RdcReport {
            cu_type: format!("{:04x}", be16(0)),
            cu_model: format!("{:02x}", d[2]),
            dev_type: format!("{:04x}", be16(3)),
            dev_model: format!("{:02x}", d[5]),
            dev_class: format!("{:02x}", d[10]),
            cylinders: be16(12),
            tracks_per_cylinder: be16(14),
            sectors: d[16],
            track_capacity: u32::from_be_bytes([0, d[17], d[18], d[19]]),
            max_r0: be16(44),
            long_cylinders: u32::from_be_bytes([d[60], d[61], d[62], d[63]]),
            raw: crate::decode::hex(&d[..64]),
        })
    }
}

impl Report for RdcReport {
    fn text(&self) -> String {
        format!(
            "control unit {}-{}, device {}-{} (class {})\n\
             cylinders {} (long field {}), {} tracks/cylinder, {} sectors, track capacity {} bytes, max R0 {} bytes\n\
             raw {}\n",
            self.cu_type,
            self.cu_model,
            self.dev_type,
            self.dev_model,
            self.dev_class,
            self.cylinders,
            self.long_cylinders,
            self.tracks_per_cylinder,
            self.sectors,
            self.track_capacity,
            self.max_r0,
            self.raw
        )
    }
}
