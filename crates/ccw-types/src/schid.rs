// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Subchannel identification words and textual bus ids (reference §7).

use core::fmt;
use core::str::FromStr;

use bitfield_struct::bitfield;
use zerocopy::big_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::stored_block;
use crate::error::{DecodeError, DecodeReason};

/// The subchannel-identification word as stored (GR1 bits 32-63 of the I/O instructions,
/// lowcore 0xB8), bit for bit; [`SubchannelId`] is its validated meaning.
///
/// The two differ in one case: M = 1 with CSSID 0 names CSS 0 explicitly, which
/// [`SubchannelId`] does not distinguish from M = 0, so only this stored form gives such a
/// word back unchanged.
///
/// ```
/// use ccw_types::{SubchannelId, SubchannelIdWord};
/// // Reference §13.5: cssid 0xFE, M = 1, ssid 1, subchannel 5.
/// let w = SubchannelIdWord::from_bytes([0xFE, 0x0B, 0x00, 0x05]);
/// assert_eq!((w.cssid(), w.m(), w.ssid(), w.one(), w.sch_no()), (0xFE, true, 1, true, 5));
/// assert_eq!(w.subchannel_id()?, SubchannelId::new(0xFE, 1, 5));
/// assert_eq!(w.to_string(), "fe.1.0005");
/// let explicit_css0 = SubchannelIdWord::from_bytes([0x00, 0x09, 0x00, 0x05]);
/// assert_eq!(explicit_css0.subchannel_id()?.to_word(), 0x0001_0005);
/// assert_eq!(explicit_css0.into_bytes(), [0x00, 0x09, 0x00, 0x05]);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct SubchannelIdWord {
    /// Channel-subsystem id (only with M).
    #[bits(8)]
    pub cssid: u8,
    /// Bits 8-11: reserved.
    #[bits(4)]
    pub reserved: u8,
    /// M: the CSSID field is valid (MCSS-E).
    pub m: bool,
    /// Subchannel-set id.
    #[bits(2)]
    pub ssid: u8,
    /// Must be one.
    pub one: bool,
    /// Subchannel number.
    #[bits(16)]
    pub sch_no: u16,
}

stored_block!(SubchannelIdWord, "SID", 4, validate);

impl SubchannelIdWord {
    /// The validated subchannel id.
    pub fn subchannel_id(&self) -> Result<SubchannelId, DecodeError> {
        SubchannelId::from_word(self.into_bits().get())
    }
    /// Rejects what the I/O instructions reject ([`SubchannelId::from_word`]).
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.subchannel_id().map(|_| ())
    }
}

/// The bus-id form when the word is valid, else the raw word in hex.
impl fmt::Display for SubchannelIdWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subchannel_id() {
            Ok(id) => id.fmt(f),
            Err(_) => write!(f, "sid={:#010x}", self.into_bits().get()),
        }
    }
}

/// A subchannel id: channel-subsystem id, subchannel-set id and subchannel number.
///
/// ```
/// use ccw_types::SubchannelId;
/// let id: SubchannelId = "0.0.0005".parse()?;
/// assert_eq!(id.to_string(), "0.0.0005");
/// assert_eq!(id.to_word(), 0x0001_0005);
/// assert_eq!(SubchannelId::from_word(0x0003_0005)?, SubchannelId::new(0, 1, 5));
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SubchannelId {
    /// Channel-subsystem id (0-0xFE).
    pub cssid: u8,
    /// Subchannel-set id (0-3).
    pub ssid: u8,
    /// Subchannel number.
    pub sch_no: u16,
}

impl SubchannelId {
    /// A subchannel id; `ssid` is masked to its two bits.
    pub const fn new(cssid: u8, ssid: u8, sch_no: u16) -> Self {
        Self {
            cssid,
            ssid: ssid & 3,
            sch_no,
        }
    }

    /// The subchannel-identification word (GR1 of the I/O instructions). With `cssid != 0`
    /// the M bit is set (MCSS-E).
    pub const fn to_word(&self) -> u32 {
        let m = if self.cssid != 0 { 1u32 << 19 } else { 0 };
        ((self.cssid as u32) << 24)
            | m
            | (((self.ssid & 3) as u32) << 17)
            | (1 << 16)
            | self.sch_no as u32
    }

    /// Decodes a subchannel-identification word, rejecting what the I/O instructions reject
    /// with an operand exception: the "one" bit clear, reserved bits set, or a CSSID without M.
    /// M = 1 with CSSID 0 decodes like M = 0 (see [`SubchannelIdWord`] for the exact bits).
    pub fn from_word(word: u32) -> Result<Self, DecodeError> {
        if word & 0x0001_0000 == 0 {
            return Err(DecodeError::new(
                "SID",
                "one bit",
                DecodeReason::Invalid { value: word as u64 },
            ));
        }
        if word & 0x00F0_0000 != 0 {
            return Err(DecodeError::new(
                "SID",
                "reserved",
                DecodeReason::Reserved {
                    bits: ((word >> 20) & 0xF) as u64,
                },
            ));
        }
        let m = word & 0x0008_0000 != 0;
        let cssid = (word >> 24) as u8;
        if !m && cssid != 0 {
            return Err(DecodeError::new(
                "SID",
                "cssid",
                DecodeReason::Invalid {
                    value: cssid as u64,
                },
            ));
        }
        Ok(Self::new(cssid, ((word >> 17) & 3) as u8, word as u16))
    }
}

/// Parses `c.s.nnnn` with hexadecimal fields (cssid up to 2 digits, ssid 1, number 1-4).
fn parse_triple(block: &'static str, s: &str) -> Result<(u8, u8, u16), DecodeError> {
    let err = |field| DecodeError::new(block, field, DecodeReason::Syntax);
    let mut it = s.split('.');
    let (Some(c), Some(ss), Some(n), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(err("format (expected c.s.nnnn)"));
    };
    let hex = |t: &str, max_len: usize, field| {
        if t.is_empty() || t.len() > max_len || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            Err(err(field))
        } else {
            u32::from_str_radix(t, 16).map_err(|_| err(field))
        }
    };
    let cssid = hex(c, 2, "cssid")?;
    let ssid = hex(ss, 1, "ssid")?;
    let num = hex(n, 4, "number")?;
    if ssid > 3 {
        return Err(DecodeError::new(
            block,
            "ssid",
            DecodeReason::OutOfRange {
                value: ssid as u64,
                max: 3,
            },
        ));
    }
    Ok((cssid as u8, ssid as u8, num as u16))
}

impl FromStr for SubchannelId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (c, ss, n) = parse_triple("subchannel id", s)?;
        Ok(Self::new(c, ss, n))
    }
}

impl fmt::Display for SubchannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{:x}.{:04x}", self.cssid, self.ssid, self.sch_no)
    }
}

/// A device bus id: channel-subsystem id, subchannel-set id and device number, as Linux
/// names ccw devices (`0.0.0009`).
///
/// ```
/// use ccw_types::DeviceId;
/// let id: DeviceId = "fe.0.0005".parse()?;
/// assert_eq!((id.cssid, id.ssid, id.devno), (0xfe, 0, 5));
/// assert_eq!(id.to_string(), "fe.0.0005");
/// assert!("0.4.0005".parse::<DeviceId>().is_err());
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DeviceId {
    /// Channel-subsystem id.
    pub cssid: u8,
    /// Subchannel-set id (0-3).
    pub ssid: u8,
    /// Device number.
    pub devno: u16,
}

impl DeviceId {
    /// A device id; `ssid` is masked to its two bits.
    pub const fn new(cssid: u8, ssid: u8, devno: u16) -> Self {
        Self {
            cssid,
            ssid: ssid & 3,
            devno,
        }
    }
}

impl FromStr for DeviceId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (c, ss, n) = parse_triple("device id", s)?;
        Ok(Self::new(c, ss, n))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{:x}.{:04x}", self.cssid, self.ssid, self.devno)
    }
}
