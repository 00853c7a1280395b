// SPDX-License-Identifier: Apache-2.0 OR MIT

//! 3390 geometry: models, track addresses, record capacity, the count field, EBCDIC.
//!
//! The numbers are the public 3390 device facts (15 tracks per cylinder, 58786 bytes of track
//! capacity, R1 maximum 56664 bytes, 224 sectors) and the Hercules image convention of a
//! 56832-byte track slot.

use core::fmt;

/// Tracks per cylinder of every 3390 model.
pub const HEADS: u16 = 15;
/// Size of one track slot in a Hercules 3390 CKD image.
pub const TRACK_SLOT: usize = 56832;
/// Largest data length of a single record on a 3390 track (R1 maximum).
pub const R1_MAX: usize = 56664;
/// Device type of a 3390.
pub const DEVICE_TYPE: u16 = 0x3390;
/// Length of the basic sense data of a 3990-attached device.
pub const SENSE_LEN: usize = 32;
/// Length of the Read Device Characteristics data.
pub const RDC_LEN: usize = 64;
/// Length of the Read Configuration Data answer.
pub const RCD_LEN: usize = 256;
/// Command code of Read Configuration Data (advertised in the RCD CIW).
pub const CMD_RCD: u8 = 0xFA;

/// How many records with `key_len`-byte keys and `data_len`-byte data fit on one 3390
/// track, by the 3390 track-capacity formula (as Linux's `recs_per_track` computes it).
///
/// ```
/// use ccw_types::eckd::records_per_track;
/// assert_eq!(records_per_track(0, 4096), 12);
/// assert_eq!(records_per_track(0, 512), 49);
/// assert_eq!(records_per_track(0, 56664), 1);
/// ```
pub fn records_per_track(key_len: u16, data_len: u16) -> u16 {
    let ceil = |a: u32, b: u32| a.div_ceil(b);
    let dl = u32::from(data_len);
    let kl = u32::from(key_len);
    let dn = ceil(dl + 6, 232) + 1;
    let per = if kl > 0 {
        let kn = ceil(kl + 6, 232) + 1;
        10 + 9 + ceil(kl + 6 * kn, 34) + 9 + ceil(dl + 6 * dn, 34)
    } else {
        10 + 9 + ceil(dl + 6 * dn, 34)
    };
    (1729 / per) as u16
}

/// Cylinder/head address of a track.
///
/// ```
/// use ccw_types::eckd::TrackAddr;
/// let t = TrackAddr::new(2, 14);
/// assert_eq!(t.index(), 2 * 15 + 14);
/// assert_eq!(TrackAddr::from_index(t.index()), t);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackAddr {
    /// Cylinder.
    pub cyl: u32,
    /// Head (track within the cylinder), `0..15`.
    pub head: u16,
}

impl TrackAddr {
    /// The track at `cyl`, `head`.
    pub const fn new(cyl: u32, head: u16) -> Self {
        TrackAddr { cyl, head }
    }
    /// Relative track number (`cyl * 15 + head`).
    pub const fn index(self) -> u64 {
        self.cyl as u64 * HEADS as u64 + self.head as u64
    }
    /// The track with relative number `index`.
    pub const fn from_index(index: u64) -> Self {
        TrackAddr {
            cyl: (index / HEADS as u64) as u32,
            head: (index % HEADS as u64) as u16,
        }
    }
    /// Decodes a 4-byte CCHH as channel programs carry it: a 16-bit cylinder, then a head
    /// halfword whose high 12 bits extend the cylinder (large-volume format) and whose low
    /// 4 bits are the head.
    pub fn from_cchh(b: [u8; 4]) -> Self {
        let cc = u16::from_be_bytes([b[0], b[1]]) as u32;
        let hh = u16::from_be_bytes([b[2], b[3]]);
        TrackAddr {
            cyl: cc | (((hh >> 4) as u32) << 16),
            head: hh & 0xF,
        }
    }
    /// The inverse of [`TrackAddr::from_cchh`].
    pub fn to_cchh(self) -> [u8; 4] {
        let cc = (self.cyl & 0xFFFF) as u16;
        let hh = (((self.cyl >> 16) as u16) << 4) | (self.head & 0xF);
        let [a, b] = cc.to_be_bytes();
        let [c, d] = hh.to_be_bytes();
        [a, b, c, d]
    }
}

impl fmt::Display for TrackAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cyl {} head {}", self.cyl, self.head)
    }
}

/// Size of a count field.
pub const COUNT_LEN: usize = 8;
/// A record's count field.
///
/// ```
/// use ccw_types::eckd::Count;
/// let c = Count { cyl: 1, head: 2, record: 3, key_len: 4, data_len: 80 };
/// assert_eq!(Count::from_bytes(c.to_bytes()), c);
/// assert_eq!(c.to_bytes(), [0, 1, 0, 2, 3, 4, 0, 80]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Count {
    /// Cylinder (CC).
    pub cyl: u16,
    /// Head (HH).
    pub head: u16,
    /// Record number (R).
    pub record: u8,
    /// Key length (KL).
    pub key_len: u8,
    /// Data length (DL).
    pub data_len: u16,
}

impl Count {
    /// Decodes the 8 stored bytes.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        Count {
            cyl: u16::from_be_bytes([b[0], b[1]]),
            head: u16::from_be_bytes([b[2], b[3]]),
            record: b[4],
            key_len: b[5],
            data_len: u16::from_be_bytes([b[6], b[7]]),
        }
    }
    /// Encodes the 8 stored bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let [c0, c1] = self.cyl.to_be_bytes();
        let [h0, h1] = self.head.to_be_bytes();
        let [d0, d1] = self.data_len.to_be_bytes();
        [c0, c1, h0, h1, self.record, self.key_len, d0, d1]
    }
    /// The 5-byte record identifier CCHHR.
    pub fn id(self) -> [u8; 5] {
        let b = self.to_bytes();
        [b[0], b[1], b[2], b[3], b[4]]
    }
}

/// ASCII to EBCDIC (code page 037) for the printable characters labels and descriptors use:
/// digits, upper- and lower-case letters, space and a little punctuation. Anything else maps
/// to an EBCDIC space.
///
/// ```
/// use ccw_types::eckd::{ascii_to_ebcdic, ebcdic_to_ascii};
/// assert_eq!(ascii_to_ebcdic(b'V'), 0xE5);
/// assert_eq!(ebcdic_to_ascii(0xF1), b'1');
/// ```
pub fn ascii_to_ebcdic(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => 0xF0 + (c - b'0'),
        b'A'..=b'I' => 0xC1 + (c - b'A'),
        b'J'..=b'R' => 0xD1 + (c - b'J'),
        b'S'..=b'Z' => 0xE2 + (c - b'S'),
        b'a'..=b'i' => 0x81 + (c - b'a'),
        b'j'..=b'r' => 0x91 + (c - b'j'),
        b's'..=b'z' => 0xA2 + (c - b's'),
        b'.' => 0x4B,
        b'-' => 0x60,
        b'$' => 0x5B,
        b'#' => 0x7B,
        b'@' => 0x7C,
        b'_' => 0x6D,
        _ => 0x40,
    }
}

/// EBCDIC (code page 037) to ASCII for the characters [`ascii_to_ebcdic`] produces; anything
/// else maps to `.`.
pub fn ebcdic_to_ascii(c: u8) -> u8 {
    match c {
        0xF0..=0xF9 => b'0' + (c - 0xF0),
        0xC1..=0xC9 => b'A' + (c - 0xC1),
        0xD1..=0xD9 => b'J' + (c - 0xD1),
        0xE2..=0xE9 => b'S' + (c - 0xE2),
        0x81..=0x89 => b'a' + (c - 0x81),
        0x91..=0x99 => b'j' + (c - 0x91),
        0xA2..=0xA9 => b's' + (c - 0xA2),
        0x40 => b' ',
        0x4B => b'.',
        0x60 => b'-',
        0x5B => b'$',
        0x7B => b'#',
        0x7C => b'@',
        0x6D => b'_',
        _ => b'.',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cchh_round_trips_large_cylinders() {
        let t = TrackAddr::new(0x1_2345, 7);
        assert_eq!(TrackAddr::from_cchh(t.to_cchh()), t);
        assert_eq!(TrackAddr::from_cchh([0, 5, 0, 3]), TrackAddr::new(5, 3));
    }

    #[test]
    fn ebcdic_round_trips_label_characters() {
        for c in b"VOL1 ABC-012.xyz$#@_".iter().copied() {
            assert_eq!(ebcdic_to_ascii(ascii_to_ebcdic(c)), c);
        }
    }
}
