// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The path-management-control word and the subchannel-information block (reference §5).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block};
use crate::error::{DecodeError, DecodeReason};
use crate::measure::MeasurementFormat;
use crate::scsw::Scsw;

/// PMCW word 1 (bytes 4-7).
///
/// ```
/// use ccw_types::PmcwFlags;
/// // The real device's SCHIB region: word 1 = ISC 3, enabled, device number valid, 0x0005.
/// let f = PmcwFlags::from_bits(zerocopy::big_endian::U32::new(0x1881_0005));
/// assert_eq!((f.isc(), f.enabled(), f.dnv(), f.devno()), (3, true, true, 5));
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PmcwFlags {
    /// Q: QDIO subchannel (model-dependent, read-only; set in an MSCH operand it is an operand
    /// exception).
    pub qdio: bool,
    /// W: undocumented, read-only; set in an MSCH operand it is an operand exception.
    pub w: bool,
    /// I/O-interruption subclass.
    #[bits(3)]
    pub isc: u8,
    /// Bit 5: ignored by MSCH (neither rejected nor stored; reference §5.2).
    pub bit5: bool,
    /// Bits 6-7: reserved, must be zero in an MSCH operand.
    #[bits(2)]
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
///
/// ```
/// use ccw_types::PmcwChars;
/// let c = PmcwChars::new().with_st(0).with_mbfc(true).with_concurrent_sense(true);
/// assert_eq!(c.into_bits().get(), 0x0000_0005);
/// ```
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
///
/// ```
/// use ccw_types::Pmcw;
/// // Reference §13.5: enabled idle subchannel, ISC 3, devno 0x0009, path 0 (CHPID 0x00).
/// let bytes = [0x12, 0x34, 0x56, 0x78, 0x18, 0x81, 0x00, 0x09, 0x80, 0x00, 0x80, 0x80,
///              0x00, 0x00, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// let pmcw = Pmcw::parse(&bytes)?;
/// assert_eq!((pmcw.lpm, pmcw.pim, pmcw.pom, pmcw.pam), (0x80, 0x80, 0xFF, 0x80));
/// assert_eq!(pmcw.to_string(),
///     "PMCW devno=0009 st=0 isc=3 enabled intparm=0x12345678 pim=0x80 pam=0x80 pom=0xff lpm=0x80 pnom=0x00 lpum=0x80 chpids=[00, 00, 00, 00, 00, 00, 00, 00]");
/// assert_eq!(pmcw.into_bytes(), bytes);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
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

stored_block!(Pmcw, "PMCW", 28, validate);

impl Pmcw {
    /// Word-1 bits an MSCH operand must not set: 0 (Q), 1 (W), 6 and 7 (reference §5.2; QEMU's
    /// `PMCW_FLAGS_MASK_INVALID` 0xC300 over the upper halfword).
    pub const MSCH_INVALID_FLAGS: u32 = 0xC300_0000;

    /// Rejects what MODIFY SUBCHANNEL rejects with an operand exception (reference §5.2,
    /// §10.6): word-1 bits 0, 1, 6 or 7 set (Q and W are read-only bits STSCH may show, but an
    /// MSCH operand must not carry them), limit mode 3, reserved word-6 bits. Word-1 bit 5 is
    /// ignored, as MSCH ignores it. A stored PMCW of a QDIO subchannel therefore does not
    /// validate: read such a block with `read_from`.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let f = self.flags;
        reserved_zero(
            "PMCW",
            "flags",
            u64::from(f.into_bits().get() & Self::MSCH_INVALID_FLAGS),
        )?;
        if f.limit_mode() == 3 {
            return Err(DecodeError::new(
                "PMCW",
                "limit mode",
                DecodeReason::Invalid { value: 3 },
            ));
        }
        reserved_zero(
            "PMCW",
            "word 6",
            (self.chars.into_bits().get() & 0xFF1F_FFF8) as u64,
        )
    }

    /// Whether measurement-block update is enabled (MM bit 11).
    pub fn measurement_enabled(&self) -> bool {
        self.flags.mb_update()
    }

    /// The measurement-block format the subchannel uses (PMCW MBFC): format 0 at
    /// `MBO + MBI * 32`, format 1 at the SCHIB's MBA.
    pub fn measurement_format(&self) -> MeasurementFormat {
        if self.chars.mbfc() {
            MeasurementFormat::Format1
        } else {
            MeasurementFormat::Format0
        }
    }

    /// Where the format-0 measurement block of this subchannel lives, for a measurement-block
    /// origin `mbo` set by SET CHANNEL MONITOR: `mbo + mbi * 32`.
    pub fn format0_block_address(&self, mbo: u64) -> u64 {
        mbo.wrapping_add(u64::from(self.mbi.get()) * 32)
    }
}

impl fmt::Display for Pmcw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PMCW ")?;
        self.write_fields(f)
    }
}

impl Pmcw {
    /// Everything of the display line after the block name (shared with the SCHIB's line).
    fn write_fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self;
        write!(
            f,
            "devno={:04x}{} st={} isc={} {} intparm={:#010x} pim={:#04x} pam={:#04x} pom={:#04x} lpm={:#04x} pnom={:#04x} lpum={:#04x} chpids={:02x?}",
            p.flags.devno(),
            if p.flags.dnv() { "" } else { "(invalid)" },
            p.chars.st(),
            p.flags.isc(),
            if p.flags.enabled() {
                "enabled"
            } else {
                "disabled"
            },
            p.intparm.get(),
            p.pim,
            p.pam,
            p.pom,
            p.lpm,
            p.pnom,
            p.lpum,
            p.chpid,
        )?;
        for (set, s) in [
            (p.flags.qdio(), " qdio"),
            (p.flags.multipath(), " multipath"),
            (p.flags.timing(), " timing"),
            (p.chars.concurrent_sense(), " cs"),
            (p.chars.xmwme(), " xmwme"),
        ] {
            if set {
                f.write_str(s)?;
            }
        }
        if p.flags.limit_mode() != 0 {
            write!(f, " lm={}", p.flags.limit_mode())?;
        }
        if p.flags.mb_update() || p.flags.dct_measurement() {
            write!(
                f,
                " measure={}{}{}",
                self.measurement_format(),
                if p.flags.mb_update() { ",update" } else { "" },
                if p.flags.dct_measurement() {
                    ",dct"
                } else {
                    ""
                },
            )?;
            if !p.chars.mbfc() {
                write!(f, " mbi={}", p.mbi.get())?;
            }
        }
        Ok(())
    }
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
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
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

stored_block!(Schib, "SCHIB", 52, validate);

impl Schib {
    /// Rejects reserved bits in the PMCW ([`Pmcw::validate`]) and the SCSW, and a
    /// measurement-block address that is not 64-byte aligned while MBFC selects it.
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.validate_for_modify()?;
        self.scsw.validate()
    }

    /// Checks what MODIFY SUBCHANNEL rejects with an operand exception: reserved PMCW bits,
    /// limit mode 3, reserved word-6 bits, and (with MBFC) an MBA not on a 64-byte boundary.
    /// The SCSW is not part of the MSCH operand's meaning and is not checked.
    pub fn validate_for_modify(&self) -> Result<(), DecodeError> {
        self.pmcw.validate()?;
        if self.pmcw.chars.mbfc() {
            reserved_zero("SCHIB", "mba alignment", self.mba.get() & 0x3F)?;
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
        f.write_str("SCHIB ")?;
        self.pmcw.write_fields(f)?;
        write!(f, " | {}", self.scsw)?;
        if self.pmcw.chars.mbfc() {
            write!(f, " mba={:#x}", self.mba.get())?;
        }
        Ok(())
    }
}
