// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The path-management-control word and the subchannel-information block (reference §5).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{DecodeError, DecodeReason, take};
use crate::scsw::Scsw;

/// PMCW word 1 (bytes 4-7).
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PmcwFlags {
    /// Q: QDIO subchannel.
    pub qdio: bool,
    /// W: undocumented; treated as reserved.
    pub w: bool,
    /// I/O-interruption subclass.
    #[bits(3)]
    pub isc: u8,
    /// Reserved, must be zero.
    #[bits(3)]
    pub reserved: u8,
    /// E: enabled.
    pub enabled: bool,
    /// Limit mode.
    #[bits(2)]
    pub limit_mode: u8,
    /// MM bit 11: measurement-block update.
    pub mb_update: bool,
    /// MM bit 12: device-connect-time measurement.
    pub dct_measurement: bool,
    /// D: multipath mode.
    pub multipath: bool,
    /// T: timing facility.
    pub timing: bool,
    /// V: device number valid.
    pub dnv: bool,
    /// Device number.
    #[bits(16)]
    pub devno: u16,
}

/// PMCW word 6 (bytes 24-27).
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PmcwChars {
    /// Reserved.
    #[bits(8)]
    pub reserved0: u8,
    /// Subchannel type (0 = I/O).
    #[bits(3)]
    pub st: u8,
    /// Reserved.
    #[bits(18)]
    pub reserved1: u32,
    /// MBFC: format-1 measurement block.
    pub mbfc: bool,
    /// XMWME: extended-measurement-word mode.
    pub xmwme: bool,
    /// CS: concurrent sense.
    pub concurrent_sense: bool,
}

/// The PMCW as stored (28 bytes).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Pmcw {
    /// Interruption parameter.
    pub intparm: U32,
    /// Word 1 flags and device number.
    pub flags: PmcwFlags,
    /// Logical-path mask.
    pub lpm: u8,
    /// Path-not-operational mask.
    pub pnom: u8,
    /// Last-path-used mask.
    pub lpum: u8,
    /// Path-installed mask.
    pub pim: u8,
    /// Measurement-block index.
    pub mbi: U16,
    /// Path-operational mask.
    pub pom: u8,
    /// Path-available mask.
    pub pam: u8,
    /// Channel-path ids of the eight path slots.
    pub chpid: [u8; 8],
    /// Word 6: subchannel type and measurement/sense controls.
    pub chars: PmcwChars,
}

impl fmt::Debug for Pmcw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pmcw")
            .field("intparm", &format_args!("{:#010x}", self.intparm.get()))
            .field("flags", &self.flags)
            .field("lpm", &format_args!("{:#04x}", self.lpm))
            .field("pnom", &format_args!("{:#04x}", self.pnom))
            .field("lpum", &format_args!("{:#04x}", self.lpum))
            .field("pim", &format_args!("{:#04x}", self.pim))
            .field("mbi", &self.mbi.get())
            .field("pom", &format_args!("{:#04x}", self.pom))
            .field("pam", &format_args!("{:#04x}", self.pam))
            .field("chpid", &self.chpid)
            .field("chars", &self.chars)
            .finish()
    }
}

/// The SCHIB as stored by STORE SUBCHANNEL (52 bytes; vfio-ccw's schib region).
///
/// ```
/// use ccw_types::Schib;
/// // The real device's SCHIB region began `00 d3 00 00 18 81 00 05` (s390x-guest.md).
/// let mut bytes = [0u8; 52];
/// bytes[..8].copy_from_slice(&[0x00, 0xd3, 0x00, 0x00, 0x18, 0x81, 0x00, 0x05]);
/// let schib = Schib::read_from(&bytes)?;
/// let f = schib.pmcw.flags;
/// assert_eq!((f.isc(), f.enabled(), f.dnv(), f.devno()), (3, true, true, 0x0005));
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Schib {
    /// Path-management-control word.
    pub pmcw: Pmcw,
    /// Subchannel-status word.
    pub scsw: Scsw,
    /// Measurement-block address (with MBFC).
    pub mba: U64,
    /// Model-dependent area.
    pub md: [u8; 4],
}

const _: () = assert!(size_of::<Pmcw>() == 28 && size_of::<Schib>() == 52);

impl Schib {
    /// Size in bytes.
    pub const LEN: usize = 52;

    /// Reads a SCHIB from the start of `bytes`.
    pub fn read_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        take::<52>("SCHIB", bytes).map(Self::from_bytes)
    }
    /// The SCHIB stored in `bytes`.
    pub fn from_bytes(bytes: [u8; 52]) -> Self {
        zerocopy::transmute!(bytes)
    }
    /// The 52 bytes as stored.
    pub fn into_bytes(self) -> [u8; 52] {
        zerocopy::transmute!(self)
    }

    /// Checks what MODIFY SUBCHANNEL rejects with an operand exception: reserved PMCW bits,
    /// limit mode 3, reserved word-6 bits.
    pub fn validate_for_modify(&self) -> Result<(), DecodeError> {
        let f = self.pmcw.flags;
        if f.reserved() != 0 {
            return Err(DecodeError::new(
                "PMCW",
                "flags",
                DecodeReason::Reserved {
                    bits: f.reserved() as u64,
                },
            ));
        }
        if f.limit_mode() == 3 {
            return Err(DecodeError::new(
                "PMCW",
                "limit mode",
                DecodeReason::Invalid { value: 3 },
            ));
        }
        let c = self.pmcw.chars;
        if c.reserved0() != 0 || c.reserved1() != 0 {
            return Err(DecodeError::new(
                "PMCW",
                "word 6",
                DecodeReason::Reserved {
                    bits: (c.into_bits().get() & 0xFF1F_FFF8) as u64,
                },
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Schib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schib")
            .field("pmcw", &self.pmcw)
            .field("scsw", &self.scsw)
            .field("mba", &format_args!("{:#x}", self.mba.get()))
            .field("md", &self.md)
            .finish()
    }
}

impl fmt::Display for Schib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.pmcw;
        write!(
            f,
            "SCHIB devno={:04x}{} st={} isc={} {} pim={:#04x} pam={:#04x} pom={:#04x} lpm={:#04x} lpum={:#04x} chpids={:02x?}{}",
            p.flags.devno(),
            if p.flags.dnv() { "" } else { "(invalid)" },
            p.chars.st(),
            p.flags.isc(),
            if p.flags.enabled() {
                "enabled"
            } else {
                "disabled"
            },
            p.pim,
            p.pam,
            p.pom,
            p.lpm,
            p.lpum,
            p.chpid,
            if p.chars.concurrent_sense() {
                " cs"
            } else {
                ""
            },
        )
    }
}
