// SPDX-License-Identifier: Apache-2.0 OR MIT

//! 3390 geometry and the identification blocks a 3390 behind a 3990 answers with.
//!
//! The numbers are the public 3390 device facts (15 tracks per cylinder, 58786 bytes of track
//! capacity, R1 maximum 56664 bytes, 224 sectors) and the Hercules image convention of a
//! 56832-byte track slot. The byte layouts of SENSE ID, Read Device Characteristics and Read
//! Configuration Data follow the 3990 storage-control reference as Linux's `dasd_eckd` reads them.

use core::fmt;
use core::str::FromStr;

/// Tracks per cylinder of every 3390 model.
pub const HEADS: u16 = 15;
/// Size of one track slot in a Hercules 3390 CKD image.
pub const TRACK_SLOT: usize = 56832;
/// Largest data length of a single record on a 3390 track (R1 maximum).
pub const R1_MAX: usize = 56664;
/// Device type of a 3390.
pub const DEVICE_TYPE: u16 = 0x3390;
/// Control-unit type the model presents (3990 storage control).
pub const CU_TYPE: u16 = 0x3990;
/// Control-unit model byte (3990 model 6, enhanced mode).
pub const CU_MODEL: u8 = 0xE9;
/// Length of the basic sense data of a 3990-attached device.
pub const SENSE_LEN: usize = 32;
/// Length of the Read Device Characteristics data.
pub const RDC_LEN: usize = 64;
/// Length of the Read Configuration Data answer.
pub const RCD_LEN: usize = 256;
/// Command code of Read Configuration Data (advertised in the RCD CIW).
pub const CMD_RCD: u8 = 0xFA;

/// A 3390 model: fixes the nominal cylinder count and the model bytes.
///
/// ```
/// use mock_backend::dasd::Model3390;
/// let m: Model3390 = "3390-3".parse().unwrap();
/// assert_eq!(m.cylinders(), 3339);
/// assert_eq!(m.to_string(), "3390-3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model3390 {
    /// 3390-1: 1113 cylinders.
    M1,
    /// 3390-2: 2226 cylinders.
    M2,
    /// 3390-3: 3339 cylinders.
    M3,
    /// 3390-9: 10017 cylinders.
    M9,
    /// 3390-27: 32760 cylinders.
    M27,
    /// 3390-54: 65520 cylinders.
    M54,
}

impl Model3390 {
    /// All models, smallest first.
    pub const ALL: [Model3390; 6] = [
        Model3390::M1,
        Model3390::M2,
        Model3390::M3,
        Model3390::M9,
        Model3390::M27,
        Model3390::M54,
    ];

    /// Nominal (primary) cylinder count.
    pub const fn cylinders(self) -> u32 {
        match self {
            Model3390::M1 => 1113,
            Model3390::M2 => 2226,
            Model3390::M3 => 3339,
            Model3390::M9 => 10017,
            Model3390::M27 => 32760,
            Model3390::M54 => 65520,
        }
    }

    /// Device-model byte (SENSE ID byte 6, RDC byte 5).
    pub const fn model_byte(self) -> u8 {
        match self {
            Model3390::M1 => 0x02,
            Model3390::M2 => 0x06,
            Model3390::M3 => 0x0A,
            Model3390::M9 | Model3390::M27 | Model3390::M54 => 0x0C,
        }
    }

    /// Device-type code (RDC byte 11).
    const fn type_code(self) -> u8 {
        match self {
            Model3390::M1 => 0x26,
            Model3390::M2 => 0x27,
            Model3390::M3 => 0x24,
            Model3390::M9 | Model3390::M27 | Model3390::M54 => 0x32,
        }
    }

    /// The smallest model that holds `cylinders` cylinders (how an image of arbitrary size is
    /// presented), or `None` if even a 3390-54 is too small.
    pub fn for_cylinders(cylinders: u32) -> Option<Model3390> {
        Self::ALL.into_iter().find(|m| cylinders <= m.cylinders())
    }
}

impl fmt::Display for Model3390 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self {
            Model3390::M1 => 1,
            Model3390::M2 => 2,
            Model3390::M3 => 3,
            Model3390::M9 => 9,
            Model3390::M27 => 27,
            Model3390::M54 => 54,
        };
        write!(f, "3390-{n}")
    }
}

/// The text was not one of `3390-1`, `-2`, `-3`, `-9`, `-27`, `-54`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown 3390 model {0:?} (expected 3390-1, -2, -3, -9, -27 or -54)")]
pub struct UnknownModel(pub String);

impl FromStr for Model3390 {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.strip_prefix("3390-").unwrap_or(s);
        Ok(match n {
            "1" => Model3390::M1,
            "2" => Model3390::M2,
            "3" => Model3390::M3,
            "9" => Model3390::M9,
            "27" => Model3390::M27,
            "54" => Model3390::M54,
            _ => return Err(UnknownModel(s.to_owned())),
        })
    }
}

/// How many records with `key_len`-byte keys and `data_len`-byte data fit on one 3390
/// track, by the 3390 track-capacity formula (as Linux's `recs_per_track` computes it).
///
/// ```
/// use mock_backend::dasd::records_per_track;
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
/// use mock_backend::dasd::TrackAddr;
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

/// The 3390's identification data: SENSE ID, Read Device Characteristics, Read
/// Configuration Data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The model presented.
    pub model: Model3390,
    /// Cylinders actually present in the image.
    pub cylinders: u32,
    /// Device number (used as the unit address in the configuration data).
    pub devno: u16,
}

impl Identity {
    /// SENSE ID data: `FF`, CU type/model, device type/model, `00`, then one CIW announcing
    /// Read Configuration Data (`0x40FA0100`). 12 bytes.
    pub fn sense_id(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = 0xFF;
        b[1..3].copy_from_slice(&CU_TYPE.to_be_bytes());
        b[3] = CU_MODEL;
        b[4..6].copy_from_slice(&DEVICE_TYPE.to_be_bytes());
        b[6] = self.model.model_byte();
        // CIW: ET=01, CT=0 (RCD), command 0xFA, count 256.
        b[8..12].copy_from_slice(&[0x40, CMD_RCD, 0x01, 0x00]);
        b
    }

    /// The 64 bytes of Read Device Characteristics (the layout Linux's
    /// `dasd_eckd_characteristics` reads).
    pub fn rdc(&self) -> [u8; RDC_LEN] {
        let mut d = [0u8; RDC_LEN];
        d[0..2].copy_from_slice(&CU_TYPE.to_be_bytes());
        d[2] = CU_MODEL;
        d[3..5].copy_from_slice(&DEVICE_TYPE.to_be_bytes());
        d[5] = self.model.model_byte();
        // Facilities: locate record read supported (byte 6 bit 3); record and track cache.
        d[6] = 0x10;
        d[9] = 0x30;
        d[10] = 0x20; // device class: DASD
        d[11] = self.model.type_code();
        // Primary cylinders; volumes above 65520 cylinders report 0xFFFE and the long count.
        let short = if self.cylinders > 0xFFF0 {
            0xFFFE
        } else {
            self.cylinders as u16
        };
        d[12..14].copy_from_slice(&short.to_be_bytes());
        d[14..16].copy_from_slice(&HEADS.to_be_bytes());
        d[16] = 224; // sectors per track
        d[17..20].copy_from_slice(&58786u32.to_be_bytes()[1..]); // track capacity
        d[20..22].copy_from_slice(&1428u16.to_be_bytes()); // HA + R0 bytes
        d[22] = 0x02; // track capacity formula 2 and its factors
        d[23..28].copy_from_slice(&[34, 19, 9, 6, 116]);
        d[40] = self.model.type_code(); // MDR record id
        d[41] = self.model.type_code(); // OBR record id
        d[42] = 0x15; // CU type code
        d[43] = 0x02; // parameter length
        d[44..46].copy_from_slice(&57326u16.to_be_bytes()); // maximum record zero
        d[47] = 0x01; // track set
        d[48] = 6; // factor 6
        d[49..51].copy_from_slice(&0x7708u16.to_be_bytes()); // RPS factors
        d[57] = 0xFF; // real device type: array (no alternate tracks to manage)
        d[60..64].copy_from_slice(&self.cylinders.to_be_bytes());
        d
    }

    /// The 256 bytes of Read Configuration Data: node-element descriptors for the device,
    /// the string, the storage director and the subsystem, then a general node-element
    /// qualifier with the unit address.
    pub fn rcd(&self) -> [u8; RCD_LEN] {
        let mut b = [0u8; RCD_LEN];
        let ned = |b: &mut [u8], flags: [u8; 4], text: &str| {
            b[0..4].copy_from_slice(&flags);
            for (dst, c) in b[4..30].iter_mut().zip(text.bytes()) {
                *dst = ascii_to_ebcdic(c);
            }
            b[30..32].copy_from_slice(&[0x03, 0x00]);
        };
        let dev = format!(
            "  {:04X}0{:02X}CCWRS000000000001",
            DEVICE_TYPE,
            self.model.model_byte()
        );
        let cu = format!("  {:04X}0{:02X}CCWRS000000000001", CU_TYPE, CU_MODEL);
        let ss = format!("  {:04X}   CCWRS000000000001", CU_TYPE);
        ned(&mut b[0..32], [0xC4, 0x01, 0x01, 0x00], &dev);
        ned(&mut b[32..64], [0xC4, 0x00, 0x00, 0x00], &dev);
        ned(&mut b[64..96], [0xD4, 0x02, 0x00, 0x00], &cu);
        ned(&mut b[96..128], [0xF0, 0x00, 0x00, 0x01], &ss);
        // General NEQ.
        b[224] = 0x80;
        b[230] = 0x1E; // primary missing-interrupt interval
        b[232..234].copy_from_slice(&0x0001u16.to_be_bytes()); // subsystem id
        b[234] = 0x80;
        let ua = (self.devno & 0xFF) as u8;
        b[235] = ua; // unit address
        b[236] = ua;
        b[237] = ua;
        b[241] = 0x80;
        b[242] = 0x80;
        b[243] = ua;
        b
    }
}

/// ASCII to EBCDIC (code page 037) for the printable characters labels and descriptors use:
/// digits, upper- and lower-case letters, space and a little punctuation. Anything else maps
/// to an EBCDIC space.
///
/// ```
/// use mock_backend::dasd::{ascii_to_ebcdic, ebcdic_to_ascii};
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
    fn rdc_fields_sit_where_linux_reads_them() {
        let id = Identity {
            model: Model3390::M3,
            cylinders: 3339,
            devno: 0x0123,
        };
        let d = id.rdc();
        assert_eq!(&d[0..2], &[0x39, 0x90]);
        assert_eq!(&d[3..5], &[0x33, 0x90]);
        assert_eq!(d[5], 0x0A);
        assert_eq!(u16::from_be_bytes([d[12], d[13]]), 3339);
        assert_eq!(u16::from_be_bytes([d[14], d[15]]), 15);
        assert_eq!(u32::from_be_bytes([d[60], d[61], d[62], d[63]]), 3339);
        let big = Identity {
            cylinders: 65521,
            ..id
        };
        assert_eq!(u16::from_be_bytes([big.rdc()[12], big.rdc()[13]]), 0xFFFE);
    }

    #[test]
    fn sense_id_announces_rcd() {
        let id = Identity {
            model: Model3390::M9,
            cylinders: 10017,
            devno: 1,
        };
        let s = id.sense_id();
        assert_eq!(s[..8], [0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x0C, 0x00]);
        assert_eq!(s[8..], [0x40, 0xFA, 0x01, 0x00]);
        let r = id.rcd();
        assert_eq!(r[0], 0xC4);
        assert_eq!(r[235], 1);
    }

    #[test]
    fn models_parse_and_fit() {
        for m in Model3390::ALL {
            assert_eq!(m.to_string().parse::<Model3390>().unwrap(), m);
            assert_eq!(Model3390::for_cylinders(m.cylinders()), Some(m));
        }
        assert_eq!(Model3390::for_cylinders(3), Some(Model3390::M1));
        assert_eq!(Model3390::for_cylinders(65521), None);
        assert!("3390-4".parse::<Model3390>().is_err());
    }

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
